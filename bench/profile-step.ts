/**
 * Per-kernel profile of training steps of a recipe-shaped model on Diginetica-sized data (synthetic ids):
 *   node --import tsx bench/profile-step.ts [--model gpt2|stamp] [--steps 5] [--batch 256] [--items 43098]
 * Prints the kernels by total time over the profiled steps (tf.profile) and the wall time per step.
 */
import { performance } from "node:perf_hooks";
import { setupNativeEnv } from "./native-env.js";

const args = process.argv.slice(2);
const opt = (k: string, d: string) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1]! : d; };
const kind = opt("model", "gpt2");
const steps = Number(opt("steps", "5"));
const B = Number(opt("batch", kind === "stamp" ? "512" : "256"));
const V = Number(opt("items", "43098"));
const L = 20;

async function main() {
  setupNativeEnv(2);
  const { initEngine } = await import("../src/engine/index.js");
  await initEngine({ backend: (opt("backend", "tensorflow")) as never, threads: 2, quiet: true });
  const tf = await import("@tensorflow/tfjs");
  await import("../blocks/index.js");
  const { Model } = await import("../src/model/model.js");
  const { createOptimizer } = await import("../src/train/optimizers.js");
  const { batches, fullSequenceExamples, prefixExamples } = await import("../src/data/index.js");
  const { mulberry32 } = await import("../src/masking/index.js");
  const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };
  const cfg = kind === "stamp"
    ? { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 100 }, embeddingInitStd: 0.002, masking: { type: "causal" } }, body: [{ type: "stamp-attention", maxNorm: 1.5, initStd: 0.05 }], head: { type: "next-item-prediction", weightTying: true } }
    : { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 64 }, embeddingInitStd: 0.02, masking: { type: "causal" } }, body: [{ type: "transformer", architecture: "gpt2", dModel: 64, numHeads: 4, numLayers: 2, maxSequenceLength: 20, dropout: 0.1 }], head: { type: "next-item-prediction", weightTying: true } };
  const m = Model.fromConfig(cfg as never, schema as never).build({ seed: 1 });
  // sessions with Diginetica's length distribution roughly (mean ~5)
  const rng = mulberry32(7);
  const sessions = Array.from({ length: B * (3 * steps + 4) }, () => {
    const n = 2 + Math.floor(-Math.log(1 - rng.next()) * 3.5);
    return { id: "s", categorical: {}, continuous: {}, context: {}, items: Int32Array.from({ length: Math.min(n, 21) }, () => 2 + Math.floor(rng.next() * (V - 2))) };
  });
  const ex = kind === "stamp" ? prefixExamples(sessions as never) : fullSequenceExamples(sessions as never, 2);
  const opt2 = createOptimizer({ type: "adam", learningRate: 0.001 } as never);
  const vars = m.trainableVariables();
  const it = batches(ex, { batchSize: B, maxSequenceLength: L, shuffle: true, seed: 1 });
  const step = () => {
    const b = it.next().value!;
    const tb = m.trainBatch(b, rng)!;
    const { value, grads } = tf.variableGrads(tb.loss as never, vars);
    opt2.applyGradients(grads);
    for (const g of Object.values(grads)) g.dispose();
    const l = value.dataSync()[0];
    value.dispose();
    return { l, labels: tb.numLabels };
  };
  step(); step();
  const t0 = performance.now();
  let labels = 0;
  const prof = await tf.profile(() => { for (let i = 0; i < steps; i++) labels += step().labels; });
  const wall = performance.now() - t0;
  const by = new Map<string, { ms: number; n: number }>();
  for (const k of prof.kernels) {
    const e = by.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    e.n++;
    by.set(k.name, e);
  }
  const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((a, [, e]) => a + e.ms, 0);
  console.log(`${kind}: ${steps} steps, batch ${B}, ${V} items: ${(wall / steps).toFixed(0)} ms/step wall (profiled), kernels ${(total / steps).toFixed(0)} ms/step, ${prof.kernels.length / steps} kernels/step, ${(labels / (wall / 1000)).toFixed(0)} labels/s`);
  console.log("kernel".padEnd(34) + "ms/step".padStart(9) + "calls/step".padStart(11) + "share".padStart(7));
  for (const [name, e] of rows.slice(0, 25)) console.log(name.padEnd(34) + (e.ms / steps).toFixed(1).padStart(9) + (e.n / steps).toFixed(0).padStart(11) + `${((100 * e.ms) / total).toFixed(0)}%`.padStart(7));
  // split: forward + backward (to the gradients, synced) vs the optimizer step (synced)
  let tg = 0, to = 0;
  for (let i = 0; i < steps; i++) {
    const b = it.next().value!;
    const a0 = performance.now();
    const tb = m.trainBatch(b, rng)!;
    const { value, grads } = tf.variableGrads(tb.loss as never, vars);
    value.dataSync();
    for (const g of Object.values(grads)) g.dataSync();
    const a1 = performance.now();
    opt2.applyGradients(grads);
    vars[0]!.dataSync();
    to += performance.now() - a1;
    tg += a1 - a0;
    for (const g of Object.values(grads)) g.dispose();
    value.dispose();
  }
  console.log(`split: forward+backward ${(tg / steps).toFixed(0)} ms/step, optimizer ${(to / steps).toFixed(0)} ms/step (${vars.length} variables, ${vars.reduce((a, v) => a + v.size, 0)} parameters)`);
  // unprofiled timing
  const t1 = performance.now();
  let lab2 = 0;
  for (let i = 0; i < steps; i++) lab2 += step().labels;
  const w2 = performance.now() - t1;
  console.log(`unprofiled: ${(w2 / steps).toFixed(0)} ms/step, ${(lab2 / (w2 / 1000)).toFixed(0)} labels/s, ${(steps * B / (w2 / 1000)).toFixed(0)} rows/s`);
}
main();
