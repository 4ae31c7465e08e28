import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GRUBlock } from "../../../blocks/recurrent/gru.js";
import { loadModelDir } from "../../../src/io/model-dir.js";
import { packageRoot } from "../../../src/paths.js";
import { loadRecipe } from "../../../src/recipe/load.js";
import { trainRecipe } from "../../../src/run/train.js";

const tmp = mkdtempSync(join(tmpdir(), "gru4rec-recipe-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = join(packageRoot(), "recipes", "gru4rec.yaml");

describe("recipes/gru4rec.yaml", () => {
  it("validates: causal masking, one GRU layer of 100 units, weight-tied next-item head, Adam", () => {
    const { recipe } = loadRecipe(file);
    const model = recipe.model as unknown as { inputs: { masking: { type: string } }; body: Record<string, unknown>[]; head: Record<string, unknown> };
    expect(model.inputs.masking.type).toBe("causal");
    expect(model.body).toHaveLength(1);
    expect(model.body[0]).toMatchObject({ type: "gru", units: 100, numLayers: 1, bidirectional: false });
    expect(model.head).toMatchObject({ type: "next-item-prediction", weightTying: true });
    expect((recipe.train as { optimizer: { type: string } }).optimizer.type).toBe("adam");
  });

  it("trains on tiny data: the loss falls, it beats most-popular, and the saved model loads", async () => {
    const r = await trainRecipe(file, { data: "builtin:synthetic?sessions=400&items=40&seed=3", epochs: 4, out: join(tmp, "run"), stream: null });
    expect(r.kind).toBe("next-item");
    const losses = (r.history as { loss: number }[]).map((h) => h.loss);
    expect(losses).toHaveLength(4);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[3]!).toBeLessThan(losses[0]!);
    expect(r.metrics["ndcg@20"]!).toBeGreaterThan(r.baseline["ndcg@20"]!);
    const loaded = loadModelDir(r.modelDir);
    expect(loaded.model.blocks[0]).toBeInstanceOf(GRUBlock);
    // 100 units = the item embedding size: the tied head needs no projection
    expect([...loaded.model.namedVariables().keys()].some((k) => k.includes("projection"))).toBe(false);
    loaded.model.dispose();
  });
});
