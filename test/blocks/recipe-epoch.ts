/** Shared by recipe tests: train a recipe one short epoch on tiny synthetic data (to a temp dir). */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { trainRecipe } from "../../src/run/train.js";

/** Trains `recipeFile` one epoch on builtin:synthetic (300 sessions, 40 items); checks the loss is finite and positive. */
export async function trainOneShortEpoch(recipeFile: string): Promise<{ loss: number; modelDir: string }> {
  const tmp = mkdtempSync(join(tmpdir(), "recblocks-epoch-"));
  const r = await trainRecipe(recipeFile, { data: "builtin:synthetic?sessions=300&items=40&seed=3", epochs: 1, out: join(tmp, "run"), stream: null });
  const losses = (r.history as { loss: number }[]).map((h) => h.loss);
  expect(losses).toHaveLength(1);
  expect(Number.isFinite(losses[0]!)).toBe(true);
  expect(losses[0]!).toBeGreaterThan(0);
  return { loss: losses[0]!, modelDir: r.modelDir };
}
