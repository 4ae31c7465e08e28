/**
 * ALS speed and quality next to the numpy peer (../shared/peers/als_numpy.py), in ONE run:
 * recblocks and the peer alternate (CG, then Cholesky), several repetitions, on ml-100k
 * (leave-last-out, 64 factors, lambda 0.01, alpha 1, binary, c = 1 + alpha r as the peer).
 *
 *   node --import tsx bench/als.ts [--reps 3] [--iterations 5] [--quality] [--threads 1] [--json]
 *
 * Time rows: seconds per iteration (mean over the run's iterations, median over repetitions);
 * ratio = peer / recblocks (> 1: recblocks is faster); recblocks with its default WebAssembly SIMD
 * kernels and with the typed-array kernels (the fallback), the three alternating. Quality rows (--quality: 15 iterations each):
 * ratio = recblocks / peer. Also measured: Y^T Y on typed arrays vs TF.js, and scoring 512 users
 * against every item with typed loops vs a TF.js matMul.
 * With --json the last line is {"suite":"als","machine","rows":[{"metric","recblocks","peer","ratio"}]}.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { packageRoot, sharedDataDir } from "../src/paths.js";
import { fitAlsParallel } from "../blocks/factorization/als-parallel.js";
import { fitAls, mulberry32 } from "../blocks/factorization/als-trainer.js";
import { resolveAlsConfig } from "../blocks/factorization/config.js";
import { evaluateLeaveLastOut, popularityScores } from "../blocks/factorization/evaluate.js";
import { leaveLastOut, readInteractionsFile } from "../blocks/factorization/interactions.js";
import { gramTfjs, gramTyped } from "../blocks/factorization/linalg.js";

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const reps = opt("reps", 3);
const iters = opt("iterations", 5);
const threads = opt("threads", 1);
const json = flag("json");
const quality = flag("quality");
const log = (s: string): void => void process.stderr.write(s + "\n");

const data = join(sharedDataDir(), "ml-100k", "u.data");
if (!existsSync(data)) {
  log(`bench/als: ${data} is missing (../shared/data); nothing to measure.`);
  process.exit(0);
}
const root = packageRoot();
const peerScript = join(root, "..", "shared", "peers", "als_numpy.py");
const python = [join(root, ".venv-peers", "bin", "python"), "/usr/bin/python3"].find((p) => existsSync(p))!;

try {
  const engine = (await import("../src/engine/index.js" as string)) as { initEngine?: (o: object) => Promise<{ backend: string }> };
  if (engine.initEngine) log(`engine: ${(await engine.initEngine({ backend: "auto", quiet: true })).backend}`);
} catch {
  /* src/engine not there yet: TF.js's default backend */
}
await tf.ready();
const backend = tf.getBackend();

const d = readInteractionsFile(data);
const split = leaveLastOut(d);
const f = 64;
const nu = d.users.length;
const ni = d.items.length;

function ours(solver: "cg" | "cholesky", iterations: number, kernels: "auto" | "js" = "auto"): { sPerIt: number; X: Float64Array; Y: Float64Array } | Promise<{ sPerIt: number; X: Float64Array; Y: Float64Array }> {
  const cfg = resolveAlsConfig({ type: "als", factors: f, regularization: 0.01, alpha: 1, iterations, solver, seed: 42, threads });
  const done = (r: { history: { seconds: number }[]; userFactors: Float64Array; itemFactors: Float64Array }) => ({
    sPerIt: r.history.reduce((s, h) => s + h.seconds, 0) / r.history.length, X: r.userFactors, Y: r.itemFactors,
  });
  return threads > 1 ? fitAlsParallel(split.train, cfg, threads).then(done) : done(fitAls(split.train, cfg, { kernels }));
}

const tmp = mkdtempSync(join(tmpdir(), "als-bench-"));
function peer(solver: "cg" | "cholesky", iterations: number): Record<string, number> {
  const out = join(tmp, `peer-${solver}.json`);
  execFileSync(python, [peerScript, "--data", data, "--solver", solver, "--factors", String(f), "--reg", "0.01", "--alpha", "1",
    "--iterations", String(iterations), "--threads", String(Math.max(threads, 1)), "--seed", "42", "--quiet", "--json-out", out],
  { stdio: ["ignore", "ignore", "inherit"] });
  return JSON.parse(readFileSync(out, "utf8")) as Record<string, number>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Row { metric: string; recblocks: number; peer: number; ratio: number }
const rows: Row[] = [];

log(`bench/als: ml-100k (${nu} users, ${ni} items, ${split.train.indptr[nu]} train), ${f} factors, ${iters} iterations x ${reps} reps, `
  + `alternating recblocks / peer (${python}), threads ${threads}, TF.js backend ${backend}`);
for (const solver of ["cg", "cholesky"] as const) {
  const a: number[] = [];
  const t: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < reps; r++) {
    const o = await ours(solver, iters);
    a.push(o.sPerIt);
    const p = peer(solver, iters);
    b.push(p.s_per_iteration!);
    const j = await ours(solver, iters, "js");
    t.push(j.sPerIt);
    log(`  ${solver} rep ${r + 1}: recblocks ${o.sPerIt.toFixed(4)} s/it (wasm SIMD kernels), peer ${p.s_per_iteration!.toFixed(4)} s/it, `
      + `recblocks typed-array kernels ${j.sPerIt.toFixed(4)} s/it`);
  }
  const pb = median(b);
  rows.push({ metric: `s_per_iteration_${solver}`, recblocks: median(a), peer: pb, ratio: pb / median(a) });
  rows.push({ metric: `s_per_iteration_${solver}_typed_kernels`, recblocks: median(t), peer: pb, ratio: pb / median(t) });
}

if (quality) {
  for (const solver of ["cg", "cholesky"] as const) {
    const o = await ours(solver, 15);
    const m = evaluateLeaveLastOut(o.X, o.Y, f, ni, split.train, split.testUsers, split.testItems);
    const p = peer(solver, 15);
    for (const [k, pk] of [["hitrate@10", "HR@10"], ["ndcg@10", "NDCG@10"], ["precision@10", "P@10"], ["map@10", "MAP@10"]] as const) {
      rows.push({ metric: `${k}_${solver}`, recblocks: m[k]!, peer: p[pk]!, ratio: m[k]! / p[pk]! });
    }
  }
  const pop = popularityScores(split.train);
  const pm = evaluateLeaveLastOut(new Float32Array(0), pop, 0, ni, split.train, split.testUsers, split.testItems, {},
    (users, out) => { for (let b = 0; b < users.length; b++) out.set(pop, b * ni); });
  for (const k of ["hitrate@10", "ndcg@10", "precision@10", "map@10"]) rows.push({ metric: `${k}_most_popular`, recblocks: pm[k]!, peer: NaN, ratio: NaN });
}

// Y^T Y: typed arrays vs TF.js; scoring 512 users x all items: typed loops vs TF.js matMul (ms, median of 15)
{
  const rand = mulberry32(1);
  const Y = Float64Array.from({ length: ni * f }, () => rand());
  const X = Float32Array.from({ length: 512 * f }, () => rand());
  const Yf = Float32Array.from(Y);
  const time = (fn: () => void): number => {
    fn();
    const ts: number[] = [];
    for (let r = 0; r < 15; r++) {
      const t0 = performance.now();
      fn();
      ts.push(performance.now() - t0);
    }
    return median(ts);
  };
  const gT = time(() => gramTyped(Y, ni, f));
  const gF = time(() => gramTfjs(Y, ni, f));
  const out = new Float32Array(512 * ni);
  const sT = time(() => {
    for (let b = 0; b < 512; b++) {
      for (let i = 0; i < ni; i++) {
        let s = 0;
        for (let a = 0; a < f; a++) s += X[b * f + a]! * Yf[i * f + a]!;
        out[b * ni + i] = s;
      }
    }
  });
  const yt = tf.tensor2d(Yf, [ni, f]);
  const sF = time(() => tf.tidy(() => tf.matMul(tf.tensor2d(X, [512, f]), yt, false, true).dataSync()));
  yt.dispose();
  log(`  Y^T Y (${ni}x${f}): typed ${gT.toFixed(2)} ms, TF.js ${backend} ${gF.toFixed(2)} ms; `
    + `scores 512x${ni}: typed ${sT.toFixed(2)} ms, TF.js ${backend} matMul ${sF.toFixed(2)} ms`);
  rows.push({ metric: `gram_ms_typed_vs_tfjs_${backend}`, recblocks: gT, peer: gF, ratio: gF / gT });
  rows.push({ metric: `score512_ms_typed_vs_tfjs_${backend}`, recblocks: sT, peer: sF, ratio: sF / sT });
}
rmSync(tmp, { recursive: true, force: true });

const fmt = (x: number): string => (Number.isNaN(x) ? "-" : Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4));
const header = ["metric", "recblocks", "peer", "ratio"];
const table = rows.map((r) => [r.metric, fmt(r.recblocks), fmt(r.peer), fmt(r.ratio)]);
const widths = header.map((h, j) => Math.max(h.length, ...table.map((t) => t[j]!.length)));
const line = (cells: string[]): string => "| " + cells.map((c, j) => c.padEnd(widths[j]!)).join(" | ") + " |";
console.log(line(header));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const t of table) console.log(line(t));
console.log("(time rows: ratio = peer / recblocks; quality rows: recblocks / peer; gram/score rows: 'peer' column = TF.js, ratio = TF.js / typed)");
if (json) {
  const machine = `${cpus()[0]?.model ?? "?"} x${cpus().length}, node ${process.version}, tfjs ${backend}, threads ${threads}`;
  console.log(JSON.stringify({ suite: "als", machine, rows: rows.map((r) => ({ ...r, peer: Number.isNaN(r.peer) ? null : r.peer, ratio: Number.isNaN(r.ratio) ? null : r.ratio })) }));
}
