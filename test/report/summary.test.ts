import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import "../../blocks/index.js";
import { main } from "../../src/cli/main.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { loadRecipe } from "../../src/recipe/load.js";
import { Model, type ModelConfig } from "../../src/model/model.js";
import { formatShape, formatSummary, summarize, summarizeModel } from "../../src/report/summary.js";
import { trainRecipe } from "../../src/run/train.js";
import { smallRecipe, type SmallRecipeOptions } from "../helpers/small-model.js";

// item_id embedding 8 (items=30 -> schema cardinality 31), MLP 8 -> 16 -> 8, untied output layer with bias
const MLP_OPTIONS: SmallRecipeOptions = {
  name: "tiny-mlp",
  sessions: 60,
  items: 30,
  dataSeed: 2,
  maxSequenceLength: 6,
  embeddingDim: 8,
  initStd: null,
  body: "    - type: mlp\n      units: [16, 8]\n",
  weightTying: false,
  outputBias: true,
  optimizer: null,
  seed: null,
  protocol: null,
  metrics: ["recall"],
  ks: [10],
};
const MLP_RECIPE = smallRecipe(MLP_OPTIONS);

const ALS_RECIPE = `version: 1
name: tiny-als
features: builtin:synthetic
data:
  train: builtin:synthetic?sessions=40&items=25&seed=3
  split:
    type: leave-last-out
model:
  type: als
  factors: 4
  iterations: 3
  seed: 1
evaluate:
  metrics: [ndcg]
  ks: [5]
`;

/** Hand count of the tiny MLP model for an item-id table of `V` rows. */
const handCount = (V: number) =>
  V * 8 + 8 + // inputs: embedding table + the masked-item embedding of causal masking
  (8 * 16 + 16) + (16 * 8 + 8) + // mlp: two dense layers with biases
  (8 * V + V); // head: output kernel + per-item bias

let tmp: string;
beforeAll(async () => {
  await tf.setBackend("cpu");
  tmp = mkdtempSync(join(tmpdir(), "recblocks-summary-"));
  writeFileSync(join(tmp, "mlp.yaml"), MLP_RECIPE);
  writeFileSync(join(tmp, "als.yaml"), ALS_RECIPE);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("summary of a next-item model", () => {
  it("the total is the sum of the variables' sizes and the hand count", () => {
    const { recipe, featureSchema } = loadRecipe(join(tmp, "mlp.yaml"));
    const m = Model.fromConfig(recipe.model as unknown as ModelConfig, featureSchema.toJSON() as never).build();
    try {
      const s = summarizeModel(m, { name: "tiny-mlp", source: "test" });
      const sizes = [...m.namedVariables().values()].reduce((a, v) => a + v.size, 0);
      expect(s.total).toBe(sizes);
      expect(s.total).toBe(handCount(31));
      expect(s.total).toBe(815);
      expect(s.rows.map((r) => [r.path, r.type, r.outputShape, r.params])).toEqual([
        ["/model/inputs", "tabular-sequence-features", "(None, None, 8)", 31 * 8 + 8],
        ["/model/body/0", "mlp", "(None, None, 8)", 8 * 16 + 16 + 16 * 8 + 8],
        ["/model/head", "next-item-prediction", "(None, 31)", 8 * 31 + 31],
      ]);
      expect(s.rows.reduce((a, r) => a + (r.depth === 0 ? r.params : 0), 0)).toBe(s.total);
      expect(s.trainable).toBe(815);
      expect(s.nonTrainable).toBe(0);
      const text = formatSummary(s, { weights: true });
      expect(text).toContain("Total params: 815");
      expect(text).toMatch(/head\/next-item\/output\/kernel\s+\(8, 31\)\s+248/);
    } finally {
      m.dispose();
    }
  });

  it("from the recipe (data read: vocabulary sizes), from the trained model directory and the run directory alike", async () => {
    const schemaOnly = await summarize(join(tmp, "mlp.yaml"), { schemaOnly: true });
    expect(schemaOnly.total).toBe(815);
    const fromRecipe = await summarize(join(tmp, "mlp.yaml"));
    const run = await trainRecipe(join(tmp, "mlp.yaml"), { out: join(tmp, "run-mlp"), stream: null, backend: "cpu" });
    const mj = JSON.parse(readFileSync(join(run.modelDir, "model.json"), "utf8"));
    const V = mj.weightsManifest[0].weights.find((w: { name: string }) => w.name === "inputs/embeddings/item_id").shape[0] as number;
    expect(fromRecipe.total).toBe(handCount(V));
    expect(mj.modelTopology.parameters).toBe(fromRecipe.total);
    const fromDir = await summarize(run.modelDir);
    const fromRun = await summarize(run.runDir);
    expect(fromDir.rows.map((r) => [r.path, r.outputShape, r.params])).toEqual(fromRecipe.rows.map((r) => [r.path, r.outputShape, r.params]));
    expect(fromRun.total).toBe(fromRecipe.total);
    expect(fromDir.source).toMatch(/model directory/);
    // the hook wrote the report of this run too
    expect(existsSync(join(run.runDir, "report.html"))).toBe(true);
  });

  it("child blocks are indented under their parent and counted once", async () => {
    const seq = smallRecipe({ ...MLP_OPTIONS, body: "    - type: sequential\n      blocks:\n        - {type: mlp, units: [16], name: a}\n        - {type: mlp, units: [8], name: b}\n" });
    writeFileSync(join(tmp, "seq.yaml"), seq);
    const s = await summarize(join(tmp, "seq.yaml"), { schemaOnly: true });
    expect(s.rows.map((r) => [r.path, r.name, r.depth, r.params])).toEqual([
      ["/model/inputs", "inputs", 0, 256],
      ["/model/body/0", "sequential", 0, 280],
      ["/model/body/0/blocks/0", "a", 1, 8 * 16 + 16],
      ["/model/body/0/blocks/1", "b", 1, 16 * 8 + 8],
      ["/model/head", "next-item", 0, 279],
    ]);
    expect(s.total).toBe(815);
    expect(s.rows[1]!.weights).toEqual([]); // the sequential block has no weight of its own
  });

  it("formats shapes like Keras", () => {
    expect(formatShape({ shape: [null, null, 64], dtype: "float32" })).toBe("(None, None, 64)");
    expect(formatShape({ shape: [5], dtype: "int32" })).toBe("(5,)");
    expect(formatShape({ a: { shape: [null, 2], dtype: "float32" }, b: { shape: [null], dtype: "int32" } })).toBe("a: (None, 2); b: (None,)");
  });
});

describe("summary of ALS", () => {
  it("users x f + items x f, from the recipe and from the trained model directory; the run's report", async () => {
    const fromRecipe = await summarize(join(tmp, "als.yaml"));
    const run = await trainRecipe(join(tmp, "als.yaml"), { out: join(tmp, "run-als"), stream: null, backend: "cpu" });
    const mj = JSON.parse(readFileSync(join(run.modelDir, "model.json"), "utf8"));
    const { users, items } = mj.modelTopology as { users: number; items: number };
    expect(users).toBe(40);
    expect(fromRecipe.total).toBe(users * 4 + items * 4);
    expect(fromRecipe.rows[0]!.weights.map((w) => [w.name, w.shape])).toEqual([["als/user_factors", [users, 4]], ["als/item_factors", [items, 4]]]);
    // the factor tables in weights.bin hold exactly that many float32 values
    const factorBytes = (mj.weightsManifest[0].weights as { name: string; shape: number[] }[]).filter((w) => w.name.endsWith("_factors")).reduce((a, w) => a + w.shape[0]! * w.shape[1]!, 0);
    expect(factorBytes).toBe(fromRecipe.total);
    const fromDir = await summarize(run.runDir);
    expect(fromDir.total).toBe(fromRecipe.total);
    expect(fromDir.kind).toBe("als");
    const html = readFileSync(join(run.runDir, "report.html"), "utf8");
    expect(html).toContain(`${(users * 4 + items * 4).toLocaleString("en-US")} parameters (als model)`);
    expect((html.match(/<circle/g) ?? []).length).toBeGreaterThan(0);
  });
});

describe("recblocks summary", () => {
  it("--json prints the summary; a folder without a model is invalid_model_dir", async () => {
    const out: string[] = [];
    const spyOut = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    const spyErr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["summary", join(tmp, "mlp.yaml"), "--schema-only", "--json"])).toBe(0);
      const s = JSON.parse(out.at(-1)!);
      expect(s.total).toBe(815);
      expect(s.rows).toHaveLength(3);
      mkdirSync(join(tmp, "empty"), { recursive: true });
      expect(await main(["summary", join(tmp, "empty"), "--json"])).toBe(1);
      expect(JSON.parse(out.at(-1)!).error.issues[0].code).toBe("invalid_model_dir");
      await expect(summarize(join(tmp, "missing.yaml"))).rejects.toBeInstanceOf(RecblocksError);
    } finally {
      spyOut.mockRestore();
      spyErr.mockRestore();
    }
  });
});
