/**
 * Examples (prefix augmentation, full sequences, last item) and padded batches: right/left padding,
 * truncation to the most recent items, seeded shuffling, the last partial batch kept or dropped, and side
 * features (categorical, continuous) and context features carried into batches, also end to end from a CSV
 * through loadRecipeData. Expected arrays are written out by hand.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import {
  batches,
  countPrefixExamples,
  fullSequenceExamples,
  lastItemExamples,
  loadRecipeData,
  makeBatch,
  numBatches,
  prefixExamples,
  type BatchOptions,
  type FeatureSchemaDocLike,
  type SequenceBatch,
} from "../../src/data/index.js";
import { FIX, session } from "./helpers.js";

// A: items 2 3 4 5, cat 7 7 8 8, price 1.5 2.5 3.5 4.5, context user 9, age 0.25
// B: items 6 7,     cat 9 10,    price 10 20,            context user 11, age 0.5
// C: items 8 (one item: no prefix example)
const sessions = () => [
  session("A", [2, 3, 4, 5], { categorical: { cat: Int32Array.of(7, 7, 8, 8) }, continuous: { price: Float32Array.of(1.5, 2.5, 3.5, 4.5) }, context: { user: 9, age: 0.25 } }),
  session("B", [6, 7], { categorical: { cat: Int32Array.of(9, 10) }, continuous: { price: Float32Array.of(10, 20) }, context: { user: 11, age: 0.5 } }),
  session("C", [8], { categorical: { cat: Int32Array.of(12) }, continuous: { price: Float32Array.of(30) }, context: { user: 13, age: 0.75 } }),
];
const CONTEXT = { user: "categorical", age: "continuous" } as const;
const arr = (a: ArrayLike<number> | undefined) => (a ? Array.from(a) : a);

describe("examples", () => {
  it("prefix augmentation: [i1]->i2 ... [i1..i(L-1)]->iL per session, in session order", () => {
    const ex = prefixExamples(sessions());
    // A gives ends 1, 2, 3; B gives end 1; C none
    expect(arr(ex.session)).toEqual([0, 0, 0, 1]);
    expect(arr(ex.end)).toEqual([1, 2, 3, 1]);
    expect(ex.withTargets).toBe(true);
    expect(countPrefixExamples(sessions())).toBe(4); // (4-1) + (2-1) + (1-1)
  });

  it("full sequences (with a minimum length) and last-item examples", () => {
    const full = fullSequenceExamples(sessions());
    expect(arr(full.session)).toEqual([0, 1, 2]);
    expect(arr(full.end)).toEqual([4, 2, 1]);
    expect(full.withTargets).toBe(false);
    expect(arr(fullSequenceExamples(sessions(), 2).session)).toEqual([0, 1]);
    const last = lastItemExamples(sessions());
    expect(arr(last.session)).toEqual([0, 1]);
    expect(arr(last.end)).toEqual([3, 1]);
    expect(last.withTargets).toBe(true);
  });
});

describe("batches", () => {
  const base: BatchOptions = { batchSize: 3, maxSequenceLength: 2, context: { ...CONTEXT } };

  it("right padding, truncation to the most recent items, features and context carried", () => {
    const bs = [...batches(prefixExamples(sessions()), base)];
    expect(bs.length).toBe(2);
    const [b1, b2] = bs as [SequenceBatch, SequenceBatch];
    // ex0 A[0,1) = 2 -> 3; ex1 A[0,2) = 2 3 -> 4; ex2 A[0,3) = 2 3 4, cut to the last 2: 3 4 -> 5
    expect(b1.batchSize).toBe(3);
    expect(b1.seqLen).toBe(2);
    expect(arr(b1.itemIds)).toEqual([2, 0, 2, 3, 3, 4]);
    expect(arr(b1.targets)).toEqual([3, 4, 5]);
    expect(arr(b1.lengths)).toEqual([1, 2, 2]);
    expect(arr(b1.categorical.cat)).toEqual([7, 0, 7, 7, 7, 8]);
    expect(arr(b1.continuous.price)).toEqual([1.5, 0, 1.5, 2.5, 2.5, 3.5]);
    expect(b1.context.user).toBeInstanceOf(Int32Array);
    expect(b1.context.age).toBeInstanceOf(Float32Array);
    expect(arr(b1.context.user)).toEqual([9, 9, 9]);
    expect(arr(b1.context.age)).toEqual([0.25, 0.25, 0.25]);
    // the last, partial batch: ex3 B[0,1) = 6 -> 7
    expect(b2.batchSize).toBe(1);
    expect(arr(b2.itemIds)).toEqual([6, 0]);
    expect(arr(b2.targets)).toEqual([7]);
    expect(arr(b2.lengths)).toEqual([1]);
    expect(arr(b2.categorical.cat)).toEqual([9, 0]);
    expect(arr(b2.continuous.price)).toEqual([10, 0]);
    expect(arr(b2.context.user)).toEqual([11]);
    expect(arr(b2.context.age)).toEqual([0.5]);
  });

  it("left padding puts the padding first", () => {
    const [b1, b2] = [...batches(prefixExamples(sessions()), { ...base, padding: "left" })] as [SequenceBatch, SequenceBatch];
    expect(arr(b1.itemIds)).toEqual([0, 2, 2, 3, 3, 4]);
    expect(arr(b1.categorical.cat)).toEqual([0, 7, 7, 7, 7, 8]);
    expect(arr(b1.continuous.price)).toEqual([0, 1.5, 1.5, 2.5, 2.5, 3.5]);
    expect(arr(b1.targets)).toEqual([3, 4, 5]);
    expect(arr(b2.itemIds)).toEqual([0, 6]);
  });

  it("keeps the last partial batch by default, drops it with dropLast", () => {
    const ex = prefixExamples(sessions());
    expect(numBatches(ex, { batchSize: 3 })).toBe(2); // ceil(4 / 3)
    expect(numBatches(ex, { batchSize: 3, dropLast: true })).toBe(1); // floor(4 / 3)
    const dropped = [...batches(ex, { ...base, dropLast: true })];
    expect(dropped.length).toBe(1);
    expect(arr(dropped[0]!.targets)).toEqual([3, 4, 5]);
    // an exact multiple has no partial batch to drop: 4 examples in batches of 2
    expect([...batches(ex, { ...base, batchSize: 2, dropLast: true })].length).toBe(2);
    expect([...batches(ex, { ...base, batchSize: 2 })].length).toBe(2);
  });

  it("full sequences: no targets, the most recent maxSequenceLength items", () => {
    const [b] = [...batches(fullSequenceExamples(sessions()), { batchSize: 8, maxSequenceLength: 3 })] as [SequenceBatch];
    // A 2 3 4 5 -> 3 4 5; B 6 7 -> 6 7 0; C 8 -> 8 0 0
    expect(arr(b.itemIds)).toEqual([3, 4, 5, 6, 7, 0, 8, 0, 0]);
    expect(arr(b.lengths)).toEqual([3, 2, 1]);
    expect(b.targets).toBeUndefined();
    // every per-step feature by default; context only when asked for
    expect(Object.keys(b.categorical)).toEqual(["cat"]);
    expect(arr(b.continuous.price)).toEqual([2.5, 3.5, 4.5, 10, 20, 0, 30, 0, 0]);
    expect(b.context).toEqual({});
  });

  it("last-item examples: everything but the last item -> the last item", () => {
    const b = makeBatch(lastItemExamples(sessions()), [0, 1], { batchSize: 2, maxSequenceLength: 4, categorical: [], continuous: [] });
    // A 2 3 4 -> 5; B 6 -> 7
    expect(arr(b.itemIds)).toEqual([2, 3, 4, 0, 6, 0, 0, 0]);
    expect(arr(b.targets)).toEqual([5, 7]);
    expect(b.categorical).toEqual({});
    expect(b.continuous).toEqual({});
  });

  it("shuffles with a seed: same seed same order, every example exactly once", () => {
    // one session 1..51: 50 examples, example k has target k + 2
    const long = [session("L", Array.from({ length: 51 }, (_, i) => i + 1))];
    const ex = prefixExamples(long);
    const targetsOf = (o: Partial<BatchOptions>) => [...batches(ex, { batchSize: 16, maxSequenceLength: 5, ...o })].flatMap((b) => arr(b.targets)!);
    const plain = targetsOf({});
    expect(plain).toEqual(Array.from({ length: 50 }, (_, k) => k + 2));
    const s1 = targetsOf({ shuffle: true, seed: 1 });
    expect(targetsOf({ shuffle: true, seed: 1 })).toEqual(s1);
    expect(s1).not.toEqual(plain);
    expect([...s1].sort((a, b) => a - b)).toEqual(plain);
    expect(targetsOf({ shuffle: true, seed: 2 })).not.toEqual(s1);
    // rows still hold their own prefix: the row with target t ends with t-1 (right padding, length min(t-1, 5))
    for (const b of batches(ex, { batchSize: 16, maxSequenceLength: 5, shuffle: true, seed: 1 })) {
      for (let r = 0; r < b.batchSize; r++) {
        const t = b.targets![r]!;
        const len = Math.min(t - 1, 5);
        expect(b.lengths[r]).toBe(len);
        expect(b.itemIds[r * 5 + len - 1]).toBe(t - 1);
        expect(b.itemIds[r * 5]).toBe(t - len);
      }
    }
    // sizes 16 16 16 2
    expect([...batches(ex, { batchSize: 16, maxSequenceLength: 5, shuffle: true, seed: 1 })].map((b) => b.batchSize)).toEqual([16, 16, 16, 2]);
  });

  it("checks batchSize and maxSequenceLength", () => {
    const ex = prefixExamples(sessions());
    for (const o of [{ batchSize: 0, maxSequenceLength: 2 }, { batchSize: 2, maxSequenceLength: 0 }, { batchSize: 1.5, maxSequenceLength: 2 }]) {
      try {
        [...batches(ex, o)];
        expect.unreachable();
      } catch (err) {
        expect((err as RecblocksError).issues[0]!.code).toBe("data_bad_config");
      }
    }
  });
});

describe("side features end to end (CSV -> loadRecipeData -> batches)", () => {
  // side-features.csv (ordered by timestamp already):
  //   s1: i1 c1 1.5 | i2 c2 2.5 | i3 c1 3.5   device mobile, age 30
  //   s2: i2 c2 2.5 | i4 c3 4.0               device desktop, age 40
  //   s3: i5 c3 1.0                           device desktop, age 50  (length 1: dropped, minSessionLength 2)
  const schema: FeatureSchemaDocLike = {
    version: 1,
    columns: [
      { name: "session_id", dtype: "string", tags: ["session-id"] },
      { name: "item_id", dtype: "string", tags: ["item-id", "categorical", "list"] },
      { name: "timestamp", dtype: "int64", tags: ["timestamp"] },
      { name: "category", dtype: "string", tags: ["categorical", "list"] },
      { name: "price", dtype: "float64", tags: ["continuous", "list"] },
      { name: "device", dtype: "string", tags: ["categorical", "context"] },
      { name: "age", dtype: "float64", tags: ["continuous", "context"] },
    ],
  };

  it("builds vocabularies from train and carries every feature into the batches", async () => {
    const d = await loadRecipeData({ train: join(FIX, "side-features.csv") }, schema);
    expect(d.train.map((s) => s.id)).toEqual(["s1", "s2"]);
    expect(d.features).toEqual({ categorical: ["category"], continuous: ["price"], context: { device: "categorical", age: "continuous" } });
    // item counts over s1, s2: i2 x2, i1 i3 i4 x1 -> i2 2, then first seen: i1 3, i3 4, i4 5 (i5 only in s3: not in)
    const iv = d.vocabularies.item_id!;
    expect(["i2", "i1", "i3", "i4", "i5"].map((x) => iv.lookup(x))).toEqual([2, 3, 4, 5, 1]);
    // categories: c1 x2, c2 x2, c3 x1 -> c1 2, c2 3 (tie: c1 seen first), c3 4
    const cv = d.vocabularies.category!;
    expect(["c1", "c2", "c3"].map((x) => cv.lookup(x))).toEqual([2, 3, 4]);
    // device, one count per session: mobile 1, desktop 1 -> mobile 2, desktop 3
    expect(["mobile", "desktop"].map((x) => d.vocabularies.device!.lookup(x))).toEqual([2, 3]);
    expect(d.stats).toMatchObject({ rows: 6, train: 2, items: 4 });
    expect(d.featureSchema.columns.find((c) => c.name === "item_id")!.cardinality).toBe(6); // 4 + padding + OOV

    const s1 = d.train[0]!;
    expect(arr(s1.items)).toEqual([3, 2, 4]);
    expect(arr(s1.categorical.category)).toEqual([2, 3, 2]);
    expect(arr(s1.continuous.price)).toEqual([1.5, 2.5, 3.5]);
    expect(s1.context).toEqual({ device: 2, age: 30 });
    expect(arr(s1.timestamps)).toEqual([1, 2, 3]);

    const [b] = [...batches(prefixExamples(d.train), { batchSize: 4, maxSequenceLength: 3, context: d.features.context })] as [SequenceBatch];
    // examples: s1 [i1] -> i2, s1 [i1 i2] -> i3, s2 [i2] -> i4
    expect(b.batchSize).toBe(3);
    expect(arr(b.itemIds)).toEqual([3, 0, 0, 3, 2, 0, 2, 0, 0]);
    expect(arr(b.targets)).toEqual([2, 4, 5]);
    expect(arr(b.lengths)).toEqual([1, 2, 1]);
    expect(arr(b.categorical.category)).toEqual([2, 0, 0, 2, 3, 0, 3, 0, 0]);
    expect(arr(b.continuous.price)).toEqual([1.5, 0, 0, 1.5, 2.5, 0, 2.5, 0, 0]);
    expect(arr(b.context.device)).toEqual([2, 2, 3]);
    expect(arr(b.context.age)).toEqual([30, 30, 40]);
  });
});
