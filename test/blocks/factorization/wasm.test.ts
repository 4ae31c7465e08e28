import { describe, expect, it } from "vitest";
import { fitAls, mulberry32, rowSystems } from "../../../blocks/factorization/als-trainer.js";
import { alsDefaults } from "../../../blocks/factorization/config.js";
import { csrFromTriplets } from "../../../blocks/factorization/csr.js";
import { syntheticInteractions, toCsr } from "../../../blocks/factorization/interactions.js";
import { SolverScratch, applyA, buildRowSystem, choleskyInPlace, gramTyped } from "../../../blocks/factorization/linalg.js";
import { AlsWasm } from "../../../blocks/factorization/wasm/kernels.js";

describe.skipIf(!AlsWasm.available())("WebAssembly SIMD kernels", () => {
  it("apply_a, gram_lower and cholesky equal the typed-array kernels (odd lengths too)", () => {
    for (const f of [8, 10]) {
      const rand = mulberry32(f);
      const ni = 15;
      const w = AlsWasm.create(1 << 20)!;
      const Yjs = Float64Array.from({ length: ni * f }, () => rand() - 0.5);
      const Y = w.f64(ni * f);
      Y.set(Yjs);
      const m = csrFromTriplets(2, ni, [0, 0, 0, 1, 1, 0, 0], [1, 5, 9, 2, 3, 11, 14], [1, 3, 2, 5, 1, 1, 2]);
      const js = rowSystems(m, { ...alsDefaults(), values: "value", alpha: 0.7, regularization: 0.3 });
      const sys = { rows: js.rows, indptr: w.i32(3), indices: w.i32(7), weight: w.f64(7), target: w.f64(7), lambda: w.f64(2) };
      sys.indptr.set(js.indptr); sys.indices.set(js.indices); sys.weight.set(js.weight); sys.target.set(js.target); sys.lambda.set(js.lambda);
      const Gjs = gramTyped(Yjs, ni, f);
      const G = w.f64(f * f);
      G.set(Gjs);
      const vjs = Float64Array.from({ length: f }, () => rand());
      const v = w.f64(f);
      v.set(vjs);
      const outJs = new Float64Array(f);
      const out = w.f64(f);
      for (const u of [0, 1]) {
        applyA(js, u, Yjs, Gjs, f, vjs, outJs);
        applyA(sys, u, Y, G, f, v, out, w);
        for (let a = 0; a < f; a++) expect(out[a]).toBeCloseTo(outJs[a]!, 12);
        const scJs = new SolverScratch(f);
        const sc = new SolverScratch(f, w, 8);
        buildRowSystem(js, u, Yjs, Gjs, f, scJs);
        buildRowSystem(sys, u, Y, G, f, sc);
        for (let a = 0; a < f; a++) for (let c = 0; c <= a; c++) expect(sc.A[a * f + c]).toBeCloseTo(scJs.A[a * f + c]!, 12);
        expect(w.k.cholesky(sc.A.byteOffset, f)).toBe(1);
        expect(choleskyInPlace(scJs.A, f)).toBe(true);
        for (let a = 0; a < f; a++) for (let c = 0; c <= a; c++) expect(sc.A[a * f + c]).toBeCloseTo(scJs.A[a * f + c]!, 10);
      }
      const bad = w.f64(4);
      bad.set([1, 2, 2, 1]);
      expect(w.k.cholesky(bad.byteOffset, 2)).toBe(0);
    }
  });

  it("training with the WebAssembly kernels matches the typed-array kernels", () => {
    const ui = toCsr(syntheticInteractions({ users: 150, items: 70, seed: 9 }));
    for (const solver of ["cg", "cholesky"] as const) {
      const cfg = { ...alsDefaults(), factors: 10, iterations: 4, solver, computeLoss: true };
      const a = fitAls(ui, cfg, { kernels: "wasm" });
      const b = fitAls(ui, cfg, { kernels: "js" });
      for (let k = 0; k < a.userFactors.length; k++) expect(a.userFactors[k]).toBeCloseTo(b.userFactors[k]!, 8);
      for (let j = 0; j < 4; j++) expect(a.history[j]!.loss).toBeCloseTo(b.history[j]!.loss!, 10);
    }
  });
});
