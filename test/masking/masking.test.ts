import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import {
  maskBatch,
  mulberry32,
  registerMaskingScheme,
  resolveMaskingConfig,
  baseResult,
  type MaskResult,
  type RandomSource,
} from "../../src/masking/index.js";

/** A random source that returns a fixed script of numbers and fails if asked for more. */
function scripted(values: number[]): RandomSource & { used: () => number } {
  let i = 0;
  return {
    next() {
      if (i >= values.length) throw new Error("scripted rng exhausted");
      return values[i++]!;
    },
    used: () => i,
  };
}
const noRng: RandomSource = {
  next() {
    throw new Error("this mode must not draw random numbers");
  },
};

const L = 5;
// right padding: a normal row, a full row, an empty row, a single-item row
const RIGHT = Int32Array.from([3, 4, 5, 0, 0, 6, 7, 8, 9, 2, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]);
const LEFT = Int32Array.from([0, 0, 3, 4, 5, 0, 0, 0, 0, 0]);

const rows = (a: ArrayLike<number>, len: number) => {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += len) out.push(Array.from(a).slice(i, i + len));
  return out;
};
function view(r: MaskResult) {
  return {
    inputIds: rows(r.inputIds, r.seqLen),
    labels: rows(r.labels, r.seqLen),
    maskedPositions: rows(r.maskedPositions, r.seqLen),
    maskInput: rows(r.maskInput, r.seqLen),
  };
}

describe("causal masking", () => {
  it("train: every real position but the last predicts the next item; last item and padding are [MASK]", () => {
    const r = maskBatch({ type: "causal" }, RIGHT, 4, L, "train", noRng);
    expect(r.seqLen).toBe(5);
    expect(r.appendMask).toBe(false);
    expect(view(r)).toEqual({
      inputIds: [[3, 4, 5, 0, 0], [6, 7, 8, 9, 2], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]],
      labels: [[4, 5, 0, 0, 0], [7, 8, 9, 2, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskedPositions: [[1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskInput: [[0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    });
    expect(r.numLabels).toBe(6);
    expect(rows(r.validPositions, 5)).toEqual([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]);
    expect(r.readPositions).toBeUndefined();
  });

  it("eval (evalOnLastItemSeqOnly default): only the last item is a label, all real items stay visible", () => {
    const r = maskBatch({ type: "causal" }, RIGHT, 4, L, "eval", noRng);
    expect(view(r)).toEqual({
      inputIds: [[3, 4, 5, 0, 0], [6, 7, 8, 9, 2], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]],
      labels: [[0, 5, 0, 0, 0], [0, 0, 0, 2, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskedPositions: [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskInput: [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]],
    });
    expect(r.numLabels).toBe(2);
  });

  it("trainOnLastItemSeqOnly trains like eval; evalOnLastItemSeqOnly=false evaluates like train", () => {
    const a = maskBatch({ type: "causal", trainOnLastItemSeqOnly: true }, RIGHT, 4, L, "train", noRng);
    const b = maskBatch({ type: "causal" }, RIGHT, 4, L, "eval", noRng);
    expect(view(a)).toEqual(view(b));
    const c = maskBatch({ type: "causal", evalOnLastItemSeqOnly: false }, RIGHT, 4, L, "eval", noRng);
    const d = maskBatch({ type: "causal" }, RIGHT, 4, L, "train", noRng);
    expect(view(c)).toEqual(view(d));
  });

  it("inference: no labels, padding is [MASK], prediction read at the last real item", () => {
    const r = maskBatch({ type: "clm" }, RIGHT, 4, L, "inference", noRng);
    expect(Array.from(r.readPositions!)).toEqual([2, 4, 0, 0]);
    expect(r.numLabels).toBe(0);
    expect(view(r)).toEqual({
      inputIds: [[3, 4, 5, 0, 0], [6, 7, 8, 9, 2], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]],
      labels: [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskedPositions: [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]],
      maskInput: [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]],
    });
  });

  it("eval with prefix targets: inference layout with the given next item as the label", () => {
    const r = maskBatch({ type: "causal" }, RIGHT, 4, L, "eval", noRng, { targets: Int32Array.from([10, 11, 0, 12]) });
    expect(rows(r.labels, 5)).toEqual([[0, 0, 10, 0, 0], [0, 0, 0, 0, 11], [0, 0, 0, 0, 0], [12, 0, 0, 0, 0]]);
    expect(rows(r.maskedPositions, 5)).toEqual([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]);
    expect(r.numLabels).toBe(3);
  });

  it("left padding", () => {
    const tr = maskBatch({ type: "causal" }, LEFT, 2, L, "train", noRng);
    expect(view(tr)).toEqual({
      inputIds: [[0, 0, 3, 4, 5], [0, 0, 0, 0, 0]],
      labels: [[0, 0, 4, 5, 0], [0, 0, 0, 0, 0]],
      maskedPositions: [[0, 0, 1, 1, 0], [0, 0, 0, 0, 0]],
      maskInput: [[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]],
    });
    const ev = maskBatch({ type: "causal" }, LEFT, 2, L, "eval", noRng);
    expect(rows(ev.labels, 5)[0]).toEqual([0, 0, 0, 5, 0]);
    expect(rows(ev.maskInput, 5)[0]).toEqual([1, 1, 0, 0, 0]);
    const inf = maskBatch({ type: "causal" }, LEFT, 2, L, "inference", noRng);
    expect(Array.from(inf.readPositions!)).toEqual([4, 0]);
  });
});

describe("masked LM masking", () => {
  it("train: Bernoulli labels, one forced label, unmask one when all are labels (scripted draws)", () => {
    const ids = Int32Array.from([3, 4, 5, 0, 0, 6, 7, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const rng = scripted([
      // row 0 (n=3): Bernoulli draws, then the forced label: floor(0.7*3) = 2
      0.1, 0.9, 0.9, 0.7,
      // row 1 (n=2): both labelled, forced floor(0*2)=0 (already), all labelled -> unmask floor(0.6*2) = 1
      0.2, 0.3, 0.0, 0.6,
      // row 2 (n=1): not drawn, forced 0, all labelled -> unmask 0: no label left
      0.9, 0.5, 0.3,
      // row 3: empty, no draws
    ]);
    const r = maskBatch({ type: "masked", mlmProbability: 0.5 }, ids, 4, L, "train", rng);
    expect(rng.used()).toBe(11);
    expect(view(r)).toEqual({
      inputIds: [[0, 4, 0, 0, 0], [0, 7, 0, 0, 0], [9, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      labels: [[3, 0, 5, 0, 0], [6, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskedPositions: [[1, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      maskInput: [[1, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    });
    expect(r.numLabels).toBe(3);
    expect(rows(r.validPositions, 5)).toEqual([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]);
  });

  it("train on left padding uses the real positions", () => {
    const rng = scripted([0.9, 0.9, 0.9, 0.1]); // no Bernoulli label; forced floor(0.1*3)=0 -> position 2
    const r = maskBatch({ type: "mlm" }, LEFT, 2, L, "train", rng);
    expect(rows(r.labels, 5)).toEqual([[0, 0, 3, 0, 0], [0, 0, 0, 0, 0]]);
    expect(rows(r.inputIds, 5)).toEqual([[0, 0, 0, 4, 5], [0, 0, 0, 0, 0]]);
  });

  it("train, seeded: >= 1 label and >= 1 visible item in every row of length >= 2; rate close to p", () => {
    const B = 400;
    const LL = 20;
    const src = mulberry32(1);
    const ids = new Int32Array(B * LL);
    const lens: number[] = [];
    for (let b = 0; b < B; b++) {
      const n = 2 + Math.floor(src.next() * (LL - 1)); // 2..20
      lens.push(n);
      for (let t = 0; t < n; t++) ids[b * LL + t] = 1 + Math.floor(src.next() * 100);
    }
    const r = maskBatch({ type: "masked", mlmProbability: 0.3 }, ids, B, LL, "train", mulberry32(7));
    let labels = 0;
    let real = 0;
    for (let b = 0; b < B; b++) {
      let nl = 0;
      for (let t = 0; t < LL; t++) {
        const i = b * LL + t;
        if (r.labels[i]) {
          nl++;
          expect(r.labels[i]).toBe(ids[i]);
          expect(r.inputIds[i]).toBe(0);
          expect(r.maskInput[i]).toBe(1);
        } else {
          expect(r.inputIds[i]).toBe(ids[i]);
        }
      }
      expect(nl).toBeGreaterThanOrEqual(1);
      expect(nl).toBeLessThanOrEqual(lens[b]! - 1);
      labels += nl;
      real += lens[b]!;
    }
    expect(r.numLabels).toBe(labels);
    expect(labels / real).toBeGreaterThan(0.3);
    expect(labels / real).toBeLessThan(0.42);
    // same seed, same masks
    const src7 = mulberry32(7);
    const r2 = maskBatch({ type: "masked", mlmProbability: 0.3 }, ids, B, LL, "train", () => src7.next()); // a bare function works too
    expect(Array.from(r2.labels)).toEqual(Array.from(r.labels));
  });

  it("eval: the last item is the only label and is hidden", () => {
    const r = maskBatch({ type: "masked" }, RIGHT, 4, L, "eval", noRng);
    expect(view(r)).toEqual({
      inputIds: [[3, 4, 0, 0, 0], [6, 7, 8, 9, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
      labels: [[0, 0, 5, 0, 0], [0, 0, 0, 0, 2], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]],
      maskedPositions: [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]],
      maskInput: [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]],
    });
    expect(rows(r.validPositions, 5)[3]).toEqual([1, 0, 0, 0, 0]);
    const left = maskBatch({ type: "masked" }, LEFT, 2, L, "eval", noRng);
    expect(rows(left.labels, 5)).toEqual([[0, 0, 0, 0, 5], [0, 0, 0, 0, 0]]);
    expect(rows(left.inputIds, 5)).toEqual([[0, 0, 3, 4, 0], [0, 0, 0, 0, 0]]);
  });

  it("eval with evalOnLastItemSeqOnly=false: T4R's predict_all", () => {
    const r = maskBatch({ type: "masked", evalOnLastItemSeqOnly: false }, RIGHT, 4, L, "eval", noRng);
    expect(rows(r.labels, 5)).toEqual([[4, 5, 0, 0, 0], [7, 8, 9, 2, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]);
    expect(rows(r.inputIds, 5)).toEqual([[0, 0, 5, 0, 0], [0, 0, 0, 0, 2], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]]);
  });

  it("inference: a [MASK] is appended after the last item (seqLen L+1) and read there", () => {
    const r = maskBatch({ type: "masked" }, RIGHT, 4, L, "inference", noRng);
    expect(r.seqLen).toBe(6);
    expect(r.appendMask).toBe(true);
    expect(Array.from(r.readPositions!)).toEqual([3, 5, 0, 1]);
    expect(view(r)).toEqual({
      inputIds: [[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 2, 0], [0, 0, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0]],
      labels: [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
      maskedPositions: [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]],
      maskInput: [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]],
    });
    expect(rows(r.validPositions, 6)).toEqual([
      [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0],
    ]);
    const left = maskBatch({ type: "masked" }, LEFT, 2, L, "inference", noRng);
    expect(rows(left.inputIds, 6)).toEqual([[0, 0, 3, 4, 5, 0], [0, 0, 0, 0, 0, 0]]);
    expect(Array.from(left.readPositions!)).toEqual([5, 0]);
  });

  it("eval with prefix targets: appended [MASK] labelled with the target", () => {
    const r = maskBatch({ type: "masked" }, RIGHT, 4, L, "eval", noRng, { targets: Int32Array.from([10, 11, 0, 12]) });
    expect(r.seqLen).toBe(6);
    expect(rows(r.labels, 6)).toEqual([[0, 0, 0, 10, 0, 0], [0, 0, 0, 0, 0, 11], [0, 0, 0, 0, 0, 0], [0, 12, 0, 0, 0, 0]]);
    expect(r.numLabels).toBe(3);
  });
});

describe("masking configs", () => {
  it("fills defaults and maps aliases", () => {
    expect(resolveMaskingConfig({ type: "mlm" })).toEqual({ type: "masked", mlmProbability: 0.15, evalOnLastItemSeqOnly: true });
    expect(resolveMaskingConfig({ type: "clm" })).toEqual({ type: "causal", trainOnLastItemSeqOnly: false, evalOnLastItemSeqOnly: true });
  });

  it("reports every problem at once with JSON Pointers and did-you-mean", () => {
    try {
      resolveMaskingConfig({ type: "masked", mlmProbability: 1.5, mlmProb: 0.2 } as never, "/body/0/masking");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RecblocksError);
      const issues = (e as RecblocksError).issues;
      expect(issues.map((i) => [i.code, i.path])).toEqual([
        ["unknown_key", "/body/0/masking/mlmProb"],
        ["invalid_value", "/body/0/masking/mlmProbability"],
      ]);
      expect(issues[0]!.message).toContain('Did you mean "mlmProbability"');
    }
    try {
      resolveMaskingConfig({ type: "maskd" } as never);
      expect.unreachable();
    } catch (e) {
      const issue = (e as RecblocksError).issues[0]!;
      expect(issue.code).toBe("unknown_masking_type");
      expect(issue.message).toContain('Did you mean "masked"');
    }
  });

  it("rejects malformed batches with a clear message", () => {
    expect(() => maskBatch({ type: "causal" }, Int32Array.from([1, 0, 2]), 1, 3, "train", noRng)).toThrow(/padding \(0\) between/);
    expect(() => maskBatch({ type: "causal" }, Int32Array.from([1, 2]), 1, 3, "train", noRng)).toThrow(/expected B\*L/);
  });

  it("accepts new schemes through the registry (extension point for permutation LM / RTD)", () => {
    registerMaskingScheme<{ type: string; everyOther?: boolean }>({
      type: "test-every-other",
      aliases: [],
      defaults: { everyOther: true },
      check: () => [],
      mask(_cfg, ids, B, LL) {
        const r = baseResult(ids, B, LL);
        r.extras = { permMask: new Float32Array(B * LL * LL) };
        return r;
      },
    });
    const r = maskBatch({ type: "test-every-other" }, RIGHT, 4, L, "train", noRng);
    expect(r.extras!.permMask!.length).toBe(4 * 25);
    expect(() => registerMaskingScheme({ type: "mlm", aliases: [], defaults: {}, check: () => [], mask: () => r })).toThrow(/already registered/);
  });
});
