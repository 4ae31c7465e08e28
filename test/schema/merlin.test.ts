/**
 * A Merlin / TensorFlow-Metadata schema.json in the shape of Transformers4Rec's testing schema converts to
 * recblocks' feature schema (tags, domains, value counts as expected, checked by hand) and back without
 * loss; and `recblocks schema convert` does the same through files.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromMerlinDoc, toMerlinDoc } from "../../src/schema/merlin.js";
import { packageRoot } from "../../src/paths.js";

// The columns of Transformers4Rec's tests/assets/data_schema (session-based e-commerce): an item id with
// an int domain, categorical side features, continuous features with float domains, list columns with
// value counts, a session id, a timestamp.
const T4R_LIKE = {
  feature: [
    { name: "session_id", type: "INT", intDomain: { name: "session_id", min: "1", max: "100001", isCategorical: false }, annotation: { tag: ["groupby_col"] } },
    { name: "item_id-list_seq", valueCount: { min: "2", max: "185" }, type: "INT", intDomain: { name: "item_id-list_seq", min: "1", max: "51996", isCategorical: true }, annotation: { tag: ["item_id", "list", "categorical", "item"] } },
    { name: "category-list_seq", valueCount: { min: "2", max: "185" }, type: "INT", intDomain: { name: "category-list_seq", min: "1", max: "332", isCategorical: true }, annotation: { tag: ["list", "categorical"] } },
    { name: "timestamp/age_days-list_seq", valueCount: { min: "2", max: "185" }, type: "FLOAT", floatDomain: { name: "timestamp/age_days-list_seq", min: 0.0000003, max: 0.9999999 }, annotation: { tag: ["continuous", "list"] } },
    { name: "user_country", type: "INT", intDomain: { name: "user_country", min: "1", max: "62", isCategorical: true }, annotation: { tag: ["categorical", "user"] } },
    { name: "user_age", type: "FLOAT", floatDomain: { name: "user_age", min: 0, max: 1 }, annotation: { tag: ["continuous", "user"] } },
    { name: "purchase", type: "INT", intDomain: { name: "purchase", min: "0", max: "1" }, annotation: { tag: ["binary_classification", "target"] } },
  ],
};

describe("Merlin schema.json", () => {
  it("imports with the tags, domains and value counts it states", () => {
    const { doc, issues } = fromMerlinDoc(T4R_LIKE);
    expect(issues).toEqual([]);
    const col = (n: string) => doc!.columns.find((c) => c.name === n)!;
    expect(doc!.columns.map((c) => c.name)).toEqual(T4R_LIKE.feature.map((f) => f.name));
    const item = col("item_id-list_seq");
    expect(item.tags).toEqual(expect.arrayContaining(["item-id", "list", "categorical"]));
    // categorical cardinality = domain max + 1 (id 0 is padding)
    expect(item.cardinality).toBe(51997);
    expect(item.valueCount).toEqual({ min: 2, max: 185 });
    const age = col("timestamp/age_days-list_seq");
    expect(age.tags).toEqual(expect.arrayContaining(["continuous", "list"]));
    expect(age.min).toBeCloseTo(0.0000003, 12);
    expect(age.max).toBeCloseTo(0.9999999, 12);
    expect(col("user_country").cardinality).toBe(63);
    expect(col("purchase").tags).toEqual(expect.arrayContaining(["target"]));
  });

  it("round-trips to an equal Merlin document (tags, domains, value counts, extras kept)", () => {
    const { doc } = fromMerlinDoc(T4R_LIKE);
    const back = toMerlinDoc(doc!);
    const norm = (f: Record<string, unknown>) => JSON.parse(JSON.stringify(f, (_k, v) => (typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v)));
    expect(back.feature.map(norm)).toEqual(T4R_LIKE.feature.map(norm));
    // and ours -> Merlin -> ours is the identity
    const again = fromMerlinDoc(back).doc!;
    expect(again).toEqual(doc);
  });

  describe("recblocks schema convert", () => {
    let tmp: string;
    beforeAll(() => {
      tmp = mkdtempSync(join(tmpdir(), "recblocks-merlin-"));
      writeFileSync(join(tmp, "schema.json"), JSON.stringify(T4R_LIKE, null, 2));
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));
    const cli = (args: string[]) => spawnSync(process.execPath, [join(packageRoot(), "bin", "recblocks.js"), ...args], { cwd: tmp, encoding: "utf8", timeout: 60_000 });

    it("converts a Merlin file to ours and back with nothing lost", () => {
      const help = cli(["schema", "convert", "--help"]);
      expect(help.status, help.stderr).toBe(0);
      const usage = help.stdout;
      // the command's own usage decides the flags; both directions through files
      const toOurs = /--to\b/.test(usage) ? ["schema", "convert", "schema.json", "--to", "recblocks", "--out", "ours.yaml"] : ["schema", "convert", "schema.json", "--out", "ours.yaml"];
      const a = cli(toOurs);
      expect(a.status, a.stdout + a.stderr).toBe(0);
      const toMerlin = /--to\b/.test(usage) ? ["schema", "convert", "ours.yaml", "--to", "merlin", "--out", "back.json"] : ["schema", "convert", "ours.yaml", "--out", "back.json"];
      const b = cli(toMerlin);
      expect(b.status, b.stdout + b.stderr).toBe(0);
      const back = JSON.parse(readFileSync(join(tmp, "back.json"), "utf8")) as typeof T4R_LIKE;
      const norm = (f: unknown) => JSON.parse(JSON.stringify(f, (_k, v) => (typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v)));
      expect(back.feature.map(norm)).toEqual(T4R_LIKE.feature.map(norm));
    });
  });
});
