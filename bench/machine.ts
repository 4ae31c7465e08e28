/**
 * Prints one JSON line describing the recblocks side of a benchmark: TF.js backend, TensorFlow C
 * library version (native backend), tfjs version, node. Run as a child by bench/run.ts so that the
 * harness process itself never loads TensorFlow.
 *
 *   node --import tsx bench/machine.ts [--backend auto|tensorflow|wasm|cpu] [--threads 2]
 */
import { setupNativeEnv } from "./native-env.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const threads = Number(opt("threads", "2"));
setupNativeEnv(threads);
const tf = await import("@tensorflow/tfjs");
const { initEngine } = await import("../src/engine/index.js");
const requested = opt("backend", "tensorflow");
const info = await initEngine({ backend: requested, threads, quiet: true });
console.log(JSON.stringify({
  backend: info.backend, reason: info.reason, tensorflow_version: info.tensorflowVersion ?? null,
  native_package: info.nativePackage ?? null, engine_threads: info.threads ?? null, tfjs_version: tf.version.tfjs, node: process.version,
}));
