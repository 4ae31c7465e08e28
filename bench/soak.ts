/**
 * Soak test of `recblocks serve` (the long version of test/reliability/serve-soak.test.ts): the server in
 * a child process, autocannon over loopback with many connections sending a seeded mix of good requests
 * (POST /recommend and /recommend/batch, with and without filters) and malformed ones (bad JSON, wrong
 * types, unknown keys, k out of range, empty bodies, wrong content type, unknown routes), for minutes,
 * with a model reload (POST /admin/reload) every --reload-every seconds, alternating between two model
 * directories. Every good answer is checked (k items, distinct, scores descending), every malformed one
 * must be a 4xx with issues. The server's RSS, heap and TF.js tensor count are sampled all along.
 *
 *   node --import tsx bench/soak.ts [--minutes 3] [--connections 32] [--model DIR [--model2 DIR]]
 *        [--item-data FILE] [--reload-every 20] [--k 20] [--backend NAME] [--threads N] [--seed 42]
 *
 * Without --model, a small next-item model is trained first (GPT-2 style, 2000 synthetic sessions, 500
 * items) and the second directory is a copy of it with other weights. With --model (e.g. a Diginetica
 * STAMP model directory) and no --model2, each reload loads the same directory again. Prints a table and,
 * last, one JSON line; exits 1 if any request failed, any answer was a 5xx or invalid, a reload failed,
 * or the tensor count grew.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseFlags } from "./harness.js";
import { idsOf, rng } from "./model-ids.js";

const { flags } = parseFlags(process.argv.slice(2), ["child", "help"]);
const USAGE = "usage: node --import tsx bench/soak.ts [--minutes 3] [--connections 32] [--model DIR [--model2 DIR]] [--item-data FILE] [--reload-every 20] [--k 20] [--backend NAME] [--threads N] [--seed 42]";
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
  if (!Number.isFinite(n) || n < 0) {
    console.error(`bench/soak: --${k} needs a number >= 0\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
const known = new Set(["minutes", "connections", "model", "model2", "item-data", "reload-every", "k", "backend", "threads", "seed", "child", "help"]);
for (const k of flags.keys()) {
  if (!known.has(k)) {
    console.error(`bench/soak: unknown option --${k}\n${USAGE}`);
    process.exit(2);
  }
}
const log = (m: string) => process.stderr.write(`[soak] ${m}\n`);
const backend = str("backend") as "auto" | "tensorflow" | "wasm" | "cpu" | undefined;
const threads = num("threads", 0) || undefined;

/** What the child reports when asked. */
interface ServerSample {
  rssMb: number;
  heapMb: number;
  tensors: number;
  inFlight: number;
  retiredInUse: number;
  generation: number;
  requests: number;
  recommendPasses: number;
}

// ------------------------------------------------------------------------------------ the server

async function child(): Promise<void> {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
  const { startServer } = await import("../src/serve/server.js");
  const tf = await import("@tensorflow/tfjs");
  let internalErrors = 0;
  const s = await startServer({
    modelDir: str("model")!, port: 0, quiet: true,
    log: (l) => {
      if (/internal error/.test(l)) internalErrors++;
      process.stderr.write(l + "\n");
    },
    ...(str("item-data") ? { itemData: str("item-data")! } : {}),
    ...(backend ? { backend } : {}), ...(threads ? { threads } : {}),
  });
  const sample = (): ServerSample & { internalErrors: number } => {
    const m = process.memoryUsage();
    return { rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20, tensors: tf.memory().numTensors, ...s.stats(), internalErrors };
  };
  process.on("message", (msg: { type: string; gc?: boolean }) => {
    if (msg.type === "sample") {
      if (msg.gc) (globalThis as { gc?: () => void }).gc?.();
      process.send!({ type: "sample", ...sample() });
    }
  });
  process.on("SIGTERM", () => void s.close().then(() => process.exit(0)));
  process.send!({ type: "ready", url: s.url, backend: tf.getBackend(), kind: s.current().kind, version: s.current().version });
}

interface Child {
  proc: ChildProcess;
  url: string;
  backend: string;
  kind: string;
  sample(gc?: boolean): Promise<ServerSample & { internalErrors: number }>;
  exited: Promise<number | null>;
}

async function startChild(model: string, itemData: string | undefined): Promise<Child> {
  const args = ["--expose-gc", "--import", "tsx", "bench/soak.ts", "--child", "--model", model, ...(itemData ? ["--item-data", itemData] : []), ...(backend ? ["--backend", backend] : []), ...(threads ? ["--threads", String(threads)] : [])];
  const proc = spawn(process.execPath, args, { cwd: resolve(import.meta.dirname, ".."), stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "2" } });
  const exited = new Promise<number | null>((res) => proc.on("exit", (code) => res(code)));
  const waiting: ((m: ServerSample & { internalErrors: number }) => void)[] = [];
  const ready = new Promise<{ url: string; backend: string; kind: string }>((res, rej) => {
    proc.on("message", (m: { type: string } & Record<string, unknown>) => {
      if (m.type === "ready") res(m as never);
      else if (m.type === "sample") waiting.shift()?.(m as never);
    });
    void exited.then(() => rej(new Error("bench/soak: the server process exited before listening")));
  });
  const r = await ready;
  return {
    proc, exited, ...r,
    sample: (gc = false) => new Promise((res) => {
      waiting.push(res);
      proc.send({ type: "sample", gc });
    }),
  };
}

// ------------------------------------------------------------------------------------- the bench


interface Planned {
  path: string;
  body: string;
  contentType: string;
  /** Good requests: the k of each answer. */
  ks?: number[];
}

function planner(seed: number, ids: ReturnType<typeof idsOf>, k: number, rules: boolean): () => Planned {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  const good = (): Record<string, unknown> => {
    const kk = 1 + int(k);
    const r: Record<string, unknown> = ids.kind === "als" ? { user: pick(ids.users), k: kk } : { items: Array.from({ length: 1 + int(10) }, () => pick(ids.items)), k: kk };
    if (rand() < 0.3) r.filters = { deny: Array.from({ length: 1 + int(10) }, () => pick(ids.items)), ...(rules && rand() < 0.5 ? { rules: ["category in [0, 1, 2, 3]"] } : {}) };
    if (ids.kind === "next-item" && rand() < 0.3) r.excludeSeen = true;
    return r;
  };
  const json = "application/json";
  const BAD: (() => Planned)[] = [
    () => ({ path: "/recommend", body: '{"items": ["1", "2",}', contentType: json }),
    () => ({ path: "/recommend", body: JSON.stringify({ items: "1,2", k: "5" }), contentType: json }),
    () => ({ path: "/recommend", body: JSON.stringify({ ...good(), colour: "red" }), contentType: json }),
    () => ({ path: "/recommend", body: JSON.stringify({ ...good(), k: 5000 }), contentType: json }),
    () => ({ path: "/recommend", body: "", contentType: json }),
    () => ({ path: "/recommend", body: JSON.stringify(good()), contentType: "text/plain" }),
    () => ({ path: "/recommend", body: '{"__proto__": {"polluted": 1}, "items": ["1"]}', contentType: json }),
    () => ({ path: "/recommend", body: JSON.stringify({ items: Array.from({ length: 2000 }, () => ({})) }), contentType: json }),
    () => ({ path: "/recommend/batch", body: JSON.stringify({ requests: [good(), { items: [{}] }] }), contentType: json }),
    () => ({ path: "/recommend/batch", body: JSON.stringify({ requests: [] }), contentType: json }),
    () => ({ path: "/recommend/nope", body: "{}", contentType: json }),
  ];
  return () => {
    const r = rand();
    if (r < 0.6) {
      const b = good();
      return { path: "/recommend", body: JSON.stringify(b), contentType: json, ks: [b.k as number] };
    }
    if (r < 0.75) {
      const reqs = Array.from({ length: 2 + int(15) }, good);
      return { path: "/recommend/batch", body: JSON.stringify({ requests: reqs }), contentType: json, ks: reqs.map((x) => x.k as number) };
    }
    return pick(BAD)();
  };
}

/** What is wrong with an answer, if anything (k items when k are eligible: the catalogue is large and filters deny at most 10). */
function judge(p: Planned, status: number, text: string, minItems: number): string | undefined {
  if (status >= 500) return `status ${status}: ${text.slice(0, 200)}`;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `status ${status}, not JSON: ${text.slice(0, 200)}`;
  }
  if (!p.ks) {
    const issues = j.issues as { code?: unknown; path?: unknown; message?: unknown }[] | undefined;
    if (status < 400) return `a malformed request answered ${status}`;
    if (!Array.isArray(issues) || !issues.length || !issues.every((i) => typeof i.code === "string" && typeof i.path === "string" && typeof i.message === "string")) return `a ${status} without issues`;
    return undefined;
  }
  if (status !== 200) return `a good request answered ${status}: ${text.slice(0, 200)}`;
  const answers = (p.path === "/recommend" ? [j] : j.results) as { items: string[]; scores: number[] }[];
  if (!Array.isArray(answers) || answers.length !== p.ks.length) return "not one answer per request";
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i]!;
    const want = Math.min(p.ks[i]!, minItems);
    if (a.items.length < want || a.items.length > p.ks[i]! || a.scores.length !== a.items.length) return `${a.items.length} items for k ${p.ks[i]}`;
    if (new Set(a.items).size !== a.items.length) return "an item twice";
    if (!a.scores.every((s, x) => Number.isFinite(s) && (x === 0 || s <= a.scores[x - 1]!))) return "scores not descending";
  }
  return undefined;
}

async function main(): Promise<void> {
  const minutes = num("minutes", 3);
  if (!(minutes > 0)) {
    console.error(`bench/soak: --minutes must be > 0\n${USAGE}`);
    process.exit(2);
  }
  const connections = Math.max(1, Math.round(num("connections", 32)));
  const reloadEvery = num("reload-every", 20);
  const k = Math.max(1, Math.round(num("k", 20)));
  const seed = num("seed", 42);
  let model = str("model");
  let model2 = str("model2");
  let itemData = str("item-data");
  let tmp: string | undefined;
  if (!model) {
    tmp = mkdtempSync(join(tmpdir(), "recblocks-soak-"));
    log("training a small next-item model (2000 synthetic sessions, 500 items, 1 epoch)...");
    const t0 = performance.now();
    const { makeServeModels } = await import("../test/reliability/serve-models.js");
    const m = await makeServeModels(tmp, { sessions: 2000, items: 500, dModel: 32, ...(backend ? { backend } : {}) });
    log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    model = m.dirA;
    model2 = m.dirB;
    itemData = m.itemData;
  }
  for (const d of [model, model2, itemData]) if (d && !existsSync(d)) throw new Error(`bench/soak: ${d} does not exist`);
  const ids = idsOf(model);
  const dirs = [resolve(model), resolve(model2 ?? model)];

  const server = await startChild(model, itemData);
  log(`server ${server.url} (${server.kind} model, backend ${server.backend}), ${connections} connections for ${minutes} min, a reload every ${reloadEvery} s`);
  const require = createRequire(import.meta.url);
  // autocannon has no type declarations
  const autocannon = require("autocannon") as (o: Record<string, unknown>) => Promise<Record<string, any>> & { stop?: () => void };

  // attribute rules only against the item data written here (a given --item-data may have other columns)
  const plan = planner(seed, ids, k, tmp !== undefined);
  // a tiny catalogue could hold fewer eligible items than k
  const minItems = Math.max(1, Math.min(k, ids.items.length - 20));
  let good = 0;
  let malformed = 0;
  /** Latency of every answer and of good ones, measured here (setupRequest to onResponse): autocannon's own
   *  histogram read 2-3x higher than Little's law allows (mean latency x throughput > connections). */
  const own: number[] = [];
  const ownGood: number[] = [];
  const invalid: string[] = [];
  let reloads = 0;
  const reloadFailures: string[] = [];
  let reloadMsMax = 0;
  let peakRss = 0;
  let peakTensors = 0;
  let exitCode = 0;
  let result: Record<string, any> = {};
  let start: ServerSample | undefined;
  let end: ServerSample | undefined;
  let internalErrors = 0;
  const t0 = Date.now();
  try {
    // warm-up (not counted), then the baseline
    await autocannon({ url: server.url, connections, duration: 3, method: "POST", headers: { "content-type": "application/json" },
      requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, path: "/recommend", body: JSON.stringify(ids.kind === "als" ? { user: ids.users[0], k } : { items: [ids.items[0], ids.items[1]], k }) }) }] });
    start = await server.sample(true);
    peakRss = start.rssMb;
    peakTensors = start.tensors;

    let which = 0;
    const sampler = setInterval(() => {
      void server.sample().then((s) => {
        peakRss = Math.max(peakRss, s.rssMb);
        peakTensors = Math.max(peakTensors, s.tensors);
      });
    }, 2000);
    const reloader = reloadEvery > 0 ? setInterval(() => {
      which = 1 - which;
      const r0 = performance.now();
      void fetch(`${server.url}/admin/reload`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ dir: dirs[which] }), signal: AbortSignal.timeout(60_000) })
        .then(async (r) => {
          const text = await r.text();
          if (r.status === 200) reloads++;
          else reloadFailures.push(`${r.status} ${text.slice(0, 200)}`);
          reloadMsMax = Math.max(reloadMsMax, performance.now() - r0);
        })
        .catch((e: Error) => reloadFailures.push(e.message));
    }, reloadEvery * 1000) : undefined;
    const ticker = setInterval(() => log(`${((Date.now() - t0) / 60_000).toFixed(1)} min: ${good} good, ${malformed} malformed answered, ${invalid.length} invalid, ${reloads} reloads, server rss ${peakRss.toFixed(0)} MB peak`), 30_000);
    try {
      result = await autocannon({
        url: server.url, connections, duration: Math.round(minutes * 60), timeout: 30, method: "POST",
        requests: [{
          setupRequest: (req: Record<string, unknown>, context: Record<string, unknown>) => {
            const p = plan();
            context.planned = p;
            context.sentAt = performance.now();
            return { ...req, path: p.path, body: p.body, headers: { "content-type": p.contentType } };
          },
          onResponse: (status: number, body: string, context: Record<string, unknown>) => {
            const p = context.planned as Planned;
            const ms = performance.now() - (context.sentAt as number);
            if (p.ks) good++;
            else malformed++;
            if (own.length < 5_000_000) own.push(ms);
            if (p.ks && ownGood.length < 5_000_000) ownGood.push(ms);
            const bad = judge(p, status, body, minItems);
            if (bad && invalid.length < 1000) invalid.push(`${p.path} ${p.body.slice(0, 120)}: ${bad}`);
          },
        }],
      });
    } finally {
      clearInterval(sampler);
      if (reloader) clearInterval(reloader);
      clearInterval(ticker);
    }
    // the last reload and the old model's requests finish; then the end sample (after a GC)
    for (let i = 0; i < 100; i++) {
      const s = await server.sample();
      if (s.inFlight === 0 && s.retiredInUse === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // back on the first model when the reloads alternated: same tensors as at the start
    if (reloadEvery > 0 && dirs[0] !== dirs[1]) {
      const r = await fetch(`${server.url}/admin/reload`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ dir: dirs[0] }) });
      if (r.status === 200) reloads++;
      else reloadFailures.push(`${r.status} ${(await r.text()).slice(0, 200)}`);
    }
    // one good request, as after the warm-up: a model makes some tensors at its first request
    const one = await fetch(`${server.url}/recommend`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ids.kind === "als" ? { user: ids.users[0], k } : { items: [ids.items[0], ids.items[1]], k }) });
    const oneText = await one.text();
    if (one.status !== 200) invalid.push(`the last good request: ${one.status} ${oneText.slice(0, 200)}`);
    const e = await server.sample(true);
    end = e;
    internalErrors = e.internalErrors;
    peakRss = Math.max(peakRss, e.rssMb);
  } finally {
    server.proc.kill("SIGTERM");
    const code = await Promise.race([server.exited, new Promise<string>((res) => setTimeout(() => res("timeout"), 15_000))]);
    if (code === "timeout") {
      server.proc.kill("SIGKILL");
      log("the server did not stop within 15 s of SIGTERM");
      exitCode = 1;
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }

  const codes = (result.statusCodeStats ?? {}) as Record<string, { count: number }>;
  const count = (lo: number, hi: number) => Object.entries(codes).filter(([c]) => Number(c) >= lo && Number(c) < hi).reduce((a, [, v]) => a + Number(v.count), 0);
  const served = Number(result.requests?.total ?? 0);
  own.sort((a, b) => a - b);
  ownGood.sort((a, b) => a - b);
  const pct = (xs: number[], x: number) => (xs.length ? Math.round(xs[Math.min(xs.length - 1, Math.floor(x * xs.length))]! * 10) / 10 : NaN);
  const lat = { p50: pct(own, 0.5), p90: pct(own, 0.9), p99: pct(own, 0.99), max: pct(own, 1) };
  const latGood = { p50: pct(ownGood, 0.5), p90: pct(ownGood, 0.9), p99: pct(ownGood, 0.99), max: pct(ownGood, 1) };
  const s = start!;
  const en = end!;
  const rows: [string, string][] = [
    ["duration", `${Number(result.duration ?? 0).toFixed(0)} s, ${connections} connections, ${server.kind} model, backend ${server.backend}`],
    ["requests served", `${served} (${(served / Math.max(1, Number(result.duration ?? 1))).toFixed(0)}/s; ${good} good, ${malformed} malformed)`],
    ["2xx / 4xx / 5xx", `${count(200, 300)} / ${count(400, 500)} / ${count(500, 600)}`],
    ["errors", `${Number(result.errors ?? 0)} connection errors, ${Number(result.timeouts ?? 0)} timeouts, ${invalid.length} invalid answers, ${internalErrors} internal errors logged`],
    ["latency, all requests", `p50 ${lat.p50} ms, p90 ${lat.p90} ms, p99 ${lat.p99} ms, max ${lat.max} ms`],
    ["latency, good requests", `p50 ${latGood.p50} ms, p90 ${latGood.p90} ms, p99 ${latGood.p99} ms, max ${latGood.max} ms`],
    ["reloads", `${reloads} done, ${reloadFailures.length} failed, slowest ${reloadMsMax.toFixed(0)} ms`],
    ["server RSS", `${s.rssMb.toFixed(0)} MB at start, ${en.rssMb.toFixed(0)} MB at end, ${peakRss.toFixed(0)} MB peak`],
    ["server heap", `${s.heapMb.toFixed(1)} MB at start, ${en.heapMb.toFixed(1)} MB at end (after GC)`],
    ["tensors", `${s.tensors} at start, ${en.tensors} at end, ${peakTensors} peak of the samples every 2 s`],
    ["micro-batching", `${en.requests} recommendation requests, ${en.recommendPasses} passes for POST /recommend`],
  ];
  console.log(rows.map(([a, b]) => `${a.padEnd(24)} ${b}`).join("\n"));
  for (const m of invalid.slice(0, 5)) log(`invalid: ${m}`);
  for (const m of reloadFailures.slice(0, 5)) log(`reload failed: ${m}`);
  const bad = Number(result.errors ?? 0) > 0 || count(500, 600) > 0 || invalid.length > 0 || reloadFailures.length > 0 || internalErrors > 0 || en.tensors > s.tensors || served === 0;
  if (bad) exitCode = 1;
  console.log(JSON.stringify({
    minutes, connections, backend: server.backend, kind: server.kind, requests: served, good, malformed, s2xx: count(200, 300), s4xx: count(400, 500), s5xx: count(500, 600),
    errors: Number(result.errors ?? 0), timeouts: Number(result.timeouts ?? 0), invalid: invalid.length, p50_ms: lat.p50, p90_ms: lat.p90, p99_ms: lat.p99, max_ms: lat.max, good_p50_ms: latGood.p50, good_p90_ms: latGood.p90, good_p99_ms: latGood.p99,
    rss_start_mb: Math.round(s.rssMb), rss_end_mb: Math.round(en.rssMb), rss_peak_mb: Math.round(peakRss), heap_start_mb: Math.round(s.heapMb * 10) / 10, heap_end_mb: Math.round(en.heapMb * 10) / 10,
    tensors_start: s.tensors, tensors_end: en.tensors, reloads, reload_failures: reloadFailures.length, ok: !bad,
  }));
  process.exit(exitCode);
}

if (flags.has("child")) await child();
else await main();
