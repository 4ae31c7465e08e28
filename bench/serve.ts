/**
 * Serving throughput and latency: `recblocks serve` (src/serve/server.ts) in a child process, loaded
 * with autocannon over loopback: POST /recommend at 1 and 16 connections, with and without filters.
 *
 *   node --import tsx bench/serve.ts [--model DIR] [--item-data FILE] [--duration 10] [--connections 1,16]
 *        [--k 20] [--threads 2] [--backend tensorflow|wasm|cpu|auto] [--seed 42] [--warmup 1]
 *
 * Without --model, a small next-item model (GPT-2 style, 1000 synthetic items) is trained first, with
 * an item metadata file for attribute rules. An ALS model directory works too (requests by user).
 * Prints a table, then as its last stdout line one JSON object; `npm run bench -- serve` turns each of
 * its numeric keys into a row (names ending in _ms are latencies, lower is better; *_req_per_s higher).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseFlags } from "./harness.js";
import { idsOf, rng } from "./model-ids.js";

const { flags } = parseFlags(process.argv.slice(2), ["child", "help", "quiet"]);
const USAGE = "usage: node --import tsx bench/serve.ts [--model DIR] [--item-data FILE] [--duration 10] [--connections 1,16] [--k 20] [--threads 2] [--backend NAME] [--seed 42] [--warmup 1]";
if (flags.has("help")) {
  console.log(USAGE);
  process.exit(0);
}
const str = (k: string): string | undefined => {
  const v = flags.get(k);
  return typeof v === "string" ? v : undefined;
};
const num = (k: string, d: number): number => {
  const v = str(k);
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    console.error(`bench/serve: --${k} needs a number\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
const known = new Set(["model", "item-data", "duration", "connections", "k", "threads", "backend", "seed", "warmup", "child", "help", "quiet"]);
for (const k of flags.keys()) {
  if (!known.has(k)) {
    console.error(`bench/serve: unknown option --${k}\n${USAGE}`);
    process.exit(2);
  }
}
const log = (m: string) => process.stderr.write(`[serve bench] ${m}\n`);
const backend = str("backend") as "auto" | "tensorflow" | "wasm" | "cpu" | undefined;
const threads = num("threads", 0) || undefined;

// ------------------------------------------------------------------------------------ the server

// ------------------------------------------------------------------------------------- the bench

const RECIPE = (seed: number) => `version: 1
name: serve-bench
features: builtin:synthetic
data:
  train: builtin:synthetic?sessions=2000&items=1000&seed=7
  sessions:
    maxSequenceLength: 20
  split:
    type: random
    validFraction: 0.05
    testFraction: 0.05
model:
  inputs:
    type: tabular-sequence-features
    excludeFeatures: [user_id, category, price, timestamp]
    embeddingDims: {item_id: 64}
    masking: {type: causal}
  body:
    - type: transformer
      architecture: gpt2
      dModel: 64
      numHeads: 4
      numLayers: 2
      maxSequenceLength: 20
      dropout: 0.1
  head:
    type: next-item-prediction
    weightTying: true
train:
  epochs: 1
  batchSize: 128
  optimizer: {type: adam, learningRate: 0.005}
  seed: ${seed}
evaluate:
  protocol: last-item
  metrics: [ndcg, recall]
  ks: [20]
`;

/** Mulberry32: the same request bodies for the same seed. */

interface RunResult {
  label: string;
  connections: number;
  filters: boolean;
  reqPerS: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
}

async function startChild(model: string, itemData: string | undefined): Promise<{ child: ChildProcess; url: string; backend: string; kind: string; exit: Promise<Record<string, number>> }> {
  const args = ["--import", "tsx", "bench/serve.ts", "--child", "--model", model, ...(itemData ? ["--item-data", itemData] : []),
    ...(backend ? ["--backend", backend] : []), ...(threads ? ["--threads", String(threads)] : [])];
  const child = spawn(process.execPath, args, { cwd: resolve(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "2" } });
  let out = "";
  child.stdout!.setEncoding("utf8");
  const lines: Record<string, unknown>[] = [];
  let onLine: (() => void) | null = null;
  child.stdout!.on("data", (d: string) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl).trim();
      out = out.slice(nl + 1);
      if (line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
      onLine?.();
    }
  });
  const exit = new Promise<Record<string, number>>((res) => child.on("exit", () => res((lines[1] ?? {}) as Record<string, number>)));
  const first = await new Promise<Record<string, unknown>>((res, rej) => {
    onLine = () => lines[0] && res(lines[0]);
    void exit.then(() => rej(new Error("bench/serve: the server process exited before listening")));
  });
  return { child, url: first.url as string, backend: first.backend as string, kind: first.kind as string, exit };
}

async function main(): Promise<void> {
  const seed = num("seed", 42);
  const duration = num("duration", 10);
  const warmup = num("warmup", 1);
  const k = num("k", 20);
  const conns = (str("connections") ?? "1,16").split(",").map((s) => Number(s.trim())).filter((n) => n > 0);
  let model = str("model");
  let itemData = str("item-data");
  let tmp: string | undefined;
  if (!model) {
    tmp = mkdtempSync(join(tmpdir(), "recblocks-serve-bench-"));
    writeFileSync(join(tmp, "recipe.yaml"), RECIPE(seed));
    log("training a small next-item model (2000 synthetic sessions, 1000 items, 1 epoch)...");
    const t0 = performance.now();
    const { trainRecipe } = await import("../src/run/train.js");
    const r = await trainRecipe(join(tmp, "recipe.yaml"), { out: join(tmp, "run"), stream: null, ...(backend ? { backend } : {}), ...(threads ? { threads } : {}) });
    model = r.modelDir;
    log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const ids = idsOf(model);
  if (!itemData && tmp) {
    itemData = join(tmp, "items.csv");
    writeFileSync(itemData, "item_id,category,price\n" + ids.items.map((id) => `${id},${Number(id) % 10},${(Number(id) % 97) + 1}`).join("\n") + "\n");
  }
  if (itemData && !existsSync(itemData)) throw new Error(`bench/serve: --item-data ${itemData} does not exist`);

  // request bodies: 500 sessions (or users) of 3..12 random known items, cycled
  const rand = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const base = Array.from({ length: 500 }, () =>
    ids.kind === "als" ? { user: pick(ids.users), k } : { items: Array.from({ length: 3 + Math.floor(rand() * 10) }, () => pick(ids.items)), k });
  const withFilters = base.map((b) => ({
    ...b,
    ...(ids.kind === "next-item" ? { excludeSeen: true } : {}),
    filters: { deny: Array.from({ length: 20 }, () => pick(ids.items)), ...(itemData ? { rules: ["category in [0, 1, 2, 3]", "price <= 80"] } : {}) },
  }));

  const server = await startChild(model, itemData);
  log(`server ${server.url} (${server.kind} model, backend ${server.backend})`);
  const require = createRequire(import.meta.url);
  // autocannon has no type declarations
  const autocannon = require("autocannon") as (o: Record<string, unknown>) => Promise<Record<string, any>>;
  const fire = (bodies: unknown[], connections: number, seconds: number) => {
    const texts = bodies.map((b) => JSON.stringify(b));
    let i = 0;
    return autocannon({
      url: `${server.url}/recommend`, connections, duration: seconds, method: "POST",
      headers: { "content-type": "application/json" },
      requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, body: texts[i++ % texts.length] }) }],
    });
  };
  const results: RunResult[] = [];
  let serverStats = { requests: 0, recommendPasses: 0 };
  try {
    // sanity: one request of each kind answers 200
    for (const b of [base[0], withFilters[0]]) {
      const r = await fetch(`${server.url}/recommend`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) });
      if (r.status !== 200) throw new Error(`bench/serve: the server answered ${r.status}: ${await r.text()}`);
    }
    if (warmup > 0) await fire(base, Math.max(...conns), warmup);
    for (const c of conns) {
      for (const f of [false, true]) {
        const label = `${c} conn${c === 1 ? "" : "s"}, ${f ? "filters" : "no filters"}`;
        log(`${label}: ${duration} s...`);
        const r = await fire(f ? withFilters : base, c, duration);
        results.push({
          label, connections: c, filters: f, reqPerS: r.requests.average as number, p50: r.latency.p50 as number, p99: r.latency.p99 as number,
          errors: (r.errors as number) + (r.timeouts as number), non2xx: r.non2xx as number, requests: r.requests.total as number,
        });
      }
    }
    const h = (await (await fetch(`${server.url}/health`)).json()) as { requests?: number; recommendPasses?: number };
    serverStats = { requests: h.requests ?? 0, recommendPasses: h.recommendPasses ?? 0 };
  } finally {
    server.child.kill("SIGTERM");
  }
  const exit = await Promise.race([server.exit, new Promise<Record<string, number>>((res) => setTimeout(() => { server.child.kill("SIGKILL"); res({}); }, 10_000))]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });

  const pad = (s: string, n: number) => s.padEnd(n);
  const lines = [
    `${pad("run", 26)} ${"req/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"requests".padStart(9)} ${"errors".padStart(7)} ${"non-2xx".padStart(8)}`,
    ...results.map((r) => `${pad(r.label, 26)} ${r.reqPerS.toFixed(0).padStart(9)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.requests).padStart(9)} ${String(r.errors).padStart(7)} ${String(r.non2xx).padStart(8)}`),
  ];
  console.log(`POST /recommend, ${ids.kind} model, k ${k}, ${duration} s per run, loopback, server backend ${server.backend}`);
  console.log(lines.join("\n"));
  if (serverStats.recommendPasses) {
    console.log(`micro-batching: ${serverStats.requests} requests answered by ${serverStats.recommendPasses} model passes (${(serverStats.requests / serverStats.recommendPasses).toFixed(2)} requests per pass, warm-up included)`);
  }
  const json: Record<string, unknown> = { backend: server.backend, kind: ids.kind };
  for (const r of results) {
    const key = `c${r.connections}${r.filters ? "_filters" : ""}`;
    json[`${key}_req_per_s`] = Math.round(r.reqPerS * 10) / 10;
    json[`${key}_p50_ms`] = r.p50;
    json[`${key}_p99_ms`] = r.p99;
  }
  if (typeof exit.peak_rss_mb === "number") json.server_peak_rss_mb = exit.peak_rss_mb;
  // not rows: more requests per pass is neither better nor worse by itself
  json.server = serverStats;
  // error counts are not rows (more is not better): kept under one non-numeric key
  json.errors = Object.fromEntries(results.map((r) => [`c${r.connections}${r.filters ? "_filters" : ""}`, { errors: r.errors, non2xx: r.non2xx }]));
  console.log(JSON.stringify(json));
  const bad = results.some((r) => r.errors > 0 || r.non2xx > 0);
  if (bad) log("some requests failed (see the errors / non-2xx columns)");
  process.exit(bad ? 1 : 0);
}

// ------------------------------------------------------------------------------- entry point

if (flags.has("child")) {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
  const { startServer } = await import("../src/serve/server.js");
  const s = await startServer({
    modelDir: str("model")!, port: 0, quiet: true, log: (l) => process.stderr.write(l + "\n"),
    ...(str("item-data") ? { itemData: str("item-data")! } : {}),
    ...(backend ? { backend } : {}), ...(threads ? { threads } : {}),
  });
  const tf = await import("@tensorflow/tfjs");
  process.stdout.write(JSON.stringify({ url: s.url, backend: tf.getBackend(), kind: s.current().kind }) + "\n");
  process.on("SIGTERM", () => {
    void s.close().then(() => {
      process.stdout.write(JSON.stringify({ peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }) + "\n");
      process.exit(0);
    });
  });
} else {
  await main();
}
