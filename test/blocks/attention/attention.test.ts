import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attentionBias, MASKED_SCORE, validFromLengths } from "../../../blocks/attention/masks.js";
import { mergeHeads, scaledDotProductAttention, splitHeads } from "../../../blocks/attention/multi-head.js";
import { geluExact, geluTanh, layerNorm, rmsNorm, variableFactory } from "../../../blocks/attention/ops.js";
import {
  createRelativeAttention, relativePositionEncoding, relativePositionValues, relativeSelfAttention, relShift,
} from "../../../blocks/attention/relative.js";
import { Rng } from "../../../src/engine/random.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const arr = (t: tf.Tensor) => Array.from(t.dataSync());
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `index ${i}: ${a[i]} vs ${b[i]}`).toBeLessThan(tol);
};

describe("masks", () => {
  it("validFromLengths pads right or left", () => {
    expect(Array.from(validFromLengths([2, 0, 3], 3))).toEqual([1, 1, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(validFromLengths([2, 5], 3, "left"))).toEqual([0, 1, 1, 1, 1, 1]);
  });

  it("host and tensor padding give the same bias; self is always visible", () => {
    const valid = validFromLengths([2, 3], 3);
    for (const causal of [false, true]) {
      const a = attentionBias({ kind: "host", valid }, 2, 3, causal)!;
      const t = tf.tensor2d(Array.from(valid), [2, 3], "float32");
      const b = attentionBias({ kind: "tensor", valid: t }, 2, 3, causal)!;
      expect(a.shape).toEqual([2, 3, 3]);
      expect(arr(b).map((v) => v + 0)).toEqual(arr(a));
      const M = MASKED_SCORE;
      // row 0 has length 2: key 2 is padding; query 2 (a pad) sees itself only besides real keys
      const expected0 = causal ? [0, M, M, 0, 0, M, 0, 0, 0] : [0, 0, M, 0, 0, M, 0, 0, 0];
      expect(arr(a).slice(0, 9)).toEqual(expected0);
      const expected1 = causal ? [0, M, M, 0, 0, M, 0, 0, 0] : [0, 0, 0, 0, 0, 0, 0, 0, 0];
      expect(arr(a).slice(9)).toEqual(expected1);
    }
    expect(attentionBias({ kind: "none" }, 2, 3, false)).toBeNull();
    expect(arr(attentionBias({ kind: "none" }, 2, 2, true)!)).toEqual([0, MASKED_SCORE, 0, 0]);
  });
});

describe("scaled dot-product attention", () => {
  // q, k, v for one head, one row, two steps; scale 1/sqrt(2)
  const q = () => tf.tensor4d([1, 0, 0, 1], [1, 1, 2, 2]);
  const k = () => tf.tensor4d([1, 0, 1, 1], [1, 1, 2, 2]);
  const v = () => tf.tensor4d([1, 2, 3, 4], [1, 1, 2, 2]);

  it("matches hand-computed weights", () => {
    const r = scaledDotProductAttention(q(), k(), v(), null, 0, { training: false }, { returnProbs: true });
    // row 0: scores [1, 1]/√2 -> [0.5, 0.5]; row 1: scores [0, 1]/√2 -> [1/(1+e^{1/√2}), 1/(1+e^{-1/√2})]
    const p1 = 1 / (1 + Math.exp(1 / Math.SQRT2));
    close(arr(r.probs!), [0.5, 0.5, p1, 1 - p1]);
    close(arr(r.context), [2, 3, p1 * 1 + (1 - p1) * 3, p1 * 2 + (1 - p1) * 4]);
  });

  it("causal bias hides the future exactly", () => {
    const bias = attentionBias({ kind: "none" }, 1, 2, true);
    const r = scaledDotProductAttention(q(), k(), v(), bias, 0, { training: false }, { returnProbs: true });
    const p1 = 1 / (1 + Math.exp(1 / Math.SQRT2));
    close(arr(r.probs!), [1, 0, p1, 1 - p1]);
    close(arr(r.context), [1, 2, p1 + (1 - p1) * 3, 2 * p1 + (1 - p1) * 4]);
  });

  it("splitHeads / mergeHeads round-trip and lay heads first", () => {
    const x = tf.range(0, 2 * 3 * 8).reshape([2, 3, 8]);
    const [a, b] = splitHeads(x, 2, 3, 2, 2);
    expect(a!.shape).toEqual([2, 2, 3, 2]);
    // part 0 head 1 of row 0 step 0 = columns 2..3
    expect(arr(a!.slice([1, 0, 0, 0], [1, 1, 1, 2]))).toEqual([2, 3]);
    // part 1 head 0 of row 1 step 2 = columns 4..5 of x[1, 2]
    expect(arr(b!.slice([0, 1, 2, 0], [1, 1, 1, 2]))).toEqual([16 + 24 + 4, 16 + 24 + 5]);
    const [only] = splitHeads(tf.range(0, 2 * 3 * 4).reshape([2, 3, 4]), 2, 3, 2, 1);
    expect(arr(mergeHeads(only!))).toEqual(arr(tf.range(0, 24)));
  });
});

describe("XLNet relative attention", () => {
  it("rel_shift on a hand-made matrix picks distance i - j", () => {
    const L = 3;
    const R = 2 * L;
    const vals: number[] = [];
    for (let i = 0; i < L; i++) for (let r = 0; r < R; r++) vals.push(10 * i + r);
    const out = relShift(tf.tensor4d(vals, [1, 1, L, R]), L);
    expect(out.shape).toEqual([1, 1, L, L]);
    // out[i][j] = x[i][L - i + j]; row r of pos_emb is distance L - r, so distance i - j
    expect(arr(out)).toEqual([3, 4, 5, 12, 13, 14, 21, 22, 23]);
  });

  it("position encodings: row r is distance L - r, [sin | cos] with inv_freq 1/10000^(2k/d)", () => {
    const v = relativePositionValues(2, 4);
    // rows: distances 2, 1, 0, -1
    close(v.slice(0, 4), [Math.sin(2), Math.sin(2 / 100), Math.cos(2), Math.cos(2 / 100)]);
    close(v.slice(8, 12), [0, 0, 1, 1]);
    close(v.slice(12, 16), [Math.sin(-1), Math.sin(-1 / 100), Math.cos(-1), Math.cos(-1 / 100)]);
  });

  it("equals the explicit formula ((q+r_w)·k_j + (q+r_r)·W_r pos(i-j)) / sqrt(dh)", () => {
    const B = 2, L = 4, D = 8, H = 2, dh = 4;
    const made = new Map<string, tf.Variable>();
    const p = createRelativeAttention(variableFactory(new Rng(3), made), "a", D, H, 0.5);
    const x = tf.randomNormal([B, L, D], 0, 1, "float32", 11) as tf.Tensor3D;
    const pos = relativePositionEncoding(L, D);
    const res = relativeSelfAttention(x, pos, p, null, { numHeads: H, attentionDropout: 0, returnProbs: true }, { training: false });
    // reference on the host
    const X = arr(x), W = arr(p.qkv.kernel), Wr = arr(p.r), rw = arr(p.rWBias), rr = arr(p.rRBias);
    const proj = (row: number[], col0: number) => Array.from({ length: D }, (_, c) => row.reduce((s, xv, d) => s + xv * W[d * 3 * D + col0 + c]!, 0));
    const P = (dist: number) => Array.from({ length: D }, (_, c) => {
      const half = D / 2, k = c % half;
      const ang = dist / Math.pow(10000, (2 * k) / D);
      return c < half ? Math.sin(ang) : Math.cos(ang);
    });
    const KR = (dist: number) => { const pe = P(dist); return Array.from({ length: D }, (_, c) => pe.reduce((s, v, d) => s + v * Wr[d * D + c]!, 0)); };
    const probs = arr(res.probs!);
    for (let b = 0; b < B; b++) {
      const rows = Array.from({ length: L }, (_, i) => X.slice((b * L + i) * D, (b * L + i + 1) * D));
      const Q = rows.map((r) => proj(r, 0)), K = rows.map((r) => proj(r, D));
      for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) {
        const s = Array.from({ length: L }, (_, j) => {
          const kr = KR(i - j);
          let t = 0;
          for (let d = 0; d < dh; d++) {
            const c = h * dh + d;
            t += (Q[i]![c]! + rw[h * dh + d]!) * K[j]![c]! + (Q[i]![c]! + rr[h * dh + d]!) * kr[c]!;
          }
          return t / Math.sqrt(dh);
        });
        const m = Math.max(...s), e = s.map((z) => Math.exp(z - m)), z = e.reduce((a, c) => a + c, 0);
        close(probs.slice(((h * B + b) * L + i) * L, ((h * B + b) * L + i + 1) * L), e.map((v) => v / z), 1e-5);
      }
    }
    expect(res.output.shape).toEqual([B, L, D]);
  });
});

describe("ops with hand-written gradients", () => {
  it("layerNorm value and gradient equal the autodiff composite", () => {
    const x = tf.randomNormal([3, 5], 0, 2, "float32", 1);
    const g = tf.variable(tf.randomNormal([5], 1, 0.3, "float32", 2));
    const b = tf.variable(tf.randomNormal([5], 0, 0.3, "float32", 3));
    const w = tf.randomNormal([3, 5], 0, 1, "float32", 4);
    const ref = (xx: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 0.03))), g), b);
    };
    close(arr(layerNorm(x, { gamma: g, beta: b }, 0.03)), arr(ref(x)), 1e-5);
    const gradMine = tf.variableGrads(() => tf.sum(tf.mul(layerNorm(x, { gamma: g, beta: b }, 0.03), w)) as tf.Scalar, [g, b]);
    const gradRef = tf.variableGrads(() => tf.sum(tf.mul(ref(x), w)) as tf.Scalar, [g, b]);
    for (const n of Object.keys(gradRef.grads)) close(arr(gradMine.grads[n]!), arr(gradRef.grads[n]!), 1e-4);
    const dxMine = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx, { gamma: g, beta: b }, 0.03), w)))(x);
    const dxRef = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(ref(xx), w)))(x);
    close(arr(dxMine), arr(dxRef), 1e-4);
  });

  it("exact gelu: values x·Φ(x) and its gradient", () => {
    const x = tf.tensor1d([-3, -1, -0.5, 0, 0.5, 1, 3]);
    const Phi = (z: number) => 0.5 * (1 + erf(z / Math.SQRT2));
    close(arr(geluExact(x)), arr(x).map((z) => z * Phi(z)), 1e-5);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(geluExact(t)))(x);
    close(arr(dx), arr(x).map((z) => Phi(z) + z * Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI)), 1e-5);
    // tanh approximation stays within 1e-3 of the exact one on this range
    close(arr(geluTanh(x)), arr(geluExact(x)), 1e-3);
  });

  it("rmsNorm divides by the root mean square", () => {
    const y = rmsNorm(tf.tensor2d([[3, 4]]), { gamma: tf.variable(tf.tensor1d([1, 2])) }, 0);
    const rms = Math.sqrt((9 + 16) / 2);
    close(arr(y), [3 / rms, 8 / rms]);
  });
});

// Abramowitz-Stegun 7.1.26 is not precise enough for a reference; use a series / continued form.
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x);
  if (a < 3) { let sum = 0, term = a, n = 0; while (Math.abs(term) > 1e-16 && n < 200) { sum += term / (2 * n + 1); n++; term = -term * a * a / n; } return s * 2 / Math.sqrt(Math.PI) * sum; }
  return s * (1 - Math.exp(-a * a) / (a * Math.sqrt(Math.PI)) * (1 - 1 / (2 * a * a)));
}

afterAll(() => undefined);
