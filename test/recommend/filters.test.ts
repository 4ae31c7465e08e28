import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Vocabulary } from "../../src/data/vocabulary.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { eligibility, parseRule, readIdList, readItemMetadata, type EligibilityOptions, type ItemFilters } from "../../src/recommend/filters.js";

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "recblocks-filters-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const thrown = (f: () => unknown): RecblocksError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RecblocksError);
    return e as RecblocksError;
  }
  throw new Error("expected a RecblocksError");
};

describe("parseRule", () => {
  it("reads every operator", () => {
    const r = (t: string) => {
      const { attribute, op, value } = parseRule(t);
      return [attribute, op, value];
    };
    expect(r("category in [3, 7]")).toEqual(["category", "in", [3, 7]]);
    expect(r("region not in [eu, 'us']")).toEqual(["region", "not in", ["eu", "us"]]);
    expect(r("region  not   in [eu]")).toEqual(["region", "not in", ["eu"]]);
    expect(r("tags in []")).toEqual(["tags", "in", []]);
    expect(r("brand == acme")).toEqual(["brand", "==", "acme"]);
    expect(r("brand = \"acme co\"")).toEqual(["brand", "==", "acme co"]);
    expect(r("brand != acme")).toEqual(["brand", "!=", "acme"]);
    expect(r("price < 20")).toEqual(["price", "<", 20]);
    expect(r("price <= 19.5")).toEqual(["price", "<=", 19.5]);
    expect(r("stock > 0")).toEqual(["stock", ">", 0]);
    expect(r("score >= -1.5e2")).toEqual(["score", ">=", -150]);
    // no spaces needed around symbolic operators
    expect(r("price<=20")).toEqual(["price", "<=", 20]);
    expect(r("brand!=acme")).toEqual(["brand", "!=", "acme"]);
    expect(parseRule("  price <= 20 ").text).toBe("  price <= 20 ");
  });

  it("bad rules are invalid_rule issues at the given path", () => {
    for (const [text, message] of [
      ["price", /Cannot read the rule "price"/],
      ["", /Cannot read the rule/],
      ["price ~ 3", /Cannot read the rule/],
      ["3price < 4", /Cannot read the rule/],
      ["category in 3", /"in" needs a list in brackets/],
      ["category not in (1, 2)", /"not in" needs a list in brackets/],
      ["price < cheap", /"<" compares numbers/],
      ["price >= ", /Cannot read the rule/],
    ] as const) {
      const e = thrown(() => parseRule(text, "--rule"));
      expect(e.kind).toBe("FilterError");
      expect(e.issues).toHaveLength(1);
      expect(e.issues[0]!.code, text).toBe("invalid_rule");
      expect(e.issues[0]!.path).toBe("--rule");
      expect(e.issues[0]!.message, text).toMatch(message);
    }
  });
});

// Items a..f with dense ids 2..7 (1 = OOV, 0 = padding); f has no metadata row; e has no price.
const META = ["item_id,category,price,brand,stock", "a,3,10,acme,5", "b,7,25,zeta,0", "c,3,19.5,beta,2", "d,9,5,acme,1", "e,7,,zeta,3"].join("\n") + "\n";
const vocab = Vocabulary.fromValues(["a", "b", "c", "d", "e", "f"], { order: "first-seen" });
const options = (metadataFile?: string): EligibilityOptions => ({
  size: vocab.size,
  lookup: (raw) => (vocab.has(raw) ? vocab.lookup(raw) : undefined),
  rawOf: (id) => (id >= vocab.firstId ? String(vocab.raw(id)) : undefined),
  reserved: [0, vocab.oovId],
  ...(metadataFile ? { metadata: readItemMetadata(metadataFile) } : {}),
});
/** Raw ids of the eligible items. */
const names = (mask: Uint8Array) => Array.from(mask).flatMap((m, id) => (m ? [id >= vocab.firstId ? String(vocab.raw(id)) : `#${id}`] : []));

describe("eligibility", () => {
  let csv: string;
  beforeAll(() => {
    csv = join(tmp, "items.csv");
    writeFileSync(csv, META);
  });

  it("the vocabulary is laid out as assumed", () => {
    expect(vocab.size).toBe(8);
    expect(["a", "b", "c", "d", "e", "f"].map((x) => vocab.lookup(x))).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it("no filters: every item, never the reserved ids (padding, OOV)", () => {
    const el = eligibility({}, options());
    expect(Array.from(el.mask)).toEqual([0, 0, 1, 1, 1, 1, 1, 1]);
    expect(el.eligible).toBe(6);
    expect(el.unknown).toEqual([]);
  });

  it("allow and deny lists; unknown ids are reported, not errors", () => {
    let el = eligibility({ allow: ["a", "c", "zz"] }, options());
    expect(names(el.mask)).toEqual(["a", "c"]);
    expect(el.eligible).toBe(2);
    expect(el.unknown).toEqual(["zz"]);
    el = eligibility({ deny: ["b", 42, "yy"] }, options());
    expect(names(el.mask)).toEqual(["a", "c", "d", "e", "f"]);
    expect(el.unknown).toEqual(["42", "yy"]);
    // deny wins over allow
    el = eligibility({ allow: ["a", "b", "c"], deny: ["b"] }, options());
    expect(names(el.mask)).toEqual(["a", "c"]);
    expect(eligibility({ allow: [] }, options()).eligible).toBe(0);
  });

  it("reserved ids stay excluded even when an allow-list maps to them", () => {
    const o = options();
    const el = eligibility({ allow: ["[PAD]", "[OOV]", "a"] }, { ...o, lookup: (r) => (r === "[PAD]" ? 0 : r === "[OOV]" ? 1 : o.lookup(r)) });
    expect(Array.from(el.mask)).toEqual([0, 0, 1, 0, 0, 0, 0, 0]);
    expect(el.eligible).toBe(1);
  });

  it("attribute rules on a metadata CSV", () => {
    const o = options(csv);
    const only = (rules: string[], extra: ItemFilters = {}) => names(eligibility({ rules, ...extra }, o).mask);
    expect(only(["category in [3, 7]"])).toEqual(["a", "b", "c", "e"]);
    expect(only(["category not in [3, 7]"])).toEqual(["d"]);
    expect(only(["category == 3"])).toEqual(["a", "c"]);
    expect(only(["category = 9"])).toEqual(["d"]);
    // a missing value passes only the negative rules; f has no metadata row at all: never eligible under rules
    expect(only(["price != 10"])).toEqual(["b", "c", "d", "e"]);
    expect(only(["price <= 19.5"])).toEqual(["a", "c", "d"]);
    expect(only(["price < 19.5"])).toEqual(["a", "d"]);
    expect(only(["price >= 19.5"])).toEqual(["b", "c"]);
    expect(only(["price > 19.5"])).toEqual(["b"]);
    expect(only(["brand != acme"])).toEqual(["b", "c", "e"]);
    expect(only(["brand == 'acme'"])).toEqual(["a", "d"]);
    expect(only(["brand not in [acme, beta]"])).toEqual(["b", "e"]);
    expect(only(["stock > 0"])).toEqual(["a", "c", "d", "e"]);
    // a numeric comparison on a text column passes nothing
    expect(only(["brand > 0"])).toEqual([]);
    // every rule must pass, and the lists still apply
    expect(only(["category in [3, 7]", "price <= 20"])).toEqual(["a", "c"]);
    expect(only(["category in [3, 7]", "price <= 20"], { deny: ["c"] })).toEqual(["a"]);
    expect(only(["stock > 0"], { allow: ["b", "c", "f"] })).toEqual(["c"]);
    const el = eligibility({ rules: ["stock > 0"] }, o);
    expect(el.eligible).toBe(4);
    expect(el.mask[0]).toBe(0);
    expect(el.mask[1]).toBe(0);
  });

  it("TSV and JSONL metadata give the same answers", () => {
    const tsv = join(tmp, "items.tsv");
    writeFileSync(tsv, META.replace(/,/g, "\t"));
    const jsonl = join(tmp, "items.jsonl");
    writeFileSync(jsonl, [
      { id: "a", category: 3, price: 10, brand: "acme", stock: 5 },
      { id: "b", category: 7, price: 25, brand: "zeta", stock: 0 },
      { id: "c", category: 3, price: 19.5, brand: "beta", stock: 2 },
      { id: "d", category: 9, price: 5, brand: "acme", stock: 1 },
      { id: "e", category: 7, price: null, brand: "zeta", stock: 3 },
    ].map((o) => JSON.stringify(o)).join("\n"));
    expect(readItemMetadata(jsonl).idColumn).toBe("id");
    for (const f of [tsv, jsonl]) {
      const o = options(f);
      expect(names(eligibility({ rules: ["category in [3, 7]", "price <= 20"] }, o).mask), f).toEqual(["a", "c"]);
      expect(names(eligibility({ rules: ["price != 10"] }, o).mask), f).toEqual(["b", "c", "d", "e"]);
    }
  });

  it("rules without metadata, and rules on an unknown attribute, are errors with a location", () => {
    let e = thrown(() => eligibility({ rules: ["price <= 20"] }, options()));
    expect(e.issues[0]!.code).toBe("missing_item_metadata");
    expect(e.issues[0]!.hint).toMatch(/--item-data/);
    e = thrown(() => eligibility({ rules: ["price <= 20", "colour == red"] }, options(csv)));
    expect([e.issues[0]!.code, e.issues[0]!.path]).toEqual(["unknown_attribute", "/filters/rules/1"]);
    expect(e.issues[0]!.expected).toEqual(["item_id", "category", "price", "brand", "stock"]);
    e = thrown(() => eligibility({ rules: ["price <= 20", "price ~ 3"] }, options(csv)));
    expect([e.issues[0]!.code, e.issues[0]!.path]).toEqual(["invalid_rule", "/filters/rules/1"]);
  });
});

describe("reading metadata and id lists", () => {
  it("a ragged row and a missing id column are located data errors", () => {
    const ragged = join(tmp, "ragged.csv");
    writeFileSync(ragged, "item_id,price\na,1\nb,2,3\n");
    const e = thrown(() => readItemMetadata(ragged));
    expect(e.issues[0]!.code).toBe("data_ragged_row");
    expect(e.issues[0]!.source).toEqual({ file: ragged, line: 3, column: 1 });
    const noId = join(tmp, "no-id.csv");
    writeFileSync(noId, "sku,price\na,1\n");
    expect(thrown(() => readItemMetadata(noId)).issues[0]!.code).toBe("data_missing_column");
    // an explicit id column works
    expect(readItemMetadata(noId, "sku").rows.get("a")).toEqual({ sku: "a", price: "1" });
    expect(thrown(() => readItemMetadata(join(tmp, "absent.csv"))).issues[0]!.code).toBe("data_file_not_found");
  });

  it("id lists: one per line or comma-separated, # comments, blanks ignored", () => {
    const f = join(tmp, "deny.txt");
    writeFileSync(f, "# top sellers\na\nb, c\n\n  d  # promoted\n");
    expect(readIdList(f)).toEqual(["a", "b", "c", "d"]);
    expect(thrown(() => readIdList(join(tmp, "absent.txt"))).issues[0]!.code).toBe("data_file_not_found");
  });
});
