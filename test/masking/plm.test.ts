import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { permutationBiases, MASKED_SCORE } from "../../blocks/attention/masks.js";
import { TransformerBlock } from "../../blocks/sequence/transformer.js";
import { BlockContext, BlockError, CallContext, type SequenceBatchLike } from "../../src/core/index.js";
import { RecblocksError } from "../../src/errors/issue.js";
import {
  baseResult,
  maskBatch,
  mulberry32,
  resolveMaskingConfig,
  samplePlmSpans,
  type MaskResult,
  type RandomSource,
} from "../../src/masking/index.js";
import { Model } from "../../src/model/model.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

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
const rows = (a: ArrayLike<number>, len: number) => {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += len) out.push(Array.from(a).slice(i, i + len));
  return out;
};
/** permMask / targetMapping of row b as an L x L matrix. */
const matrix = (a: ArrayLike<number>, b: number, L: number) => rows(Array.from(a).slice(b * L * L, (b + 1) * L * L), L);
const eye = (L: number) => Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (i === j ? 1 : 0)));

describe("permutation LM: span sampling", () => {
  it("draws spans as Transformers4Rec (length, then start within the reserved context), clipped to the row", () => {
    // n = 10, plmProbability 1/3 (context = 3 x span), maxSpanLength 2
    const rng = scripted([0.6, 0.5, 0.1, 0.9, 0.99, 0.0]);
    // span 1+floor(0.6*2)=2, context 6, start 0+floor(0.5*5)=2 -> [2,4); cur 6
    // span 1, context 3, start 6+floor(0.9*3)=8 -> [8,9); cur 9
    // span 2, context 6, start 9+0 -> [9,11) clipped to [9,10); cur 15 -> stop
    expect(samplePlmSpans(10, 1 / 3, 2, rng)).toEqual([{ start: 2, length: 2 }, { start: 8, length: 1 }, { start: 9, length: 1 }]);
    expect(rng.used()).toBe(6);
  });

  it("every span is at most maxSpanLength long and inside the row (many seeds)", () => {
    const rng = mulberry32(3);
    for (let k = 0; k < 2000; k++) {
      const n = 1 + Math.floor(rng.next() * 40);
      const max = 1 + Math.floor(rng.next() * 6);
      const p = 0.05 + rng.next() * 0.95;
      for (const s of samplePlmSpans(n, p, max, rng)) {
        expect(s.length).toBeGreaterThanOrEqual(1);
        expect(s.length).toBeLessThanOrEqual(max);
        expect(s.start).toBeGreaterThanOrEqual(0);
        expect(s.start + s.length).toBeLessThanOrEqual(n);
      }
    }
  });
});

describe("permutation LM: training masks", () => {
  const cfg = { type: "permutation", plmProbability: 0.5, maxSpanLength: 2 } as const;
  // a right-padded row (5 items) and a left-padded row (3 items)
  const IDS = Int32Array.from([5, 6, 7, 8, 9, 0, 0, 0, 0, 3, 4, 2]);
  const L = 6;

  it("labels, inputs, perm mask and target mapping on hand-written rows", () => {
    const rng = scripted([
      // row 0 (n = 5): span 2 (context 4) at 0; span 1 (context 2) at 4 + 1 = 5 >= 5: dropped; order of [0, 1]: j = 1, no swap
      0.7, 0.0, 0.2, 0.9, 0.8,
      // row 1 (n = 3, starts at 3): span 2 (context 4) at 0 + floor(0.5 * 3) = 1 -> positions 4, 5; order of [4, 5]: j = 0, swap -> 5 first
      0.99, 0.5, 0.1,
    ]);
    const r = maskBatch(cfg, IDS, 2, L, "train", rng);
    expect(rng.used()).toBe(8);
    expect(r.seqLen).toBe(L);
    expect(r.appendMask).toBe(false);
    expect(rows(r.labels, L)).toEqual([[5, 6, 0, 0, 0, 0], [0, 0, 0, 0, 4, 2]]);
    expect(rows(r.maskedPositions, L)).toEqual([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]]);
    expect(r.numLabels).toBe(4);
    // XLNet: labels keep their item in the content stream (the query stream never sees it)
    expect(Array.from(r.inputIds)).toEqual(Array.from(IDS));
    expect(Array.from(r.maskInput).every((v) => v === 0)).toBe(true);
    expect(rows(r.validPositions, L)).toEqual([[1, 1, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1]]);
    // permMask[i][j] = isLabel[j] && order[i] <= order[j]; order: row 0 {0: 0, 1: 1}, row 1 {5: 0, 4: 1}, others -1
    expect(matrix(r.extras!.permMask!, 0, L)).toEqual([
      [1, 1, 0, 0, 0, 0],
      [0, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
    ]);
    expect(matrix(r.extras!.permMask!, 1, L)).toEqual([
      [0, 0, 0, 0, 1, 1],
      [0, 0, 0, 0, 1, 1],
      [0, 0, 0, 0, 1, 1],
      [0, 0, 0, 0, 1, 1],
      [0, 0, 0, 0, 1, 0],
      [0, 0, 0, 0, 1, 1],
    ]);
    expect(matrix(r.extras!.targetMapping!, 0, L)).toEqual(eye(L));
    expect(matrix(r.extras!.targetMapping!, 1, L)).toEqual(eye(L));
  });

  it("a row whose spans all fall past its end gets one forced label", () => {
    // n = 2, plmProbability 0.2, span 1: context 5, start floor(0.9 * 5) = 4 >= 2; forced label at floor(0.6 * 2) = 1
    const rng = scripted([0.0, 0.9, 0.6]);
    const r = maskBatch({ type: "permutation", plmProbability: 0.2, maxSpanLength: 1 }, Int32Array.from([7, 8, 0]), 1, 3, "train", rng);
    expect(rng.used()).toBe(3);
    expect(Array.from(r.labels)).toEqual([0, 8, 0]);
    expect(matrix(r.extras!.permMask!, 0, 3)).toEqual([[0, 1, 0], [0, 1, 0], [0, 1, 0]]);
  });

  it("permuteAll: every item is a label but one, drawn uniformly", () => {
    // n = 3: all labels, then floor(0.5 * 3) = 1 is dropped; order of [0, 2]: j = floor(0.3 * 2) = 0 -> swap: 2 first
    const rng = scripted([0.5, 0.3]);
    const r = maskBatch({ type: "permutation", permuteAll: true }, Int32Array.from([4, 5, 6]), 1, 3, "train", rng);
    expect(rng.used()).toBe(2);
    expect(Array.from(r.labels)).toEqual([4, 0, 6]);
    // order: 2 -> 0, 0 -> 1
    expect(matrix(r.extras!.permMask!, 0, 3)).toEqual([[1, 0, 0], [1, 0, 1], [1, 0, 1]]);
  });

  it("invariants over random batches: >= 1 label per row of >= 2 items, never all, padding never a label, a valid permutation", () => {
    const rng = mulberry32(11);
    const B = 64;
    const L = 12;
    let labels = 0;
    let items = 0;
    for (let rep = 0; rep < 20; rep++) {
      const ids = new Int32Array(B * L);
      const lens: number[] = [];
      for (let b = 0; b < B; b++) {
        const n = Math.floor(rng.next() * (L + 1));
        const left = rng.next() < 0.5;
        lens.push(n);
        for (let k = 0; k < n; k++) ids[b * L + (left ? L - n + k : k)] = 1 + Math.floor(rng.next() * 50);
      }
      const r = maskBatch({ type: "permutation" }, ids, B, L, "train", rng);
      const pm = r.extras!.permMask!;
      for (let b = 0; b < B; b++) {
        const o = b * L;
        let k = 0;
        for (let t = 0; t < L; t++) {
          if (r.labels[o + t]) {
            k++;
            expect(ids[o + t]).not.toBe(0);
            expect(r.labels[o + t]).toBe(ids[o + t]);
          }
        }
        const n = lens[b]!;
        if (n >= 2) expect(k).toBeGreaterThanOrEqual(1);
        if (n >= 1) expect(k).toBeLessThan(n);
        labels += k;
        items += n;
        const isLab = (t: number) => r.labels[o + t] !== 0;
        for (let i = 0; i < L; i++) {
          for (let j = 0; j < L; j++) {
            const m = pm[(b * L + i) * L + j]!;
            if (!isLab(j)) expect(m).toBe(0); // non-labels (and padding) are visible to all
            else if (!isLab(i) || i === j) expect(m).toBe(1); // non-labels never see a label; a label never sees itself
            else expect(m + pm[(b * L + j) * L + i]!).toBe(1); // two labels: exactly one sees the other
          }
        }
      }
    }
    // about plmProbability = 1/6 of the items (more in short rows: the forced label)
    expect(labels / items).toBeGreaterThan(0.12);
    expect(labels / items).toBeLessThan(0.3);
  });

  it("the same seed gives the same masks", () => {
    const a = maskBatch({ type: "plm" }, IDS, 2, L, "train", mulberry32(5));
    const b = maskBatch({ type: "plm" }, IDS, 2, L, "train", mulberry32(5));
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Array.from(a.extras!.permMask!)).toEqual(Array.from(b.extras!.permMask!));
  });
});

describe("permutation LM: evaluation and inference", () => {
  const IDS = Int32Array.from([3, 4, 5, 0, 0, 0, 0, 6, 7, 8]);
  const L = 5;

  it("eval (last item only): the last item is the label, hidden in the input and from every position", () => {
    const r = maskBatch({ type: "permutation" }, IDS, 2, L, "eval", noRng);
    expect(rows(r.labels, L)).toEqual([[0, 0, 5, 0, 0], [0, 0, 0, 0, 8]]);
    expect(rows(r.maskInput, L)).toEqual([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]]);
    expect(rows(r.inputIds, L)).toEqual([[3, 4, 0, 0, 0], [0, 0, 6, 7, 0]]);
    const col = (e: number) => Array.from({ length: L }, () => Array.from({ length: L }, (_, j) => (j === e ? 1 : 0)));
    expect(matrix(r.extras!.permMask!, 0, L)).toEqual(col(2));
    expect(matrix(r.extras!.permMask!, 1, L)).toEqual(col(4));
    expect(matrix(r.extras!.targetMapping!, 1, L)).toEqual(eye(L));
  });

  it("eval, evalOnLastItemSeqOnly false: every next item, causal perm mask (T4R's predict_all)", () => {
    const r = maskBatch({ type: "permutation", evalOnLastItemSeqOnly: false }, IDS, 2, L, "eval", noRng);
    expect(rows(r.labels, L)).toEqual([[4, 5, 0, 0, 0], [0, 0, 7, 8, 0]]);
    expect(Array.from(r.maskInput).every((v) => v === 0)).toBe(true);
    const causal = Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (j > i ? 1 : 0)));
    expect(matrix(r.extras!.permMask!, 0, L)).toEqual(causal);
  });

  it("inference: a [MASK] slot after the last item (L + 1), hidden from every position, read there", () => {
    const r = maskBatch({ type: "permutation" }, IDS, 2, L, "inference", noRng);
    expect(r.seqLen).toBe(L + 1);
    expect(r.appendMask).toBe(true);
    expect(rows(r.inputIds, L + 1)).toEqual([[3, 4, 5, 0, 0, 0], [0, 0, 6, 7, 8, 0]]);
    expect(rows(r.maskInput, L + 1)).toEqual([[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1]]);
    expect(rows(r.validPositions, L + 1)).toEqual([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]]);
    expect(Array.from(r.readPositions!)).toEqual([3, 5]);
    expect(r.numLabels).toBe(0);
    const pm = r.extras!.permMask!;
    expect(pm.length).toBe(2 * 36);
    expect(matrix(pm, 0, 6).every((row) => row.join("") === "000100")).toBe(true);
    // prefix targets: the same layout with the target as the slot's label
    const t = maskBatch({ type: "permutation" }, IDS, 2, L, "eval", noRng, { targets: Int32Array.from([9, 2]) });
    expect(rows(t.labels, L + 1)).toEqual([[0, 0, 0, 9, 0, 0], [0, 0, 0, 0, 0, 2]]);
  });

  it("config: aliases, defaults and invalid values", () => {
    expect(resolveMaskingConfig({ type: "plm" })).toEqual({ type: "permutation", plmProbability: 1 / 6, maxSpanLength: 5, permuteAll: false, evalOnLastItemSeqOnly: true });
    try {
      resolveMaskingConfig({ type: "permutation", plmProbability: 0, maxSpanLength: 1.5 } as never, "/model/inputs/masking");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RecblocksError);
      expect((e as RecblocksError).issues.map((i) => [i.code, i.path])).toEqual([
        ["invalid_value", "/model/inputs/masking/plmProbability"],
        ["invalid_value", "/model/inputs/masking/maxSpanLength"],
      ]);
    }
  });
});

describe("permutation LM: XLNet two-stream attention", () => {
  it("attention biases: content sees itself, a label's query stream does not; padding hidden", () => {
    // one row, L = 3: position 2 is padding; position 0 is a label
    const perm = Uint8Array.from([1, 0, 0, 1, 0, 0, 1, 0, 0]);
    const { content, query } = permutationBiases(perm, Uint8Array.from([1, 1, 0]), 1, 3);
    const M = MASKED_SCORE;
    expect(content.arraySync()).toEqual([[[0, 0, M], [M, 0, M], [M, 0, 0]]]);
    expect(query.arraySync()).toEqual([[[M, 0, M], [M, 0, M], [M, 0, M]]]);
    // a query row with nothing visible gets itself (never an all-masked softmax row)
    const empty = permutationBiases(Uint8Array.from([1, 0, 1, 0]), Uint8Array.from([1, 0]), 1, 2);
    expect(empty.query.arraySync()).toEqual([[[0, M], [M, 0]]]);
    tf.dispose([content, query, empty.content, empty.query]);
  });

  const D = 8;
  const L = 6;
  function block(): TransformerBlock {
    const b = new TransformerBlock({ architecture: "xlnet", dModel: D, numHeads: 2, numLayers: 2, dropout: 0, initializerRange: 0.3 });
    const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
    ctx.set("masking", { type: "permutation" });
    b.build({ shape: [null, null, D], dtype: "float32" }, ctx);
    return b;
  }
  function run(b: TransformerBlock, x: number[][][], mask: MaskResult): number[][][] {
    return tf.tidy(() => {
      const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
      ctx.set("mask", mask);
      return (b.call(tf.tensor3d(x), ctx) as tf.Tensor).arraySync() as number[][][];
    });
  }
  const diff = (a: number[], c: number[]) => Math.max(...a.map((v, i) => Math.abs(v - c[i]!)));

  it("a label's output never depends on its own item nor on labels later in the order; it does on the context", () => {
    const b = block();
    expect(b.twoStream).toBe(true);
    expect([...b.namedVariables().keys()]).toContain("transformer/mask_emb");
    // one row, all real; labels 1 (order 0) and 3 (order 1), perm mask built by hand
    const mask = baseResult(Int32Array.from([1, 2, 3, 4, 5, 6]), 1, L);
    const order = new Map([[1, 0], [3, 1]]);
    const pm = new Uint8Array(L * L);
    for (let i = 0; i < L; i++) for (const j of [1, 3]) if ((order.get(i) ?? -1) <= order.get(j)!) pm[i * L + j] = 1;
    mask.extras = { permMask: pm };
    const rng = mulberry32(2);
    const x = Array.from({ length: L }, () => Array.from({ length: D }, () => rng.next() * 2 - 1));
    const with_ = (t: number) => x.map((v, u) => (u === t ? v.map((z) => 3 - 4 * z) : v));
    const base = run(b, [x], mask)[0]!;
    // position 1 (first in order): independent of itself and of label 3
    expect(diff(run(b, [with_(1)], mask)[0]![1]!, base[1]!)).toBeLessThan(1e-5);
    expect(diff(run(b, [with_(3)], mask)[0]![1]!, base[1]!)).toBeLessThan(1e-5);
    // position 3 (second): independent of itself, depends on label 1 (earlier) and on the context 0
    expect(diff(run(b, [with_(3)], mask)[0]![3]!, base[3]!)).toBeLessThan(1e-5);
    expect(diff(run(b, [with_(1)], mask)[0]![3]!, base[3]!)).toBeGreaterThan(1e-4);
    expect(diff(run(b, [with_(0)], mask)[0]![1]!, base[1]!)).toBeGreaterThan(1e-4);
    b.dispose();
  });

  it("without the perm mask in the CallContext the block says so", () => {
    const b = block();
    expect(() => tf.tidy(() => b.call(tf.zeros([1, L, D]), new CallContext({ mode: "train", rng: mulberry32(1) })))).toThrow(/permMask/);
    b.dispose();
  });
});

describe("permutation LM: masking / architecture compatibility", () => {
  const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: 13 }] };
  const make = (masking: Record<string, unknown>, body: Record<string, unknown>[]) =>
    Model.fromConfig(
      { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, masking }, body, head: { type: "next-item-prediction", weightTying: true } } as never,
      schema,
    );
  const tr = (extra: Record<string, unknown> = {}) => ({ type: "transformer", dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: 8, ...extra });
  function blockError(f: () => unknown): BlockError {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(BlockError);
      return e as BlockError;
    }
    throw new Error("expected a BlockError");
  }

  it("permutation needs xlnet: gpt2 and bert are refused at the architecture, listing what they allow", () => {
    const e1 = blockError(() => make({ type: "permutation" }, [tr({ architecture: "gpt2" })]).build());
    expect([e1.code, e1.path]).toEqual(["incompatible_masking", "/model/body/0/architecture"]);
    expect(e1.issues[0]!.expected).toEqual(["causal"]);
    expect(e1.issues[0]!.hint).toMatch(/architecture xlnet for permutation/);
    const e2 = blockError(() => make({ type: "permutation" }, [tr({ architecture: "bert" })]).build());
    expect([e2.code, e2.path]).toEqual(["incompatible_masking", "/model/body/0/architecture"]);
    expect(e2.issues[0]!.message).toMatch(/bert allows: causal, masked, rtd/);
  });

  it("gpt2 needs causal masking", () => {
    for (const type of ["masked", "rtd"]) {
      const e = blockError(() => make({ type }, [tr({ architecture: "gpt2" })]).build());
      expect([e.code, e.path]).toEqual(["incompatible_masking", "/model/body/0/architecture"]);
      expect(e.issues[0]!.message).toMatch(/gpt2 allows: causal/);
    }
  });

  it("permutation with causal: true, without a transformer, or with another sequence block is refused", () => {
    const e1 = blockError(() => make({ type: "permutation" }, [tr({ causal: true })]).build());
    expect([e1.code, e1.path]).toEqual(["incompatible_masking", "/model/body/0/causal"]);
    const e2 = blockError(() => make({ type: "permutation" }, [{ type: "mlp", units: [8] }]).build());
    expect([e2.code, e2.path]).toEqual(["incompatible_masking", "/model/inputs/masking/type"]);
    const e3 = blockError(() => make({ type: "permutation" }, [{ type: "gru", hiddenSize: 8 }, tr()]).build());
    expect([e3.code, e3.path]).toEqual(["incompatible_masking", "/model/body/0/type"]);
    const e4 = blockError(() => make({ type: "permutation" }, [tr(), tr()]).build());
    expect([e4.code, e4.path]).toEqual(["incompatible_masking", "/model/body/1"]);
    // xlnet + mlp is fine
    make({ type: "permutation" }, [{ type: "mlp", units: [8] }, tr()]).build().dispose();
  });
});

describe("permutation LM: training", () => {
  it("a short training on tiny data lowers the loss; eval and top-k run", () => {
    const V = 13;
    const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };
    const model = Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 16 }, masking: { type: "permutation", plmProbability: 0.3, maxSpanLength: 2 } },
        body: [{ type: "transformer", architecture: "xlnet", dModel: 16, numHeads: 2, numLayers: 1, dropout: 0, initializerRange: 0.1 }],
        head: { type: "next-item-prediction", weightTying: true },
      } as never,
      schema,
    ).build({ seed: 3 });
    // sessions walk the cycle 1 -> 2 -> ... -> 12 -> 1 from a random start
    const rng = mulberry32(9);
    const B = 32;
    const L = 8;
    const batch = (): SequenceBatchLike => {
      const ids = new Int32Array(B * L);
      const lengths = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const n = 3 + Math.floor(rng.next() * (L - 2));
        let it = 1 + Math.floor(rng.next() * 12);
        for (let t = 0; t < n; t++) {
          ids[b * L + t] = it;
          it = (it % 12) + 1;
        }
        lengths[b] = n;
      }
      return { batchSize: B, seqLen: L, itemIds: ids, categorical: {}, continuous: {}, context: {}, lengths };
    };
    const opt = tf.train.adam(0.02);
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const tb = model.trainBatch(batch(), rng)!;
      const { value, grads } = tf.variableGrads(tb.loss, model.trainableVariables());
      losses.push(value.dataSync()[0]!);
      opt.applyGradients(grads as Record<string, tf.Variable>);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(first).toBeGreaterThan(2);
    expect(last).toBeLessThan(first * 0.6);
    // evaluation predicts the last item from the others; inference the item after the sequence
    const evalBatches = [batch(), batch()];
    const m = model.evaluate(evalBatches, { ks: [3] });
    expect(m.examples).toBe(2 * B);
    expect(m["recall@3"]).toBeGreaterThan(0.5);
    const top = model.topK(evalBatches[0]!, 3);
    let hits = 0;
    for (let b = 0; b < B; b++) {
      const n = evalBatches[0]!.lengths[b]!;
      const next = (evalBatches[0]!.itemIds[b * L + n - 1]! % 12) + 1;
      if (Array.from(top.itemIds.subarray(b * 3, b * 3 + 3)).includes(next)) hits++;
    }
    expect(hits / B).toBeGreaterThan(0.5);
    opt.dispose();
    model.dispose();
  });
});
