/**
 * Engine op timings: the sparse softmax cross-entropy (fused native vs TF.js composite vs
 * tf.losses.softmaxCrossEntropy with one-hot labels), forward + backward over B x C logits; and
 * transposed matmuls on wasm with and without recblocks' fast path.
 *
 *   node --import tsx bench/engine-ops.ts [--batch 512] [--classes 43098] [--reps 5] [--json]
 */
import * as tf from "@tensorflow/tfjs";
import { initEngine, Rng, sparseSoftmaxCrossEntropy } from "../src/engine/index.js";

const argv = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const B = opt("batch", 512);
const C = opt("classes", 43098);
const REPS = opt("reps", 5);
const json = argv.includes("--json");
const rows: { metric: string; backend: string; ms: number }[] = [];
const log = (s: string): void => {
  if (!json) process.stdout.write(s + "\n");
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time of `f` (after one warm-up), reading one value back so the work is done. */
function time(f: () => tf.Tensor): number {
  const ts: number[] = [];
  for (let r = 0; r <= REPS; r++) {
    const t0 = performance.now();
    tf.tidy(() => {
      f().dataSync();
    });
    if (r > 0) ts.push(performance.now() - t0);
  }
  return median(ts);
}

function xentBench(backend: string): void {
  const rng = new Rng(1);
  const x = tf.tensor2d(Float32Array.from({ length: B * C }, () => rng.normal() * 2), [B, C]);
  const y = tf.tensor1d(Int32Array.from({ length: B }, () => rng.int(C)), "int32");
  const step = (impl: "auto" | "composite") => () => {
    const g = tf.grad((l: tf.Tensor) => tf.mean(sparseSoftmaxCrossEntropy(l as tf.Tensor2D, y, { impl })))(x);
    return tf.sum(g);
  };
  const cases: [string, () => tf.Tensor][] = [];
  if (backend === "tensorflow") cases.push(["sparse xent fused (SparseSoftmaxCrossEntropyWithLogits)", step("auto")]);
  cases.push(["sparse xent composite (TF.js ops, no one-hot)", step("composite")]);
  cases.push([
    "tf.losses.softmaxCrossEntropy (one-hot)",
    () => tf.sum(tf.grad((l: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, C), l))(x)),
  ]);
  for (const [name, f] of cases) {
    const ms = time(f);
    rows.push({ metric: `${name}, fwd+bwd ${B}x${C}`, backend, ms });
    log(`${backend.padEnd(10)} ${name.padEnd(58)} ${ms.toFixed(1).padStart(8)} ms`);
  }
  x.dispose();
  y.dispose();
}

function matmulBench(backend: string): void {
  const rng = new Rng(2);
  const a = tf.tensor2d(Float32Array.from({ length: 256 * 64 }, () => rng.normal()), [256, 64]);
  const e = tf.tensor2d(Float32Array.from({ length: 5000 * 64 }, () => rng.normal()), [5000, 64]);
  const m = tf.tensor2d(Float32Array.from({ length: 1024 * 1024 }, () => rng.normal()), [1024, 1024]);
  const cases: [string, () => tf.Tensor][] = [
    ["matMul 256x64 · (5000x64)ᵀ (transposeB; fast path on wasm)", () => tf.matMul(a, e, false, true)],
    ["transpose + matMul 256x64 · 64x5000", () => tf.matMul(a, tf.transpose(e))],
    ["matMul 1024² (GFLOP/s in the name)", () => tf.matMul(m, m)],
  ];
  for (const [name, f] of cases) {
    const ms = time(f);
    const label = name.includes("1024²") ? `matMul 1024² = ${((2 * 1024 ** 3) / (ms * 1e6)).toFixed(1)} GFLOP/s` : name;
    rows.push({ metric: label, backend, ms });
    log(`${backend.padEnd(10)} ${label.padEnd(58)} ${ms.toFixed(1).padStart(8)} ms`);
  }
  tf.dispose([a, e, m]);
}

// Stock wasm first (before initEngine registers recblocks' kernels), for the transposed-matmul baseline.
{
  await import("@tensorflow/tfjs-backend-wasm");
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  await tf.setBackend("wasm");
  const rng = new Rng(2);
  const a = tf.tensor2d(Float32Array.from({ length: 256 * 64 }, () => rng.normal()), [256, 64]);
  const e = tf.tensor2d(Float32Array.from({ length: 5000 * 64 }, () => rng.normal()), [5000, 64]);
  const ms = time(() => tf.matMul(a, e, false, true));
  rows.push({ metric: "matMul 256x64 · (5000x64)ᵀ (transposeB), stock wasm kernel", backend: "wasm", ms });
  log(`${"wasm".padEnd(10)} ${"matMul 256x64 · (5000x64)ᵀ, STOCK wasm kernel".padEnd(58)} ${ms.toFixed(1).padStart(8)} ms`);
  tf.dispose([a, e]);
}
const info = await initEngine({ backend: "auto", quiet: true });
const backends = info.backend === "tensorflow" ? ["tensorflow", "wasm"] : ["wasm"];
log(`engine bench: ${B}x${C} logits, median of ${REPS}; backends ${backends.join(", ")}`);
for (const b of backends) {
  await initEngine({ backend: b, quiet: true });
  matmulBench(b);
  xentBench(b);
}
if (json) process.stdout.write(JSON.stringify({ suite: "engine-ops", batch: B, classes: C, rows }) + "\n");
