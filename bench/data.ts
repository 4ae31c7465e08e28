/**
 * Data pipeline speed: all of Diginetica's train_sessions.txt (186,670 sessions) read through the loader the
 * trainer uses (loadRecipeData: read, filter, vocabulary, dense ids), prefix-augmented (719,470 examples) and
 * cut into padded batches of 512 with maxSequenceLength 20 (right padding, file order).
 *
 *   node --import tsx bench/data.ts [--data DIR] [--reps 3] [--batch-size 512] [--max-len 20] [--shuffle] [--json]
 *
 * DIR is the shared data folder (default ../shared/data, or RECBLOCKS_SHARED_DATA). Each repetition runs in its
 * own child process (so that its peak RSS, VmHWM from /proc/self/status, is its own); the table shows
 * min / median / max over the repetitions of: sessions read per second, examples batched per second, the
 * seconds of each phase and in total (from the first byte read to the last batch), and peak RSS (also as it
 * was before reading: node, tsx and the modules alone).
 * With --json the last line is {"suite":"data", ..., "rows":[{"metric","unit","min","median","max","values"}]}.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { batches, loadRecipeData, prefixExamples } from "../src/data/index.js";
import { sharedDataDir } from "../src/paths.js";

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const num = (name: string, dflt: number): number => {
  const v = opt(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench/data: --${name} needs an integer >= 1, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};

const dataDir = opt("data") ?? sharedDataDir();
const file = join(dataDir, "diginetica", "train_sessions.txt");
const reps = num("reps", 3);
const batchSize = num("batch-size", 512);
const maxLen = num("max-len", 20);
const shuffle = flag("shuffle");
const json = flag("json");

/** Peak resident set size of this process in MB: VmHWM (Linux), else getrusage's maxrss. */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

interface Once {
  sessions: number;
  clicks: number;
  examples: number;
  batches: number;
  checksum: number;
  readS: number;
  batchS: number;
  totalS: number;
  sessionsPerS: number;
  examplesPerS: number;
  peakRssMb: number;
  /** Peak RSS before reading (node, tsx and the modules loaded): what the pipeline adds is the difference. */
  startRssMb: number;
}

/** One repetition, in this process. */
async function once(): Promise<Once> {
  const startRssMb = peakRssMb();
  const t0 = performance.now();
  const d = await loadRecipeData({ train: file, sessions: { maxSequenceLength: maxLen } }, null);
  const t1 = performance.now();
  const ex = prefixExamples(d.train);
  let examples = 0;
  let nb = 0;
  let checksum = 0; // touches every batch so that none of the work can be skipped
  for (const b of batches(ex, { batchSize, maxSequenceLength: maxLen, shuffle, seed: 42 })) {
    examples += b.batchSize;
    nb++;
    checksum = (checksum + b.targets![b.batchSize - 1]! + b.itemIds[b.itemIds.length - 1]! + b.lengths[0]!) % 1_000_000_007;
  }
  const t2 = performance.now();
  const readS = (t1 - t0) / 1000;
  const batchS = (t2 - t1) / 1000;
  let clicks = 0;
  for (const s of d.train) clicks += s.items.length;
  return {
    sessions: d.train.length,
    clicks,
    examples,
    batches: nb,
    checksum,
    readS,
    batchS,
    totalS: (t2 - t0) / 1000,
    sessionsPerS: d.train.length / readS,
    examplesPerS: examples / batchS,
    peakRssMb: peakRssMb(),
    startRssMb,
  };
}

interface Row {
  metric: string;
  unit: string;
  min: number;
  median: number;
  max: number;
  values: number[];
}

function summarise(metric: string, unit: string, values: number[]): Row {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { metric, unit, min: s[0]!, median, max: s[s.length - 1]!, values };
}

function fmt(x: number): string {
  if (x >= 1e5) return Math.round(x).toLocaleString("en-US");
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(3);
}

async function main(): Promise<void> {
  if (flag("once")) {
    process.stdout.write(JSON.stringify(await once()) + "\n");
    return;
  }
  if (!existsSync(file)) {
    process.stderr.write(`bench/data: ${file} is missing; point --data at the shared data folder (it holds diginetica/train_sessions.txt).\n`);
    process.exitCode = 2;
    return;
  }
  const log = (s: string) => process.stderr.write(s + "\n");
  const script = fileURLToPath(import.meta.url);
  const results: Once[] = [];
  for (let r = 0; r < reps; r++) {
    const args = [...process.execArgv, script, "--once", "--data", dataDir, "--batch-size", String(batchSize), "--max-len", String(maxLen), ...(shuffle ? ["--shuffle"] : [])];
    const p = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 24 });
    if (p.status !== 0) {
      process.stderr.write(p.stderr);
      throw new Error(`repetition ${r + 1} failed (exit ${p.status})`);
    }
    const res = JSON.parse(p.stdout.trim().split("\n").pop()!) as Once;
    results.push(res);
    log(`rep ${r + 1}/${reps}: ${res.sessions} sessions in ${res.readS.toFixed(3)} s, ${res.examples} examples in ${res.batches} batches in ${res.batchS.toFixed(3)} s, peak RSS ${res.peakRssMb.toFixed(0)} MB`);
  }
  const first = results[0]!;
  for (const r of results)
    if (r.sessions !== first.sessions || r.examples !== first.examples || r.checksum !== first.checksum) throw new Error("repetitions disagree on the data they produced");
  const rows: Row[] = [
    summarise("sessions read / s", "sessions/s", results.map((r) => r.sessionsPerS)),
    summarise("examples batched / s", "examples/s", results.map((r) => r.examplesPerS)),
    summarise("read + load seconds", "s", results.map((r) => r.readS)),
    summarise("batching seconds", "s", results.map((r) => r.batchS)),
    summarise("total seconds", "s", results.map((r) => r.totalS)),
    summarise("peak RSS (VmHWM)", "MB", results.map((r) => r.peakRssMb)),
    summarise("peak RSS before reading", "MB", results.map((r) => r.startRssMb)),
  ];
  const machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? "?", platform: `${process.platform}-${process.arch}` };
  const w = Math.max(...rows.map((r) => r.metric.length));
  const lines = [
    `data pipeline: ${file}`,
    `${first.sessions.toLocaleString("en-US")} sessions, ${first.clicks.toLocaleString("en-US")} clicks -> ${first.examples.toLocaleString("en-US")} prefix examples in ${first.batches} batches of ${batchSize} (maxSequenceLength ${maxLen}, ${shuffle ? "shuffled" : "file order"}); ${reps} repetitions, one process each`,
    `node ${machine.node}, ${machine.cpus} CPUs (${machine.cpu})`,
    "",
    `${"metric".padEnd(w)}  ${"min".padStart(11)}  ${"median".padStart(11)}  ${"max".padStart(11)}`,
    ...rows.map((r) => `${r.metric.padEnd(w)}  ${fmt(r.min).padStart(11)}  ${fmt(r.median).padStart(11)}  ${fmt(r.max).padStart(11)}`),
  ];
  process.stdout.write(lines.join("\n") + "\n");
  if (json)
    process.stdout.write(
      JSON.stringify({
        suite: "data",
        file,
        sessions: first.sessions,
        clicks: first.clicks,
        examples: first.examples,
        batches: first.batches,
        batchSize,
        maxSequenceLength: maxLen,
        shuffle,
        reps,
        machine,
        rows,
      }) + "\n",
    );
}

await main();
