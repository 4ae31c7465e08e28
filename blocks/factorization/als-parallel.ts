/**
 * Per-row ALS solves spread over worker threads. Factors, row systems and Y^T Y live in
 * SharedArrayBuffers; each half-sweep the rows are cut into contiguous ranges of equal estimated
 * work, the main thread solves one range and each worker another. The workers run the same
 * kernels as the main thread: their source is built from linalg.ts's functions (Function.prototype
 * .toString), so the same code runs under tsx, vitest and the compiled package.
 */
import { Worker } from "node:worker_threads";
import { RecblocksError } from "../../src/errors/issue.js";
import { type FitOptions, type FitResult, type IterationRecord, alsLoss, initFactors, mulberry32, rowSystems } from "./als-trainer.js";
import type { AlsConfig } from "./config.js";
import { type Csr, csrTranspose } from "./csr.js";
import {
  type RowSystems, SolverScratch, applyA, axpy, buildRowSystem, cgRow, choleskyInPlace, choleskyRow, choleskySolve, dot, gramTfjs, gramTyped,
} from "./linalg.js";

function workerSource(): string {
  const parts = [dot, axpy, choleskyInPlace, choleskySolve, SolverScratch, applyA, cgRow, buildRowSystem, choleskyRow].map((fn) => fn.toString());
  return `"use strict";
const { parentPort } = require("node:worker_threads");
const __name = (f) => f;
${parts.join("\n")}
let S = null;
parentPort.on("message", (m) => {
  if (m.type === "init") { S = m; S.scratch = new SolverScratch(m.f); return; }
  const sys = m.half === 0 ? S.usys : S.isys;
  const X = m.half === 0 ? S.X : S.Y;
  const Y = m.half === 0 ? S.Y : S.X;
  const G = m.useG ? S.G : null;
  let failed = -1;
  for (let u = m.start; u < m.end; u++) {
    if (m.solver === "cg") cgRow(sys, u, X, Y, G, S.f, m.steps, S.scratch);
    else if (!choleskyRow(sys, u, X, Y, G, S.f, S.scratch)) { failed = u; break; }
  }
  parentPort.postMessage({ failed });
});
`;
}

function shared<T extends Float64Array | Int32Array>(src: T): T {
  const Ctor = src.constructor as { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number };
  const out = new Ctor(new SharedArrayBuffer(Math.max(1, src.length) * Ctor.BYTES_PER_ELEMENT));
  out.set(src as never);
  return src.length === 0 ? (out.subarray(0, 0) as T) : out;
}

function sharedSystems(s: RowSystems): RowSystems {
  return { rows: s.rows, indptr: shared(s.indptr), indices: shared(s.indices), weight: shared(s.weight), target: shared(s.target), lambda: shared(s.lambda) };
}

/** Cuts rows [0, rows) into `parts` contiguous ranges of about equal cost. */
export function partitionRows(sys: RowSystems, parts: number, f: number, solver: "cg" | "cholesky"): number[] {
  const cost = (u: number): number => {
    const n = sys.indptr[u + 1]! - sys.indptr[u]!;
    return solver === "cg" ? f * f + 2 * f * n : (f * f * n) / 2 + (f * f * f) / 6 + f * f;
  };
  let total = 0;
  for (let u = 0; u < sys.rows; u++) total += cost(u);
  const bounds = [0];
  let acc = 0;
  for (let u = 0; u < sys.rows && bounds.length < parts; u++) {
    acc += cost(u);
    if (acc >= (total * bounds.length) / parts) bounds.push(u + 1);
  }
  while (bounds.length < parts) bounds.push(sys.rows);
  bounds.push(sys.rows);
  return bounds;
}

/** fitAls on `threads` threads (the main thread and threads - 1 workers). */
export async function fitAlsParallel(userItems: Csr, cfg: AlsConfig, threads: number, opts: FitOptions = {}): Promise<FitResult> {
  const f = cfg.factors;
  const nu = userItems.rows;
  const ni = userItems.cols;
  const usys = sharedSystems(rowSystems(userItems, cfg));
  const isys = sharedSystems(rowSystems(csrTranspose(userItems), cfg));
  let X0: Float64Array;
  let Y0: Float64Array;
  if (opts.initial) {
    X0 = opts.initial.userFactors;
    Y0 = opts.initial.itemFactors;
  } else {
    const rand = mulberry32(cfg.seed);
    X0 = initFactors(nu, f, cfg, rand);
    Y0 = initFactors(ni, f, cfg, rand);
  }
  const X = shared(X0);
  const Y = shared(Y0);
  const G = shared(new Float64Array(f * f));
  const src = workerSource();
  const workers = Array.from({ length: threads - 1 }, () => new Worker(src, { eval: true }));
  const pending = new Map<Worker, (failed: number) => void>();
  const errors: Error[] = [];
  for (const w of workers) {
    w.on("message", (m: { failed: number }) => {
      const r = pending.get(w);
      pending.delete(w);
      r?.(m.failed);
    });
    w.on("error", (e) => {
      errors.push(e);
      const r = pending.get(w);
      pending.delete(w);
      r?.(-2);
    });
    w.postMessage({ type: "init", f, usys, isys, X, Y, G });
  }
  const sc = new SolverScratch(f);
  const bounds = [partitionRows(usys, threads, f, cfg.solver), partitionRows(isys, threads, f, cfg.solver)];
  const half = async (h: 0 | 1): Promise<void> => {
    const sys = h === 0 ? usys : isys;
    const out = h === 0 ? X : Y;
    const fixed = h === 0 ? Y : X;
    const useG = cfg.feedback === "implicit";
    if (useG) G.set(opts.gram === "tfjs" ? gramTfjs(fixed, h === 0 ? ni : nu, f) : gramTyped(fixed, h === 0 ? ni : nu, f));
    const b = bounds[h]!;
    const waits = workers.map((w, j) => new Promise<number>((resolve) => {
      pending.set(w, resolve);
      w.postMessage({ type: "solve", half: h, start: b[j + 1], end: b[j + 2], solver: cfg.solver, steps: cfg.cgSteps, useG });
    }));
    let failed = -1;
    for (let u = b[0]!; u < b[1]!; u++) {
      if (cfg.solver === "cg") cgRow(sys, u, out, fixed, useG ? G : null, f, cfg.cgSteps, sc);
      else if (!choleskyRow(sys, u, out, fixed, useG ? G : null, f, sc)) { failed = u; break; }
    }
    for (const r of await Promise.all(waits)) if (failed < 0 && r !== -1) failed = r;
    if (errors.length) throw errors[0];
    const side = h === 0 ? "user" : "item";
    if (failed >= 0) {
      throw new RecblocksError("ALS training", [{ code: "als_not_positive_definite", path: "/model/regularization",
        message: `The normal equations of ${side} ${failed} are not positive definite, so the exact solve failed.`,
        hint: "Increase model.regularization (or use confidence \"one-plus-alpha\")." }]);
    }
    for (let i = 0; i < out.length; i++) {
      if (!Number.isFinite(out[i]!)) {
        throw new RecblocksError("ALS training", [{ code: "als_not_finite", path: "/model", message: `A ${side} factor became ${out[i]} during training.`,
          hint: "Increase model.regularization, lower model.alpha, or check the data's values for huge numbers." }]);
      }
    }
  };
  const total = opts.iterations ?? cfg.iterations;
  const history: IterationRecord[] = [];
  try {
    for (let it = 1; it <= total; it++) {
      const t0 = performance.now();
      await half(0);
      await half(1);
      const rec: IterationRecord = { iteration: it, seconds: (performance.now() - t0) / 1000 };
      if (cfg.computeLoss) rec.loss = alsLoss(usys, isys, X, Y, nu, ni, f, cfg.feedback);
      history.push(rec);
      opts.onIteration?.(rec, total);
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return { userFactors: Float64Array.from(X), itemFactors: Float64Array.from(Y), history };
}
