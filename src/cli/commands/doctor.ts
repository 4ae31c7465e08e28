import type { CommandSpec, ParsedArgs } from "../args.js";

export const spec: CommandSpec = {
  name: "doctor",
  summary: "show the TensorFlow.js backend, TensorFlow version, threads and how the native engine was installed",
  usage: "recblocks doctor [--backend auto|tensorflow|wasm|cpu] [--threads n] [--json]",
  options: [
    { name: "backend", kind: "string", description: "backend to start (default: RECBLOCKS_BACKEND or auto)" },
    { name: "threads", kind: "number", description: "TensorFlow intra-/inter-op threads (default: RECBLOCKS_THREADS or TensorFlow's)" },
    { name: "json", kind: "boolean", description: 'print {"backend","tensorflowVersion","threads","native":{"available","how"}} as the last line' },
  ],
  positionals: { min: 0, max: 0 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const { initEngine, setupStatus } = await import("../../engine/index.js");
  const { RecblocksError } = await import("../../errors/issue.js");
  const json = args.options.json === true;
  let info;
  try {
    info = await initEngine({
      backend: args.options.backend as string | undefined,
      threads: args.options.threads as number | undefined,
      quiet: true,
    });
  } catch (e) {
    if (e instanceof RecblocksError) {
      for (const i of e.issues) process.stderr.write(`recblocks doctor: ${i.message}${i.hint ? ` ${i.hint}` : ""}\n`);
      return 1;
    }
    throw e;
  }
  const tf = await import("@tensorflow/tfjs");
  const setup = setupStatus();
  if (!json) {
    const rows: [string, string][] = [
      ["backend", `${info.backend} (${info.reason})`],
      ["tensorflow", info.tensorflowVersion ?? "-"],
      ["threads", String(info.threads ?? "-")],
      ["native", `${info.native.available ? "available" : "NOT available"}: ${info.native.how}`],
      ["install-time setup", setup ? `${setup.ok ? "ok" : "failed"}: ${setup.how}` : "no record (node_modules/.recblocks-native.json)"],
      ["tfjs", tf.version_core],
      ["node", `${process.version} (${process.platform}-${process.arch})`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  } else {
    process.stdout.write(
      JSON.stringify({
        backend: info.backend,
        tensorflowVersion: info.tensorflowVersion ?? null,
        threads: info.threads ?? null,
        native: info.native,
      }) + "\n",
    );
  }
  return 0;
}
