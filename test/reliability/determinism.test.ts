/**
 * Determinism: the same recipe and seed train to identical metrics and weights, twice in a row, on
 * the native TensorFlow backend and on the pure-JS cpu backend (dropout on, so the seeded RNG matters).
 * Across processes the resume test (resume.test.ts) shows the same on tensorflow.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trainRecipe, type TrainRunResult } from "../../src/run/train.js";
import { tinyRecipe, writeRecipe } from "./helpers.js";

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "rb-det-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const strip = (r: TrainRunResult) => ({ metrics: r.metrics, history: (r.history as { seconds?: number; examplesPerSecond?: number; labelsPerSecond?: number }[]).map(({ seconds: _s, examplesPerSecond: _e, labelsPerSecond: _l, ...rest }) => rest) });

describe("same seed, same result", () => {
  // the pure-JS cpu backend is slow: a smaller run there
  for (const [backend, sessions, epochs] of [["tensorflow", 300, 2], ["cpu", 120, 1]] as const) {
    it(`${backend}: two runs give identical metrics, losses and weights; another seed does not`, async () => {
      const recipe = writeRecipe(tmp, `${backend}.yaml`, tinyRecipe({ epochs, sessions, dropout: 0.2 }));
      const runs: TrainRunResult[] = [];
      for (const [i, seed] of [[0, 7], [1, 7], [2, 8]] as const) runs.push(await trainRecipe(recipe, { out: join(tmp, `${backend}-${i}`), backend, seed, stream: null }));
      expect(runs[0]!.engine.backend).toBe(backend);
      expect(strip(runs[1]!)).toEqual(strip(runs[0]!));
      const w = runs.map((r) => readFileSync(join(r.modelDir, "weights.bin")));
      expect(w[1]!.equals(w[0]!)).toBe(true);
      expect(w[2]!.equals(w[0]!)).toBe(false);
    }, 120_000);
  }
});
