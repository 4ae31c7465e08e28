/**
 * A short soak of the server (the long one is bench/soak.ts): 48 concurrent connections send a seeded
 * mix of good requests (POST /recommend and /recommend/batch, with and without filters) and malformed
 * ones for about 16 s, over real HTTP to a server in this process, while POST /admin/reload switches it
 * to a second model directory half-way. Checked: no 5xx, no failed or lost request (every request sent
 * gets its answer, before, across and after the reload), every good answer valid (k items, distinct,
 * scores descending, the model's name and version of one of the two models, the new model once the
 * reload has answered), every malformed one a 4xx with issues; memory flat (tf.memory().numTensors
 * back to where it was, heap within a tolerance). Latency percentiles are printed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../src/masking/index.js";
import { startServer, type ListeningServer } from "../../src/serve/server.js";
import { makeServeModels, type ServeModels } from "./serve-models.js";

const SEED = 20261206;
const CONNECTIONS = 48;
const WARMUP_MS = 2_000;
const SOAK_MS = 16_000;
/** An answer slower than this is a failure (a hang); generous, the machine may be loaded. */
const TIMEOUT_MS = 30_000;
/** Heap growth allowed between before and after the soak (after a full GC). */
const HEAP_TOLERANCE_MB = 32;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let tmp: string;
let models: ServeModels;
let server: ListeningServer;
const serverLog: string[] = [];

interface Req {
  path: string;
  body: string;
  contentType: string;
  /** Good requests: the k of each answer; malformed ones: undefined. */
  ks?: number[];
  kind: string;
}

/** Request bodies: good ones (known items, k items always eligible) and malformed ones (4xx expected). */
function requestMaker(seed: number, m: ServeModels): () => Req {
  const rng = mulberry32(seed);
  const int = (n: number) => Math.floor(rng.next() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  const good = () => {
    const r: Record<string, unknown> = { items: Array.from({ length: 1 + int(8) }, () => pick(m.items)), k: 1 + int(m.k * 4) };
    if (rng.next() < 0.3) r.excludeSeen = true;
    if (rng.next() < 0.3) r.filters = { deny: Array.from({ length: 1 + int(5) }, () => pick(m.items)), ...(rng.next() < 0.5 ? { rules: ["category in [0, 1]"] } : {}) };
    return r;
  };
  const BAD: (() => Omit<Req, "kind">)[] = [
    () => ({ path: "/recommend", body: '{"items": ["1", "2",}', contentType: "application/json" }),
    () => ({ path: "/recommend", body: JSON.stringify({ items: "1,2", k: "5" }), contentType: "application/json" }),
    () => ({ path: "/recommend", body: JSON.stringify({ ...good(), colour: "red" }), contentType: "application/json" }),
    () => ({ path: "/recommend", body: JSON.stringify({ items: ["1"], k: 5000 }), contentType: "application/json" }),
    () => ({ path: "/recommend", body: "", contentType: "application/json" }),
    () => ({ path: "/recommend", body: JSON.stringify(good()), contentType: "text/plain" }),
    () => ({ path: "/recommend", body: JSON.stringify({ items: ["1"], filters: { rules: ["colour == red"] } }), contentType: "application/json" }),
    () => ({ path: "/recommend", body: '{"__proto__": {"polluted": 1}, "items": ["1"]}', contentType: "application/json" }),
    () => ({ path: "/recommend/batch", body: JSON.stringify({ requests: [good(), { items: [{}] }] }), contentType: "application/json" }),
    () => ({ path: "/recommend/batch", body: JSON.stringify({ requests: [] }), contentType: "application/json" }),
    () => ({ path: "/recommend/batch", body: JSON.stringify({ requests: [good(), { user: "3" }] }), contentType: "application/json" }),
    () => ({ path: "/recommend/nope", body: "{}", contentType: "application/json" }),
  ];
  return () => {
    const r = rng.next();
    if (r < 0.6) {
      const b = good();
      return { path: "/recommend", body: JSON.stringify(b), contentType: "application/json", ks: [b.k as number], kind: "good" };
    }
    if (r < 0.75) {
      const reqs = Array.from({ length: 2 + int(7) }, good);
      return { path: "/recommend/batch", body: JSON.stringify({ requests: reqs }), contentType: "application/json", ks: reqs.map((x) => x.k as number), kind: "good-batch" };
    }
    return { ...pick(BAD)(), kind: "malformed" };
  };
}

interface Answer {
  items: string[];
  scores: number[];
  unknownItems: string[];
}

/** What is wrong with an answer to `r`, if anything. */
function judge(r: Req, status: number, text: string, versions: Map<string, string>): string | undefined {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `status ${status}, the body is not JSON: ${text.slice(0, 200)}`;
  }
  if (!r.ks) {
    const issues = j.issues as { code?: unknown; path?: unknown; message?: unknown }[] | undefined;
    if (status < 400 || status >= 500) return `a malformed request answered ${status}`;
    if (!Array.isArray(issues) || !issues.length || !issues.every((i) => typeof i.code === "string" && typeof i.path === "string" && typeof i.message === "string")) return `a ${status} without located issues`;
    return undefined;
  }
  if (status !== 200) return `a good request answered ${status}: ${text.slice(0, 300)}`;
  if (versions.get(j.model as string) !== j.version) return `model ${String(j.model)} version ${String(j.version)} is neither model`;
  const answers = (r.path === "/recommend" ? [j] : j.results) as Answer[];
  if (!Array.isArray(answers) || answers.length !== r.ks.length) return "not one answer per request";
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i]!;
    if (a.items.length !== r.ks[i] || a.scores.length !== r.ks[i]) return `${a.items.length} items for k ${r.ks[i]}`;
    if (new Set(a.items).size !== a.items.length) return "an item twice";
    if (!a.scores.every((s, k) => Number.isFinite(s) && (k === 0 || s <= a.scores[k - 1]!))) return "scores not descending";
    if (a.unknownItems.length) return "unknown items in a request of known ones";
  }
  return undefined;
}

const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);

const memory = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return { tensors: tf.memory().numTensors, heapMb: m.heapUsed / 2 ** 20, rssMb: m.rss / 2 ** 20 };
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "rb-serve-soak-"));
  models = await makeServeModels(tmp, { backend: "cpu" });
  server = await startServer({ modelDir: models.dirA, port: 0, backend: "cpu", itemData: models.itemData, quiet: true, log: (l) => serverLog.push(l) });
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("server soak", () => {
  it(`${CONNECTIONS} connections, good and malformed requests, a reload half-way: no 5xx, no failure, memory flat`, async () => {
    const versions = new Map<string, string>([["soak-a", server.current().version]]);
    const failures: string[] = [];
    const latencies: number[] = [];
    const status = new Map<number, number>();
    let sent = 0;
    let answered = 0;
    let good = 0;
    let malformed = 0;
    let byB = 0;
    let straddling = 0;
    /** When the reload had answered: requests sent afterwards must be answered by model B. */
    let reloadedAt = Infinity;
    let reloadStartedAt = Infinity;

    const run = async (ms: number, seed: number, record: boolean) => {
      const deadline = performance.now() + ms;
      await Promise.all(Array.from({ length: CONNECTIONS }, async (_, w) => {
        const next = requestMaker(seed + w, models);
        while (performance.now() < deadline) {
          const r = next();
          const t0 = performance.now();
          sent++;
          let st: number;
          let text: string;
          try {
            const res = await fetch(server.url + r.path, { method: "POST", headers: { "content-type": r.contentType }, body: r.body, signal: AbortSignal.timeout(TIMEOUT_MS) });
            st = res.status;
            text = await res.text();
          } catch (e) {
            failures.push(`${r.kind} ${r.path} ${r.body.slice(0, 100)}: ${(e as Error).name}: ${(e as Error).message}`);
            continue;
          }
          answered++;
          const t1 = performance.now();
          if (!record) continue;
          status.set(st, (status.get(st) ?? 0) + 1);
          const bad = judge(r, st, text, versions);
          if (bad) failures.push(`${r.kind} ${r.path} ${r.body.slice(0, 150)}: ${bad}`);
          if (!r.ks) {
            malformed++;
            continue;
          }
          good++;
          latencies.push(t1 - t0);
          const model = (JSON.parse(text) as { model: string }).model;
          if (model === "soak-b") byB++;
          if (t0 < reloadStartedAt && t1 > reloadStartedAt) straddling++;
          if (t0 > reloadedAt && model !== "soak-b") failures.push(`a request sent after the reload was answered by ${model}`);
        }
      }));
    };

    await run(WARMUP_MS, SEED + 1000, false);
    const before = memory();
    const reload = (async () => {
      await new Promise((r) => setTimeout(r, SOAK_MS / 2));
      reloadStartedAt = performance.now();
      const res = await fetch(server.url + "/admin/reload", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ dir: models.dirB }), signal: AbortSignal.timeout(TIMEOUT_MS) });
      const j = (await res.json()) as { model: string; version: string };
      reloadedAt = performance.now();
      versions.set(j.model, j.version);
      return { status: res.status, ms: reloadedAt - reloadStartedAt, json: j };
    })();
    const t0 = performance.now();
    await Promise.all([run(SOAK_MS, SEED, true), reload]);
    const seconds = (performance.now() - t0) / 1000;
    const reloaded = await reload;
    // the old model is disposed once its last request is answered
    const t1 = Date.now();
    while (server.stats().retiredInUse > 0 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 10));
    const after = memory();

    latencies.sort((a, b) => a - b);
    const p = (q: number) => quantile(latencies, q).toFixed(1);
    const st = server.stats();
    console.log(
      `serve soak: ${CONNECTIONS} connections for ${seconds.toFixed(1)} s: ${good + malformed} requests answered (${((good + malformed) / seconds).toFixed(0)}/s; ${answered} of ${sent} sent with the warm-up), ` +
        `${good} good (${byB} by the reloaded model, ${straddling} in flight when the reload began), ${malformed} malformed; statuses ${[...status].map(([k, v]) => `${k}: ${v}`).join(", ")}; ${failures.length} failures\n` +
        `  latency of good requests: p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, p99 ${p(0.99)} ms, max ${latencies.at(-1)?.toFixed(1)} ms\n` +
        `  reload to model B: ${reloaded.status} in ${reloaded.ms.toFixed(0)} ms; server: ${st.requests} recommendation requests, ${st.recommendPasses} passes for POST /recommend\n` +
        `  memory before -> after: tensors ${before.tensors} -> ${after.tensors}, heap ${before.heapMb.toFixed(1)} -> ${after.heapMb.toFixed(1)} MB, rss ${before.rssMb.toFixed(0)} -> ${after.rssMb.toFixed(0)} MB`,
    );

    expect(failures.slice(0, 5).join("\n")).toBe("");
    expect(answered).toBe(sent);
    expect(reloaded.status).toBe(200);
    expect(reloaded.json.model).toBe("soak-b");
    expect([...status.keys()].filter((s) => s >= 500)).toEqual([]);
    // the soak is time-bounded, so how many requests fit depends on the machine's load (157 good ones on a
    // loaded 2-core machine, ~1,000-2,000 idle): the floor only says the soak really ran on both models
    expect(good).toBeGreaterThan(40);
    expect(malformed).toBeGreaterThan(10);
    expect(byB).toBeGreaterThan(0);
    expect(good - byB).toBeGreaterThan(0);
    expect(server.stats()).toMatchObject({ inFlight: 0, retiredInUse: 0, generation: 2 });
    expect(serverLog.filter((l) => /internal error/.test(l))).toEqual([]);
    // memory flat: model B has the same tensors as A (A's were freed), the heap within a tolerance
    expect(after.tensors).toBe(before.tensors);
    expect(after.heapMb - before.heapMb).toBeLessThan(HEAP_TOLERANCE_MB);
  }, 60_000);
});
