/**
 * Recommending from raw item ids with a model whose input block uses per-step side features (the
 * `category` and `price` of builtin:synthetic, as recipes/xlnet-mlm.yaml and bert-mlm.yaml): training
 * saves the item-feature table (item-features.json), NextItemRecommender fills the side features of a
 * session from it (explicit request features win), and old directories without the table fail clearly.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { fetchModelDir } from "../../src/browser/index.js";
import type { SequenceBatchLike } from "../../src/core/index.js";
import type { Session } from "../../src/data/batches.js";
import { loadRecipeData, type DataConfig } from "../../src/data/load.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { buildItemFeatureTable, ITEM_FEATURES_FILE, itemFeatureTableFromJSON, itemFeatureTableToJSON, sideFeaturesOf } from "../../src/io/item-features.js";
import { loadModelDir, type ModelDirContents } from "../../src/io/model-dir.js";
import { loadRecipe } from "../../src/recipe/load.js";
import { NextItemRecommender } from "../../src/recommend/next-item.js";
import { trainRecipe, type TrainRunResult } from "../../src/run/train.js";
import { createServer } from "../../src/serve/server.js";
import { validateRequest } from "../../src/serve/request-schemas.js";
import { packageRoot } from "../../src/paths.js";

const L = 8;
/** An xlnet-mlm-like model (recipes/xlnet-mlm.yaml), tiny: category and price as per-step side features. */
const RECIPE = `version: 1
name: tiny-xlnet-side
features: builtin:synthetic
data:
  train: builtin:synthetic?sessions=150&items=40&seed=3
  sessions:
    maxSequenceLength: ${L}
  split:
    type: random
    validFraction: 0.1
    testFraction: 0.1
model:
  inputs:
    type: tabular-sequence-features
    excludeFeatures: [user_id, timestamp]
    embeddingDims: {item_id: 16, category: 4}
    embeddingInitStd: 0.05
    dOutput: 16
    masking: {type: masked, mlmProbability: 0.3}
  body:
    - type: transformer
      architecture: xlnet
      dModel: 16
      numHeads: 2
      numLayers: 1
      maxSequenceLength: ${L}
      dropout: 0.1
      initializerRange: 0.05
  head:
    type: next-item-prediction
    weightTying: true
train:
  epochs: 1
  batchSize: 32
  optimizer: {type: adam, learningRate: 0.01}
  seed: 42
evaluate:
  protocol: last-item
  metrics: [ndcg]
  ks: [5]
`;

let tmp: string;
let run: TrainRunResult;
let rec: NextItemRecommender;
let c: ModelDirContents;
let train: Session[];
/** Raw ids of a session of known items. */
let session: string[];

const thrown = (f: () => unknown): RecblocksError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RecblocksError);
    return e as RecblocksError;
  }
  throw new Error("expected a RecblocksError");
};

/** A one-row batch of the session's dense ids (last L) with the given per-step side features. */
function batchOf(ids: number[], category: number[], price: number[]): SequenceBatchLike {
  const tail = ids.slice(-L);
  const from = ids.length - tail.length;
  const b = { batchSize: 1, seqLen: L, itemIds: new Int32Array(L), categorical: { category: new Int32Array(L) }, continuous: { price: new Float32Array(L) }, context: {}, lengths: Int32Array.of(tail.length) } as SequenceBatchLike;
  b.itemIds.set(tail);
  (b.categorical.category as Int32Array).set(category.slice(from));
  (b.continuous.price as Float32Array).set(price.slice(from));
  return b;
}

/** Model.topK on a hand-made batch with the recommender's eligibility (0 and OOV never recommended), as raw ids. */
function handTopK(batch: SequenceBatchLike, k: number): { items: string[]; scores: number[] } {
  const top = c.model.topK(batch, k, { eligible: rec.mask(undefined).mask });
  const items: string[] = [];
  const scores: number[] = [];
  for (let j = 0; j < top.k; j++) {
    items.push(String(rec.vocab.raw(top.itemIds[j]!)));
    scores.push(top.scores[j]!);
  }
  return { items, scores };
}

beforeAll(async () => {
  await tf.setBackend("cpu");
  tmp = mkdtempSync(join(tmpdir(), "recblocks-side-features-"));
  writeFileSync(join(tmp, "tiny.yaml"), RECIPE);
  run = await trainRecipe(join(tmp, "tiny.yaml"), { out: join(tmp, "run"), stream: null, backend: "cpu" });
  rec = NextItemRecommender.open(run.modelDir);
  c = rec.contents;
  // the training sessions exactly as train saw them (same config, same split)
  const { recipe, featureSchema } = loadRecipe(join(tmp, "tiny.yaml"));
  train = (await loadRecipeData(recipe.data as unknown as DataConfig, featureSchema.toJSON() as never, { baseDir: tmp })).train;
  session = Array.from(train[0]!.items.subarray(0, 5), (id) => String(rec.vocab.raw(id)));
}, 120_000);
afterAll(() => {
  rec?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe("the item-feature table", () => {
  it("is saved for the model's per-step side features, with the most frequent category and the mean price of each item", () => {
    expect(existsSync(join(run.modelDir, ITEM_FEATURES_FILE))).toBe(true);
    expect(rec.sideFeatures.map((f) => [f.name, f.kind])).toEqual([["category", "categorical"], ["price", "continuous"]]);
    const t = c.itemFeatures!;
    expect(t.numItems).toBe(c.model.numItems);
    expect(Object.keys(t.features).sort()).toEqual(["category", "price"]);
    // by hand over the training sessions
    const N = c.model.numItems;
    const counts = Array.from({ length: N }, () => new Map<number, number>());
    const sum = new Float64Array(N);
    const n = new Float64Array(N);
    for (const s of train) {
      s.items.forEach((id, t) => {
        const cat = s.categorical.category![t]!;
        counts[id]!.set(cat, (counts[id]!.get(cat) ?? 0) + 1);
        sum[id] += s.continuous.price![t]!;
        n[id]++;
      });
    }
    const catVocab = c.vocabularies.category!;
    let seen = 0;
    for (let id = 0; id < N; id++) {
      if (!n[id]) {
        expect(t.features.category!.values[id]).toBe(catVocab.oovId); // never in train (0, OOV): the OOV id
        expect(t.features.price!.values[id]).toBe(0);
        continue;
      }
      seen++;
      const [best] = [...counts[id]!.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]!;
      expect(t.features.category!.values[id]).toBe(best);
      expect(t.features.price!.values[id]).toBeCloseTo(sum[id]! / n[id]!, 4);
    }
    expect(seen).toBeGreaterThan(10);
  });

  it("builds modes (ties to the smaller id) and means from hand-made sessions, and round-trips through JSON", () => {
    const s = (items: number[], cat: number[], price: number[]): Session => ({ id: "s", items: Int32Array.from(items), categorical: { category: Int32Array.from(cat) }, continuous: { price: Float32Array.from(price) }, context: {} });
    const sessions = [s([2, 3, 2], [5, 4, 6], [1, 10, 3]), s([2, 3], [6, 7], [NaN, 20]), s([2], [5], [2])];
    const t = buildItemFeatureTable(sessions, [{ name: "category", kind: "categorical", multiHot: false }, { name: "price", kind: "continuous", multiHot: false }], { itemColumn: "item_id", numItems: 5 });
    // item 2: category 5 twice, 6 twice -> 5; price mean of 1, 3, 2 (NaN skipped); item 3: 4 and 7 once each -> 4
    expect(Array.from(t.features.category!.values)).toEqual([0, 0, 5, 4, 0]);
    expect(Array.from(t.features.price!.values)).toEqual([0, 0, 2, 15, 0]);
    const back = itemFeatureTableFromJSON(JSON.parse(JSON.stringify(itemFeatureTableToJSON(t))), "x.json", 5);
    expect(back).toEqual(t);
    const bad = thrown(() => itemFeatureTableFromJSON(JSON.parse(JSON.stringify(itemFeatureTableToJSON(t))), "x.json", 6));
    expect(bad.issues[0]!.code).toBe("invalid_model_dir");
  });
});

describe("NextItemRecommender with side features", () => {
  it("recommends from raw item ids: the scores of Model.topK on a batch filled by hand from the table", () => {
    const t = c.itemFeatures!.features;
    const ids = session.map((r) => rec.lookup(r)!);
    const want = handTopK(batchOf(ids, ids.map((id) => t.category!.values[id]!), ids.map((id) => t.price!.values[id]!)), 10);
    const got = rec.recommend({ items: session, k: 10 });
    expect(got.items).toEqual(want.items);
    expect(got.scores).toEqual(want.scores);
    expect(got.unknownItems).toEqual([]);
    // unknown items are skipped, their feature values with them
    const withUnknown = rec.recommend({ items: [session[0]!, "no-such-item", ...session.slice(1)], k: 10 });
    expect(withUnknown.items).toEqual(want.items);
    expect(withUnknown.unknownItems).toEqual(["no-such-item"]);
  });

  it("takes explicit per-step features over the table (null keeps the table's value; unknown categories are OOV)", () => {
    const t = c.itemFeatures!.features;
    const ids = session.map((r) => rec.lookup(r)!);
    const catVocab = c.vocabularies.category!;
    // every step in the category of the first item, and a high price on the last step
    const rawCat = catVocab.raw(t.category!.values[ids[0]!]!)!;
    const features = { category: session.map(() => rawCat), price: session.map((_, j) => (j === session.length - 1 ? 999 : null)) };
    const prices = ids.map((id, j) => (j === ids.length - 1 ? 999 : t.price!.values[id]!));
    const want = handTopK(batchOf(ids, ids.map(() => catVocab.lookup(rawCat)), prices), 10);
    const got = rec.recommend({ items: session, k: 10, features });
    expect(got.items).toEqual(want.items);
    expect(got.scores).toEqual(want.scores);
    expect(got.scores).not.toEqual(rec.recommend({ items: session, k: 10 }).scores);
    const oov = rec.recommend({ items: session, k: 10, features: { category: session.map(() => "no-such-category") } });
    const wantOov = handTopK(batchOf(ids, ids.map(() => catVocab.oovId), ids.map((id) => t.price!.values[id]!)), 10);
    expect(oov.scores).toEqual(wantOov.scores);
    // a batch of sessions with and without features gives each its own answer
    const [a, b] = rec.recommendBatch([session, { items: session, features }], { k: 10 });
    expect(a!.scores).toEqual(rec.recommend({ items: session, k: 10 }).scores);
    expect(b!.scores).toEqual(got.scores);
  });

  it("recblocks recommend --feature name=v,... gives the library's answer for the same explicit features (empty = the table's)", () => {
    const t = c.itemFeatures!.features;
    const ids = session.map((r) => rec.lookup(r)!);
    const rawCat = String(c.vocabularies.category!.raw(t.category!.values[ids[0]!]!));
    const features = { category: session.map(() => rawCat), price: session.map((_, j) => (j === session.length - 1 ? 999 : null)) };
    const want = rec.recommend({ items: session, k: 10, features });
    const cli = (extra: string[]) =>
      spawnSync(process.execPath, [join(packageRoot(), "bin", "recblocks.js"), "recommend", run.modelDir, "--items", session.join(","), "-k", "10", "--json", ...extra], { encoding: "utf8", timeout: 60_000 });
    const r = cli(["--feature", `category=${features.category.join(",")}`, "--feature", `price=${features.price.map((v) => (v === null ? "" : String(v))).join(",")}`]);
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim().split("\n").pop()!) as { items: string[]; scores: number[] };
    expect(got.items).toEqual(want.items);
    got.scores.forEach((v, j) => expect(Math.abs(v - want.scores[j]!)).toBeLessThan(1e-4)); // the CLI runs on native TensorFlow, this test on cpu
    // a malformed flag and a wrong length are located errors, not stack traces
    const bad = cli(["--feature", "category"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("name=v1,v2");
    const short = cli(["--feature", "category=1", "--json"]);
    expect(short.status).toBe(1);
    expect(short.stdout + short.stderr).toContain("/features/category");
    expect(short.stdout + short.stderr).not.toMatch(/\n\s+at /);
  }, 180_000);

  it("refuses explicit features the model does not use, of the wrong length or type, with located issues", () => {
    const e = thrown(() => rec.recommend({ items: session, features: { colour: session.map(() => "red"), category: ["1"], price: session.map(() => "cheap") } as never }));
    expect(e.issues.map((i) => [i.code, i.path])).toEqual([
      ["unknown_feature", "/features/colour"],
      ["invalid_length", "/features/category"],
      ...session.map((_, j) => ["wrong_type", `/features/price/${j}`]),
    ]);
    expect(e.issues[0]!.expected).toEqual(["category", "price"]);
  });

  it("an old model directory without item-features.json fails with a clear located issue (and works with every feature given)", () => {
    const old = join(tmp, "old-model");
    cpSync(run.modelDir, old, { recursive: true });
    rmSync(join(old, ITEM_FEATURES_FILE));
    const o = NextItemRecommender.open(old);
    try {
      expect(o.contents.itemFeatures).toBeUndefined();
      const e = thrown(() => o.recommend({ items: session, k: 5 }));
      expect(e.kind).toBe("RecommendError");
      expect(e.issues.map((i) => [i.code, i.path])).toEqual([["missing_item_features", "/features/category"], ["missing_item_features", "/features/price"]]);
      expect(e.issues[0]!.source?.file).toBe(join(old, ITEM_FEATURES_FILE));
      expect(e.issues[0]!.message).toContain("no item-feature table");
      expect(e.issues[0]!.hint).toContain("recblocks train");
      // given for every step, the table is not needed: the same answer as the new directory with the same values
      const t = c.itemFeatures!.features;
      const ids = session.map((r) => rec.lookup(r)!);
      const features = { category: ids.map((id) => c.vocabularies.category!.raw(t.category!.values[id]!)!), price: ids.map((id) => t.price!.values[id]!) };
      expect(o.recommend({ items: session, k: 5, features }).scores).toEqual(rec.recommend({ items: session, k: 5 }).scores);
      // a session of unknown items needs no side features: no answer, as for item-only models
      expect(o.recommend({ items: ["no-such-item"], k: 5 })).toEqual({ items: [], scores: [], unknownItems: ["no-such-item"] });
    } finally {
      o.dispose();
    }
  });

  it("an item-only model has no side features and needs no table", () => {
    const cfg = JSON.parse(readFileSync(join(run.modelDir, "model.json"), "utf8")).modelTopology.config;
    expect(cfg.inputs.excludeFeatures).toEqual(["user_id", "timestamp"]);
    expect(sideFeaturesOf({ inputs: { features: [{ name: "item_id", kind: "categorical", sequential: true }], itemIdColumn: "item_id" } })).toEqual([]);
    expect(sideFeaturesOf({ inputs: { features: [{ name: "user", kind: "categorical", sequential: false }, { name: "price", kind: "continuous", sequential: true }], itemIdColumn: "item_id" } })).toEqual([{ name: "price", kind: "continuous", multiHot: false }]);
  });
});

describe("serving and the browser loader", () => {
  it("POST /recommend fills the side features from the table, takes explicit ones, and answers 400 with issues for bad ones", async () => {
    const server = await createServer({ modelDir: run.modelDir, backend: "cpu", quiet: true, log: () => {} });
    const post = async (body: unknown) => {
      const res = await server.app.inject({ method: "POST", url: "/recommend", headers: { "content-type": "application/json" }, payload: JSON.stringify(body) });
      return { status: res.statusCode, body: res.json() as Record<string, unknown> };
    };
    try {
      const plain = await post({ items: session, k: 10 });
      expect(plain.status).toBe(200);
      const want = rec.recommend({ items: session, k: 10 });
      expect(plain.body.items).toEqual(want.items);
      expect((plain.body.scores as number[]).map((s) => Math.fround(s))).toEqual(want.scores);
      const features = { category: session.map(() => "3"), price: session.map(() => 5.5) };
      const explicit = await post({ items: session, k: 10, features });
      expect(explicit.status).toBe(200);
      expect(explicit.body.items).toEqual(rec.recommend({ items: session, k: 10, features }).items);
      // micro-batched requests with different features each get their own answer
      const both = await Promise.all([post({ items: session, k: 10 }), post({ items: session, k: 10, features })]);
      expect(both.map((r) => r.body.items)).toEqual([plain.body.items, explicit.body.items]);
      const bad = await post({ items: session, features: { colour: ["x"], price: [1] } });
      expect(bad.status).toBe(400);
      expect((bad.body.issues as { code: string; path: string }[]).map((i) => [i.code, i.path])).toEqual([["unknown_feature", "/features/colour"], ["invalid_length", "/features/price"]]);
      const batch = await server.app.inject({ method: "POST", url: "/recommend/batch", headers: { "content-type": "application/json" }, payload: JSON.stringify({ requests: [{ items: session, k: 10 }, { items: session, k: 10, features }] }) });
      expect(batch.statusCode).toBe(200);
      expect((batch.json() as { results: { items: string[] }[] }).results.map((r) => r.items)).toEqual([plain.body.items, explicit.body.items]);
    } finally {
      await server.close();
    }
    // the schema: values are strings, numbers or null
    expect(validateRequest("recommend-request", { items: ["1"], features: { category: ["3", 4, null] } })).toEqual([]);
    expect(validateRequest("recommend-request", { items: ["1"], features: { category: [true] } }).map((i) => i.path)).toEqual(["/features/category/0"]);
  });

  it("a server on an old directory answers 400 missing_item_features, not 500", async () => {
    const old = join(tmp, "old-served");
    cpSync(run.modelDir, old, { recursive: true });
    rmSync(join(old, ITEM_FEATURES_FILE));
    const server = await createServer({ modelDir: old, backend: "cpu", quiet: true, log: () => {} });
    try {
      const res = await server.app.inject({ method: "POST", url: "/recommend", headers: { "content-type": "application/json" }, payload: JSON.stringify({ items: session }) });
      expect(res.statusCode).toBe(400);
      expect((res.json() as { issues: { code: string; path: string; source?: unknown }[] }).issues.map((i) => [i.code, i.path, i.source])).toEqual([["missing_item_features", "/features/category", undefined], ["missing_item_features", "/features/price", undefined]]);
    } finally {
      await server.close();
    }
  });

  it("the browser loader fetches item-features.json and the category vocabulary: the same answers as Node", async () => {
    const fetched: string[] = [];
    const fakeFetch = (async (url: string) => {
      const rel = decodeURIComponent(new URL(url).pathname.slice(new URL("file:///m/").pathname.length));
      fetched.push(rel);
      const p = join(run.modelDir, rel);
      return existsSync(p) ? new Response(readFileSync(p)) : new Response("not found", { status: 404 });
    }) as unknown as typeof fetch;
    const contents = await fetchModelDir("file:///m/", { fetch: fakeFetch });
    expect(fetched).toContain(ITEM_FEATURES_FILE);
    expect(fetched).toContain("vocabularies/category.json");
    const b = NextItemRecommender.fromContents("file:///m/", contents);
    try {
      expect(b.recommend({ items: session, k: 10 })).toEqual(rec.recommend({ items: session, k: 10 }));
      const features = { category: session.map(() => "3") };
      expect(b.recommend({ items: session, k: 10, features })).toEqual(rec.recommend({ items: session, k: 10, features }));
    } finally {
      b.dispose();
    }
    // loadModelDir and the browser loader read the same table
    const d = loadModelDir(run.modelDir);
    try {
      expect(d.itemFeatures).toEqual(c.itemFeatures);
    } finally {
      d.model.dispose();
    }
  });
});
