/**
 * STAMP on Diginetica with recblocks' STAMP functions (blocks/sequence/stamp-ops.ts,
 * blocks/heads/trilinear-ops.ts): the same model, data, protocol and JSON output as
 * ../shared/peers/stamp_torch.py, so that `bench/run.ts stamp` can run the two side by side.
 *
 *   node --import tsx bench/stamp.ts [--epochs 3] [--max-batches N] [--max-eval-batches N]
 *        [--optimizer native|recblocks|tfjs] [--variant stamp|stmp] [--biases|--no-biases]
 *        [--max-norm X] [--clip X] [--lr 0.005] [--threads 2] [--json-out FILE] [--seed 42]
 *
 * Prints progress on stderr and one JSON line last on stdout (keys as the peer's).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setupNativeEnv, loadEngine } from "./native-env.js";

interface Args {
  data: string;
  epochs: number;
  batchSize: number;
  dim: number;
  lr: number;
  maxLen: number;
  embStd: number;
  wStd: number;
  seed: number;
  threads: number;
  maxBatches: number;
  evalBatchSize: number;
  maxEvalBatches: number;
  topk: number;
  variant: "stamp" | "stmp";
  biases: boolean;
  maxNorm: number | null;
  clip: number | null;
  optimizer: "native" | "recblocks" | "tfjs";
  backend: "tensorflow" | "wasm" | "cpu";
  jsonOut: string;
  profile: number;
  quiet: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = {
    data: join(process.cwd(), "..", "shared", "data", "diginetica"),
    epochs: 3, batchSize: 512, dim: 100, lr: 0.005, maxLen: 20, embStd: 0.002, wStd: 0.05, seed: 42,
    threads: 2, maxBatches: 0, evalBatchSize: 512, maxEvalBatches: 0, topk: 20, variant: "stamp",
    biases: true, maxNorm: null, clip: null, optimizer: "native", backend: "tensorflow", jsonOut: "", profile: 0, quiet: false,
  };
  const num = (s: string | undefined, name: string) => {
    const v = Number(s);
    if (s === undefined || !Number.isFinite(v)) throw new Error(`--${name} needs a number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const next = () => argv[++i];
    switch (k) {
      case "--data": a.data = next()!; break;
      case "--epochs": a.epochs = num(next(), "epochs"); break;
      case "--batch-size": a.batchSize = num(next(), "batch-size"); break;
      case "--dim": a.dim = num(next(), "dim"); break;
      case "--lr": a.lr = num(next(), "lr"); break;
      case "--max-len": a.maxLen = num(next(), "max-len"); break;
      case "--seed": a.seed = num(next(), "seed"); break;
      case "--threads": a.threads = num(next(), "threads"); break;
      case "--max-batches": a.maxBatches = num(next(), "max-batches"); break;
      case "--max-eval-batches": a.maxEvalBatches = num(next(), "max-eval-batches"); break;
      case "--variant": a.variant = next() as Args["variant"]; break;
      case "--biases": a.biases = true; break;
      case "--no-biases": a.biases = false; break;
      case "--max-norm": a.maxNorm = num(next(), "max-norm"); break;
      case "--clip": a.clip = num(next(), "clip"); break;
      case "--optimizer": a.optimizer = next() as Args["optimizer"]; break;
      case "--backend": a.backend = next() as Args["backend"]; break;
      case "--json-out": a.jsonOut = next()!; break;
      case "--profile": a.profile = num(next(), "profile"); break;
      case "--quiet": a.quiet = true; break;
      default: throw new Error(`bench/stamp.ts: unknown option ${k}`);
    }
  }
  return a;
}

const ARGS = parse(process.argv.slice(2));
setupNativeEnv(ARGS.threads);
const log = (...m: unknown[]) => { if (!ARGS.quiet) console.error(...m); };

// ------------------------------------------------------------------------------------------ data
function readSessions(file: string): Int32Array[] {
  const out: Int32Array[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const t = line.trim();
    if (t) out.push(Int32Array.from(t.split(/\s+/), Number));
  }
  return out;
}

/** Every prefix -> next pair; prefixes truncated to their last maxLen items, right-aligned (left padding). */
function prefixPairs(sessions: Int32Array[], maxLen: number): { X: Int32Array; y: Int32Array; n: number } {
  let n = 0;
  for (const s of sessions) n += Math.max(0, s.length - 1);
  const X = new Int32Array(n * maxLen);
  const y = new Int32Array(n);
  let r = 0;
  for (const s of sessions) {
    for (let t = 1; t < s.length; t++, r++) {
      y[r] = s[t]!;
      const from = Math.max(0, t - maxLen);
      X.set(s.subarray(from, t), r * maxLen + maxLen - (t - from));
    }
  }
  return { X, y, n };
}

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function peakRssMb(): number {
  try {
    const st = readFileSync("/proc/self/status", "utf8");
    const m = /VmHWM:\s+(\d+)/.exec(st);
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss / 1048576;
}

async function main(): Promise<void> {
  const engine = await loadEngine(ARGS.backend, ARGS.threads);
  const tf = await import("@tensorflow/tfjs");
  const { stampEncode, lastAndLengths } = await import("../blocks/sequence/stamp-ops.js");
  const { trilinearSoftmaxLoss, buildCatalogue, catalogueTopK } = await import("../blocks/heads/trilinear-ops.js");
  const { createStampOptimizer } = await import("./stamp-optimizer.js");

  const t0 = performance.now();
  const tr = readSessions(join(ARGS.data, "train_sessions.txt"));
  const te = readSessions(join(ARGS.data, "test_sessions.txt"));
  let maxId = 0;
  for (const s of [...tr, ...te]) for (const v of s) if (v > maxId) maxId = v;
  const V = maxId + 1;
  const L = ARGS.maxLen;
  const train = prefixPairs(tr, L);
  const test = prefixPairs(te, L);
  const loadS = (performance.now() - t0) / 1000;
  log(`data: ${train.n} train pairs, ${test.n} test pairs, ${V} ids (incl. pad), load ${loadS.toFixed(1)}s; engine ${engine}`);

  // ---------------------------------------------------------------------------------------- model
  const rng = mulberry32(ARGS.seed);
  const normal = (n: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(rng(), 1e-12), v = rng();
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      a[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return a;
  };
  const d = ARGS.dim;
  const embInit = normal(V * d, ARGS.embStd);
  embInit.fill(0, 0, d);
  const vars: Record<string, import("@tensorflow/tfjs").Variable> = {};
  const mk = (name: string, shape: number[], values: Float32Array) => (vars[name] = tf.variable(tf.tensor(values, shape), true, `stamp/${name}`));
  const E = mk("item_embeddings", [V, d], embInit);
  const stamp = ARGS.variant === "stamp";
  if (stamp) {
    for (const n of ["w1", "w2", "w3"]) mk(n, [d, d], normal(d * d, ARGS.wStd));
    mk("w0", [d, 1], normal(d, ARGS.wStd));
    if (ARGS.biases) mk("ba", [d], new Float32Array(d));
  }
  mk("wA", [d, d], normal(d * d, ARGS.wStd));
  mk("wB", [d, d], normal(d * d, ARGS.wStd));
  if (ARGS.biases) {
    mk("bA", [d], new Float32Array(d));
    mk("bB", [d], new Float32Array(d));
  }
  const weights = () => ({
    w1: vars.w1 as never, w2: vars.w2 as never, w3: vars.w3 as never, w0: vars.w0 as never, ba: vars.ba as never,
    wA: vars.wA as never, bA: vars.bA as never, wB: vars.wB as never, bB: vars.bB as never,
  });
  const varList = Object.values(vars);
  const opt = createStampOptimizer(ARGS.optimizer, ARGS.lr, varList, ARGS.clip);
  const encOpts = { variant: ARGS.variant, maxNorm: ARGS.maxNorm };

  function batchTensors(src: { X: Int32Array; y: Int32Array }, idx: ArrayLike<number>) {
    const B = idx.length;
    const ids = new Int32Array(B * L);
    const y = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const r = idx[b]!;
      ids.set(src.X.subarray(r * L, r * L + L), b * L);
      y[b] = src.y[r]!;
    }
    const { lastIndex, lengths } = lastAndLengths(ids, B, L);
    return { ids, y, lastIndex, lengths, B };
  }

  function trainStep(bt: ReturnType<typeof batchTensors>): number {
    const lossT = tf.tidy(() => {
      const ids = tf.tensor2d(bt.ids, [bt.B, L], "int32");
      const last = tf.tensor1d(bt.lastIndex, "int32");
      const lens = tf.tensor1d(bt.lengths, "float32");
      const y = tf.tensor1d(bt.y, "int32");
      const { value, grads } = tf.variableGrads(() => {
        const enc = stampEncode(E as never, ids, last, lens, weights(), encOpts);
        return trilinearSoftmaxLoss(tf.mul(enc.hs, enc.ht), E as never, y);
      }, varList);
      opt.apply(grads);
      return value;
    });
    const v = lossT.dataSync()[0]!;
    lossT.dispose();
    return v;
  }

  function evaluate(maxBatches: number) {
    let hits = 0, rr = 0, count = 0, nb = 0;
    const times: number[] = [];
    const cat = buildCatalogue(E as never);
    for (let s = 0; s < test.n; s += ARGS.evalBatchSize) {
      if (maxBatches && nb >= maxBatches) break;
      const idx = Array.from({ length: Math.min(ARGS.evalBatchSize, test.n - s) }, (_, i) => s + i);
      const bt = batchTensors(test, idx);
      const t1 = performance.now();
      const top = tf.tidy(() => {
        const enc = stampEncode(E as never, tf.tensor2d(bt.ids, [bt.B, L], "int32"), tf.tensor1d(bt.lastIndex, "int32"),
          tf.tensor1d(bt.lengths, "float32"), weights(), encOpts);
        return catalogueTopK(tf.mul(enc.hs, enc.ht) as never, cat, ARGS.topk).ids;
      });
      const ids = top.dataSync() as Int32Array;
      top.dispose();
      const t2 = performance.now();
      if (bt.B === ARGS.evalBatchSize) times.push(t2 - t1);
      const K = ARGS.topk;
      for (let b = 0; b < bt.B; b++) {
        for (let j = 0; j < K; j++) {
          if (ids[b * K + j] === bt.y[b]) { hits++; rr += 1 / (j + 1); break; }
        }
      }
      count += bt.B;
      nb++;
    }
    cat.matrix.dispose();
    const mean = times.length ? times.reduce((x, y) => x + y, 0) / times.length : NaN;
    const sorted = [...times].sort((x, y) => x - y);
    return {
      [`P@${ARGS.topk}`]: (100 * hits) / count, [`MRR@${ARGS.topk}`]: (100 * rr) / count, n_eval: count,
      infer_ms_per_batch: mean, infer_ms_per_batch_median: sorted[sorted.length >> 1] ?? NaN,
    };
  }

  // ---------------------------------------------------------------------------------------- train
  const perEpoch: Record<string, number>[] = [];
  const order = new Int32Array(train.n);
  for (let ep = 1; ep <= ARGS.epochs; ep++) {
    for (let i = 0; i < train.n; i++) order[i] = i;
    for (let i = train.n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = order[i]!; order[i] = order[j]!; order[j] = t;
    }
    let tot = 0, nb = 0, seen = 0;
    const tEp = performance.now();
    const nBatches = Math.ceil(train.n / ARGS.batchSize);
    for (let s = 0; s < train.n; s += ARGS.batchSize) {
      if (ARGS.maxBatches && nb >= ARGS.maxBatches) break;
      const bt = batchTensors(train, order.subarray(s, s + ARGS.batchSize));
      if (ARGS.profile && nb === ARGS.profile) {
        const prof = await tf.profile(() => { trainStep(bt); });
        const byKernel = new Map<string, number>();
        for (const k of prof.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
        const top = [...byKernel].sort((x, y) => y[1] - x[1]).slice(0, 15);
        log(`profile (batch ${nb}, ms per kernel summed over the step): ${top.map(([n, t]) => `${n} ${t.toFixed(1)}`).join(", ")}`);
      }
      const loss = trainStep(bt);
      if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at epoch ${ep} batch ${nb}`);
      tot += loss;
      nb++;
      seen += bt.B;
      if (nb % 200 === 0) {
        const el = (performance.now() - tEp) / 1000;
        log(`  ep ${ep} batch ${nb}/${nBatches} loss ${(tot / nb).toFixed(4)}  ${(seen / el).toFixed(0)} ex/s`);
      }
    }
    const trainS = (performance.now() - tEp) / 1000;
    const rec: Record<string, number> = { epoch: ep, loss: tot / Math.max(nb, 1), batches: nb, examples: seen, train_s: trainS, examples_per_s: seen / trainS };
    const te0 = performance.now();
    Object.assign(rec, evaluate(ARGS.maxEvalBatches));
    rec.eval_s = (performance.now() - te0) / 1000;
    perEpoch.push(rec);
    log(`epoch ${ep}: ${JSON.stringify(rec)}`);
  }
  const last = perEpoch[perEpoch.length - 1]!;
  const trainS = perEpoch.reduce((x, r) => x + r.train_s!, 0);
  const out = {
    model: ARGS.variant.toUpperCase(),
    impl: `recblocks (TF.js ${tf.version.tfjs}, backend ${tf.getBackend()}, optimizer ${ARGS.optimizer})`,
    dataset: "diginetica", n_items: V, n_train_pairs: train.n, n_test_pairs: test.n, epochs: ARGS.epochs,
    per_epoch: perEpoch,
    [`P@${ARGS.topk}`]: last[`P@${ARGS.topk}`], [`MRR@${ARGS.topk}`]: last[`MRR@${ARGS.topk}`],
    train_s_per_epoch: trainS / perEpoch.length,
    train_examples_per_s: perEpoch.reduce((x, r) => x + r.examples!, 0) / trainS,
    infer_ms_per_batch512: last.infer_ms_per_batch, peak_rss_mb: peakRssMb(), load_s: loadS, threads: ARGS.threads,
    backend: tf.getBackend(), args: ARGS,
  };
  const line = JSON.stringify(out);
  if (ARGS.jsonOut) writeFileSync(ARGS.jsonOut, line + "\n");
  console.log(line);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
