/**
 * Ragged multi-hot list features per interaction: a categorical list column with properties.multiHot in the
 * feature schema is read as a bag of values per interaction (CSV "3|17|42", JSONL arrays), interned, padded /
 * cut to maxValues, batched as [B, L, K] and embedded by tabular-sequence-features' bag combiner.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { TabularSequenceFeatures, rebag } from "../../blocks/features/tabular-sequence-features.js";
import { CallContext, BlockContext } from "../../src/core/index.js";
import { fullSequenceExamples, makeBatch } from "../../src/data/batches.js";
import { loadRecipeData } from "../../src/data/load.js";
import { inferSchema } from "../../src/data/stats.js";
import { openDataSource, readCodedSessions } from "../../src/data/source.js";
import type { FeatureSchemaDocLike } from "../../src/data/schema-doc.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { mulberry32 } from "../../src/masking/index.js";
import { trainRecipe } from "../../src/run/train.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const dir = mkdtempSync(join(tmpdir(), "recblocks-multihot-"));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const schema = (maxValues: number, extra: Record<string, unknown> = {}): FeatureSchemaDocLike => ({
  version: 1,
  columns: [
    { name: "session_id", dtype: "int64", tags: ["session-id", "categorical"] },
    { name: "item_id", dtype: "int64", tags: ["item-id", "categorical", "list"] },
    { name: "tags", dtype: "int64", tags: ["categorical", "list"], properties: { multiHot: { maxValues, ...extra } } },
  ],
});

// session 1: three interactions, session 2: two; the tags cell of line 4 is empty (no tags), line 5 has four tags
const CSV = ["session_id,item_id,tags", "1,10,3|17|42", "1,11,17", "1,12,", "2,10,5|3|17|8", "2,13,42"].join("\n") + "\n";

async function coded(path: string, s: FeatureSchemaDocLike, warn: string[] = []) {
  return readCodedSessions(openDataSource(path, { onWarning: (m) => warn.push(m) }), { schema: s, onWarning: (m) => warn.push(m) });
}

function thrown(f: () => Promise<unknown>): Promise<RecblocksError> {
  return f().then(
    () => {
      throw new Error("expected a RecblocksError");
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(RecblocksError);
      return e as RecblocksError;
    },
  );
}

describe("reading ragged multi-hot columns", () => {
  it("CSV cells split on |, interned like other categorical values, padded (-2) and cut to maxValues", async () => {
    const warn: string[] = [];
    const cs = await coded(file("a.csv", CSV), schema(3), warn);
    expect(cs.bags).toEqual({ tags: 3 });
    const it = cs.interners.tags!;
    const code = (v: string) => it.get(Number(v));
    expect(it.keys.map(String)).toEqual(["3", "17", "42", "5"]); // first-seen order; the 4th value of line 5 (8) is cut
    const P = -2;
    expect(Array.from(cs.categorical.tags!)).toEqual([
      code("3"), code("17"), code("42"),
      code("17"), P, P,
      P, P, P,
      code("5"), code("3"), code("17"),
      code("42"), P, P,
    ]);
    expect(warn.join("\n")).toMatch(/1 interactions of the multi-hot column "tags" hold more than 3 values/);
  });

  it("JSONL arrays (and scalars as bags of one) give the same codes as the CSV", async () => {
    const rows = [
      { session_id: 1, item_id: 10, tags: [3, 17, 42] },
      { session_id: 1, item_id: 11, tags: 17 },
      { session_id: 1, item_id: 12, tags: [] },
      { session_id: 2, item_id: 10, tags: [5, 3, 17, 8] },
      { session_id: 2, item_id: 13, tags: [42] },
    ];
    const j = await coded(file("a.jsonl", rows.map((r) => JSON.stringify(r)).join("\n") + "\n"), schema(3));
    const c = await coded(file("a2.csv", CSV), schema(3));
    expect(Array.from(j.categorical.tags!)).toEqual(Array.from(c.categorical.tags!));
    expect(j.interners.tags!.keys).toEqual(c.interners.tags!.keys);
  });

  it("Parquet LIST columns of an interaction log give the same codes as the CSV", async () => {
    const f = join(dir, "log.parquet");
    parquetWriteFile({
      filename: f,
      columnData: [
        { name: "session_id", data: [1, 1, 1, 2, 2] },
        { name: "item_id", data: [10, 11, 12, 10, 13] },
        { name: "tags", data: [[3, 17, 42], [17], [], [5, 3, 17, 8], [42]] },
      ],
      schema: [
        { name: "root", num_children: 3 },
        { name: "session_id", type: "INT32", repetition_type: "REQUIRED" },
        { name: "item_id", type: "INT32", repetition_type: "REQUIRED" },
        { name: "tags", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "INT32", repetition_type: "REQUIRED" },
      ],
    });
    const p = await coded(f, schema(3));
    const c = await coded(file("a3.csv", CSV), schema(3));
    expect(Array.from(p.categorical.tags!)).toEqual(Array.from(c.categorical.tags!));
  });

  it("inferSchema proposes properties.multiHot for a categorical list per interaction (JSONL arrays)", async () => {
    const rows = [
      { session_id: 1, item_id: 10, tags: ["a", "b"] },
      { session_id: 1, item_id: 11, tags: ["c", "a", "d"] },
      { session_id: 2, item_id: 12, tags: [] },
    ];
    const s = await inferSchema(file("infer.jsonl", rows.map((r) => JSON.stringify(r)).join("\n") + "\n"));
    const tags = s.columns.find((c) => c.name === "tags")!;
    expect(tags.tags).toEqual(["categorical", "list"]);
    expect(tags.properties?.multiHot).toEqual({ maxValues: 3 });
    expect(s.columns.find((c) => c.name === "item_id")!.properties?.multiHot).toBeUndefined();
  });

  it("a bad cell is a located data_bad_list error (file, line, row, column)", async () => {
    const path = file("bad.csv", ["session_id,item_id,tags", "1,10,3|17", "1,11,3||42"].join("\n") + "\n");
    const e = await thrown(() => coded(path, schema(3)));
    expect(e.issues[0]).toMatchObject({ code: "data_bad_list", path: "/rows/1/tags", source: { file: path, line: 3 } });
    expect(e.issues[0]!.message).toMatch(/^Line 3: multi-hot column "tags" holds "3\|\|42", which is not a list of values: value 2 between the separators "\|" is empty\./);
    const jpath = file("bad.jsonl", `{"session_id":1,"item_id":10,"tags":[1]}\n{"session_id":1,"item_id":11,"tags":[1,{"a":2}]}\n`);
    const je = await thrown(() => coded(jpath, schema(3)));
    expect(je.issues[0]).toMatchObject({ code: "data_bad_list", path: "/rows/1/tags", source: { file: jpath, line: 2 } });
    expect(je.issues[0]!.message).toMatch(/value 2 of the list is object/);
  });

  it("a malformed properties.multiHot is a data_bad_config error at the column", async () => {
    const e = await thrown(() => coded(file("c.csv", CSV), { ...schema(3), columns: [...schema(3).columns.slice(0, 2), { name: "tags", dtype: "int64", tags: ["categorical", "list"], properties: { multiHot: { maxValues: 0 } } }] }));
    expect(e.issues[0]).toMatchObject({ code: "data_bad_config", path: "/columns/tags" });
  });

  it("another separator, and sessions kept after filters and splits keep K ids per step", async () => {
    const text = CSV.replace(/\|/g, ";");
    const d = await loadRecipeData({ train: file("sep.csv", text), sessions: { minSessionLength: 2 } }, schema(2, { separator: ";" }), { vocabularyOrder: "first-seen" });
    expect(d.features.bags).toEqual({ tags: 2 });
    const v = d.vocabularies.tags!; // first-seen with OOV: 3 -> 2, 17 -> 3, 42 -> 4, 5 -> 5
    const id = (x: number) => v.lookup(x);
    const s1 = d.train.find((s) => s.id === "1")!;
    expect(Array.from(s1.categorical.tags!)).toEqual([id(3), id(17), id(17), 0, 0, 0]);
    const ex = fullSequenceExamples(d.train);
    const b = makeBatch(ex, [d.train.indexOf(s1)], { batchSize: 1, maxSequenceLength: 4 });
    expect(b.categorical.tags!.length).toBe(1 * 4 * 2);
    expect(Array.from(b.categorical.tags!)).toEqual([id(3), id(17), id(17), 0, 0, 0, 0, 0]);
  });

  it("rebag cuts or pads each step's bag to the block's K", () => {
    expect(Array.from(rebag(Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 2))).toEqual([1, 2, 4, 5]);
    expect(Array.from(rebag(Int32Array.from([1, 2, 3, 4]), 2, 3))).toEqual([1, 2, 0, 3, 4, 0]);
  });
});

describe("multi-hot values reach the model", () => {
  it("the mean combiner of a known interaction equals the mean of the embedding rows of its values", async () => {
    const d = await loadRecipeData({ train: file("m.csv", CSV), sessions: { minSessionLength: 2 } }, schema(3), {});
    // the block takes the bag from the schema (properties.multiHot), no recipe option needed
    const block = TabularSequenceFeatures.fromSchema(d.featureSchema as never, { embeddingDims: { item_id: 2, tags: 3 } });
    const bctx = new BlockContext({ rng: mulberry32(3), path: "/model/inputs" });
    const spec = block.expectedInputSpec(bctx);
    expect(spec.tags).toEqual({ shape: [null, null, 3], dtype: "int32" });
    block.build(spec, bctx);
    const table = block.namedVariables().get("inputs/embeddings/tags")!.arraySync() as number[][];
    const s1 = d.train.findIndex((s) => s.id === "1");
    const batch = makeBatch(fullSequenceExamples(d.train), [s1], { batchSize: 1, maxSequenceLength: 3 });
    const out = tf.tidy(() => {
      const p = block.prepare(batch, "eval", mulberry32(1));
      const { inputs } = TabularSequenceFeatures.toTensors(p);
      return block.call(inputs, new CallContext({ mode: "eval", rng: mulberry32(1) })).arraySync() as number[][][];
    });
    // concat in name order: item_id (2) then tags (3); step 0 holds tags 3|17|42, step 1 holds 17, step 2 none
    const v = d.vocabularies.tags!;
    const rows = [3, 17, 42].map((x) => table[v.lookup(x)]!);
    const mean = [0, 1, 2].map((j) => (rows[0]![j]! + rows[1]![j]! + rows[2]![j]!) / 3);
    const close = (got: number[], want: number[]) => want.forEach((w, j) => expect(Math.abs(got[j]! - w)).toBeLessThan(1e-6));
    close(out[0]![0]!.slice(2), mean);
    close(out[0]![1]!.slice(2), table[v.lookup(17)]!); // a bag of one: its row (padding slots not counted)
    close(out[0]![2]!.slice(2), [0, 0, 0]); // an empty bag
    expect(Math.abs(mean[0]!)).toBeGreaterThan(0);
    block.dispose();
  });

  it("trains one short epoch from a real CSV with a multi-hot column (recipe, data, model)", async () => {
    const lines = ["session_id,item_id,genres"];
    const r = mulberry32(9);
    for (let s = 1; s <= 60; s++) {
      const len = 3 + (s % 4);
      for (let t = 0; t < len; t++) {
        const g = Array.from({ length: Math.floor(r.next() * 4) }, () => `g${1 + Math.floor(r.next() * 6)}`);
        lines.push(`${s},${1 + Math.floor(r.next() * 25)},${g.join("|")}`);
      }
    }
    file("train.csv", lines.join("\n") + "\n");
    file(
      "features.yaml",
      [
        "version: 1",
        "columns:",
        "  - {name: session_id, dtype: int64, tags: [session-id, categorical]}",
        "  - {name: item_id, dtype: int64, tags: [item-id, categorical, list]}",
        "  - {name: genres, dtype: string, tags: [categorical, list], properties: {multiHot: {maxValues: 3}}}",
      ].join("\n") + "\n",
    );
    const recipe = file(
      "recipe.yaml",
      [
        "version: 1",
        "name: multi-hot-e2e",
        "features: features.yaml",
        "data:",
        "  train: train.csv",
        "  split: {type: random, validFraction: 0.2}",
        "model:",
        "  inputs:",
        "    type: tabular-sequence-features",
        "    embeddingDims: {item_id: 8, genres: 8}",
        "    aggregation: element-wise-sum",
        "    multiHot: {genres: {maxValues: 2, combiner: sum}}",
        "    masking: {type: causal}",
        "  body:",
        "    - {type: gru, units: 8}",
        "  head: {type: next-item-prediction, weightTying: true}",
        "train: {epochs: 1, batchSize: 16, seed: 1}",
        "evaluate: {protocol: last-item, metrics: [recall], ks: [5]}",
      ].join("\n") + "\n",
    );
    const res = await trainRecipe(recipe, { out: join(dir, "run"), stream: null });
    expect(res.history.length).toBe(1);
    expect(Number.isFinite((res.history[0] as { loss: number }).loss)).toBe(true);
    // the saved model has the genres bag table, sized by the vocabulary (6 genres + padding + OOV)
    const saved = JSON.parse(readFileSync(join(res.modelDir, "model.json"), "utf8")) as unknown;
    expect(JSON.stringify(saved)).toContain("inputs/embeddings/genres");
    expect(res.metrics["recall@5"]).toBeGreaterThanOrEqual(0);
  });
});
