import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { RecblocksError } from "../../../src/errors/issue.js";
import { packageRoot, sharedDataDir } from "../../../src/paths.js";
import { type AlsRecipe, loadAlsModel, trainAlsFromRecipe } from "../../../blocks/factorization/recipe.js";

const tmp = mkdtempSync(join(tmpdir(), "als-recipe-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const readRecipe = (name: string): AlsRecipe => parse(readFileSync(join(packageRoot(), "recipes", name), "utf8")) as AlsRecipe;

describe("ALS recipes", () => {
  it("recipes/als.yaml trains on builtin:synthetic, beats most-popular, saves a loadable model", async () => {
    const recipe = readRecipe("als.yaml");
    const lines: string[] = [];
    const out = join(tmp, "als");
    const r = await trainAlsFromRecipe(recipe, { recipeFile: join(packageRoot(), "recipes", "als.yaml"), outDir: out, iterations: 6,
      progress: { write: (s: string) => lines.push(s) } });
    expect(r.history).toHaveLength(6);
    expect(lines.filter((l) => /iteration \d+\/6/.test(l))).toHaveLength(6);
    expect(r.metrics["ndcg@10"]!).toBeGreaterThan(r.baseline["ndcg@10"]! * 1.5);
    expect(Object.keys(r.metrics).sort()).toEqual(["hitrate@10", "map@10", "ndcg@10", "precision@10"]);
    const m = loadAlsModel(out);
    expect(m.config.factors).toBe(32);
    expect(m.metrics["ndcg@10"]).toBe(r.metrics["ndcg@10"]);
    expect(JSON.parse(readFileSync(join(out, "recipe.json"), "utf8")).model.iterations).toBe(6);
    expect(m.recommend("1", { k: 10 }).items).toHaveLength(10);
  });

  it("recipe mistakes are located issues", async () => {
    const recipe = readRecipe("als.yaml");
    await expect(trainAlsFromRecipe({ ...recipe, model: { ...recipe.model, factors: 0 } }, { progress: null }))
      .rejects.toThrowError(RecblocksError);
    try {
      await trainAlsFromRecipe({ ...recipe, data: { ...recipe.data, train: "no/such/file.tsv" } }, { progress: null });
    } catch (e) {
      expect((e as RecblocksError).issues[0]).toMatchObject({ code: "data_not_found", path: "/data/train" });
    }
    try {
      await trainAlsFromRecipe({ ...recipe, data: { ...recipe.data, split: { type: "random" } } }, { progress: null });
    } catch (e) {
      expect((e as RecblocksError).issues[0]).toMatchObject({ code: "unsupported_split", path: "/data/split/type" });
    }
  });

  // Full ml-100k training takes a few seconds: opt in with RECBLOCKS_ALS_ML100K=1 (bench/als.ts measures it too).
  const ml = existsSync(join(sharedDataDir(), "ml-100k", "u.data"));
  it.skipIf(!ml || !process.env.RECBLOCKS_ALS_ML100K)("recipes/als-ml100k.yaml beats most-popular on HR@10 and NDCG@10", async () => {
    const file = join(packageRoot(), "recipes", "als-ml100k.yaml");
    const r = await trainAlsFromRecipe(readRecipe("als-ml100k.yaml"), { recipeFile: file, progress: null });
    expect(r.data).toMatchObject({ users: 943, items: 1682, trainInteractions: 99057, testUsers: 943 });
    expect(r.metrics["hitrate@10"]!).toBeGreaterThan(0.13);
    expect(r.metrics["ndcg@10"]!).toBeGreaterThan(r.baseline["ndcg@10"]!);
    expect(r.baseline["hitrate@10"]).toBeCloseTo(0.0859, 4);
  });
});
