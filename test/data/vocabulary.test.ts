/**
 * Vocabularies: 0 is padding, 1 is OOV (when reserved), real values from 2 (or 1) in frequency order with
 * ties by first appearance, or in first-seen order; minCount; numeric raw ids; a round trip through a file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { codeToIds, Interner, Vocabulary } from "../../src/data/index.js";
import { tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

// b a c a b a d: counts a 3, b 2, c 1, d 1; first appearance b, a, c, d
const VALUES = ["b", "a", "c", "a", "b", "a", "d"];

describe("Vocabulary", () => {
  it("frequency order with OOV: padding 0, OOV 1, then a b c d (c before d: seen first)", () => {
    const v = Vocabulary.fromValues(VALUES, { name: "item_id" });
    expect(v.withOov).toBe(true);
    expect(v.oovId).toBe(1);
    expect(v.firstId).toBe(2);
    expect(v.numValues).toBe(4);
    expect(v.size).toBe(6); // 4 values + padding + OOV
    expect(["a", "b", "c", "d"].map((x) => v.lookup(x))).toEqual([2, 3, 4, 5]);
    expect(v.lookup("zzz")).toBe(1);
    expect(v.has("zzz")).toBe(false);
    expect(Array.from(v.lookupMany(["d", "a", "nope"]))).toEqual([5, 2, 1]);
    expect([0, 1, 2, 3, 4, 5, 6].map((id) => v.raw(id))).toEqual([undefined, undefined, "a", "b", "c", "d", undefined]);
    expect([0, 1, 2, 3, 4, 5].map((id) => v.count(id))).toEqual([0, 0, 3, 2, 1, 1]);
    expect(Array.from(v.frequencies())).toEqual([0, 0, 3, 2, 1, 1]);
    expect(Array.from(v.idsByFrequency())).toEqual([2, 3, 4, 5]);
  });

  it("without OOV: values from 1, unknown values give -1", () => {
    const v = Vocabulary.fromValues(VALUES, { withOov: false });
    expect(v.oovId).toBe(-1);
    expect(v.size).toBe(5);
    expect(["a", "b", "c", "d"].map((x) => v.lookup(x))).toEqual([1, 2, 3, 4]);
    expect(v.lookup("zzz")).toBe(-1);
    expect(v.raw(0)).toBeUndefined();
    expect(v.raw(1)).toBe("a");
  });

  it("first-seen order", () => {
    const v = Vocabulary.fromValues(VALUES, { order: "first-seen" });
    expect(["b", "a", "c", "d"].map((x) => v.lookup(x))).toEqual([2, 3, 4, 5]);
    expect([2, 3, 4, 5].map((id) => v.count(id))).toEqual([2, 3, 1, 1]);
    // idsByFrequency still sorts by count: a (id 3, 3) b (id 2, 2) c (4) d (5)
    expect(Array.from(v.idsByFrequency())).toEqual([3, 2, 4, 5]);
  });

  it("minCount leaves rare values out (they map to OOV)", () => {
    const v = Vocabulary.fromValues(VALUES, { minCount: 2 });
    expect(v.numValues).toBe(2);
    expect(["a", "b", "c", "d"].map((x) => v.lookup(x))).toEqual([2, 3, 1, 1]);
    const { codeToId } = Vocabulary.fromCounts(["b", "a", "c", "d"], [2, 3, 1, 1], false, { minCount: 2 });
    // code order b a c d -> ids 3 2 OOV OOV
    expect(Array.from(codeToId)).toEqual([3, 2, 1, 1]);
  });

  it("numeric raw ids: numbers and canonical strings are the same id, raw() gives numbers", () => {
    // 20 x2, 10 x1, 30 x1 -> 20 = 2, 10 = 3, 30 = 4
    const v = Vocabulary.fromValues([10, 20, "20", "30"]);
    expect(v.numeric).toBe(true);
    expect(v.lookup(20)).toBe(2);
    expect(v.lookup("20")).toBe(2);
    expect(v.lookup(20n)).toBe(2);
    expect(v.lookup(10)).toBe(3);
    expect(v.lookup("030")).toBe(1); // not the same raw id as 30
    expect(v.raw(4)).toBe(30);
    expect(v.raw(2)).toBe(20);
  });

  it("maps interner codes to ids (codeToIds)", () => {
    const it = new Interner();
    for (const x of ["c", "zz", "a"]) it.intern(x);
    const v = Vocabulary.fromValues(VALUES);
    // c -> 4, zz -> OOV 1, a -> 2
    expect(Array.from(codeToIds(v, it))).toEqual([4, 1, 2]);
  });

  it("round-trips through a file on disk", () => {
    const v = Vocabulary.fromValues(VALUES, { name: "item_id" });
    const file = join(tmp.dir, "vocab", "item_id.json");
    v.save(file);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    expect(doc).toEqual({ format: "recblocks-vocabulary", version: 1, name: "item_id", withOov: true, numeric: false, tokens: ["a", "b", "c", "d"], counts: [3, 2, 1, 1] });
    const w = Vocabulary.load(file);
    expect(w.name).toBe("item_id");
    expect(w.size).toBe(6);
    expect(["a", "b", "c", "d", "zzz"].map((x) => w.lookup(x))).toEqual([2, 3, 4, 5, 1]);
    expect(Array.from(w.frequencies())).toEqual([0, 0, 3, 2, 1, 1]);
    expect(w.toJSON()).toEqual(v.toJSON());
  });

  it("round-trips a numeric vocabulary without OOV", () => {
    const v = Vocabulary.fromValues([7, 7, 3], { withOov: false });
    const file = join(tmp.dir, "num.json");
    v.save(file);
    const w = Vocabulary.load(file);
    expect(w.withOov).toBe(false);
    expect(w.numeric).toBe(true);
    expect([w.lookup(7), w.lookup(3), w.lookup(5)]).toEqual([1, 2, -1]);
    expect(w.raw(1)).toBe(7);
  });

  it("rejects a file that is not a vocabulary", () => {
    const file = join(tmp.dir, "bad.json");
    writeFileSync(file, JSON.stringify({ format: "recblocks-vocabulary", version: 1, withOov: true, tokens: ["a", "a"], counts: [1, 1] }));
    try {
      Vocabulary.load(file);
      expect.unreachable();
    } catch (err) {
      expect((err as RecblocksError).issues[0]!.code).toBe("vocab_file_invalid");
      expect((err as RecblocksError).issues[0]!.message).toContain("duplicates");
    }
  });
});
