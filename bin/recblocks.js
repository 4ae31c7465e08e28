#!/usr/bin/env node
// TensorFlow's C++ start-up lines (oneDNN notice, absl warning) are noise for a CLI user; set
// TF_CPP_MIN_LOG_LEVEL yourself to see them. Must be set before the native library loads.
process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
const { main } = await import("../dist/src/cli/main.js");

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`recblocks: internal error: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
