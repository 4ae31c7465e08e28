/**
 * Every recipe in recipes/ that runs on built-in data trains one short epoch in a test: the ones below
 * here (builtin:synthetic, 300 sessions, 40 items, one epoch, through `trainRecipe` as `recblocks train`),
 * the others in the dedicated test named in DEDICATED, which must exist and name the recipe. A recipe
 * added to recipes/ without either fails this file. Recipes on ../shared/data (the *-diginetica and
 * *-ml100k ones) and on example CSVs are validated elsewhere (semantic-validate.test.ts) and trained in bench/.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { trainOneShortEpoch } from "../blocks/recipe-epoch.js";

const DIR = join(process.cwd(), "recipes");
/** Recipes with their own end-to-end training test. */
const DEDICATED: Record<string, string> = {
  "als.yaml": "test/blocks/factorization/recipe.test.ts",
  "gpt2-context-fusion.yaml": "test/blocks/core/post-context-fusion.test.ts",
  "gpt2-pretrained-item-vectors.yaml": "test/blocks/features/pretrained-embedding-features.test.ts",
  "gpt2-windows.yaml": "test/windows/windows.test.ts",
  "gru4rec.yaml": "test/blocks/recurrent/gru4rec-recipe.test.ts",
  "longformer-mlm.yaml": "test/blocks/sequence/longformer.test.ts",
  "stamp.yaml": "test/cli/train-recommend.test.ts",
  "t4r-inputs.yaml": "test/blocks/features/inputs-breadth.test.ts",
};
const builtin = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml") && /^\s*train: builtin:synthetic/m.test(readFileSync(join(DIR, f), "utf8")))
  .sort();
const here = builtin.filter((f) => !(f in DEDICATED));

describe("every recipe on built-in data trains one short epoch", () => {
  it("finds the recipes, and each dedicated test exists and names its recipe", () => {
    expect(builtin.length).toBeGreaterThanOrEqual(15);
    expect(here).toEqual(expect.arrayContaining(["albert-mlm.yaml", "gpt2-clm.yaml", "llama-clm.yaml", "xlnet-plm.yaml", "xlnet-rtd.yaml"]));
    for (const [recipe, test] of Object.entries(DEDICATED)) {
      expect(builtin, recipe).toContain(recipe);
      expect(existsSync(test), test).toBe(true);
      expect(readFileSync(test, "utf8"), `${test} names ${recipe}`).toContain(recipe.replace(/\.yaml$/, ""));
    }
  });

  it.each(here)("%s", async (recipe) => {
    const { loss } = await trainOneShortEpoch(join("recipes", recipe));
    // 40 items: a model that learned nothing scores about ln(41) per label (xlnet-rtd adds a discriminator term)
    expect(loss, recipe).toBeLessThan(Math.log(41) + 1.5);
  }, 120_000);
});
