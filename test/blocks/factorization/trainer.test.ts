import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../../src/errors/issue.js";
import { alsLoss, fitAls, rowSystems } from "../../../blocks/factorization/als-trainer.js";
import { alsDefaults, resolveAlsConfig } from "../../../blocks/factorization/config.js";
import { csrFromTriplets, csrTranspose } from "../../../blocks/factorization/csr.js";
import { syntheticInteractions, toCsr } from "../../../blocks/factorization/interactions.js";

describe("ALS training", () => {
  it("config: defaults come from the schema, mistakes are located issues", () => {
    const cfg = resolveAlsConfig({ type: "als" });
    expect(cfg).toMatchObject({ factors: 64, regularization: 0.01, alpha: 1, iterations: 15, solver: "cg", cgSteps: 3, confidence: "one-plus-alpha" });
    try {
      resolveAlsConfig({ type: "als", factor: 8, solver: "lu", alpha: -1 });
      expect.unreachable();
    } catch (e) {
      const issues = (e as RecblocksError).issues;
      expect(issues.map((i) => [i.code, i.path]).sort()).toEqual([
        ["invalid_enum", "/model/solver"], ["out_of_range", "/model/alpha"], ["unknown_key", "/model/factor"],
      ]);
      expect(issues.find((i) => i.code === "unknown_key")!.hint).toContain('"factors"');
    }
  });

  it("row systems: Spark and implicit confidences, negative values, ALS-WR lambda", () => {
    const m = csrFromTriplets(2, 3, [0, 0, 1, 1], [0, 2, 1, 2], [2, -1, 3, 0]);
    const spark = rowSystems(m, { ...alsDefaults(), values: "value", alpha: 0.5, regularization: 0.1, regularizationScaling: "interactions" });
    // c = 1 + 0.5|r|: r=2 -> c=2 (w 1, t 2); r=-1 -> c=1.5 (w 0.5, t 0); r=3 -> c=2.5; r=0 -> no effect
    expect(Array.from(spark.weight)).toEqual([1, 0.5, 1.5, 0]);
    expect(Array.from(spark.target)).toEqual([2, 0, 2.5, 0]);
    expect(Array.from(spark.lambda)).toEqual([0.1, 0.1]); // one positive each
    const imp = rowSystems(m, { ...alsDefaults(), values: "value", alpha: 2, confidence: "alpha" });
    // c = 2|r|: 4, 2, 6
    expect(Array.from(imp.weight)).toEqual([3, 1, 5, 0]);
    expect(Array.from(imp.target)).toEqual([4, 0, 6, 0]);
    expect(Array.from(imp.lambda)).toEqual([0.01, 0.01]);
    const exp = rowSystems(m, { ...alsDefaults(), feedback: "explicit", values: "value", regularizationScaling: "interactions", regularization: 1 });
    expect(Array.from(exp.target)).toEqual([2, -1, 3, 0]);
    expect(Array.from(exp.lambda)).toEqual([2, 2]);
  });

  it("the implicit loss equals a brute-force sum over all pairs", () => {
    const m = csrFromTriplets(2, 3, [0, 0, 1], [0, 2, 1], [1, 1, 1]);
    const cfg = { ...alsDefaults(), factors: 2, alpha: 3, regularization: 0.5 };
    const X = Float64Array.from([0.1, 0.2, -0.3, 0.4]);
    const Y = Float64Array.from([0.5, -0.1, 0.2, 0.3, -0.4, 0.6]);
    const got = alsLoss(rowSystems(m, cfg), rowSystems(csrTranspose(m), cfg), X, Y, 2, 3, 2, "implicit");
    let loss = 0;
    let norm = 0;
    const obs = new Set(["0,0", "0,2", "1,1"]);
    for (let u = 0; u < 2; u++) {
      for (let i = 0; i < 3; i++) {
        const pred = X[2 * u]! * Y[2 * i]! + X[2 * u + 1]! * Y[2 * i + 1]!;
        const p = obs.has(`${u},${i}`) ? 1 : 0;
        const c = p ? 1 + 3 : 1;
        loss += c * (p - pred) ** 2;
        norm += c;
      }
    }
    loss += 0.5 * (X.reduce((s, v) => s + v * v, 0) + Y.reduce((s, v) => s + v * v, 0));
    expect(got).toBeCloseTo(loss / norm, 12);
  });

  it("the implicit loss decreases every iteration (exact and CG solvers)", () => {
    const d = syntheticInteractions({ users: 300, items: 150, seed: 3 });
    for (const solver of ["cholesky", "cg"] as const) {
      const cfg = { ...alsDefaults(), factors: 12, iterations: 8, solver, computeLoss: true, regularization: 0.05 };
      const fit = fitAls(toCsr(d), cfg);
      const losses = fit.history.map((h) => h.loss!);
      expect(losses).toHaveLength(8);
      for (let j = 1; j < losses.length; j++) expect(losses[j]!).toBeLessThan(losses[j - 1]!);
    }
  });

  it("the same seed gives identical factors; another seed does not", () => {
    const d = toCsr(syntheticInteractions({ users: 50, items: 40, seed: 1 }));
    const cfg = { ...alsDefaults(), factors: 4, iterations: 2 };
    const a = fitAls(d, cfg);
    const b = fitAls(d, cfg);
    const c = fitAls(d, { ...cfg, seed: 7 });
    expect(Array.from(a.userFactors)).toEqual(Array.from(b.userFactors));
    expect(Array.from(a.userFactors)).not.toEqual(Array.from(c.userFactors));
  });

  it("a non-positive-definite exact solve is a located error, not NaN", () => {
    // one item, two factors and lambda 0: Y^T Y has rank 1, so the users' systems are singular
    const m = csrFromTriplets(2, 1, [0, 1], [0, 0], [1, 1]);
    const cfg = { ...alsDefaults(), factors: 2, regularization: 0, solver: "cholesky" as const,
      initialization: "normal" as const, initScale: 1, iterations: 3 };
    expect(() => fitAls(m, cfg)).toThrowError(RecblocksError);
    try {
      fitAls(m, cfg);
    } catch (e) {
      expect((e as RecblocksError).issues[0]!.code).toMatch(/als_not_(positive_definite|finite)/);
    }
  });
});
