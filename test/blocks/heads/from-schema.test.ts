/**
 * Target columns and Head.fromSchema: columns tagged `target` are read by the data loader as per-session
 * values for the tasks and are never model inputs; a multi-task head with fromSchema gets a task per
 * target column (Transformers4Rec Head.from_schema), with weights by task name.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { SequentialBlock } from "../../../blocks/core/sequential.js";
import { TabularSequenceFeatures } from "../../../blocks/features/tabular-sequence-features.js";
import { Head } from "../../../blocks/heads/head.js";
import { MultiTaskHead, taskConfigForColumn } from "../../../blocks/heads/multi-task.js";
import { NextItemPredictionTask } from "../../../blocks/heads/next-item-prediction.js";
import { BlockError, type FeatureSchemaLike, type SequenceBatchLike } from "../../../src/core/index.js";
import { loadRecipeData } from "../../../src/data/load.js";
import { schemaFeatures } from "../../../src/data/source.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model, type ModelConfig } from "../../../src/model/model.js";
import { trainRecipe } from "../../../src/run/train.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const ROOT = resolve(__dirname, "../../..");

const schema: FeatureSchemaLike = {
  columns: [
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 12 },
    { name: "click", tags: ["target", "binary"] },
    { name: "spend", tags: ["target", "continuous", "regression"] },
    { name: "segment", tags: ["target", "multi-class"], cardinality: 4 },
    { name: "category", tags: ["categorical", "list"], cardinality: 4 },
  ],
};

const L = 5;
function batch(): SequenceBatchLike {
  const r = mulberry32(5);
  const B = 6;
  const itemIds = new Int32Array(B * L);
  const category = new Int32Array(B * L);
  const lengths = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    lengths[b] = 2 + (b % 4);
    for (let t = 0; t < lengths[b]!; t++) {
      itemIds[b * L + t] = 1 + Math.floor(r.next() * 11);
      category[b * L + t] = 1 + Math.floor(r.next() * 3);
    }
  }
  return {
    batchSize: B, seqLen: L, itemIds, lengths, categorical: { category }, continuous: {},
    context: { click: Float32Array.from([1, 0, 1, NaN, 0, 1]), spend: Float32Array.from([2, -1, 0.5, 3, NaN, 1]), segment: Int32Array.from([1, 3, 0, 2, 2, 1]) },
  };
}

const inputs = { type: "tabular-sequence-features", embeddingDims: { item_id: 8, category: 8 }, masking: { type: "causal" } } as const;
const explicit = (w: number[]): ModelConfig => ({
  inputs: { ...inputs },
  body: [{ type: "gru", units: 8 }],
  head: {
    type: "multi-task",
    taskWeights: w,
    tasks: [
      { type: "next-item-prediction", weightTying: true },
      { type: "binary-classification", name: "click", target: "click" },
      { type: "regression", name: "spend", target: "spend" },
      { type: "multi-class", name: "segment", target: "segment" },
    ],
  },
});
const fromSchema = (taskWeights?: Record<string, number>): ModelConfig => ({
  inputs: { ...inputs },
  body: [{ type: "gru", units: 8 }],
  head: { type: "multi-task", fromSchema: true, tasks: [{ type: "next-item-prediction", weightTying: true }], ...(taskWeights ? { taskWeights } : {}) } as never,
});
const lossOf = (cfg: ModelConfig) => {
  const m = Model.fromConfig(structuredClone(cfg), schema).build({ seed: 7 });
  const v = tf.tidy(() => m.trainBatch(batch(), mulberry32(3))!.loss().dataSync()[0]!);
  m.dispose();
  return v;
};

describe("target columns are never model inputs", () => {
  it("the input block plans no feature for a target column, even one tagged continuous", () => {
    const m = Model.fromConfig(structuredClone(fromSchema()), schema).build({ seed: 7 });
    expect((m.inputs as unknown as TabularSequenceFeatures).features.map((f) => f.name)).toEqual(["category", "item_id"]);
    m.dispose();
  });

  it("the data loader carries target columns as per-session values: class labels categorical, the others numbers", () => {
    const f = schemaFeatures(["session_id", "item_id", "click", "spend", "segment", "category"], { version: 1, columns: schema.columns as never }, { item: "item_id", session: "session_id" });
    expect(f).toMatchObject({ categorical: ["category"], continuous: [], contextCategorical: ["segment"], contextContinuous: ["click", "spend"], targets: ["click", "spend", "segment"] });
  });
});

describe("Head.fromSchema / multi-task fromSchema", () => {
  it("maps target + binary / regression / multi-class columns to tasks named after the column", () => {
    expect(schema.columns.map((c) => taskConfigForColumn(c)?.type)).toEqual([undefined, "binary-classification", "regression", "multi-class", undefined]);
    expect(taskConfigForColumn({ name: "y", tags: ["target", "binary-classification"] })).toEqual({ type: "binary-classification", name: "y", target: "y" });
    expect(taskConfigForColumn({ name: "y", tags: ["binary"] })).toBeUndefined(); // not tagged target
    expect(taskConfigForColumn({ name: "y", tags: ["target", "regression", "list"] })).toBeUndefined(); // a sequence
  });

  it("a recipe head {fromSchema: true} trains exactly like the same tasks listed by hand, weights by name", () => {
    const byHand = lossOf(explicit([1, 0.5, 2, 3]));
    const inferred = lossOf(fromSchema({ "next-item": 1, click: 0.5, spend: 2, segment: 3 }));
    expect(byHand).toBeGreaterThan(0);
    expect(Math.abs(inferred - byHand)).toBeLessThan(1e-5);
    // default weight 1 for every task
    expect(Math.abs(lossOf(fromSchema()) - lossOf(explicit([1, 1, 1, 1])))).toBeLessThan(1e-5);
    expect(Math.abs(lossOf(fromSchema()) - byHand)).toBeGreaterThan(1e-4);
  });

  it("the Model sees the added tasks with their weights; the saved config rebuilds the same head", () => {
    const m = Model.fromConfig(structuredClone(fromSchema({ click: 0.5, segment: 3 })), schema).build({ seed: 7 });
    expect(m.targetTasks.map((t) => [t.task.name, t.task.target, t.weight])).toEqual([["click", "click", 0.5], ["spend", "spend", 1], ["segment", "segment", 3]]);
    const again = Model.fromConfig(m.toRecipe(), schema).build({ seed: 7 });
    expect(again.targetTasks.length).toBe(3);
    expect(again.toRecipe().head).toEqual(m.toRecipe().head);
    m.dispose();
    again.dispose();
  });

  it("errors: a weight for no task, no target column and no task", () => {
    const m = Model.fromConfig(structuredClone(fromSchema({ clik: 2 })), schema);
    let e: unknown;
    try {
      m.build({ seed: 1 });
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(BlockError);
    expect(e).toMatchObject({ code: "incompatible_config", path: "/model/head/taskWeights/clik" });
    const noTargets: FeatureSchemaLike = { columns: [schema.columns[0]!, schema.columns[4]!] };
    const h = new MultiTaskHead({ fromSchema: true });
    h.resolveSchema(noTargets);
    expect(h.tasks.length).toBe(0);
    const empty = Model.fromConfig({ ...fromSchema(), head: { type: "multi-task", fromSchema: true } as never }, noTargets);
    expect(() => empty.build({ seed: 1 })).toThrow(expect.objectContaining({ code: "incompatible_config", path: "/model/head/tasks", message: expect.stringMatching(/found no target column/) }));
    expect(() => Head.fromSchema(noTargets, TabularSequenceFeatures.fromSchema(noTargets, {}))).toThrow(/no target column/);
  });

  it("Head.fromSchema(schema, body, {tasks, taskWeights}) builds the multi-task head in code", () => {
    const body = new SequentialBlock([TabularSequenceFeatures.fromSchema(schema, { ...inputs, masking: { type: "causal" } })]);
    const head = Head.fromSchema(schema, body, { tasks: [new NextItemPredictionTask({ weightTying: true })], taskWeights: { spend: 0.25 } });
    const task = head.task as MultiTaskHead;
    expect(task.tasks.map((t) => t.name)).toEqual(["next-item", "click", "spend", "segment"]);
    expect(task.targetTasks.map((t) => t.weight)).toEqual([1, 0.25, 1]);
  });
});

describe("recipes/gru-multi-task.yaml", () => {
  it("loads its targets (tagged target) and trains one epoch with the tasks from the schema", async () => {
    const data = await loadRecipeData({ train: join(ROOT, "examples/data/synthetic-session-targets.csv") }, (await import("yaml")).parse(
      (await import("node:fs")).readFileSync(join(ROOT, "recipes/features/synthetic-session-targets.yaml"), "utf8"),
    ), {});
    expect(data.features.targets).toEqual(["high_value", "log_price", "intent"]);
    expect(data.features.context).toEqual({ intent: "categorical", high_value: "continuous", log_price: "continuous" });
    // a small copy of the recipe: one epoch, smaller sizes
    const dir = mkdtempSync(join(tmpdir(), "recblocks-multitask-"));
    const text = (await import("node:fs")).readFileSync(join(ROOT, "recipes/gru-multi-task.yaml"), "utf8")
      .replace("../examples/data/", `${join(ROOT, "examples/data")}/`)
      .replace("features: features/", `features: ${join(ROOT, "recipes/features")}/`)
      .replace("{item_id: 64}", "{item_id: 16}")
      .replace("units: 64", "units: 16")
      .replace("epochs: 10", "epochs: 1");
    writeFileSync(join(dir, "recipe.yaml"), text);
    const res = await trainRecipe(join(dir, "recipe.yaml"), { out: join(dir, "run"), stream: null });
    for (const k of ["ndcg@20", "high_value/auc", "log_price/rmse", "intent/accuracy"]) expect(Number.isFinite(res.metrics[k]), k).toBe(true);
  }, 120_000);
});
