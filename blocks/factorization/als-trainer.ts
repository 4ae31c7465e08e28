/**
 * Alternating least squares: implicit (Hu, Koren, Volinsky 2008) and explicit feedback,
 * conjugate-gradient (Takacs et al. 2011, as the implicit library) or exact Cholesky row solves.
 * Factors are Float64Array during training; per-row loops run on typed arrays, Y^T Y on typed
 * arrays or TF.js (see `gram`).
 */
import { RecblocksError } from "../../src/errors/issue.js";
import type { AlsConfig } from "./config.js";
import { type Csr, csrTranspose } from "./csr.js";
import { type RowSystems, SolverScratch, cgRow, choleskyRow, gramTfjs, gramTyped } from "./linalg.js";
import { AlsWasm } from "./wasm/kernels.js";

/** A seeded PRNG (mulberry32), uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Initial factors as the schema's `initialization` describes. */
export function initFactors(rows: number, f: number, cfg: Pick<AlsConfig, "initialization" | "initScale">, rand: () => number): Float64Array {
  const X = new Float64Array(rows * f);
  if (cfg.initialization === "uniform") {
    for (let i = 0; i < X.length; i++) X[i] = rand() * cfg.initScale;
    return X;
  }
  for (let u = 0; u < rows; u++) {
    let norm = 0;
    for (let a = 0; a < f; a++) {
      // Box-Muller
      const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      X[u * f + a] = z;
      norm += z * z;
    }
    const s = norm > 0 ? cfg.initScale / Math.sqrt(norm) : 0;
    for (let a = 0; a < f; a++) X[u * f + a]! *= s;
  }
  return X;
}

type SolveConfig = Pick<AlsConfig, "feedback" | "alpha" | "confidence" | "values" | "regularization" | "regularizationScaling">;

/**
 * Turns the raw values of a CSR (users x items or items x users) into the row systems' weights,
 * targets and per-row lambdas.
 */
export function rowSystems(m: Csr, cfg: SolveConfig): RowSystems {
  const nnz = m.indptr[m.rows]!;
  const weight = new Float64Array(nnz);
  const target = new Float64Array(nnz);
  const lambda = new Float64Array(m.rows);
  const implicit = cfg.feedback === "implicit";
  for (let u = 0; u < m.rows; u++) {
    let count = 0;
    for (let k = m.indptr[u]!; k < m.indptr[u + 1]!; k++) {
      const raw = m.values[k]!;
      const r = cfg.values === "binary" ? (raw === 0 ? 0 : Math.sign(raw)) : raw;
      if (implicit) {
        if (r === 0) continue; // no effect (Spark)
        const c = cfg.confidence === "one-plus-alpha" ? 1 + cfg.alpha * Math.abs(r) : cfg.alpha * Math.abs(r);
        weight[k] = c - 1;
        target[k] = r > 0 ? c : 0;
        if (r > 0) count++;
      } else {
        weight[k] = 1;
        target[k] = r;
        count++;
      }
    }
    lambda[u] = cfg.regularizationScaling === "interactions" ? cfg.regularization * count : cfg.regularization;
  }
  return { rows: m.rows, indptr: m.indptr, indices: m.indices, weight, target, lambda };
}

export interface IterationRecord {
  iteration: number;
  seconds: number;
  loss?: number;
}

export interface FitOptions {
  /** Where Y^T Y is computed: typed-array loops (default) or one TF.js matMul on the active backend. */
  gram?: "typed" | "tfjs";
  /** Called after every iteration (progress bars, logs). */
  onIteration?: (rec: IterationRecord, total: number) => void;
  /** Start from these factors instead of a fresh initialisation (warm start). */
  initial?: { userFactors: Float64Array; itemFactors: Float64Array };
  /** Overrides cfg.iterations. */
  iterations?: number;
  /**
   * Per-row kernels: WebAssembly SIMD (blocks/factorization/wasm) or typed-array loops. "auto"
   * (default) takes WebAssembly when it is available and the number of factors is even.
   */
  kernels?: "auto" | "wasm" | "js";
}

export interface FitResult {
  userFactors: Float64Array;
  itemFactors: Float64Array;
  history: IterationRecord[];
}

/** Solves every row of `sys` against fixed Y, writing X. */
export function solveHalf(
  sys: RowSystems, X: Float64Array, Y: Float64Array, yRows: number, f: number,
  cfg: Pick<AlsConfig, "feedback" | "solver" | "cgSteps">, gram: "typed" | "tfjs" = "typed",
  side = "row", scratch?: SolverScratch, gramOut?: Float64Array,
): void {
  let G: Float64Array | null = null;
  if (cfg.feedback === "implicit") {
    G = gram === "tfjs" ? gramTfjs(Y, yRows, f) : gramTyped(Y, yRows, f);
    if (gramOut) {
      gramOut.set(G);
      G = gramOut;
    }
  }
  const sc = scratch ?? new SolverScratch(f);
  if (cfg.solver === "cg") {
    for (let u = 0; u < sys.rows; u++) cgRow(sys, u, X, Y, G, f, cfg.cgSteps, sc);
  } else {
    for (let u = 0; u < sys.rows; u++) {
      if (!choleskyRow(sys, u, X, Y, G, f, sc)) {
        throw new RecblocksError("ALS training", [{
          code: "als_not_positive_definite", path: `/model/regularization`,
          message: `The normal equations of ${side} ${u} are not positive definite, so the exact solve failed.`,
          hint: "Increase model.regularization (or use confidence \"one-plus-alpha\": with c = alpha*r < 1 the weights c - 1 are negative).",
        }]);
      }
    }
  }
  for (let i = 0; i < X.length; i++) {
    if (!Number.isFinite(X[i]!)) {
      throw new RecblocksError("ALS training", [{
        code: "als_not_finite", path: "/model", message: `A ${side} factor became ${X[i]} during training.`,
        hint: "Increase model.regularization, lower model.alpha, or check the data's values for huge numbers.",
      }]);
    }
  }
}

/**
 * The training loss. Implicit: [sum_u sum_i c_ui (p_ui - x_u.y_i)^2 + sum_u lambda_u |x_u|^2 +
 * sum_i lambda_i |y_i|^2] / (sum over all pairs of c), as the implicit library. Explicit: the
 * regularised squared error over observed ratings divided by their number.
 */
export function alsLoss(
  usys: RowSystems, isys: RowSystems, X: Float64Array, Y: Float64Array, nu: number, ni: number, f: number,
  feedback: "implicit" | "explicit",
): number {
  let loss = 0;
  let norm: number;
  if (feedback === "implicit") {
    const GX = gramTyped(X, nu, f);
    const GY = gramTyped(Y, ni, f);
    for (let k = 0; k < f * f; k++) loss += GX[k]! * GY[k]!; // sum over all pairs of (x.y)^2
    norm = nu * ni;
  } else {
    norm = 0;
  }
  for (let u = 0; u < nu; u++) {
    const xo = u * f;
    for (let k = usys.indptr[u]!; k < usys.indptr[u + 1]!; k++) {
      const yo = usys.indices[k]! * f;
      let pred = 0;
      for (let a = 0; a < f; a++) pred += X[xo + a]! * Y[yo + a]!;
      const w = usys.weight[k]!;
      const t = usys.target[k]!;
      if (feedback === "implicit") {
        // c (p - pred)^2 - pred^2 = t (1 - 2 pred) + w pred^2   (p in {0,1}, t = c p, w = c - 1)
        loss += t * (1 - 2 * pred) + w * pred * pred;
        norm += w;
      } else {
        loss += (t - pred) * (t - pred);
        norm += 1;
      }
    }
  }
  for (let u = 0; u < nu; u++) {
    let s = 0;
    for (let a = 0; a < f; a++) s += X[u * f + a]! ** 2;
    loss += usys.lambda[u]! * s;
  }
  for (let i = 0; i < ni; i++) {
    let s = 0;
    for (let a = 0; a < f; a++) s += Y[i * f + a]! ** 2;
    loss += isys.lambda[i]! * s;
  }
  return loss / Math.max(norm, 1);
}

/** Trains user and item factors on `userItems` (users x items, raw values). */
export function fitAls(userItems: Csr, cfg: AlsConfig, opts: FitOptions = {}): FitResult {
  const f = cfg.factors;
  const nu = userItems.rows;
  const ni = userItems.cols;
  const itemUsers = csrTranspose(userItems);
  let scratch: SolverScratch | undefined;
  let gramBuf: Float64Array | undefined;
  let usys = rowSystems(userItems, cfg);
  let isys = rowSystems(itemUsers, cfg);
  let X: Float64Array;
  let Y: Float64Array;
  if (opts.initial) {
    X = Float64Array.from(opts.initial.userFactors);
    Y = Float64Array.from(opts.initial.itemFactors);
  } else {
    const rand = mulberry32(cfg.seed);
    X = initFactors(nu, f, cfg, rand);
    Y = initFactors(ni, f, cfg, rand);
  }
  // WebAssembly kernels: everything they touch is copied into their memory once
  let wasm: AlsWasm | null = null;
  const want = opts.kernels ?? "auto";
  if (want !== "js" && f % 2 === 0) {
    const nnz = userItems.indptr[nu]!;
    let maxRow = 0;
    for (const m of [userItems, itemUsers]) for (let r = 0; r < m.rows; r++) maxRow = Math.max(maxRow, m.indptr[r + 1]! - m.indptr[r]!);
    const bytes = 8 * (nu + ni) * f + 2 * (4 * (nu + ni + 2) + 20 * nnz + 8 * (nu + ni)) + 8 * (2 * f * f + 4 * f + 2 * f * maxRow) + 4096;
    wasm = AlsWasm.create(bytes);
    if (wasm) {
      const into = (s: RowSystems): RowSystems => {
        const o = { rows: s.rows, indptr: wasm!.i32(s.indptr.length), indices: wasm!.i32(s.indices.length), weight: wasm!.f64(s.weight.length),
          target: wasm!.f64(s.target.length), lambda: wasm!.f64(s.lambda.length) };
        o.indptr.set(s.indptr); o.indices.set(s.indices); o.weight.set(s.weight); o.target.set(s.target); o.lambda.set(s.lambda);
        return o;
      };
      usys = into(usys);
      isys = into(isys);
      const X2 = wasm.f64(X.length);
      X2.set(X);
      X = X2;
      const Y2 = wasm.f64(Y.length);
      Y2.set(Y);
      Y = Y2;
      scratch = new SolverScratch(f, wasm, maxRow);
      gramBuf = wasm.f64(f * f);
    } else if (want === "wasm") {
      throw new Error("ALS: WebAssembly SIMD kernels are not available here");
    }
  }
  const total = opts.iterations ?? cfg.iterations;
  const history: IterationRecord[] = [];
  for (let it = 1; it <= total; it++) {
    const t0 = performance.now();
    solveHalf(usys, X, Y, ni, f, cfg, opts.gram, "user", scratch, gramBuf);
    solveHalf(isys, Y, X, nu, f, cfg, opts.gram, "item", scratch, gramBuf);
    const rec: IterationRecord = { iteration: it, seconds: (performance.now() - t0) / 1000 };
    if (cfg.computeLoss) rec.loss = alsLoss(usys, isys, X, Y, nu, ni, f, cfg.feedback);
    history.push(rec);
    opts.onIteration?.(rec, total);
  }
  return wasm ? { userFactors: Float64Array.from(X), itemFactors: Float64Array.from(Y), history } : { userFactors: X, itemFactors: Y, history };
}
