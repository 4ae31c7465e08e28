/**
 * Dense linear algebra for ALS on typed arrays (Float64Array, row-major).
 *
 * A row system is the normal equations of one user (or item) u against the fixed factors Y of the
 * other side:   (G + lambda_u I + sum_k w_k y_k y_k^T) x_u = sum_k t_k y_k
 * over u's observed entries k. Implicit feedback: G = Y^T Y, w = c - 1, t = c * p.
 * Explicit feedback: G = 0, w = 1, t = r.
 */
import * as tf from "@tensorflow/tfjs";
import type { AlsWasm } from "./wasm/kernels.js";

/** The per-row data of one half-sweep: CSR structure plus per-entry weight/target and per-row lambda. */
export interface RowSystems {
  rows: number;
  indptr: Int32Array;
  indices: Int32Array;
  weight: Float64Array; // w_k
  target: Float64Array; // t_k
  lambda: Float64Array; // [rows]
}

/** sum_a A[ao + a] * B[bo + a] for a < n (4 accumulators: about 1.7x a plain loop in V8). */
export function dot(A: Float64Array, ao: number, B: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n4 = n - (n & 3);
  let a = 0;
  for (; a < n4; a += 4) {
    s0 += A[ao + a]! * B[bo + a]!;
    s1 += A[ao + a + 1]! * B[bo + a + 1]!;
    s2 += A[ao + a + 2]! * B[bo + a + 2]!;
    s3 += A[ao + a + 3]! * B[bo + a + 3]!;
  }
  for (; a < n; a++) s0 += A[ao + a]! * B[bo + a]!;
  return s0 + s1 + s2 + s3;
}

/** out[oo + a] += d * A[ao + a] for a < n. */
export function axpy(d: number, A: Float64Array, ao: number, out: Float64Array, oo: number, n: number): void {
  const n4 = n - (n & 3);
  let a = 0;
  for (; a < n4; a += 4) {
    out[oo + a]! += d * A[ao + a]!;
    out[oo + a + 1]! += d * A[ao + a + 1]!;
    out[oo + a + 2]! += d * A[ao + a + 2]!;
    out[oo + a + 3]! += d * A[ao + a + 3]!;
  }
  for (; a < n; a++) out[oo + a]! += d * A[ao + a]!;
}

/** G = Y^T Y (f x f, full symmetric) for Y [n x f], on typed arrays. */
export function gramTyped(Y: Float64Array, n: number, f: number, out?: Float64Array): Float64Array {
  const G = out ?? new Float64Array(f * f);
  G.fill(0);
  for (let i = 0; i < n; i++) {
    const o = i * f;
    for (let a = 0; a < f; a++) {
      const ya = Y[o + a]!;
      if (ya === 0) continue;
      axpy(ya, Y, o, G, a * f, a + 1);
    }
  }
  for (let a = 0; a < f; a++) for (let b = 0; b < a; b++) G[b * f + a] = G[a * f + b]!;
  return G;
}

/** G = Y^T Y computed by TF.js (one matMul on the active backend, float32), returned as float64. */
export function gramTfjs(Y: Float64Array | Float32Array, n: number, f: number): Float64Array {
  // read back outside tidy (tidy would walk the returned typed array element by element)
  const g = tf.tidy(() => {
    const y = tf.tensor2d(Y instanceof Float32Array ? Y : Float32Array.from(Y), [n, f]);
    return tf.matMul(y, y, true, false);
  });
  try {
    return Float64Array.from(g.dataSync() as Float32Array);
  } finally {
    g.dispose();
  }
}

/**
 * Cholesky factorisation in place of the lower triangle of A (f x f, row-major): A = L L^T.
 * Returns false when A is not (numerically) positive definite.
 */
export function choleskyInPlace(A: Float64Array, f: number): boolean {
  for (let j = 0; j < f; j++) {
    const jf = j * f;
    let s = A[jf + j]!;
    for (let k = 0; k < j; k++) {
      const l = A[jf + k]!;
      s -= l * l;
    }
    if (!(s > 0)) return false;
    const d = Math.sqrt(s);
    A[jf + j] = d;
    const inv = 1 / d;
    for (let i = j + 1; i < f; i++) {
      const iF = i * f;
      A[iF + j] = (A[iF + j]! - dot(A, iF, A, jf, j)) * inv;
    }
  }
  return true;
}

/** Solves L L^T x = b given the factor from choleskyInPlace; writes x into `out` (may alias b). */
export function choleskySolve(L: Float64Array, b: ArrayLike<number>, f: number, out: Float64Array): Float64Array {
  for (let i = 0; i < f; i++) {
    const iF = i * f;
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= L[iF + k]! * out[k]!;
    out[i] = s / L[iF + i]!;
  }
  for (let i = f - 1; i >= 0; i--) {
    let s = out[i]!;
    for (let k = i + 1; k < f; k++) s -= L[k * f + i]! * out[k]!;
    out[i] = s / L[i * f + i]!;
  }
  return out;
}

/**
 * Scratch buffers reused across rows. With `wasm` (and the largest row length `maxRow`) they live
 * in the kernels' memory and the SIMD kernels are used.
 */
export class SolverScratch {
  readonly A: Float64Array;
  readonly b: Float64Array;
  readonly r: Float64Array;
  readonly p: Float64Array;
  readonly Ap: Float64Array;
  private T: Float64Array;
  private W: Float64Array;
  readonly wasm: AlsWasm | null;
  constructor(readonly f: number, wasm?: AlsWasm | null, maxRow = 0) {
    this.wasm = wasm ?? null;
    const mk = (n: number): Float64Array => (this.wasm ? this.wasm.f64(n) : new Float64Array(n));
    this.A = mk(f * f);
    this.b = mk(f);
    this.r = mk(f);
    this.p = mk(f);
    this.Ap = mk(f);
    this.T = this.wasm ? mk(f * maxRow) : new Float64Array(0);
    this.W = this.wasm ? mk(f * maxRow) : new Float64Array(0);
  }
  /** A buffer of at least f * n numbers (grown as needed). */
  gather(n: number): Float64Array {
    if (this.T.length < this.f * n) this.T = new Float64Array(this.f * Math.max(n, 64) * 2);
    return this.T;
  }
  gatherWeighted(n: number): Float64Array {
    if (this.W.length < this.f * n) this.W = new Float64Array(this.f * Math.max(n, 64) * 2);
    return this.W;
  }
}

/** out = (G + lambda I + sum_k w_k y_k y_k^T) v for row u (G may be null: explicit feedback). */
export function applyA(
  sys: RowSystems, u: number, Y: Float64Array, G: Float64Array | null, f: number, v: Float64Array, out: Float64Array,
  wasm?: AlsWasm | null,
): void {
  if (wasm) {
    wasm.k.apply_a(u, v.byteOffset, out.byteOffset, f, sys.indptr.byteOffset, sys.indices.byteOffset, sys.weight.byteOffset,
      sys.lambda.byteOffset, Y.byteOffset, G ? G.byteOffset : 0);
    return;
  }
  const lam = sys.lambda[u]!;
  if (G) {
    for (let a = 0; a < f; a++) out[a] = lam * v[a]! + dot(G, a * f, v, 0, f);
  } else {
    for (let a = 0; a < f; a++) out[a] = lam * v[a]!;
  }
  const s = sys.indptr[u]!;
  const e = sys.indptr[u + 1]!;
  const { weight, indices } = sys;
  for (let k = s; k < e; k++) {
    const w = weight[k]!;
    if (w === 0) continue;
    const yo = indices[k]! * f;
    const d = w * dot(Y, yo, v, 0, f);
    axpy(d, Y, yo, out, 0, f);
  }
}

/**
 * Conjugate gradient on row u's system, warm-started from X[u] (updated in place): at most `steps`
 * steps, stopping early when the squared residual falls below 1e-20 (as the implicit library).
 */
export function cgRow(
  sys: RowSystems, u: number, X: Float64Array, Y: Float64Array, G: Float64Array | null, f: number,
  steps: number, sc: SolverScratch,
): void {
  const xo = u * f;
  const x = X.subarray(xo, xo + f);
  const { r, p, Ap } = sc;
  if (sys.indptr[u + 1] === sys.indptr[u] && sys.lambda[u] === 0 && !G) {
    x.fill(0);
    return;
  }
  applyA(sys, u, Y, G, f, x, Ap, sc.wasm);
  for (let a = 0; a < f; a++) r[a] = -Ap[a]!;
  for (let k = sys.indptr[u]!, e = sys.indptr[u + 1]!; k < e; k++) {
    const t = sys.target[k]!;
    if (t === 0) continue;
    const yo = sys.indices[k]! * f;
    axpy(t, Y, yo, r, 0, f);
  }
  let rsold = 0;
  for (let a = 0; a < f; a++) {
    p[a] = r[a]!;
    rsold += r[a]! * r[a]!;
  }
  if (rsold < 1e-20) return;
  for (let it = 0; it < steps; it++) {
    applyA(sys, u, Y, G, f, p, Ap, sc.wasm);
    let pAp = 0;
    for (let a = 0; a < f; a++) pAp += p[a]! * Ap[a]!;
    if (!(pAp > 0)) return; // not positive definite along p (or zero): keep the current x
    const alpha = rsold / pAp;
    let rsnew = 0;
    for (let a = 0; a < f; a++) {
      x[a]! += alpha * p[a]!;
      const ra = r[a]! - alpha * Ap[a]!;
      r[a] = ra;
      rsnew += ra * ra;
    }
    if (rsnew < 1e-20) return;
    const beta = rsnew / rsold;
    for (let a = 0; a < f; a++) p[a] = r[a]! + beta * p[a]!;
    rsold = rsnew;
  }
}

/**
 * Builds row u's matrix (lower triangle) and right-hand side into sc.A / sc.b. The weighted Gram
 * sum_k w_k y_k y_k^T is computed from the row's factors gathered column-wise, in 4 x 4 register
 * tiles (8 loads per 16 multiply-adds: about 3x the rank-1-update loop in V8).
 */
export function buildRowSystem(
  sys: RowSystems, u: number, Y: Float64Array, G: Float64Array | null, f: number, sc: SolverScratch,
): void {
  const { A, b } = sc;
  if (sc.wasm && (f & 1) === 0) {
    const n = sys.indptr[u + 1]! - sys.indptr[u]!;
    sc.wasm.k.build_row(u, A.byteOffset, b.byteOffset, sc.gather(n).byteOffset, sc.gatherWeighted(n).byteOffset, f, sys.indptr.byteOffset,
      sys.indices.byteOffset, sys.weight.byteOffset, sys.target.byteOffset, sys.lambda.byteOffset, Y.byteOffset, G ? G.byteOffset : 0);
    return;
  }
  if (G) A.set(G);
  else A.fill(0);
  const lam = sys.lambda[u]!;
  for (let a = 0; a < f; a++) A[a * f + a]! += lam;
  b.fill(0);
  const s = sys.indptr[u]!;
  const e = sys.indptr[u + 1]!;
  const n = e - s;
  const T = sc.gather(n); // T[a*n + j] = y_{k_j}[a]
  const W = sc.gatherWeighted(n); // W[a*n + j] = w_{k_j} y_{k_j}[a]
  for (let j = 0; j < n; j++) {
    const k = s + j;
    const yo = sys.indices[k]! * f;
    const w = sys.weight[k]!;
    const t = sys.target[k]!;
    for (let a = 0; a < f; a++) {
      const y = Y[yo + a]!;
      T[a * n + j] = y;
      W[a * n + j] = w * y;
    }
    if (t !== 0) axpy(t, Y, yo, b, 0, f);
  }
  const f4 = f - (f & 3);
  for (let a0 = 0; a0 < f4; a0 += 4) {
    const wa0 = a0 * n;
    const wa1 = wa0 + n;
    const wa2 = wa1 + n;
    const wa3 = wa2 + n;
    for (let c0 = 0; c0 <= a0; c0 += 4) {
      const tc0 = c0 * n;
      const tc1 = tc0 + n;
      const tc2 = tc1 + n;
      const tc3 = tc2 + n;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let j = 0; j < n; j++) {
        const x0 = W[wa0 + j]!;
        const x1 = W[wa1 + j]!;
        const x2 = W[wa2 + j]!;
        const x3 = W[wa3 + j]!;
        const y0 = T[tc0 + j]!;
        const y1 = T[tc1 + j]!;
        const y2 = T[tc2 + j]!;
        const y3 = T[tc3 + j]!;
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
        s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
        s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
      }
      const r0 = a0 * f + c0;
      const r1 = r0 + f;
      const r2 = r1 + f;
      const r3 = r2 + f;
      A[r0]! += s00; A[r0 + 1]! += s01; A[r0 + 2]! += s02; A[r0 + 3]! += s03;
      A[r1]! += s10; A[r1 + 1]! += s11; A[r1 + 2]! += s12; A[r1 + 3]! += s13;
      A[r2]! += s20; A[r2 + 1]! += s21; A[r2 + 2]! += s22; A[r2 + 3]! += s23;
      A[r3]! += s30; A[r3 + 1]! += s31; A[r3 + 2]! += s32; A[r3 + 3]! += s33;
    }
  }
  // rows beyond the last full tile (f not a multiple of 4)
  for (let a = f4; a < f; a++) for (let c = 0; c <= a; c++) A[a * f + c]! += dot(W, a * n, T, c * n, n);
}

/**
 * Exact solve of row u's system by Cholesky; writes X[u]. Returns false when the matrix is not
 * positive definite (X[u] is then left unchanged).
 */
export function choleskyRow(
  sys: RowSystems, u: number, X: Float64Array, Y: Float64Array, G: Float64Array | null, f: number, sc: SolverScratch,
): boolean {
  const xo = u * f;
  if (sys.indptr[u + 1] === sys.indptr[u] && sys.lambda[u] === 0 && !G) {
    X.fill(0, xo, xo + f);
    return true;
  }
  buildRowSystem(sys, u, Y, G, f, sc);
  if (sc.wasm ? sc.wasm.k.cholesky(sc.A.byteOffset, f) === 0 : !choleskyInPlace(sc.A, f)) return false;
  choleskySolve(sc.A, sc.b, f, sc.r);
  X.set(sc.r, xo);
  return true;
}
