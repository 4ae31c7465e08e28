/**
 * Merlin / TensorFlow-Metadata schema.pbtxt (protobuf text format, as NVTabular writes it): a file in the
 * shape of Transformers4Rec's tests/assets/data_schema/schema.pbtxt imports with the tags, domains, value
 * counts and extra metadata it states (checked by hand), round-trips pbtxt -> json -> pbtxt, reports
 * syntax and content errors at line:column, and is read wherever a feature schema file is (recipes,
 * `recblocks schema convert`).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run as schemaConvert } from "../../src/cli/commands/schema-convert.js";
import { loadRecipe } from "../../src/recipe/load.js";
import { FeatureSchema, loadFeatureSchemaSource } from "../../src/schema/feature-schema.js";
import { fromMerlinDoc } from "../../src/schema/merlin.js";
import { decodeStruct, parsePbtxtSource, toPbtxt } from "../../src/schema/pbtxt.js";
import { packageRoot } from "../../src/paths.js";

/*
 * Our own fixture, laid out like T4R's data_schema/schema.pbtxt: a session id grouped by, list features
 * with value_count and int/float domains, annotation tags, extra_metadata as an expanded Any Struct (item id)
 * and as a serialized Struct (category: {"freq_threshold": 0, "num_buckets": null} in protobuf wire bytes:
 *   0a 1b | 0a 0e "freq_threshold" 12 09 | 11 00..00 (number_value 0.0)
 *   0a 11 | 0a 0b "num_buckets" 12 02 | 08 00 (null_value)
 * written with octal escapes), a comment, a `< >` message and a field list `tag: [..]`.
 */
const PBTXT = `# a Merlin schema (protobuf text format)
feature {
  name: "session_id"
  type: INT
  int_domain {
    name: "session_id"
    min: 1
    max: 100001
    is_categorical: false
  }
  annotation {
    tag: "groupby_col"
  }
}
feature {
  name: "item_id-list_seq"
  value_count {
    min: 2
    max: 185
  }
  type: INT
  int_domain {
    name: "item_id/list"
    min: 1
    max: 51996
    is_categorical: true
  }
  annotation {
    tag: "item_id"
    tag: "list"
    tag: "categorical"
    tag: "item"
    extra_metadata {
      [type.googleapis.com/google.protobuf.Struct] {
        fields {
          key: "embedding_sizes"
          value {
            struct_value {
              fields { key: "cardinality" value { number_value: 51997 } }
              fields { key: "dimension" value { number_value: 64 } }
            }
          }
        }
        fields { key: "is_list" value { bool_value: true } }
        fields { key: "cat_path" value { string_value: "categories/unique.item_id.parquet" } }
      }
    }
  }
}
feature {
  name: "category-list_seq"
  value_count: < min: 2 max: 185 >
  type: INT
  int_domain { name: "category-list_seq" min: 1 max: 332 is_categorical: true }
  annotation {
    tag: ["list", "categorical"]
    extra_metadata {
      type_url: "type.googleapis.com/google.protobuf.Struct"
      value: "\\n\\033\\n\\016freq_threshold\\022\\t\\021\\000\\000\\000\\000\\000\\000\\000\\000\\n\\021\\n\\013num_buckets\\022\\002\\010\\000"
    }
  }
}
feature {
  name: "timestamp/age_days-list_seq"
  value_count {
    min: 2
    max: 185
  }
  type: FLOAT
  float_domain {
    name: "timestamp/age_days-list_seq"
    min: 3e-07
    max: 0.9999999
  }
  annotation {
    tag: "continuous"
    tag: "list"
  }
}
feature {
  name: "user_country"
  type: INT
  int_domain { name: "user_country" min: 1 max: 62 is_categorical: true }
  annotation { tag: "categorical" tag: "user" }
}
feature {
  name: "user_age"
  type: FLOAT
  float_domain { name: "user_age" min: -1.5 max: 2.25 }
  annotation { tag: "continuous" tag: "user" }
}
feature {
  name: "purchase"
  type: INT
  int_domain { name: "purchase" min: 0 max: 1 }
  annotation { tag: "binary_classification" tag: "target" }
}
`;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "rb-pbtxt-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Protobuf JSON writes 64-bit integers as strings: compare documents with those as numbers. */
const norm = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === "string" && /^-?\d+$/.test(x) ? Number(x) : x)));

describe("schema.pbtxt reader", () => {
  it("parses to the protobuf JSON mapping Merlin's schema.json uses", () => {
    const src = parsePbtxtSource(PBTXT, "schema.pbtxt");
    expect(src.issues).toEqual([]);
    const doc = src.value as { feature: Record<string, unknown>[] };
    expect(doc.feature.map((f) => f.name)).toEqual(["session_id", "item_id-list_seq", "category-list_seq", "timestamp/age_days-list_seq", "user_country", "user_age", "purchase"]);
    expect(doc.feature[1]).toEqual({
      name: "item_id-list_seq",
      valueCount: { min: 2, max: 185 },
      type: "INT",
      intDomain: { name: "item_id/list", min: 1, max: 51996, isCategorical: true },
      annotation: {
        tag: ["item_id", "list", "categorical", "item"],
        extraMetadata: [{ embedding_sizes: { cardinality: 51997, dimension: 64 }, is_list: true, cat_path: "categories/unique.item_id.parquet" }],
      },
    });
    // the `< >` message, the tag list and the serialized Struct
    expect(doc.feature[2]!.valueCount).toEqual({ min: 2, max: 185 });
    expect(doc.feature[2]!.annotation).toEqual({ tag: ["list", "categorical"], extraMetadata: [{ freq_threshold: 0, num_buckets: null }] });
    expect((doc.feature[3]!.floatDomain as { min: number }).min).toBe(3e-7);
  });

  it("imports with the tags, domains, value counts and metadata it states (hand-checked)", () => {
    const r = loadFeatureSchemaSource(join(tmp, "w.pbtxt"));
    expect(r.issues[0]?.code).toBe("file_not_found");
    const file = join(tmp, "schema.pbtxt");
    writeFileSync(file, PBTXT);
    const s = FeatureSchema.load(file);
    const col = (n: string) => s.column(n)!;
    const item = col("item_id-list_seq");
    // item_id -> item-id; value_count -> list (already stated); categorical: cardinality = max + 1 (0 = padding)
    expect([...item.tags!].sort()).toEqual(["categorical", "item", "item-id", "list"]);
    expect(item.dtype).toBe("int64");
    expect(item.min).toBe(1);
    expect(item.max).toBe(51996);
    expect(item.cardinality).toBe(51997);
    expect(item.valueCount).toEqual({ min: 2, max: 185 });
    expect(item.embeddingDim).toBe(64);
    expect((item.properties as Record<string, unknown>).cat_path).toBe("categories/unique.item_id.parquet");
    expect(s.itemIdColumn().name).toBe("item_id-list_seq");
    const cat = col("category-list_seq");
    expect([...cat.tags!].sort()).toEqual(["categorical", "list"]);
    expect(cat.cardinality).toBe(333);
    expect((cat.properties as Record<string, unknown>).freq_threshold).toBe(0);
    expect((cat.properties as Record<string, unknown>).num_buckets).toBeNull();
    const age = col("timestamp/age_days-list_seq");
    expect(age.dtype).toBe("float32");
    expect([...age.tags!].sort()).toEqual(["continuous", "list"]);
    expect(age.min).toBe(3e-7);
    expect(age.max).toBe(0.9999999);
    expect(col("user_country").cardinality).toBe(63);
    expect(col("user_country").valueCount).toBeUndefined();
    expect(col("user_age").min).toBe(-1.5);
    expect([...col("purchase").tags!].sort()).toEqual(["binary-classification", "target"]);
    // session_id: is_categorical false, no categorical tag, no cardinality
    expect(col("session_id").cardinality).toBeUndefined();
    expect(col("session_id").tags).toEqual([]);
  });

  it("round-trips pbtxt -> json -> pbtxt without loss", async () => {
    const first = join(tmp, "rt.pbtxt");
    writeFileSync(first, PBTXT);
    const json = join(tmp, "rt.json");
    const second = join(tmp, "rt2.pbtxt");
    // pbtxt -> recblocks JSON -> pbtxt through `recblocks schema convert`
    expect(await schemaConvert({ positionals: [first], options: { to: "recblocks", out: json } } as never)).toBe(0);
    expect(JSON.parse(readFileSync(json, "utf8")).columns).toHaveLength(7);
    expect(await schemaConvert({ positionals: [json], options: { to: "merlin", out: second } } as never)).toBe(0);
    const a = parsePbtxtSource(PBTXT, "a").value;
    const text2 = readFileSync(second, "utf8");
    const b = parsePbtxtSource(text2, "b").value;
    // the same Schema message (protobuf field order does not matter)
    const sortKeys = (v: unknown): unknown => (Array.isArray(v) ? v.map(sortKeys) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => x.localeCompare(y)).map(([k, x]) => [k, sortKeys(x)])) : v);
    expect(sortKeys(norm(b))).toEqual(sortKeys(norm(a)));
    expect(text2).toContain('  int_domain {\n    name: "item_id/list"\n    min: 1\n    max: 51996\n    is_categorical: true\n  }\n');
    expect(text2).toContain("  type: FLOAT\n");
    expect(text2).toContain("[type.googleapis.com/google.protobuf.Struct] {");
    // and writing the re-read document again gives the same text
    expect(toPbtxt(b as never)).toBe(text2);
    // pbtxt -> Merlin schema.json agrees with the reader of schema.json
    const mj = join(tmp, "rt-merlin.json");
    expect(await schemaConvert({ positionals: [first], options: { to: "merlin", out: mj } } as never)).toBe(0);
    const fromJson = fromMerlinDoc(JSON.parse(readFileSync(mj, "utf8"))).doc!;
    expect(fromJson).toEqual(FeatureSchema.load(first).toJSON());
  });

  it("is the feature schema of a recipe given by path", () => {
    writeFileSync(join(tmp, "features.pbtxt"), PBTXT.replace(/name: "item_id-list_seq"/, 'name: "item_id"'));
    writeFileSync(
      join(tmp, "recipe.yaml"),
      `version: 1
name: pbtxt-features
features: features.pbtxt
data:
  train: builtin:synthetic?sessions=50&items=20&seed=1
model:
  inputs:
    type: tabular-sequence-features
    excludeFeatures: [session_id, category-list_seq, timestamp/age_days-list_seq, user_country, user_age, purchase]
    embeddingDims: {item_id: 8}
    masking: {type: causal}
  body:
    - type: mlp
      units: [8]
  head:
    type: next-item-prediction
    weightTying: true
`,
    );
    const { featureSchema } = loadRecipe(join(tmp, "recipe.yaml"));
    expect(featureSchema.itemIdColumn().name).toBe("item_id");
    expect(featureSchema.cardinality("item_id")).toBe(51997);
  });
});

describe("schema.pbtxt errors are located at line:column", () => {
  const issue = (text: string) => {
    const r = parsePbtxtSource(text, "bad.pbtxt");
    expect(r.issues).toHaveLength(1);
    return r.issues[0]!;
  };

  it("syntax: a missing brace, a stray token, an unclosed string, a bad escape", () => {
    let i = issue('feature {\n  name: "a"\n  type: INT\n');
    expect(i.code).toBe("pbtxt_syntax");
    expect(i.source).toEqual({ file: "bad.pbtxt", line: 4, column: 1 });
    expect(i.message).toContain('close the message opened at 1:9');
    i = issue('feature {\n  name "a"\n}\n');
    expect(i.source).toMatchObject({ line: 2, column: 8 });
    expect(i.message).toContain('Expected ":" or "{" after the field name "name"');
    i = issue('feature {\n  name: "a\n}\n');
    expect(i.source).toMatchObject({ line: 2, column: 9 });
    expect(i.message).toContain("not closed");
    i = issue('feature { name: "a\\qb" }');
    expect(i.source).toMatchObject({ line: 1, column: 19 });
    i = issue("feature { name: @ }");
    expect(i.source).toMatchObject({ line: 1, column: 17 });
    i = issue("feature {\n  int_domain { max: 12abc }\n}");
    expect(i.source).toMatchObject({ line: 2, column: 23 });
  });

  it("an Any that is not a Struct is pbtxt_unsupported at its type_url", () => {
    const i = issue('feature {\n  name: "a"\n  annotation {\n    extra_metadata {\n      type_url: "type.googleapis.com/foo.Bar"\n    }\n  }\n}\n');
    expect(i.code).toBe("pbtxt_unsupported");
    expect(i.source).toMatchObject({ line: 5, column: 17 });
  });

  it("content errors found after parsing point at the value in the .pbtxt", () => {
    const file = join(tmp, "bad-content.pbtxt");
    writeFileSync(file, 'feature {\n  name: "item_id"\n  type: INT\n  int_domain {\n    min: 1\n    max: "many"\n  }\n}\n');
    const r = loadFeatureSchemaSource(file);
    expect(r.schema).toBeUndefined();
    expect(r.issues[0]!.code).toBe("invalid_merlin_schema");
    expect(r.issues[0]!.path).toBe("/feature/0/intDomain/max");
    expect(r.issues[0]!.source).toMatchObject({ line: 6, column: 10 });
    const t = join(tmp, "bad-type.pbtxt");
    writeFileSync(t, 'feature {\n  name: "a"\n  type: STRUCT\n}\n');
    const r2 = loadFeatureSchemaSource(t);
    expect(r2.issues[0]!.code).toBe("merlin_unsupported");
    expect(r2.issues[0]!.source).toMatchObject({ line: 3, column: 9 });
  });
});

describe("recblocks validate on .pbtxt files", () => {
  it("a folder's schema.pbtxt is validated as a Merlin feature schema; a broken one is located", () => {
    const dir = mkdtempSync(join(tmpdir(), "rb-pbtxt-validate-"));
    try {
      writeFileSync(join(dir, "schema.pbtxt"), PBTXT);
      writeFileSync(join(dir, "broken.pbtxt"), 'feature {\n  name: "item_id"\n  type: INT\n  int_domain {\n    min: 1\n    max: "many"\n  }\n}\n');
      const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "recblocks.js"), "validate", dir, "--json"], { encoding: "utf8", timeout: 60_000 });
      expect(r.status).toBe(1);
      const files = (JSON.parse(r.stdout.trim().split("\n").pop()!) as { files: { file: string; valid: boolean; kind?: string; issues: { path: string; source?: { line: number; column: number } }[] }[] }).files;
      expect(files.map((f) => [f.file.slice(dir.length + 1), f.valid, f.kind])).toEqual([["broken.pbtxt", false, "merlin"], ["schema.pbtxt", true, "merlin"]]);
      expect(files[0]!.issues[0]!.path).toBe("/feature/0/intDomain/max");
      expect(files[0]!.issues[0]!.source).toMatchObject({ line: 6, column: 10 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("serialized google.protobuf.Struct", () => {
  it("decodes numbers, strings, booleans, nulls, nested structs and lists (hand-made wire bytes)", () => {
    // {"d": 64, "s": "x", "b": true, "n": null, "o": {"k": 1.5}, "l": [2, "y"]}
    const entry = (key: string, value: number[]) => [0x0a, 2 + key.length + 2 + value.length, 0x0a, key.length, ...Buffer.from(key), 0x12, value.length, ...value];
    const dbl = (x: number) => [0x11, ...new Uint8Array(new Float64Array([x]).buffer)];
    const str = (x: string) => [0x1a, x.length, ...Buffer.from(x)];
    const inner = entry("k", dbl(1.5));
    const list = [0x0a, dbl(2).length, ...dbl(2), 0x0a, str("y").length, ...str("y")];
    const bytes = Uint8Array.from([
      ...entry("d", dbl(64)),
      ...entry("s", str("x")),
      ...entry("b", [0x20, 0x01]),
      ...entry("n", [0x08, 0x00]),
      ...entry("o", [0x2a, inner.length, ...inner]),
      ...entry("l", [0x32, list.length, ...list]),
    ]);
    expect(decodeStruct(bytes)).toEqual({ d: 64, s: "x", b: true, n: null, o: { k: 1.5 }, l: [2, "y"] });
    expect(() => decodeStruct(Uint8Array.from([0x0a, 0x05, 0x0a]))).toThrow(/truncated/);
  });
});
