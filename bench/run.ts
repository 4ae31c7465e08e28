/**
 * Benchmark harness: recblocks side by side with its PyTorch / numpy peers (../shared/peers).
 *
 *   npm run bench -- <stamp|als|transformer|serve|all> [options]
 *
 * Each suite runs the recblocks script and the peer script alternately (A B A B ...), --reps times,
 * with the same data, sizes, batch size, seed and threads, then prints a table of
 * min–median–max per side and the ratio (higher is better everywhere). See docs/performance.md.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot, sharedDataDir } from "../src/paths.js";
import {
  type Group, type Json, type Machine, type MetricDef, type RunRecord, type Side, buildRows, commandLine, fmtNum, formatTable,
  machineLine, openLog, parseFlags, peerPython, probeMachine, runSide, saveResults, splitWords, timestamp,
} from "./harness.js";

const USAGE = `usage: npm run bench -- <suite> [options]

suites:
  stamp         STAMP on Diginetica: bench/framework.ts --model stamp (the Model + fit path of recblocks train)
                vs peers/stamp_torch.py; --ops-too adds bench/stamp.ts (STAMP written with the ops directly)
  als           ALS on ml-100k, 64 factors, CG and exact (Cholesky) solvers: bench/als-run.ts vs peers/als_numpy.py
  transformer   causal transformer on Diginetica (d_model 64, 2 layers, 4 heads, length 20):
                bench/framework.ts --model gpt2 vs peers/causal_transformer_torch.py
  serve         bench/serve.ts: the HTTP server under autocannon (recblocks only)
  all           the four in turn

options:
  --reps N              repetitions of each side, alternating recblocks / peer (default 3)
  --full                the full runs (all batches, the peers' usual epochs / iterations) instead of the quick default
  --epochs N            epochs (ALS: iterations)
  --max-batches N       cap on training batches per epoch (ALS: on iterations), passed to both sides
  --max-eval-batches N  cap on evaluation batches of 512, passed to both sides
  --batch-size N        training batch size (default: stamp 512, transformer 256)
  --threads N           threads for both sides (default 2)
  --data PATH           data folder (stamp, transformer) or file (als) instead of ../shared/data/...
  --seed N              seed for both sides (default 42)
  --backend NAME        recblocks backend: tensorflow (default), wasm, cpu (passed to recblocks scripts)
  --rb-args "..."       extra arguments for the recblocks script
  --peer-args "..."     extra arguments for the peer script
  --timeout-min N       kill a run after N minutes (default 30; 0 = never)
  --json                print {"suite","machine","rows":[...]} as the last line
  --no-save             do not write bench/results/<suite>-<time>.json and .log
  --ops-too             stamp: also run bench/stamp.ts (ops-level STAMP with the native fused Adam)
  --setup-peers         create .venv-peers (PyTorch CPU, numpy, scipy from pip's index) if it is missing, then run
  --help

quick defaults: stamp and transformer 1 epoch, --max-batches 200, --max-eval-batches 20;
als 15 iterations capped by --max-batches 5. --full: stamp and transformer 3 epochs, every batch; als 15 iterations.`;

const SETUP = 'python3 -m venv .venv-peers && .venv-peers/bin/pip install --retries 0 "torch==2.13.0+cpu" numpy scipy';

const ROOT = packageRoot();
const PEERS = process.env.RECBLOCKS_PEERS ?? join(ROOT, "..", "shared", "peers");
const DATA = sharedDataDir();
const RESULTS = join(ROOT, "bench", "results");

const { positional, flags } = parseFlags(process.argv.slice(2), ["full", "json", "no-save", "setup-peers", "ops-too", "help"]);
if (flags.has("help") || positional.length === 0) {
  console.log(USAGE);
  process.exit(positional.length === 0 && !flags.has("help") ? 2 : 0);
}
const num = (name: string): number | undefined => {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) {
    console.error(`--${name} needs a number`);
    process.exit(2);
  }
  return n;
};
const str = (name: string): string | undefined => {
  const v = flags.get(name);
  return typeof v === "string" ? v : undefined;
};
const known = new Set(["reps", "full", "epochs", "max-batches", "max-eval-batches", "batch-size", "threads", "seed", "backend", "rb-args",
  "peer-args", "timeout-min", "json", "no-save", "setup-peers", "help", "data"]);
for (const k of flags.keys()) {
  if (!known.has(k)) {
    console.error(`bench: unknown option --${k}\n\n${USAGE}`);
    process.exit(2);
  }
}

const OPT = {
  reps: num("reps") ?? 3,
  full: flags.has("full"),
  epochs: num("epochs"),
  maxBatches: num("max-batches"),
  maxEvalBatches: num("max-eval-batches"),
  batchSize: num("batch-size"),
  threads: num("threads") ?? 2,
  seed: num("seed") ?? 42,
  backend: str("backend"),
  data: str("data"),
  rbArgs: splitWords(str("rb-args") ?? ""),
  peerArgs: splitWords(str("peer-args") ?? ""),
  timeoutMin: num("timeout-min") ?? 30,
  json: flags.has("json"),
  save: !flags.has("no-save"),
  setupPeers: flags.has("setup-peers"),
  opsToo: flags.has("ops-too"),
};

const NODE = process.execPath;
const tsx = (script: string, args: string[]): { cmd: string; args: string[] } => ({ cmd: NODE, args: ["--import", "tsx", script, ...args] });
const pick = <T>(v: T | undefined, quick: T, full: T): T => (v !== undefined ? v : OPT.full ? full : quick);
const optional = (name: string, v: number | string | undefined | null): string[] => (v === undefined || v === null || v === 0 ? [] : [`--${name}`, String(v)]);

// ---------------------------------------------------------------------------------------- metrics

const key = (k: string) => (j: Json): number | null => (typeof j[k] === "number" ? (j[k] as number) : null);
const wall = (_j: Json, w: number): number => w;
const M = {
  trainExamples: (label = "train examples/s"): MetricDef => ({ label, better: "higher", recblocks: key("train_examples_per_s"), peer: key("train_examples_per_s") }),
  infer: (k: number): MetricDef => ({ label: `infer ms per batch of 512, top-${k}`, better: "lower", recblocks: key("infer_ms_per_batch512"), peer: key("infer_ms_per_batch512") }),
  rss: (): MetricDef => ({ label: "peak RSS MB", better: "lower", recblocks: key("peak_rss_mb"), peer: key("peak_rss_mb") }),
  wall: (): MetricDef => ({ label: "wall s per run", better: "lower", recblocks: wall, peer: wall }),
  quality: (k: string, label = k): MetricDef => ({ label: `${label} (quality)`, better: "higher", recblocks: key(k), peer: key(k) }),
};

// ----------------------------------------------------------------------------------------- suites

interface Suite {
  name: string;
  /** Why it cannot run yet (the suite then prints it and exits 0). */
  unavailable?: string;
  describe: string;
  groups: Group[];
  peerModules: string[];
  notes: string[];
}

function stampSuite(py: string): Suite {
  const epochs = pick(OPT.epochs, 1, 3);
  const maxBatches = pick(OPT.maxBatches, 200, 0);
  const maxEval = pick(OPT.maxEvalBatches, 20, 0);
  const bs = OPT.batchSize ?? 512;
  const data = OPT.data ?? join(DATA, "diginetica");
  const common = ["--data", data, "--epochs", String(epochs), "--batch-size", String(bs), "--seed", String(OPT.seed), "--threads", String(OPT.threads),
    ...optional("max-batches", maxBatches), ...optional("max-eval-batches", maxEval)];
  const rb = tsx("bench/framework.ts", ["--model", "stamp", ...common, ...optional("backend", OPT.backend), ...OPT.rbArgs]);
  const rbOps = tsx("bench/stamp.ts", [...common, ...optional("backend", OPT.backend), ...OPT.rbArgs]);
  return {
    name: "stamp",
    describe: `STAMP, Diginetica, dim 100, batch ${bs}, ${epochs} epoch(s)${maxBatches ? `, --max-batches ${maxBatches}` : ""}${maxEval ? `, --max-eval-batches ${maxEval}` : ""}, seed ${OPT.seed}, ${OPT.threads} threads`,
    groups: [{
      name: "stamp",
      // recblocks: the framework path (Model + fit, what `recblocks train` runs); recblocks (ops): STAMP written
      // directly with recblocks' ops and the native fused Adam (bench/stamp.ts), the floor the framework aims at
      recblocks: [{ role: "recblocks", label: "recblocks", ...rb }, ...(OPT.opsToo ? [{ role: "recblocks" as const, label: "recblocks (ops)", ...rbOps }] : [])],
      peer: { role: "peer", label: "peer (PyTorch)", cmd: py, args: [join(PEERS, "stamp_torch.py"), ...common, ...OPT.peerArgs] },
      metrics: [M.trainExamples(), M.infer(20), M.rss(), M.wall(), M.quality("P@20"), M.quality("MRR@20")],
    }],
    peerModules: ["torch", "numpy"],
    notes: [],
  };
}

function transformerSuite(py: string): Suite {
  const epochs = pick(OPT.epochs, 1, 3);
  const maxBatches = pick(OPT.maxBatches, 200, 0);
  const maxEval = pick(OPT.maxEvalBatches, 20, 0);
  const bs = OPT.batchSize ?? 256;
  const data = OPT.data ?? join(DATA, "diginetica");
  const common = ["--data", data, "--epochs", String(epochs), "--batch-size", String(bs), "--dim", "64", "--layers", "2", "--heads", "4",
    "--max-len", "20", "--seed", String(OPT.seed), "--threads", String(OPT.threads), ...optional("max-batches", maxBatches), ...optional("max-eval-batches", maxEval)];
  const script = join(ROOT, "bench", "framework.ts");
  const rb = tsx("bench/framework.ts", ["--model", "gpt2", ...common, ...optional("backend", OPT.backend), ...OPT.rbArgs]);
  const peer: Side = { role: "peer", label: "peer (PyTorch)", cmd: py, args: [join(PEERS, "causal_transformer_torch.py"), ...common, ...OPT.peerArgs] };
  return {
    name: "transformer",
    unavailable: existsSync(script) ? undefined
      : `transformer: not available: bench/framework.ts does not exist. When it does, the harness runs\n  ${commandLine(rb.cmd, rb.args)}\n  ${commandLine(peer.cmd, peer.args)}\nalternately (same flags; the script prints one JSON line with the peer's keys).`,
    describe: `causal transformer, Diginetica, d_model 64, 2 layers, 4 heads, length 20, batch ${bs} windows, ${epochs} epoch(s)`
      + `${maxBatches ? `, --max-batches ${maxBatches}` : ""}${maxEval ? `, --max-eval-batches ${maxEval}` : ""}, seed ${OPT.seed}, ${OPT.threads} threads`,
    groups: [{
      name: "transformer",
      recblocks: [{ role: "recblocks", label: "recblocks", ...rb }],
      peer,
      metrics: [M.trainExamples("train targets/s"), M.infer(20), M.rss(), M.wall(), M.quality("P@20"), M.quality("MRR@20")],
    }],
    peerModules: ["torch", "numpy"],
    notes: [],
  };
}

function alsSuite(py: string): Suite {
  const iterations = pick(OPT.epochs, 15, 15);
  const maxBatches = pick(OPT.maxBatches, 5, 0);
  const data = OPT.data ?? join(DATA, "ml-100k", "u.data");
  const common = ["--data", data, "--factors", "64", "--reg", "0.01", "--alpha", "1", "--iterations", String(iterations), "--seed", String(OPT.seed),
    ...optional("max-batches", maxBatches)];
  const iters = maxBatches ? Math.min(iterations, maxBatches) : iterations;
  const metrics: MetricDef[] = [
    { label: "s/iteration", better: "lower", recblocks: key("s_per_iteration"), peer: key("s_per_iteration") },
    M.trainExamples("train interactions/s"),
    M.infer(10),
    { label: "infer ms per 512, typed-array scoring", better: "lower", recblocks: key("infer_ms_per_batch512_typed"), peer: key("infer_ms_per_batch512") },
    M.rss(),
    M.wall(),
    M.quality("HR@10"),
    M.quality("NDCG@10"),
  ];
  const groups: Group[] = (["cg", "cholesky"] as const).map((solver) => {
    const rbSides: Side[] = [{ role: "recblocks", label: OPT.threads > 1 ? `recblocks ${OPT.threads} threads` : "recblocks",
      ...tsx("bench/als-run.ts", ["--solver", solver, ...common, "--threads", String(OPT.threads), ...optional("backend", OPT.backend), ...OPT.rbArgs]) }];
    if (OPT.threads > 1) {
      rbSides.push({ role: "recblocks", label: "recblocks 1 thread (wasm SIMD kernels)",
        ...tsx("bench/als-run.ts", ["--solver", solver, ...common, "--threads", "1", ...optional("backend", OPT.backend), ...OPT.rbArgs]) });
    }
    return {
      name: solver === "cg" ? "CG" : "Cholesky",
      recblocks: rbSides,
      peer: { role: "peer", label: "peer (numpy)", cmd: py, args: [join(PEERS, "als_numpy.py"), "--solver", solver, ...common, "--threads", String(OPT.threads), ...OPT.peerArgs] },
      metrics,
    };
  });
  return {
    name: "als",
    describe: `ALS, ml-100k leave-last-out, 64 factors, reg 0.01, alpha 1, binary, ${iters} iteration(s), seed ${OPT.seed}, ${OPT.threads} threads (peer: OpenBLAS threads)`,
    groups,
    peerModules: ["numpy", "scipy"],
    notes: [
      ...(OPT.threads > 1 ? [`recblocks ${OPT.threads} threads = the per-row solves on worker threads (typed-array kernels), what a recipe's \`threads: ${OPT.threads}\` does; `
        + "recblocks 1 thread = the default (threads: 1), WebAssembly SIMD kernels on the main thread. Both are compared with the same peer runs."] : []),
      "train interactions/s = training nnz x iterations / training seconds (the peer's train_examples_per_s).",
      "infer: recblocks = AlsModel.recommendBatch for 512 known users (TF.js matMul against every item, scores read back, top-10 in JS, seen items excluded), "
        + "median of 5 after a warm-up; 'typed-array scoring' = the same with AlsModel.scoreVectors(..., \"typed\"); peer = numpy X[u] @ Y.T, seen items masked, "
        + "argpartition, mean over the full batches of 512 (one on ml-100k), no warm-up.",
    ],
  };
}

function serveSuite(): Suite {
  const script = join(ROOT, "bench", "serve.ts");
  const rb = tsx("bench/serve.ts", ["--threads", String(OPT.threads), "--seed", String(OPT.seed), ...optional("backend", OPT.backend), ...OPT.rbArgs]);
  return {
    name: "serve",
    unavailable: existsSync(script) ? undefined : "serve: not available yet: bench/serve.ts does not exist.",
    describe: `serving (bench/serve.ts), ${OPT.threads} threads, seed ${OPT.seed}; every numeric key of its JSON line is a row (no peer)`,
    groups: [{ name: "serve", recblocks: [{ role: "recblocks", label: "recblocks", ...rb }], peer: null, metrics: [] }],
    peerModules: [],
    notes: [],
  };
}

// ------------------------------------------------------------------------------------------- main

function ensurePeers(modules: string[]): string | null {
  if (!modules.length) return null;
  let p = peerPython(ROOT, modules);
  if (!p.python && OPT.setupPeers) {
    console.error(`bench: setting up the peers' environment (1–2 minutes): ${SETUP}`);
    const r = spawnSync("sh", ["-c", SETUP], { cwd: ROOT, stdio: "inherit" });
    if (r.status !== 0) {
      console.error("bench: the set-up failed (see above).");
      process.exit(1);
    }
    p = peerPython(ROOT, modules);
  }
  if (!p.python) {
    console.error(`bench: the peers' Python environment is missing or incomplete (${p.problem}).\nCreate it from the project root (1–2 minutes):\n\n  ${SETUP}\n\nor run the harness with --setup-peers.`);
    process.exit(1);
  }
  return p.python;
}

async function runSuite(name: string): Promise<boolean> {
  const needsPeer = name !== "serve";
  const venvPy = join(ROOT, ".venv-peers", "bin", "python");
  const probe = name === "als" ? alsSuite(venvPy) : name === "stamp" ? stampSuite(venvPy) : name === "transformer" ? transformerSuite(venvPy) : serveSuite();
  if (probe.unavailable) {
    console.log(probe.unavailable);
    return true;
  }
  const py = needsPeer ? ensurePeers(probe.peerModules) : null;
  const suite = name === "als" ? alsSuite(py!) : name === "stamp" ? stampSuite(py!) : name === "transformer" ? transformerSuite(py!) : serveSuite();
  const base = `${suite.name}-${timestamp()}`;
  const { log, path: logPath } = OPT.save ? openLog(RESULTS, base) : openLog(tmpdir(), `recblocks-bench-${base}`);

  console.error(`bench ${suite.name}: probing the machine...`);
  const machine: Machine = probeMachine(ROOT, py, OPT.backend ?? "tensorflow", OPT.threads);
  console.log(`suite ${suite.name}: ${suite.describe}; ${OPT.full ? "full" : "quick"} mode, ${OPT.reps} repetitions, alternating recblocks / peer`);
  console.log(machineLine(machine));

  const runs: RunRecord[] = [];
  const timeoutMs = OPT.timeoutMin * 60_000;
  for (const g of suite.groups) {
    const order: Side[] = g.peer ? [g.recblocks[0]!, g.peer, ...g.recblocks.slice(1)] : g.recblocks;
    for (let rep = 1; rep <= OPT.reps; rep++) {
      for (const side of order) {
        const cmd = commandLine(side.cmd, side.args);
        log.write(`\n===== ${g.name} rep ${rep} ${side.label}: ${cmd}\n`);
        const r = await runSide(side, ROOT, log, timeoutMs);
        runs.push({ group: g.name, side: side.label, role: side.role, rep, command: cmd, ...r });
        const shown = r.ok && r.result
          ? (g.metrics.length ? g.metrics : numericMetrics(r.result)).slice(0, 4).map((m) => {
            const v = (side.role === "peer" ? m.peer : m.recblocks)(r.result!, r.wallS);
            return `${m.label.replace(/ \(.*\)$/, "")} ${v === null || v === undefined ? "-" : fmtNum(v)}`;
          }).join(", ")
          : `FAILED (${r.error})`;
        console.error(`[${suite.name}${suite.groups.length > 1 ? ` ${g.name}` : ""}] rep ${rep}/${OPT.reps} ${side.label}: ${r.wallS.toFixed(1)} s; ${shown}`);
      }
    }
    if (!g.metrics.length) {
      const first = runs.find((r) => r.group === g.name && r.ok)?.result;
      if (first) g.metrics = numericMetrics(first);
    }
  }
  machine.load_average_end = loadavg().map((x) => Math.round(x * 100) / 100);
  // backend actually used, from the runs themselves
  const used = [...new Set(runs.filter((r) => r.role === "recblocks" && r.ok).map((r) => r.result!.backend).filter((b) => typeof b === "string"))];
  if (used.length && machine.backend && !used.includes(machine.backend)) machine.backend = used.join(",");

  const rows = buildRows(suite.groups, runs, false);
  console.log("");
  console.log(formatTable(rows));
  console.log("");
  console.log("ratio = recblocks / peer for throughput (↑), peer / recblocks for time, latency and memory (↓): above 1 recblocks is better. "
    + "Median of each side; in brackets the range of the per-repetition ratios (rep i of recblocks against rep i of the peer, run next to each other).");
  for (const n of suite.notes) console.log(`note: ${n}`);
  for (const r of rows) if (r.note) console.log(`note (${r.metric}): ${r.note}`);
  console.log("wall s per run = the whole process: start-up, data loading, training, evaluation. (quality) rows check that both sides learn the same model; they are not speed.");
  console.log(`load average: ${machine.load_average_start.join(" ")} at start, ${machine.load_average_end.join(" ")} at end (over ~${machine.cores}: other work shared the CPU; absolute numbers move, ratios less).`);
  const failed = runs.filter((r) => !r.ok);
  for (const f of failed) console.log(`FAILED: ${f.group} rep ${f.rep} ${f.side}: ${f.error}\n  ${f.command}`);
  log.end();
  const summaryRows = rows.map((r) => ({
    metric: r.metric, better: r.better,
    recblocks: r.recblocks?.median ?? null, peer: r.peer?.median ?? null, ratio: r.ratio && Number.isFinite(r.ratio.median) ? r.ratio.median : null,
    recblocks_range: r.recblocks ? [r.recblocks.min, r.recblocks.max] : null, peer_range: r.peer ? [r.peer.min, r.peer.max] : null,
    ratio_range: r.ratio && Number.isFinite(r.ratio.min) ? [r.ratio.min, r.ratio.max] : null,
  }));
  if (OPT.save) {
    const file = saveResults(RESULTS, base, {
      suite: suite.name, describe: suite.describe, mode: OPT.full ? "full" : "quick", options: OPT, machine, argv: process.argv.slice(2),
      rows: rows.map((r) => ({ ...r, note: r.note ?? null })), runs,
    });
    console.log(`raw results: ${file.replace(ROOT + "/", "")}; children's stderr: ${logPath.replace(ROOT + "/", "")}`);
  } else console.log(`children's stderr: ${logPath}`);
  if (OPT.json) console.log(JSON.stringify({ suite: suite.name, machine, rows: summaryRows }));
  return failed.length === 0;
}

/** serve: every numeric top-level key of the script's JSON becomes a row (recblocks only). */
function numericMetrics(j: Json): MetricDef[] {
  return Object.keys(j).filter((k) => typeof j[k] === "number").map((k) => ({
    label: k, better: /(_ms|_s|rss|latency|_mb)/.test(k) && !/per_s/.test(k) ? "lower" as const : "higher" as const, recblocks: key(k), peer: () => null,
  }));
}

const SUITES = ["stamp", "als", "transformer", "serve"];
const which = positional[0]!;
const list = which === "all" ? SUITES : [which];
if (!list.every((s) => SUITES.includes(s))) {
  console.error(`bench: unknown suite "${which}"\n\n${USAGE}`);
  process.exit(2);
}
let ok = true;
for (const s of list) ok = (await runSuite(s)) && ok;
process.exit(ok ? 0 : 1);
