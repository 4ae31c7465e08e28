/**
 * One ALS run with recblocks' ALS (blocks/factorization) on ml-100k, leave-last-out: the same
 * protocol, flags and JSON keys as ../shared/peers/als_numpy.py, so that `bench/run.ts als` can run
 * the two side by side. (bench/als.ts is the older all-in-one comparison; this is one side of it.)
 *
 *   node --import tsx bench/als-run.ts [--solver cg|cholesky] [--factors 64] [--reg 0.01] [--alpha 1]
 *        [--iterations 15] [--max-batches N (caps iterations, as the peer)] [--cg-steps 3] [--threads 2]
 *        [--kernels auto|wasm|js] [--backend auto|tensorflow|wasm|cpu] [--seed 42] [--data FILE]
 *        [--json-out FILE] [--quiet]
 *
 * --threads 1 solves on the main thread with the WebAssembly SIMD kernels (--kernels auto); more
 * threads spread the per-row solves over worker threads (typed-array kernels), as a recipe's
 * `threads:` does. Prints progress on stderr and one JSON line last on stdout: HR@10, NDCG@10, P@10,
 * MAP@10, s_per_iteration, train_examples_per_s (nnz * iterations / train seconds),
 * infer_ms_per_batch512 (AlsModel.recommendBatch: 512 users scored against every item, seen items
 * excluded, top 10; median of 5 after one warm-up; infer_ms_per_batch512_typed: the same with
 * typed-array scoring instead of a TF.js matMul), peak_rss_mb.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/engine/index.js";
import { sharedDataDir } from "../src/paths.js";
import { fitAlsParallel } from "../blocks/factorization/als-parallel.js";
import { AlsModel } from "../blocks/factorization/als-model.js";
import { fitAls } from "../blocks/factorization/als-trainer.js";
import { resolveAlsConfig } from "../blocks/factorization/config.js";
import { evaluateLeaveLastOut } from "../blocks/factorization/evaluate.js";
import { leaveLastOut, readInteractionsFile } from "../blocks/factorization/interactions.js";
import { topKRow } from "../blocks/factorization/topk.js";
import { setupNativeEnv } from "./native-env.js";

interface Args {
  data: string; solver: "cg" | "cholesky"; factors: number; reg: number; alpha: number; iterations: number;
  maxBatches: number; cgSteps: number; topk: number; batchSize: number; threads: number; seed: number;
  kernels: "auto" | "wasm" | "js"; backend: string; jsonOut: string; quiet: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = {
    data: join(sharedDataDir(), "ml-100k", "u.data"), solver: "cg", factors: 64, reg: 0.01, alpha: 1, iterations: 15,
    maxBatches: 0, cgSteps: 3, topk: 10, batchSize: 512, threads: 2, seed: 42, kernels: "auto", backend: "auto", jsonOut: "", quiet: false,
  };
  const num = (s: string | undefined, name: string): number => {
    const v = Number(s);
    if (s === undefined || !Number.isFinite(v)) throw new Error(`--${name} needs a number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const next = (): string | undefined => argv[++i];
    switch (k) {
      case "--data": a.data = next()!; break;
      case "--solver": a.solver = next() as Args["solver"]; break;
      case "--factors": case "--dim": a.factors = num(next(), "factors"); break;
      case "--reg": a.reg = num(next(), "reg"); break;
      case "--alpha": a.alpha = num(next(), "alpha"); break;
      case "--iterations": case "--epochs": a.iterations = num(next(), "iterations"); break;
      case "--max-batches": a.maxBatches = num(next(), "max-batches"); break;
      case "--cg-steps": a.cgSteps = num(next(), "cg-steps"); break;
      case "--topk": a.topk = num(next(), "topk"); break;
      case "--batch-size": a.batchSize = num(next(), "batch-size"); break;
      case "--threads": a.threads = num(next(), "threads"); break;
      case "--seed": a.seed = num(next(), "seed"); break;
      case "--kernels": a.kernels = next() as Args["kernels"]; break;
      case "--backend": a.backend = next()!; break;
      case "--json-out": a.jsonOut = next()!; break;
      case "--quiet": a.quiet = true; break;
      default: throw new Error(`bench/als-run.ts: unknown option ${k}`);
    }
  }
  if (a.solver !== "cg" && a.solver !== "cholesky") throw new Error(`--solver must be cg or cholesky, got ${a.solver}`);
  return a;
}

function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss / 1048576;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const log = (s: string): void => { if (!a.quiet) process.stderr.write(s + "\n"); };
  setupNativeEnv(a.threads);
  const engine = await initEngine({ backend: a.backend, threads: a.threads, quiet: true });
  const t0 = performance.now();
  const d = readInteractionsFile(a.data);
  const split = leaveLastOut(d);
  const nu = d.users.length;
  const ni = d.items.length;
  const nnz = split.train.indptr[nu]!;
  const loadS = (performance.now() - t0) / 1000;
  log(`data ${a.data}: ${nu} users, ${ni} items, ${nnz} train nnz, ${split.testUsers.length} test users, load ${loadS.toFixed(2)}s; engine ${engine.backend}`);

  const iters = a.maxBatches ? Math.min(a.iterations, a.maxBatches) : a.iterations;
  const cfg = resolveAlsConfig({
    type: "als", factors: a.factors, regularization: a.reg, alpha: a.alpha, iterations: iters, solver: a.solver,
    cgSteps: a.cgSteps, seed: a.seed, threads: a.threads,
  });
  const onIteration = (rec: { iteration: number; seconds: number }): void => log(`iter ${rec.iteration}: train_s ${rec.seconds.toFixed(4)}`);
  const fit = a.threads > 1 ? await fitAlsParallel(split.train, cfg, a.threads, { onIteration })
    : fitAls(split.train, cfg, { kernels: a.kernels, onIteration });
  const trainS = fit.history.reduce((s, h) => s + h.seconds, 0);

  const f = a.factors;
  const model = new AlsModel({
    config: cfg, users: d.users, items: d.items, userFactors: Float32Array.from(fit.userFactors),
    itemFactors: Float32Array.from(fit.itemFactors), userItems: split.train,
  });
  const te = performance.now();
  const m = evaluateLeaveLastOut(model.userFactors, model.itemFactors, f, ni, split.train, split.testUsers, split.testItems,
    { ks: [a.topk], batchSize: a.batchSize }, (users, out) => {
      const vec = new Float32Array(users.length * f);
      users.forEach((u, b) => vec.set(model.userFactors.subarray(u * f, (u + 1) * f), b * f));
      out.set(model.scoreVectors(vec, users.length));
    });
  const evalS = (performance.now() - te) / 1000;

  // inference: the serving path for a batch of 512 known users (raw ids), top-k, seen items excluded
  const B = Math.min(a.batchSize, split.testUsers.length);
  const batch = Array.from(split.testUsers.subarray(0, B), (u) => d.users[u]!);
  model.recommendBatch(batch, { k: a.topk });
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t1 = performance.now();
    model.recommendBatch(batch, { k: a.topk });
    times.push(performance.now() - t1);
  }
  // the same with typed-array scoring (AlsModel.scoreVectors(..., "typed")) instead of TF.js matMul + read-back
  const users = split.testUsers.subarray(0, B);
  const vec = new Float32Array(B * f);
  users.forEach((u, b) => vec.set(model.userFactors.subarray(u * f, (u + 1) * f), b * f));
  const seen = new Uint8Array(ni);
  const idx = new Int32Array(a.topk);
  const sc = new Float32Array(a.topk);
  const typedBatch = (): void => {
    const scores = model.scoreVectors(vec, B, "typed");
    for (let b = 0; b < B; b++) {
      const u = users[b]!;
      const tr = split.train;
      for (let j = tr.indptr[u]!; j < tr.indptr[u + 1]!; j++) seen[tr.indices[j]!] = 1;
      topKRow(scores, b * ni, ni, a.topk, (i) => seen[i] === 1, idx, sc);
      for (let j = tr.indptr[u]!; j < tr.indptr[u + 1]!; j++) seen[tr.indices[j]!] = 0;
    }
  };
  typedBatch();
  const typedTimes: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t1 = performance.now();
    typedBatch();
    typedTimes.push(performance.now() - t1);
  }
  model.dispose();

  const k = a.topk;
  const out = {
    model: `ALS-${a.solver}`,
    impl: `recblocks (${a.threads > 1 ? `${a.threads} threads, typed-array kernels` : `1 thread, kernels ${a.kernels}`}; scoring TF.js ${tf.getBackend()})`,
    dataset: a.data, n_users: nu, n_items: ni, train_nnz: nnz, iterations: iters,
    per_iteration: fit.history.map((h) => ({ iteration: h.iteration, train_s: h.seconds })),
    [`HR@${k}`]: m[`hitrate@${k}`], [`NDCG@${k}`]: m[`ndcg@${k}`], [`P@${k}`]: m[`precision@${k}`], [`MAP@${k}`]: m[`map@${k}`],
    n_eval_users: split.testUsers.length,
    infer_ms_per_batch512: median(times), infer_ms_per_batch512_typed: median(typedTimes), infer_batch: B,
    s_per_iteration: trainS / iters, train_s: trainS, train_examples_per_s: (nnz * iters) / trainS, eval_s: evalS,
    peak_rss_mb: peakRssMb(), load_s: loadS, threads: a.threads, backend: tf.getBackend(),
    tensorflow_version: engine.tensorflowVersion ?? null, args: a,
  };
  const line = JSON.stringify(out);
  if (a.jsonOut) writeFileSync(a.jsonOut, line + "\n");
  console.log(line);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
