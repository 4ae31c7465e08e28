/**
 * builtin:synthetic: the spec (defaults, errors), determinism (same seed, same data), raw item ids "1".."N",
 * and the shape of the log (sessions of 2..maxLength consecutive rows, time-ordered clicks, per-item category
 * and price, per-session user).
 */
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { dataStats, generateSynthetic, loadRecipeData, openDataSource, parseBuiltinSpec, syntheticSpec } from "../../src/data/index.js";

const SPEC = "builtin:synthetic?sessions=300&items=40&seed=3&maxLength=8";
const START = 1_704_067_200; // 2024-01-01T00:00:00Z: 19723 days since 1970 (54 * 365 + 13 leap days) * 86400

describe("builtin:synthetic", () => {
  it("parses the spec, with defaults", () => {
    // categories default round(items / 40) within [2, 50] -> 25; users round(sessions / 4) -> 1250
    expect(parseBuiltinSpec("builtin:synthetic")).toEqual({ sessions: 5000, items: 1000, seed: 7, categories: 25, users: 1250, days: 14, maxLength: 20, meanLength: 6, transition: 0.7 });
    // items 40 -> round(1) = 1 -> at least 2; users round(300 / 4) = 75
    expect(parseBuiltinSpec(SPEC)).toMatchObject({ sessions: 300, items: 40, seed: 3, maxLength: 8, categories: 2, users: 75 });
    const o = parseBuiltinSpec(SPEC);
    expect(parseBuiltinSpec(syntheticSpec(o))).toEqual(o);
  });

  it("rejects unknown data sets, unknown options and bad values", () => {
    const codeOf = (spec: string) => {
      try {
        parseBuiltinSpec(spec);
        return "none";
      } catch (err) {
        return `${(err as RecblocksError).issues[0]!.code}: ${(err as RecblocksError).issues[0]!.message}`;
      }
    };
    expect(codeOf("builtin:movies")).toMatch(/^data_bad_builtin: Unknown built-in data set "movies"/);
    expect(codeOf("builtin:synthetic?sesions=5")).toMatch(/^data_bad_builtin: Unknown option "sesions"/);
    expect(codeOf("builtin:synthetic?items=5")).toMatch(/^data_bad_builtin: builtin:synthetic needs items >= 10/);
    expect(codeOf("builtin:synthetic?sessions=x")).toMatch(/^data_bad_builtin: Option "sessions" of builtin:synthetic needs a number/);
    expect(codeOf("builtin:synthetic?maxLength=1")).toMatch(/^data_bad_builtin/);
  });

  it("is deterministic: same seed same data, another seed other data", () => {
    const a = generateSynthetic(parseBuiltinSpec(SPEC));
    const b = generateSynthetic(parseBuiltinSpec(SPEC));
    expect(b).toEqual(a);
    const c = generateSynthetic(parseBuiltinSpec(SPEC.replace("seed=3", "seed=4")));
    expect(c.data.item_id).not.toEqual(a.data.item_id);
  });

  it("has raw item ids '1'..'N' (strings), and sessions 1..S of 2..maxLength consecutive, time-ordered rows", () => {
    const o = parseBuiltinSpec(SPEC);
    const t = generateSynthetic(o);
    expect(t.columns).toEqual(["session_id", "user_id", "item_id", "category", "price", "timestamp"]);
    const item = t.data.item_id as unknown[];
    const sess = t.data.session_id as number[];
    const user = t.data.user_id as number[];
    const cat = t.data.category as number[];
    const price = t.data.price as number[];
    const ts = t.data.timestamp as number[];
    expect(item.length).toBe(t.rows);
    for (const v of item) {
      expect(typeof v).toBe("string");
      expect(v).toMatch(/^[1-9][0-9]*$/);
      expect(Number(v)).toBeLessThanOrEqual(40);
    }
    // session ids run 1..300 in order, each a block of consecutive rows
    const lengths = new Map<number, number>();
    for (let r = 0; r < t.rows; r++) {
      if (r > 0) expect(sess[r]! === sess[r - 1]! || sess[r]! === sess[r - 1]! + 1).toBe(true);
      lengths.set(sess[r]!, (lengths.get(sess[r]!) ?? 0) + 1);
      if (r > 0 && sess[r] === sess[r - 1]) {
        expect(ts[r]! - ts[r - 1]!).toBeGreaterThanOrEqual(5); // clicks at least 5 s apart
        expect(user[r]).toBe(user[r - 1]);
      }
      expect(ts[r]).toBeGreaterThanOrEqual(START);
      expect(user[r]).toBeGreaterThanOrEqual(1);
      expect(user[r]).toBeLessThanOrEqual(75);
      expect(cat[r]).toBeGreaterThanOrEqual(1);
      expect(cat[r]).toBeLessThanOrEqual(2);
      expect(price[r]).toBeGreaterThan(0);
    }
    expect([...lengths.keys()]).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    for (const l of lengths.values()) {
      expect(l).toBeGreaterThanOrEqual(2);
      expect(l).toBeLessThanOrEqual(8);
    }
    // category and price are properties of the item
    const catOf = new Map<unknown, number>();
    const priceOf = new Map<unknown, number>();
    for (let r = 0; r < t.rows; r++) {
      expect(catOf.get(item[r]) ?? cat[r]).toBe(cat[r]);
      expect(priceOf.get(item[r]) ?? price[r]).toBe(price[r]);
      catOf.set(item[r], cat[r]!);
      priceOf.set(item[r], price[r]!);
    }
  });

  it("uses every one of few items over many sessions", () => {
    const t = generateSynthetic(parseBuiltinSpec("builtin:synthetic?sessions=2000&items=10&seed=1"));
    expect([...new Set(t.data.item_id as string[])].sort((a, b) => Number(a) - Number(b))).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
  });

  it("reads through the data source, stats and the loader like a file", async () => {
    const src = openDataSource(SPEC);
    expect(src.kind).toBe("builtin");
    expect(src.featureSchema!.columns.find((c) => c.name === "item_id")!.cardinality).toBe(41); // raw max 40 + 1
    const rows = generateSynthetic(parseBuiltinSpec(SPEC)).rows;
    const s = await dataStats(SPEC);
    expect(s.sessions).toBe(300);
    expect(s.rows).toBe(rows);
    expect(s.prefixExamples).toBe(rows - 300);
    expect(s.columns).toEqual({ item: "item_id", session: "session_id", user: "user_id", timestamp: "timestamp" });
    const d = await loadRecipeData({ train: SPEC }, null);
    expect(d.features).toEqual({ categorical: ["category"], continuous: ["price"], context: { user_id: "categorical" } });
    const v = d.vocabularies.item_id!;
    expect(v.numeric).toBe(true);
    for (let id = v.firstId; id < v.size; id++) {
      const raw = v.raw(id) as number;
      expect(Number.isInteger(raw) && raw >= 1 && raw <= 40).toBe(true);
    }
    expect(d.train.length).toBe(300);
  });
});
