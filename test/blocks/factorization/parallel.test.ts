import { describe, expect, it } from "vitest";
import { fitAlsParallel, partitionRows } from "../../../blocks/factorization/als-parallel.js";
import { fitAls, rowSystems } from "../../../blocks/factorization/als-trainer.js";
import { alsDefaults } from "../../../blocks/factorization/config.js";
import { syntheticInteractions, toCsr } from "../../../blocks/factorization/interactions.js";

describe("ALS on worker threads", () => {
  const ui = toCsr(syntheticInteractions({ users: 200, items: 90, seed: 4 }));

  it("gives exactly the single-thread factors (CG and Cholesky)", async () => {
    for (const solver of ["cg", "cholesky"] as const) {
      const cfg = { ...alsDefaults(), factors: 6, iterations: 3, solver, computeLoss: true };
      const one = fitAls(ui, cfg, { kernels: "js" }); // workers run the typed-array kernels
      const two = await fitAlsParallel(ui, cfg, 2);
      expect(Array.from(two.userFactors)).toEqual(Array.from(one.userFactors));
      expect(Array.from(two.itemFactors)).toEqual(Array.from(one.itemFactors));
      expect(two.history.map((h) => h.loss)).toEqual(one.history.map((h) => h.loss));
    }
  });

  it("partitions rows into contiguous ranges covering every row", () => {
    const sys = rowSystems(ui, alsDefaults());
    const b = partitionRows(sys, 3, 8, "cg");
    expect(b[0]).toBe(0);
    expect(b[b.length - 1]).toBe(200);
    expect(b).toHaveLength(4);
    for (let j = 1; j < b.length; j++) expect(b[j]!).toBeGreaterThanOrEqual(b[j - 1]!);
  });
});
