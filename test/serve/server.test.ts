/**
 * `recblocks serve` over real HTTP: the server listens on a free port against model directories
 * trained here (two tiny next-item models and one ALS model), and every check is a fetch.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlsModel } from "../../blocks/factorization/als-model.js";
import { fitAls } from "../../blocks/factorization/als-trainer.js";
import { alsDefaults } from "../../blocks/factorization/config.js";
import { syntheticInteractions, toCsr } from "../../blocks/factorization/interactions.js";
import { saveAlsModel } from "../../blocks/factorization/model-io.js";
import { packageRoot } from "../../src/paths.js";
import { readItemMetadata } from "../../src/recommend/filters.js";
import { NextItemRecommender } from "../../src/recommend/next-item.js";
import { startServer, type ListeningServer } from "../../src/serve/server.js";
import { trainSmallModelDir } from "../helpers/small-model.js";

interface Answer {
  items: string[];
  scores: number[];
  unknownItems: string[];
  model: string;
  version: string;
}
interface IssueJson {
  code: string;
  path: string;
  message: string;
}

let tmp: string;
let dirA: string;
let dirB: string;
let alsDir: string;
let server: ListeningServer;
let alsServer: ListeningServer;
const logA: string[] = [];
/** category of a synthetic item id: id mod 3 */
const category = (id: string) => Number(id) % 3;

async function post(s: ListeningServer, path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(s.url + path, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}
const issuesOf = (j: Record<string, unknown>) => j.issues as IssueJson[];
const descending = (xs: number[]) => xs.every((x, i) => i === 0 || x <= xs[i - 1]!);

beforeAll(async () => {
  await tf.setBackend("cpu");
  tmp = mkdtempSync(join(tmpdir(), "recblocks-serve-"));
  dirA = (await trainSmallModelDir(tmp, { name: "tiny-a", seed: 42, recipeFile: "tiny-a.yaml", out: "tiny-a" })).modelDir;
  // model B: A "retrained" (a copy with other weights and the recipe name tiny-b), cheaper than a second training
  dirB = join(tmp, "tiny-b", "model");
  cpSync(dirA, dirB, { recursive: true });
  const w = readFileSync(join(dirB, "weights.bin"));
  const f = new Float32Array(w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength));
  for (let i = 0; i < f.length; i++) f[i] = f[i]! * (1 + 0.5 * Math.sin(i));
  writeFileSync(join(dirB, "weights.bin"), new Uint8Array(f.buffer));
  const rj = JSON.parse(readFileSync(join(dirB, "recipe.json"), "utf8")) as { name: string };
  writeFileSync(join(dirB, "recipe.json"), JSON.stringify({ ...rj, name: "tiny-b" }));
  // item metadata for attribute rules: every synthetic item 1..50 with a category and a price
  writeFileSync(join(tmp, "items.csv"), "item_id,category,price\n" + Array.from({ length: 50 }, (_, i) => `${i + 1},${(i + 1) % 3},${i + 1}`).join("\n") + "\n");
  // a small ALS model directory (as test/blocks/factorization does)
  const d = syntheticInteractions({ users: 60, items: 40, seed: 5, perUser: 8 });
  const config = { ...alsDefaults(), name: "als-tiny", factors: 8, iterations: 10, solver: "cholesky" as const, regularization: 0.1 };
  const ui = toCsr(d);
  const fit = fitAls(ui, config);
  alsDir = join(tmp, "als");
  saveAlsModel(new AlsModel({ config, users: d.users, items: d.items, userFactors: Float32Array.from(fit.userFactors), itemFactors: Float32Array.from(fit.itemFactors), userItems: ui }), alsDir, { recipe: { name: "als-tiny" }, metrics: { "ndcg@10": 0.5 } });

  server = await startServer({ modelDir: dirA, port: 0, backend: "cpu", itemData: join(tmp, "items.csv"), maxK: 200, maxBatch: 50, batchChunk: 2, log: (l) => logA.push(l) });
  alsServer = await startServer({ modelDir: alsDir, port: 0, backend: "cpu", quiet: true, log: () => {} });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await alsServer?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("POST /recommend (next-item model)", () => {
  it("answers k items, best first, with the model's name and version", async () => {
    const { status, json } = await post(server, "/recommend", { items: ["1", "2", "3"], k: 10 });
    expect(status).toBe(200);
    const a = json as unknown as Answer;
    expect(a.items).toHaveLength(10);
    expect(a.scores).toHaveLength(10);
    expect(descending(a.scores)).toBe(true);
    expect(new Set(a.items).size).toBe(10);
    expect(a.unknownItems).toEqual([]);
    expect(a.model).toBe("tiny-a");
    expect(a.version).toMatch(/^[0-9a-f]{12}$/);
    // integer ids are the same items as their strings; k defaults to 20
    const b = (await post(server, "/recommend", { items: [1, 2, 3] })).json as unknown as Answer;
    expect(b.items).toHaveLength(20);
    expect(b.items.slice(0, 10)).toEqual(a.items);
  });

  it("concurrent requests are answered together (micro-batching), each as it would be alone", async () => {
    // different k, excludeSeen and filters in one pass: each row keeps its own rules
    const filters = [undefined, { deny: ["2", "5"] }, { allow: ["3", "4", "6", "8", "10"] }, { rules: ["category in [2]"] }, { rules: ["price > 40"], deny: ["45"] }];
    const reqs = Array.from({ length: 25 }, (_, i) => ({
      items: [String(1 + i), String(1 + ((i * 7) % 50))], k: 3 + (i % 6), excludeSeen: i % 2 === 0, ...(filters[i % 5] ? { filters: filters[i % 5] } : {}),
    }));
    const passes0 = server.stats().recommendPasses;
    // app.inject: the requests reach the handlers in one turn of the event loop, as they do when a busy server catches up
    const together = await Promise.all(reqs.map(async (r) => {
      const res = await server.app.inject({ method: "POST", url: "/recommend", headers: { "content-type": "application/json" }, payload: JSON.stringify(r) });
      return { status: res.statusCode, json: res.json() as Record<string, unknown> };
    }));
    const passes = server.stats().recommendPasses - passes0;
    expect(passes).toBeLessThanOrEqual(2);
    // the reference: NextItemRecommender (what `recblocks recommend` runs), one request at a time
    const ref = NextItemRecommender.open(dirA, { metadata: readItemMetadata(join(tmp, "items.csv")) });
    try {
      for (let i = 0; i < reqs.length; i++) {
        const alone = (await post(server, "/recommend", reqs[i])).json as unknown as Answer;
        const t = together[i]!.json as unknown as Answer;
        const want = ref.recommend(reqs[i]!);
        expect(together[i]!.status).toBe(200);
        expect(t.items).toEqual(want.items);
        expect(alone.items).toEqual(want.items);
        expect(t.items.length).toBeGreaterThan(0);
        t.scores.forEach((sc, j) => expect(sc).toBeCloseTo(want.scores[j]!, 4));
      }
    } finally {
      ref.dispose();
    }
    // one bad request in a micro-batch fails alone
    const inject = (body: unknown) => server.app.inject({ method: "POST", url: "/recommend", headers: { "content-type": "application/json" }, payload: JSON.stringify(body) });
    const mixed = await Promise.all([inject({ items: ["1"], k: 3 }), inject({ items: ["1"], filters: { rules: ["nope == 1"] } }), inject({ items: ["2"], k: 3 })]);
    expect(mixed.map((m) => m.statusCode)).toEqual([200, 400, 200]);
    expect(mixed[1]!.json().issues[0].code).toBe("unknown_attribute");
  });

  it("deny, allow and attribute rules apply inside top-k: k items still come back", async () => {
    const top = ((await post(server, "/recommend", { items: ["4", "5"], k: 5 })).json as unknown as Answer).items;
    const denied = (await post(server, "/recommend", { items: ["4", "5"], k: 5, filters: { deny: top.slice(0, 3) } }));
    expect(denied.status).toBe(200);
    const d = denied.json as unknown as Answer;
    expect(d.items).toHaveLength(5);
    expect(d.items.some((i) => top.slice(0, 3).includes(i))).toBe(false);
    expect(d.items.slice(0, 2)).toEqual(top.slice(3, 5));
    expect(descending(d.scores)).toBe(true);

    const allowed = (await post(server, "/recommend", { items: ["4"], k: 10, filters: { allow: ["7", "8", "9", "nope"] } })).json as unknown as Answer;
    expect(allowed.items.sort()).toEqual(["7", "8", "9"]);
    expect(allowed.unknownItems).toEqual(["nope"]);

    const ruled = (await post(server, "/recommend", { items: ["4"], k: 8, filters: { rules: ["category in [1]", "price <= 30"] } })).json as unknown as Answer;
    expect(ruled.items).toHaveLength(8);
    expect(ruled.items.every((i) => category(i) === 1 && Number(i) <= 30)).toBe(true);

    const seen = (await post(server, "/recommend", { items: top.slice(0, 2), k: 5, excludeSeen: true })).json as unknown as Answer;
    expect(seen.items).toHaveLength(5);
    expect(seen.items.some((i) => top.slice(0, 2).includes(i))).toBe(false);
  });

  it("unknown raw ids are skipped and reported (200); a session of unknown ids gets no items", async () => {
    const { status, json } = await post(server, "/recommend", { items: ["1", "no-such-item", 999999], k: 5, filters: { deny: ["ghost"] } });
    expect(status).toBe(200);
    expect(json.unknownItems).toEqual(["no-such-item", "999999", "ghost"]);
    expect(json.items).toHaveLength(5);
    const none = await post(server, "/recommend", { items: ["x", "y"], k: 5 });
    expect(none.status).toBe(200);
    expect(none.json).toMatchObject({ items: [], scores: [], unknownItems: ["x", "y"] });
  });

  it("malformed JSON is a 400 with a located json_syntax_error", async () => {
    const { status, json } = await post(server, "/recommend", '{"items": ["1", "2",}');
    expect(status).toBe(400);
    const [i] = issuesOf(json);
    expect(i).toMatchObject({ code: "json_syntax_error", path: "" });
    expect(i!.message).toContain("line 1, column 21");
    const empty = await post(server, "/recommend", "");
    expect(empty.status).toBe(400);
    expect(issuesOf(empty.json)[0]!.code).toBe("empty_body");
  });

  it("wrong types and unknown keys are 400s with code and path, all at once", async () => {
    const { status, json } = await post(server, "/recommend", { items: "1,2", k: "10", excludeSeen: "yes", filters: { deny: [true] }, colour: "red" });
    expect(status).toBe(400);
    const got = issuesOf(json).map((i) => [i.code, i.path]);
    expect(got).toEqual(expect.arrayContaining([["wrong_type", "/items"], ["wrong_type", "/k"], ["wrong_type", "/excludeSeen"], ["wrong_type", "/filters/deny/0"], ["unknown_key", "/colour"]]));
    expect(issuesOf(json).every((i) => typeof i.message === "string" && i.message.length > 0)).toBe(true);
    // keys of the other model kind, a missing session, a body that is not an object
    const als = await post(server, "/recommend", { user: "1" });
    expect(issuesOf(als.json).map((i) => [i.code, i.path])).toEqual([["missing_key", "/items"], ["wrong_model_kind", "/user"]]);
    const list = await post(server, "/recommend", [1, 2]);
    expect(list.status).toBe(400);
    expect(issuesOf(list.json)[0]).toMatchObject({ code: "wrong_type", path: "" });
  });

  it("bad filter rules are 400s located at the rule", async () => {
    const { status, json } = await post(server, "/recommend", { items: ["1"], filters: { rules: ["colour == red", "price >=", "category in [1]"] } });
    expect(status).toBe(400);
    expect(issuesOf(json).map((i) => [i.code, i.path])).toEqual([["unknown_attribute", "/filters/rules/0"], ["invalid_rule", "/filters/rules/1"]]);
  });

  it("k beyond the bounds: 400 out_of_range (the schema's 1000 and the server's --max-k)", async () => {
    const a = await post(server, "/recommend", { items: ["1"], k: 5000 });
    expect(a.status).toBe(400);
    expect(issuesOf(a.json)[0]).toMatchObject({ code: "out_of_range", path: "/k" });
    const b = await post(server, "/recommend", { items: ["1"], k: 500 });
    expect(b.status).toBe(400);
    expect(issuesOf(b.json)[0]).toMatchObject({ code: "out_of_range", path: "/k" });
    expect(issuesOf(b.json)[0]!.message).toContain("at most 200");
    const c = await post(server, "/recommend", { items: ["1"], k: 0 });
    expect(issuesOf(c.json)[0]).toMatchObject({ code: "out_of_range", path: "/k" });
    // k above the number of items: every eligible item, no error
    const d = await post(server, "/recommend", { items: ["1"], k: 200 });
    expect(d.status).toBe(200);
    expect((d.json.items as string[]).length).toBe(50);
  });

  it("a body over the limit is a 413 with an issue", async () => {
    const big = JSON.stringify({ items: Array.from({ length: 9000 }, (_, i) => `item-${i}-${"x".repeat(120)}`) });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    const { status, json } = await post(server, "/recommend", big);
    expect(status).toBe(413);
    expect(issuesOf(json)[0]).toMatchObject({ code: "body_too_large", path: "" });
  });

  it("other content types, routes and methods are issues too (415, 404)", async () => {
    const t = await post(server, "/recommend", "items=1", { "content-type": "application/x-www-form-urlencoded" });
    expect(t.status).toBe(415);
    expect(issuesOf(t.json)[0]!.code).toBe("unsupported_media_type");
    const r = await fetch(server.url + "/recommend");
    expect(r.status).toBe(404);
    expect(issuesOf((await r.json()) as Record<string, unknown>)[0]!.code).toBe("not_found");
  });
});

describe("POST /recommend/batch", () => {
  it("answers every request in order, as /recommend does one by one", async () => {
    const reqs = [{ items: ["1", "2"], k: 5 }, { items: ["9"], k: 3, filters: { deny: ["1"] } }, { items: ["zz"] }, { items: ["1", "2"], k: 5 }, { items: ["3"], k: 4, excludeSeen: true }];
    const { status, json } = await post(server, "/recommend/batch", { requests: reqs });
    expect(status).toBe(200);
    const results = json.results as Answer[];
    expect(results).toHaveLength(5);
    expect(json.model).toBe("tiny-a");
    for (let i = 0; i < reqs.length; i++) {
      const one = (await post(server, "/recommend", reqs[i])).json as unknown as Answer;
      expect(results[i]!.items).toEqual(one.items);
      expect(results[i]!.unknownItems).toEqual(one.unknownItems);
      results[i]!.scores.forEach((s, j) => expect(s).toBeCloseTo(one.scores[j]!, 4));
    }
  });

  it("is refused whole, with every entry's issues located at /requests/<i>", async () => {
    const { status, json } = await post(server, "/recommend/batch", { requests: [{ items: ["1"] }, { items: [{}] }, { items: ["1"], k: 300 }, { user: "3" }] });
    expect(status).toBe(400);
    expect(issuesOf(json).map((i) => [i.code, i.path])).toEqual([["wrong_type", "/requests/1/items/0"]]);
    const b = await post(server, "/recommend/batch", { requests: [{ items: ["1"] }, { items: ["1"], k: 300 }, { user: "3" }] });
    expect(issuesOf(b.json).map((i) => [i.code, i.path])).toEqual([["out_of_range", "/requests/1/k"], ["missing_key", "/requests/2/items"], ["wrong_model_kind", "/requests/2/user"]]);
  });

  it("bounds the batch length (schema 1000, server --max-batch)", async () => {
    const tooMany = await post(server, "/recommend/batch", { requests: Array.from({ length: 51 }, () => ({ items: ["1"] })) });
    expect(tooMany.status).toBe(400);
    expect(issuesOf(tooMany.json)[0]).toMatchObject({ code: "invalid_length", path: "/requests" });
    const empty = await post(server, "/recommend/batch", { requests: [] });
    expect(issuesOf(empty.json)[0]).toMatchObject({ code: "invalid_length", path: "/requests" });
  });
});

describe("GET /health and /model", () => {
  it("health says ok with the model's name and version", async () => {
    const r = await fetch(server.url + "/health");
    expect(r.status).toBe(200);
    const j = (await r.json()) as Record<string, unknown>;
    expect(j).toMatchObject({ status: "ok", model: "tiny-a", kind: "next-item" });
    expect(j.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it("model shows the recipe, feature schema, metrics, vocabulary size and load time", async () => {
    const j = (await (await fetch(server.url + "/model")).json()) as Record<string, unknown>;
    expect(j).toMatchObject({ kind: "next-item", format: "recblocks-next-item", name: "tiny-a", maxSequenceLength: 8 });
    expect(j.numItems).toBe(j.vocabularySize);
    expect((j.recipe as { name: string }).name).toBe("tiny-a");
    expect(Array.isArray((j.schema as { columns: unknown[] }).columns)).toBe(true);
    expect(typeof (j.metrics as Record<string, unknown>)).toBe("object");
    expect(j.vocabularySize).toBeGreaterThanOrEqual(50);
    expect(Number.isNaN(Date.parse(j.loadedAt as string))).toBe(false);
    expect(j.itemData).toMatchObject({ items: 50, columns: ["item_id", "category", "price"] });
  });

  it("logs one line per request (method, url, status, ms)", () => {
    expect(logA.some((l) => /\bPOST \/recommend 200 \d+\.\dms$/.test(l))).toBe(true);
    expect(logA.some((l) => /\bGET \/health 200 \d+\.\dms$/.test(l))).toBe(true);
    expect(logA.some((l) => /\bPOST \/recommend 413 /.test(l))).toBe(true);
  });
});

describe("ALS model directory", () => {
  it("recommends for a known user (k defaults to 10, training items left out)", async () => {
    const { status, json } = await post(alsServer, "/recommend", { user: "1" });
    expect(status).toBe(200);
    const a = json as unknown as Answer;
    expect(a.items).toHaveLength(10);
    expect(descending(a.scores)).toBe(true);
    expect(a.model).toBe("als-tiny");
    const denied = (await post(alsServer, "/recommend", { user: "1", k: 5, filters: { deny: a.items.slice(0, 2) } })).json as unknown as Answer;
    expect(denied.items).toEqual(a.items.slice(2, 7));
  });

  it("concurrent requests for known users are scored together, each as alone", async () => {
    const reqs = [{ user: "1" }, { user: "2", k: 4 }, { user: "3" }, { user: "4", filters: { deny: ["1", "2"] } }, { user: "5", excludeSeen: false }, { userItems: ["7", "8"] }, { user: "6" }, { user: "7", k: 4 }];
    const together = await Promise.all(reqs.map((r) => alsServer.app.inject({ method: "POST", url: "/recommend", headers: { "content-type": "application/json" }, payload: JSON.stringify(r) })));
    for (let i = 0; i < reqs.length; i++) {
      const alone = (await post(alsServer, "/recommend", reqs[i])).json as unknown as Answer;
      const t = together[i]!.json() as Answer;
      expect(together[i]!.statusCode).toBe(200);
      expect(t.items).toEqual(alone.items);
      t.scores.forEach((sc, j) => expect(sc).toBeCloseTo(alone.scores[j]!, 4));
    }
  });

  it("folds a new user in from userItems; unknown ones are reported", async () => {
    const { status, json } = await post(alsServer, "/recommend", { userItems: ["1", "2", "3", "unknown-item"], k: 5 });
    expect(status).toBe(200);
    expect(json.items as string[]).toHaveLength(5);
    expect((json.items as string[]).some((i) => ["1", "2", "3"].includes(i))).toBe(false);
    expect(json.unknownItems).toEqual(["unknown-item"]);
    const nothing = await post(alsServer, "/recommend", { userItems: ["a", "b"] });
    expect(nothing.json).toMatchObject({ items: [], unknownItems: ["a", "b"] });
  });

  it("an unknown user, next-item keys and rules without item data are 400s", async () => {
    const u = await post(alsServer, "/recommend", { user: "no-such-user" });
    expect(u.status).toBe(400);
    expect(issuesOf(u.json)[0]).toMatchObject({ code: "unknown_user", path: "/user" });
    const i = await post(alsServer, "/recommend", { items: ["1"] });
    expect(issuesOf(i.json)[0]).toMatchObject({ code: "wrong_model_kind", path: "/items" });
    const r = await post(alsServer, "/recommend", { user: "1", filters: { rules: ["category in [1]"] } });
    expect(issuesOf(r.json)[0]).toMatchObject({ code: "missing_item_metadata", path: "/filters/rules" });
    const b = await post(alsServer, "/recommend/batch", { requests: [{ user: "1", k: 3 }, { userItems: ["4"], k: 2 }] });
    expect(b.status).toBe(200);
    expect((b.json.results as Answer[]).map((x) => x.items.length)).toEqual([3, 2]);
    const m = (await (await fetch(alsServer.url + "/model")).json()) as Record<string, unknown>;
    expect(m).toMatchObject({ kind: "als", name: "als-tiny", numItems: 40, users: 60, factors: 8, schema: null, metrics: { "ndcg@10": 0.5 } });
  });
});

describe("hot reload", () => {
  it("swaps models under 200 concurrent requests with zero failures; the old model finishes its requests", async () => {
    const before = (await (await fetch(server.url + "/health")).json()) as { version: string };
    const single = () => post(server, "/recommend", { items: ["1", "2", "3"], k: 10, filters: { deny: ["4"] } });
    // batches are answered a few entries at a time (batchChunk 2), so they straddle the swap
    const batch = () => post(server, "/recommend/batch", { requests: Array.from({ length: 6 }, (_, i) => ({ items: [String(1 + (i % 50))], k: 5 })) });
    const inFlight: Promise<{ status: number; json: Record<string, unknown> }>[] = [];
    for (let i = 0; i < 100; i++) inFlight.push(i % 8 === 0 ? batch() : single());
    // wait until the server is inside requests, then swap while 100 more arrive
    const t0 = Date.now();
    while (server.stats().inFlight === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 1));
    const reload = post(server, "/admin/reload", { dir: dirB });
    for (let i = 0; i < 100; i++) inFlight.push(i % 8 === 0 ? batch() : single());
    const [answers, swapped] = await Promise.all([Promise.all(inFlight), reload]);
    expect(swapped.status).toBe(200);
    expect(swapped.json).toMatchObject({ model: "tiny-b", previous: { model: "tiny-a", version: before.version } });
    const versionB = swapped.json.version as string;
    expect(versionB).not.toBe(before.version);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const byModel = new Map<string, number>();
    for (const a of answers) byModel.set(a.json.model as string, (byModel.get(a.json.model as string) ?? 0) + 1);
    expect(byModel.get("tiny-a")).toBeGreaterThan(0);
    expect(byModel.get("tiny-b")).toBeGreaterThan(0);
    for (const a of answers) expect(a.json.version).toBe(a.json.model === "tiny-a" ? before.version : versionB);
    // every lease given back and the old model disposed
    expect(server.stats()).toMatchObject({ inFlight: 0, retiredInUse: 0 });
    expect(((await (await fetch(server.url + "/health")).json()) as { model: string }).model).toBe("tiny-b");
  });

  it("a failed reload keeps the old model and answers the issue", async () => {
    const missing = await post(server, "/admin/reload", { dir: join(tmp, "no-such-model") });
    expect(missing.status).toBe(400);
    expect(issuesOf(missing.json)[0]).toMatchObject({ code: "invalid_model_dir", path: "/dir" });
    const bad = await post(server, "/admin/reload", { dir: 7 });
    expect(issuesOf(bad.json)[0]).toMatchObject({ code: "wrong_type", path: "/dir" });
    // --item-data is read again at a reload: a broken file fails the reload, located in the file, not at /dir
    const items = join(tmp, "items.csv");
    const good = readFileSync(items, "utf8");
    writeFileSync(items, good + "51,2\n");
    try {
      const ragged = await post(server, "/admin/reload", {});
      expect(ragged.status).toBe(400);
      expect(issuesOf(ragged.json)[0]).toMatchObject({ code: "data_ragged_row", path: "" });
    } finally {
      writeFileSync(items, good);
    }
    const h = (await (await fetch(server.url + "/health")).json()) as { model: string };
    expect(h.model).toBe("tiny-b");
    expect((await post(server, "/recommend", { items: ["1"], k: 3 })).status).toBe(200);
  });

  it("reload() without a directory reloads the current one (what SIGHUP does); the kind may change", async () => {
    const r = await server.reload();
    expect(r.model).toBe("tiny-b");
    expect(r.version).toBe(r.previous.version);
    const toAls = await post(server, "/admin/reload", { dir: alsDir });
    expect(toAls.status).toBe(200);
    expect((await post(server, "/recommend", { user: "2", k: 4 })).json.items).toHaveLength(4);
    await server.reload(dirA);
    expect(server.current().name).toBe("tiny-a");
  });

  it("--admin-token guards the reload endpoint; --no-reload-endpoint removes it", async () => {
    const s = await startServer({ modelDir: alsDir, port: 0, backend: "cpu", quiet: true, adminToken: "s3cret" });
    const t = await startServer({ modelDir: alsDir, port: 0, backend: "cpu", quiet: true, reloadEndpoint: false });
    try {
      const denied = await post(s, "/admin/reload", {});
      expect(denied.status).toBe(401);
      expect(issuesOf(denied.json)[0]!.code).toBe("unauthorized");
      const wrong = await post(s, "/admin/reload", {}, { "content-type": "application/json", authorization: "Bearer nope" });
      expect(wrong.status).toBe(401);
      const ok = await post(s, "/admin/reload", {}, { "content-type": "application/json", authorization: "Bearer s3cret" });
      expect(ok.status).toBe(200);
      expect(ok.json.generation).toBe(2);
      expect((await post(t, "/admin/reload", {})).status).toBe(404);
      expect((await t.reload()).generation).toBe(2);
    } finally {
      await s.close();
      await t.close();
    }
  });

  it("close() lets requests in flight finish, then refuses connections", async () => {
    const s = await startServer({ modelDir: dirA, port: 0, backend: "cpu", quiet: true, batchChunk: 1 });
    const reqs = Array.from({ length: 10 }, () => post(s, "/recommend/batch", { requests: Array.from({ length: 20 }, (_, i) => ({ items: [String(i + 1)], k: 3 })) }));
    // requests still on their way when the server stops accepting fail to connect (ECONNRESET): settled, not unhandled
    const settled = Promise.allSettled(reqs);
    const t0 = Date.now();
    while (s.stats().inFlight === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 1));
    expect(s.stats().inFlight).toBeGreaterThan(0);
    await s.close();
    const done = await settled;
    // the requests the server had accepted were answered; none failed on a disposed model
    const ok = done.filter((d) => d.status === "fulfilled" && d.value.status === 200).length;
    expect(ok).toBeGreaterThan(0);
    // requests that reach the server after close() began are refused with 503 shutting_down, never a 500
    for (const d of done) {
      if (d.status !== "fulfilled" || d.value.status === 200) continue;
      expect(d.value.status).toBe(503);
      expect(issuesOf(d.value.json)[0]!.code).toBe("shutting_down");
    }
    await expect(fetch(s.url + "/health")).rejects.toThrow();
  });
});

describe("recblocks serve (the CLI command)", () => {
  it("listens, logs requests, reloads on SIGHUP and exits 0 on SIGTERM", async () => {
    const main = join(packageRoot(), "src", "cli", "main.ts");
    const script = `const { main } = await import(${JSON.stringify(main)}); process.exitCode = await main(process.argv.slice(1));`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, "serve", dirA, "--port", "0", "--backend", "cpu"], {
      cwd: packageRoot(), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "2" },
    });
    let err = "";
    const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      err += d;
      for (const w of waiters.splice(0)) {
        const m = err.match(w.re);
        if (m) w.resolve(m);
        else waiters.push(w);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const waitFor = (re: RegExp) => new Promise<RegExpMatchArray>((resolve, reject) => {
      const m = err.match(re);
      if (m) return resolve(m);
      waiters.push({ re, resolve });
      void exited.then(() => reject(new Error(`the server exited before printing ${re}; stderr:\n${err}`)));
    });
    try {
      const url = (await waitFor(/listening on (http:\/\/\S+)/))[1]!;
      const s = { url } as ListeningServer;
      expect((await (await fetch(url + "/health")).json())).toMatchObject({ status: "ok", model: "tiny-a" });
      const r = await post(s, "/recommend", { items: ["1", "2"], k: 3 });
      expect(r.status).toBe(200);
      await waitFor(/POST \/recommend 200 \d+\.\dms/);
      child.kill("SIGHUP");
      await waitFor(/reloaded .*tiny-a version [0-9a-f]{12}/);
      expect((await (await fetch(url + "/health")).json())).toMatchObject({ generation: 2 });
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(err).toContain("recblocks serve: stopped");
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);
});
