import { describe, expect, it } from "vitest";
import { alsDefaults } from "../../../blocks/factorization/config.js";
import { csrFromTriplets } from "../../../blocks/factorization/csr.js";
import { fitAls, mulberry32, rowSystems } from "../../../blocks/factorization/als-trainer.js";
import {
  SolverScratch, buildRowSystem, cgRow, choleskyInPlace, choleskyRow, choleskySolve, gramTfjs, gramTyped,
} from "../../../blocks/factorization/linalg.js";

describe("dense linear algebra", () => {
  it("Cholesky factors and solves a hand-computed system", () => {
    // A = [[4,2],[2,3]] = L L^T with L = [[2,0],[1,sqrt(2)]]; A x = [2, 1] has x = [0.5, 0]
    const A = Float64Array.from([4, 2, 2, 3]);
    expect(choleskyInPlace(A, 2)).toBe(true);
    expect(A[0]).toBeCloseTo(2, 12);
    expect(A[2]).toBeCloseTo(1, 12);
    expect(A[3]).toBeCloseTo(Math.SQRT2, 12);
    const x = choleskySolve(A, [2, 1], 2, new Float64Array(2));
    expect(x[0]).toBeCloseTo(0.5, 12);
    expect(x[1]).toBeCloseTo(0, 12);
    expect(choleskyInPlace(Float64Array.from([1, 2, 2, 1]), 2)).toBe(false); // indefinite
  });

  it("gramTyped equals a hand-computed Y^T Y and TF.js's matMul", () => {
    const Y = Float64Array.from([1, 2, 3, 4, 5, 6]); // 3 x 2
    const G = gramTyped(Y, 3, 2);
    expect(Array.from(G)).toEqual([1 + 9 + 25, 2 + 12 + 30, 2 + 12 + 30, 4 + 16 + 36]);
    const rand = mulberry32(1);
    const big = Float64Array.from({ length: 50 * 7 }, () => rand() - 0.5);
    const a = gramTyped(big, 50, 7);
    const b = gramTfjs(big, 50, 7);
    for (let k = 0; k < 49; k++) expect(b[k]).toBeCloseTo(a[k]!, 4);
  });

  it("the weighted row system matches a brute-force build (f not a multiple of 4 too)", () => {
    for (const f of [8, 6]) {
      const rand = mulberry32(f);
      const ni = 12;
      const Y = Float64Array.from({ length: ni * f }, () => rand() - 0.5);
      const m = csrFromTriplets(1, ni, [0, 0, 0], [1, 5, 9], [1, 3, 2]);
      const sys = rowSystems(m, { ...alsDefaults(), values: "value", alpha: 2 });
      const sc = new SolverScratch(f);
      const G = gramTyped(Y, ni, f);
      buildRowSystem(sys, 0, Y, G, f, sc);
      for (let a = 0; a < f; a++) {
        for (let c = 0; c <= a; c++) {
          let want = G[a * f + c]! + (a === c ? 0.01 : 0);
          for (const [i, r] of [[1, 1], [5, 3], [9, 2]] as const) want += 2 * r * Y[i * f + a]! * Y[i * f + c]!; // c - 1 = alpha r
          expect(sc.A[a * f + c]).toBeCloseTo(want, 10);
        }
        let b = 0;
        for (const [i, r] of [[1, 1], [5, 3], [9, 2]] as const) b += (1 + 2 * r) * Y[i * f + a]!;
        expect(sc.b[a]).toBeCloseTo(b, 10);
      }
    }
  });

  it("conjugate gradient converges to the exact (Cholesky) solution as steps grow", () => {
    const f = 16;
    const ni = 40;
    const rand = mulberry32(3);
    const Y = Float64Array.from({ length: ni * f }, () => rand());
    const m = csrFromTriplets(1, ni, [0, 0, 0, 0, 0], [0, 3, 7, 20, 33], [1, 4, 2, 1, 7]);
    const sys = rowSystems(m, { ...alsDefaults(), values: "value", alpha: 1, regularization: 0.1 });
    const G = gramTyped(Y, ni, f);
    const exact = new Float64Array(f);
    expect(choleskyRow(sys, 0, exact, Y, G, f, new SolverScratch(f))).toBe(true);
    const errors: number[] = [];
    for (const steps of [1, 2, 4, 8, 16, 32]) {
      const x = new Float64Array(f); // cold start
      cgRow(sys, 0, x, Y, G, f, steps, new SolverScratch(f));
      errors.push(Math.sqrt(x.reduce((s, v, a) => s + (v - exact[a]!) ** 2, 0)));
    }
    for (let j = 1; j < errors.length; j++) expect(errors[j]!).toBeLessThanOrEqual(errors[j - 1]! * 1.0001);
    expect(errors[0]!).toBeGreaterThan(1e-3);
    expect(errors[errors.length - 1]!).toBeLessThan(1e-8);
    // warm start from the exact answer stays there
    const warm = Float64Array.from(exact);
    cgRow(sys, 0, warm, Y, G, f, 3, new SolverScratch(f));
    for (let a = 0; a < f; a++) expect(warm[a]).toBeCloseTo(exact[a]!, 9);
  });

  it("the exact solver recovers a known low-rank matrix (explicit feedback, fully observed)", () => {
    const nu = 30;
    const ni = 20;
    const rank = 3;
    const rand = mulberry32(11);
    const U = Array.from({ length: nu * rank }, () => rand() * 2 - 1);
    const V = Array.from({ length: ni * rank }, () => rand() * 2 - 1);
    const r: number[] = [];
    const c: number[] = [];
    const v: number[] = [];
    for (let u = 0; u < nu; u++) {
      for (let i = 0; i < ni; i++) {
        let s = 0;
        for (let a = 0; a < rank; a++) s += U[u * rank + a]! * V[i * rank + a]!;
        r.push(u);
        c.push(i);
        v.push(s);
      }
    }
    const R = csrFromTriplets(nu, ni, r, c, v);
    const cfg = { ...alsDefaults(), feedback: "explicit" as const, values: "value" as const, factors: rank, regularization: 1e-9,
      solver: "cholesky" as const, iterations: 200, initialization: "normal" as const, initScale: 1 };
    const fit = fitAls(R, cfg);
    let maxErr = 0;
    for (let k = 0; k < v.length; k++) {
      let s = 0;
      for (let a = 0; a < rank; a++) s += fit.userFactors[r[k]! * rank + a]! * fit.itemFactors[c[k]! * rank + a]!;
      maxErr = Math.max(maxErr, Math.abs(s - v[k]!));
    }
    expect(maxErr).toBeLessThan(1e-4);
  });
});
