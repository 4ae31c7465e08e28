// Runs the recblocks CLI from source (bin/recblocks.js runs the built dist/): node --import tsx test/reliability/run-cli.ts <args>
process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
const { main } = await import("../../src/cli/main.js");
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`recblocks: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
