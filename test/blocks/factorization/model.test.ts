import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { RecblocksError } from "../../../src/errors/issue.js";
import { AlsModel } from "../../../blocks/factorization/als-model.js";
import { fitAls } from "../../../blocks/factorization/als-trainer.js";
import { alsDefaults, type AlsConfig } from "../../../blocks/factorization/config.js";
import { syntheticInteractions, toCsr } from "../../../blocks/factorization/interactions.js";
import { loadAlsModel, saveAlsModel } from "../../../blocks/factorization/model-io.js";

const tmp = mkdtempSync(join(tmpdir(), "als-model-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function trained(over: Partial<AlsConfig> = {}): AlsModel {
  const d = syntheticInteractions({ users: 120, items: 60, seed: 5, perUser: 10 });
  const config = { ...alsDefaults(), factors: 8, iterations: 40, solver: "cholesky" as const, regularization: 0.1, ...over };
  const ui = toCsr(d);
  const fit = fitAls(ui, config);
  return new AlsModel({ config, users: d.users, items: d.items, userFactors: Float32Array.from(fit.userFactors),
    itemFactors: Float32Array.from(fit.itemFactors), userItems: ui });
}

function historyOf(m: AlsModel, u: number): { id: string; value: number }[] {
  const out: { id: string; value: number }[] = [];
  for (let k = m.userItems.indptr[u]!; k < m.userItems.indptr[u + 1]!; k++) {
    out.push({ id: m.items.ids[m.userItems.indices[k]!]!, value: m.userItems.values[k]! });
  }
  return out;
}

/** Brute force: every item's score, best first, ties by index. */
function bruteTop(m: AlsModel, user: string, k: number, ok: (i: number) => boolean): string[] {
  const f = m.factors;
  const u = m.userIndex(user);
  const s = m.items.ids.map((_, i) => {
    let d = 0;
    for (let a = 0; a < f; a++) d += m.userFactors[u * f + a]! * m.itemFactors[i * f + a]!;
    return { i, d: Math.fround(d) };
  });
  return s.filter((x) => ok(x.i)).sort((a, b) => b.d - a.d || a.i - b.i).slice(0, k).map((x) => m.items.ids[x.i]!);
}

describe("AlsModel", () => {
  const model = trained();

  it("recalculateUser for a training user reproduces the trained factors (exact solver)", () => {
    // users are solved before items in each sweep, so stored user factors match a fold-in against
    // the final item factors once training has converged
    const model = trained({ iterations: 300 });
    for (const u of [0, 17, 63, 119]) {
      const x = model.recalculateUser(historyOf(model, u));
      const stored = model.userFactors.subarray(u * 8, u * 8 + 8);
      const norm = Math.hypot(...stored);
      const diff = Math.hypot(...Array.from(x, (v, a) => v - stored[a]!));
      expect(diff / norm).toBeLessThan(1e-3);
    }
  });

  it("recommends the brute-force top-k, leaving out already-liked items", () => {
    const user = model.users.ids[3]!;
    const seen = new Set(historyOf(model, 3).map((h) => model.itemIndex(h.id)));
    const rec = model.recommend(user, { k: 10 });
    expect(rec.items).toEqual(bruteTop(model, user, 10, (i) => !seen.has(i)));
    expect(rec.scores.every((s, j) => j === 0 || s <= rec.scores[j - 1]!)).toBe(true);
    const all = model.recommend(user, { k: 10, filterAlreadyLiked: false });
    expect(all.items).toEqual(bruteTop(model, user, 10, () => true));
  });

  it("allow/deny masks are applied inside top-k: k results whenever k eligible items exist", () => {
    const user = model.users.ids[7]!;
    const seen = new Set(historyOf(model, 7).map((h) => h.id));
    const top = model.recommend(user, { k: 5 }).items;
    // deny the current top 5: the next 5 eligible come back, still 5
    const denied = model.recommend(user, { k: 5, filterItems: top });
    expect(denied.items).toHaveLength(5);
    expect(denied.items.some((i) => top.includes(i))).toBe(false);
    // allow-list of 12 unseen items and 3 seen ones: exactly the 12 unseen are eligible
    const unseen = model.items.ids.filter((i) => !seen.has(i));
    const allow = [...unseen.slice(0, 12), ...[...seen].slice(0, 3)];
    const a = model.recommend(user, { k: 12, items: allow });
    expect(a.items).toHaveLength(12);
    expect(new Set(a.items)).toEqual(new Set(unseen.slice(0, 12)));
    // fewer eligible than k: all of them, no padding
    expect(model.recommend(user, { k: 20, items: allow }).items).toHaveLength(12);
    // a dense mask combined with the deny list
    const mask = new Uint8Array(model.items.size);
    for (const id of unseen.slice(0, 6)) mask[model.itemIndex(id)] = 1;
    const mm = model.recommend(user, { k: 10, itemMask: mask, filterItems: [unseen[0]!] });
    expect(new Set(mm.items)).toEqual(new Set(unseen.slice(1, 6)));
  });

  it("typed-array and TF.js scoring agree", () => {
    const vec = model.userFactors.slice(0, 3 * 8);
    const a = model.scoreVectors(vec, 3, "typed");
    const b = model.scoreVectors(vec, 3, "tfjs");
    expect(a).toHaveLength(3 * 60);
    for (let j = 0; j < a.length; j++) expect(b[j]).toBeCloseTo(a[j]!, 5);
    let d = 0;
    for (let k = 0; k < 8; k++) d += model.userFactors[8 + k]! * model.itemFactors[5 * 8 + k]!;
    expect(a[60 + 5]).toBeCloseTo(d, 6);
    expect(tf.memory().numTensors).toBeGreaterThanOrEqual(1); // the cached item tensor only
    const before = tf.memory().numTensors;
    model.scoreVectors(vec, 3, "tfjs");
    expect(tf.memory().numTensors).toBe(before);
  });

  it("recommendBatch and recommendAll agree with one-user calls", () => {
    const ids = model.users.ids.slice(0, 5);
    const batch = model.recommendBatch(ids, { k: 4 });
    ids.forEach((id, b) => expect(batch[b]!.items).toEqual(model.recommend(id, { k: 4 }).items));
    const seenBatches: number[] = [];
    model.recommendAll({ k: 4, batchSize: 50 }, (recs, done) => seenBatches.push(recs.length, done));
    expect(seenBatches).toEqual([50, 50, 50, 100, 20, 120]);
    const all = model.recommendAll({ k: 4, batchSize: 32 });
    expect(all).toHaveLength(120);
    expect(all[2]!.items).toEqual(batch[2]!.items);
  });

  it("a new user is served from a history (recalculate) without retraining; unknown users are clear errors", () => {
    const h = historyOf(model, 9);
    const rec = model.recommend("nobody", { k: 5, history: h });
    expect(rec.items).toEqual(model.recommend(model.users.ids[9]!, { k: 5 }).items);
    expect(() => model.recommend("nobody")).toThrowError(RecblocksError);
    try {
      model.recommend("nobody");
    } catch (e) {
      expect((e as RecblocksError).issues[0]!.code).toBe("unknown_user");
    }
  });

  it("similarItems/similarUsers: cosine, the query first with similarity 1", () => {
    const it0 = model.items.ids[2]!;
    const s = model.similarItems(it0, { k: 5 });
    expect(s.ids[0]).toBe(it0);
    expect(s.scores[0]).toBeCloseTo(1, 5);
    const f = model.factors;
    const cos = (a: Float32Array, b: Float32Array) => {
      let d = 0, na = 0, nb = 0;
      for (let k = 0; k < f; k++) { d += a[k]! * b[k]!; na += a[k]! ** 2; nb += b[k]! ** 2; }
      return d / Math.sqrt(na * nb);
    };
    expect(s.scores[1]).toBeCloseTo(cos(model.itemVector(it0), model.itemVector(s.ids[1]!)), 5);
    expect(model.similarItems(it0, { k: 3, filterItems: [it0] }).ids).not.toContain(it0);
    const su = model.similarUsers(model.users.ids[4]!, { k: 3 });
    expect(su.ids[0]).toBe(model.users.ids[4]);
  });

  it("explain: the contributions of past items add up to the (recalculated) score", () => {
    const user = model.users.ids[11]!;
    const item = model.recommend(user, { k: 1 }).items[0]!;
    const ex = model.explain(user, item, { k: 1000 });
    const x = model.recalculateUser(historyOf(model, 11));
    const y = model.itemVector(item);
    const score = x.reduce((s, v, a) => s + v * y[a]!, 0);
    expect(ex.score).toBeCloseTo(score, 5);
    expect(ex.contributions.reduce((s, c) => s + c.contribution, 0)).toBeCloseTo(ex.score, 6);
    expect(ex.contributions).toHaveLength(historyOf(model, 11).length);
    expect(model.explain(user, item, { k: 2 }).contributions).toHaveLength(2);
  });

  it("partialFitUsers adds and updates users; partialFitItems adds an item", () => {
    const m = trained({ iterations: 10 });
    const h = historyOf(m, 0);
    const before = m.users.size;
    const r = m.partialFitUsers(["new-user", m.users.ids[1]!], [h, [...historyOf(m, 1), { id: "no-such-item" }]]);
    expect(r.added).toEqual(["new-user"]);
    expect(r.unknownItems).toEqual(["no-such-item"]);
    expect(m.users.size).toBe(before + 1);
    expect(Array.from(m.userVector("new-user"))).toEqual(Array.from(m.recalculateUser(h)));
    // its stored history is used for filtering
    const rec = m.recommend("new-user", { k: 5 });
    const hs = new Set(h.map((x) => x.id));
    expect(rec.items.some((i) => hs.has(i))).toBe(false);
    const ri = m.partialFitItems(["new-item"], [[m.users.ids[0]!, m.users.ids[5]!]]);
    expect(ri.added).toEqual(["new-item"]);
    expect(m.items.size).toBe(61);
    expect(m.itemVector("new-item")).toHaveLength(8);
    expect(m.userItems.cols).toBe(61);
    expect(historyOf(m, 5).map((x) => x.id)).toContain("new-item");
    expect(m.recommend(m.users.ids[2]!, { k: 61, filterAlreadyLiked: false }).items).toContain("new-item");
  });

  it("save/load round trip: identical factors, vocabularies and recommendations; written atomically", () => {
    const dir = join(tmp, "model");
    saveAlsModel(model, dir, { recipe: { name: "t" }, metrics: { "ndcg@10": 0.5 } });
    expect(readdirSync(tmp).filter((x) => x.includes(".tmp-"))).toEqual([]);
    const back = loadAlsModel(dir);
    expect(back.config).toEqual(model.config);
    expect(back.users.ids).toEqual(model.users.ids);
    expect(Buffer.from(back.userFactors.buffer, back.userFactors.byteOffset, back.userFactors.byteLength))
      .toEqual(Buffer.from(model.userFactors.buffer, model.userFactors.byteOffset, model.userFactors.byteLength));
    expect(Array.from(back.itemFactors)).toEqual(Array.from(model.itemFactors));
    expect(Array.from(back.userItems.indices)).toEqual(Array.from(model.userItems.indices));
    for (const u of model.users.ids.slice(0, 10)) expect(back.recommend(u, { k: 10 })).toEqual(model.recommend(u, { k: 10 }));
    expect(back.metrics).toEqual({ "ndcg@10": 0.5 });
    // the weights are readable by TF.js's own weight loader (browser format)
    const mj = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    const named = tf.io.decodeWeights(new Uint8Array(readFileSync(join(dir, "weights.bin"))).buffer, mj.weightsManifest[0].weights);
    expect(Array.from(named["als/item_factors"]!.dataSync())).toEqual(Array.from(model.itemFactors));
    Object.values(named).forEach((t) => t.dispose());
    // overwrite in place
    saveAlsModel(back, dir);
    expect(existsSync(join(dir, "recipe.json"))).toBe(false);
    expect(loadAlsModel(dir).items.ids).toEqual(model.items.ids);
  });

  it("a damaged model directory is a clear error", () => {
    const dir = join(tmp, "bad");
    saveAlsModel(model, dir);
    writeFileSync(join(dir, "weights.bin"), Buffer.alloc(10));
    expect(() => loadAlsModel(dir)).toThrowError(RecblocksError);
    try {
      loadAlsModel(dir);
    } catch (e) {
      expect((e as RecblocksError).issues[0]).toMatchObject({ code: "invalid_model_dir" });
      expect((e as RecblocksError).issues[0]!.message).toMatch(/weights.bin has 10 bytes/);
    }
    expect(() => loadAlsModel(join(tmp, "missing"))).toThrowError(RecblocksError);
  });
});
