/**
 * A model trained and evaluated through recblocks' own path — recipe model config -> Model.fromConfig ->
 * fit() -> Model.evaluate — on Diginetica, with the flags, protocol and JSON keys of the matching peer,
 * so that `npm run bench -- transformer|stamp` runs the two side by side:
 *   --model gpt2   the causal transformer (GPT-2 preset) vs ../shared/peers/causal_transformer_torch.py:
 *                  whole sessions (the last max-len+1 items; the peer cuts longer sessions into windows,
 *                  0.4 % more targets), causal LM at every position; `train_examples_per_s` = targets/s.
 *   --model stamp  STAMP (stamp-attention + tied head) vs ../shared/peers/stamp_torch.py: prefix examples,
 *                  one target per row; `train_examples_per_s` = examples/s.
 *
 *   node --import tsx bench/framework.ts [--model gpt2|stamp] [--epochs 3] [--batch-size 256|512] [--dim 64|100]
 *        [--layers 2] [--heads 4] [--max-len 20] [--lr 0.001|0.005] [--dropout 0.1] [--init-std 0.02|0.002]
 *        [--w-std 0.05] [--threads 2] [--max-batches N] [--max-eval-batches N] [--eval-batch-size 512]
 *        [--backend b] [--json-out F]
 *
 * Evaluation: every test prefix -> next item, all items ranked, P@20 (= recall@20) and MRR@20 in percent;
 * infer_ms_per_batch512 is the mean time of the full evaluation batches (scoring, top-20, read-back).
 * One JSON line last on stdout.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setupNativeEnv } from "./native-env.js";

const MODEL = process.argv.includes("--model") ? process.argv[process.argv.indexOf("--model") + 1] : "gpt2";
if (MODEL !== "gpt2" && MODEL !== "stamp") throw new Error(`bench/framework.ts: --model gpt2|stamp, got ${MODEL}`);
const STAMP = MODEL === "stamp";
const A = {
  model: MODEL,
  data: join(process.cwd(), "..", "shared", "data", "diginetica"),
  epochs: 3, batchSize: STAMP ? 512 : 256, dim: STAMP ? 100 : 64, layers: 2, heads: 4, maxLen: 20, lr: STAMP ? 0.005 : 0.001, dropout: 0.1,
  initStd: STAMP ? 0.002 : 0.02, wStd: 0.05,
  seed: 42, threads: 2, maxBatches: 0, evalBatchSize: 512, maxEvalBatches: 0, topk: 20,
  backend: "tensorflow" as "tensorflow" | "wasm" | "cpu", jsonOut: "", quiet: false,
};
{
  const argv = process.argv.slice(2);
  const keys: Record<string, keyof typeof A> = {
    "--data": "data", "--epochs": "epochs", "--batch-size": "batchSize", "--dim": "dim", "--layers": "layers", "--heads": "heads",
    "--max-len": "maxLen", "--lr": "lr", "--model": "model", "--w-std": "wStd", "--emb-std": "initStd", "--dropout": "dropout", "--init-std": "initStd", "--seed": "seed", "--threads": "threads",
    "--max-batches": "maxBatches", "--eval-batch-size": "evalBatchSize", "--max-eval-batches": "maxEvalBatches", "--topk": "topk",
    "--backend": "backend", "--json-out": "jsonOut",
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === "--quiet") { A.quiet = true; continue; }
    const key = keys[k];
    if (!key) throw new Error(`bench/framework.ts: unknown option ${k}`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    (A as Record<string, unknown>)[key] = typeof A[key] === "number" ? Number(v) : v;
    if (typeof A[key] === "number" && !Number.isFinite(A[key])) throw new Error(`${k} needs a number, got ${v}`);
  }
}
const log = (m: string) => { if (!A.quiet) process.stderr.write(m + "\n"); };
const peakRssMb = () => {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss / 1048576;
};

async function main() {
  if (A.backend === "tensorflow") setupNativeEnv(A.threads);
  const { initEngine } = await import("../src/engine/index.js");
  const engine = await initEngine({ backend: A.backend, threads: A.threads, quiet: true });
  await import("../blocks/index.js");
  const { loadRecipeData } = await import("../src/data/load.js");
  const { Model } = await import("../src/model/model.js");
  const { fit, evaluationBatches } = await import("../src/train/index.js");

  const t0 = performance.now();
  const data = await loadRecipeData(
    {
      train: join(A.data, "train_sessions.txt"), test: join(A.data, "test_sessions.txt"), format: "session-text",
      sessions: { maxSequenceLength: A.maxLen }, split: { type: "random", validFraction: 0, testFraction: 0 },
    } as never,
    null,
  );
  const loadS = (performance.now() - t0) / 1000;
  const model = Model.fromConfig({
    inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: A.dim }, embeddingInitStd: A.initStd, masking: { type: "causal" } },
    body: STAMP
      ? [{ type: "stamp-attention", variant: "stamp", maxNorm: null, initStd: A.wStd }]
      : [{ type: "transformer", architecture: "gpt2", dModel: A.dim, numHeads: A.heads, numLayers: A.layers, maxSequenceLength: A.maxLen, dropout: A.dropout, initializerRange: A.initStd, layerNormEps: 1e-5 }],
    head: { type: "next-item-prediction", weightTying: true },
  } as never, data.featureSchema as never);
  model.build({ seed: A.seed });
  log(`data: ${data.train.length} train sessions, ${data.test!.length} test sessions, ${model.numItems} ids, load ${loadS.toFixed(1)}s; engine ${engine.backend}; ${model.countParams()} parameters`);

  // One fit over all epochs (the optimizer's state carries across epochs), then one timed evaluation.
  const r = await fit(model, { train: data.train, maxSequenceLength: A.maxLen }, {
    train: { epochs: A.epochs, batchSize: A.batchSize, examples: STAMP ? "prefixes" : "sequences", optimizer: { type: "adam", learningRate: A.lr }, seed: A.seed },
    progress: { stream: process.stderr as never, quiet: A.quiet },
    maxBatchesPerEpoch: A.maxBatches || undefined,
  });
  const perEpoch: Record<string, number>[] = r.history.map((h) => ({
    epoch: h.epoch, loss: h.loss, examples: h.labels ?? 0, train_s: h.seconds, examples_per_s: h.labelsPerSecond ?? 0, sessions_per_s: h.examplesPerSecond,
  }));
  // Evaluation: full batches timed one by one (from handing a batch to the model to its next request).
  const eb = evaluationBatches(data.test!, "all-prefixes", { batchSize: A.evalBatchSize, maxSequenceLength: A.maxLen });
  let n = 0;
  const batchTimes: number[] = [];
  const timed = (function* () {
    for (const b of eb) {
      if (A.maxEvalBatches && n >= A.maxEvalBatches) return;
      n++;
      const s = performance.now();
      yield b;
      if (b.batchSize === A.evalBatchSize) batchTimes.push(performance.now() - s);
    }
  })();
  const te = performance.now();
  const m = model.evaluate(timed, { ks: [A.topk], metrics: ["recall", "mrr"], loss: false });
  const final = perEpoch[perEpoch.length - 1]!;
  Object.assign(final, {
    [`P@${A.topk}`]: 100 * m[`recall@${A.topk}`]!, [`MRR@${A.topk}`]: 100 * m[`mrr@${A.topk}`]!,
    eval_s: (performance.now() - te) / 1000, test_pairs: m.examples ?? 0,
    infer_ms_per_batch: batchTimes.reduce((a, b) => a + b, 0) / Math.max(1, batchTimes.length),
  });
  for (const rec of perEpoch) log(`epoch ${rec.epoch}: ${JSON.stringify(rec)}`);
  const last = perEpoch[perEpoch.length - 1]!;
  const sum = (k: string) => perEpoch.reduce((a, r) => a + (r[k] ?? 0), 0);
  const out = {
    model: STAMP ? "recblocks STAMP (TabularSequenceFeatures + stamp-attention + NextItemPredictionTask)" : "recblocks gpt2 (TabularSequenceFeatures + TransformerBlock gpt2 + NextItemPredictionTask)",
    impl: `recblocks ${engine.backend}`, dataset: "diginetica", n_items: model.numItems, n_params: model.countParams(),
    epochs: A.epochs, per_epoch: perEpoch,
    [`P@${A.topk}`]: last[`P@${A.topk}`], [`MRR@${A.topk}`]: last[`MRR@${A.topk}`],
    train_s_per_epoch: sum("train_s") / perEpoch.length,
    train_examples_per_s: sum("examples") / sum("train_s"),
    infer_ms_per_batch512: last.infer_ms_per_batch,
    peak_rss_mb: peakRssMb(), load_s: loadS, threads: A.threads, backend: engine.backend,
  };
  model.dispose();
  const line = JSON.stringify(out);
  if (A.jsonOut) writeFileSync(A.jsonOut, line + "\n");
  process.stdout.write(line + "\n");
}

main().catch((e) => {
  process.stderr.write(`bench/transformer.ts: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
