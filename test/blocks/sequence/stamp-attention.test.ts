import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { StampAttentionBlock } from "../../../blocks/sequence/stamp-attention.js";
import { maxNormRows } from "../../../blocks/sequence/stamp-ops.js";
import { BlockContext, BlockError, createBlock, type SequenceBatchLike } from "../../../src/core/index.js";
import type { Session } from "../../../src/data/batches.js";
import { RecblocksError } from "../../../src/errors/issue.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";
import { fit } from "../../../src/train/loop.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/*
 * A hand-sized STAMP: d = 2, L = 3, item ids 1..4 (0 = padding), row-vector convention (x W).
 *
 *   E  = [0, 0] (pad), E1 = [1, 0], E2 = [0, 2], E3 = [1, -1], E4 = [-1, 0.5]
 *   W1 (items)   = I                 W2 (last) = 0.5 I          W3 (mean) = [[0, 1], [0, 0]]  (m W3 = [0, m0])
 *   w0 (readout) = [[1], [2]]        (a_i = sig(pre_i0) + 2 sig(pre_i1))
 *   WA (cell_session) = [[1, 1], [0, 1]]   (m WA = [m0, m0 + m1])
 *   WB (cell_last)    = [[0.5, 0], [1.5, 0.5]]   (m WB = [0.5 m0 + 1.5 m1, 0.5 m1])
 *   [MASK] embedding = [5, -3]: the input block puts it on padding; STAMP must ignore it.
 * The matrices are not symmetric, so a transposed weight changes the answer.
 */
const E = [[0, 0], [1, 0], [0, 2], [1, -1], [-1, 0.5]];
const V = E.length;
const L = 3;
const W = {
  "attention/items": [[1, 0], [0, 1]],
  "attention/last": [[0.5, 0], [0, 0.5]],
  "attention/mean": [[0, 1], [0, 0]],
  "attention/readout": [[1], [2]],
  "cell_session/kernel": [[1, 1], [0, 1]],
  "cell_last/kernel": [[0.5, 0], [1.5, 0.5]],
};
const sig = (z: number) => 1 / (1 + Math.exp(-z));
/** Trilinear scores (h_s * h_t) . E_j for j = 0..4 (E_0 = 0 gives 0). */
const scores = (hs: number[], ht: number[]) => {
  const q = [hs[0]! * ht[0]!, hs[1]! * ht[1]!];
  return E.map((e) => q[0]! * e[0]! + q[1]! * e[1]!);
};

// Row A = [1, 2, 3]: m_s = ([1,0] + [0,2] + [1,-1]) / 3 = [2/3, 1/3], m_t = x3 = [1, -1]
//   context = m_t W2 + m_s W3 = [0.5, -0.5] + [0, 2/3] = [0.5, 1/6]
//   pre_1 = [1, 0] + ctx = [1.5, 1/6];  pre_2 = [0, 2] + ctx = [0.5, 13/6];  pre_3 = [1, -1] + ctx = [1.5, -5/6]
const aA = [sig(1.5) + 2 * sig(1 / 6), sig(0.5) + 2 * sig(13 / 6), sig(1.5) + 2 * sig(-5 / 6)];
//   m_a = a1 [1,0] + a2 [0,2] + a3 [1,-1] + m_s = [a1 + a3 + 2/3, 2 a2 - a3 + 1/3]
const maA = [aA[0]! + aA[2]! + 2 / 3, 2 * aA[1]! - aA[2]! + 1 / 3];
//   h_s = tanh([ma0, ma0 + ma1]);  h_t = tanh(m_t WB) = tanh([0.5 - 1.5, -0.5]) = tanh([-1, -0.5])
const hsA = [Math.tanh(maA[0]!), Math.tanh(maA[0]! + maA[1]!)];
const htA = [Math.tanh(-1), Math.tanh(-0.5)];
const scoresA = scores(hsA, htA);

// Row B = [2, 4] (+ padding): m_s = ([0,2] + [-1,0.5]) / 2 = [-0.5, 1.25], m_t = x4 = [-1, 0.5]
//   context = [-0.5, 0.25] + [0, -0.5] = [-0.5, -0.25]
//   pre_1 = [0, 2] + ctx = [-0.5, 1.75];  pre_2 = [-1, 0.5] + ctx = [-1.5, 0.25];  a at the padding = 0
const aB = [sig(-0.5) + 2 * sig(1.75), sig(-1.5) + 2 * sig(0.25)];
//   m_a = a1 [0,2] + a2 [-1,0.5] + m_s = [-a2 - 0.5, 2 a1 + 0.5 a2 + 1.25]
const maB = [-aB[1]! - 0.5, 2 * aB[0]! + 0.5 * aB[1]! + 1.25];
//   h_t = tanh([0.5 (-1) + 1.5 (0.5), 0.5 (0.5)]) = tanh([0.25, 0.25])
const hsB = [Math.tanh(maB[0]!), Math.tanh(maB[0]! + maB[1]!)];
const htB = [Math.tanh(0.25), Math.tanh(0.25)];
const scoresB = scores(hsB, htB);

const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };

function stampModel(body: Record<string, unknown>): { model: Model; block: StampAttentionBlock } {
  const model = Model.fromConfig(
    {
      inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 2 }, dropout: 0, masking: { type: "causal" } },
      body: [{ type: "stamp-attention", maxNorm: null, ...body }],
      head: { type: "next-item-prediction", weightTying: true },
    } as never,
    schema,
  ).build({ seed: 3 });
  const vars = model.namedVariables();
  const set = (name: string, v: number[][] | number[]) => {
    const x = vars.get(name);
    if (!x) throw new Error(`no weight ${name}; have ${[...vars.keys()].join(", ")}`);
    tf.tidy(() => x.assign(tf.tensor(v as number[], x.shape as number[])));
  };
  set("inputs/embeddings/item_id", E);
  set("inputs/masked_item_embedding", [5, -3]);
  for (const [k, v] of Object.entries(W)) if (vars.has(`body/0/stamp-attention/${k}`)) set(`body/0/stamp-attention/${k}`, v);
  const block = model.blocks[0] as StampAttentionBlock;
  block.keepEncoding = true;
  return { model, block };
}

function batch(rows: number[][], targets?: number[]): SequenceBatchLike {
  const itemIds = new Int32Array(rows.length * L);
  rows.forEach((r, b) => itemIds.set(r, b * L));
  return {
    batchSize: rows.length, seqLen: L, itemIds, categorical: {}, continuous: {}, context: {},
    lengths: Int32Array.from(rows, (r) => r.filter((x) => x !== 0).length),
    ...(targets ? { targets: Int32Array.from(targets) } : {}),
  };
}

/** Score of every item id 1..V-1 per row, from Model.topK over the whole catalogue. */
function topKScores(model: Model, b: SequenceBatchLike): number[][] {
  const top = model.topK(b, V);
  return Array.from({ length: b.batchSize }, (_, r) => {
    const out = new Array<number>(V).fill(NaN);
    for (let j = 0; j < top.k; j++) out[top.itemIds[r * top.k + j]!] = top.scores[r * top.k + j]!;
    return out;
  });
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};
const alphaRows = (block: StampAttentionBlock) => block.lastEncoding!.alpha.arraySync() as number[][];
const disposeEncoding = (block: StampAttentionBlock) => {
  const e = block.lastEncoding;
  if (e) tf.dispose([e.hs, e.ht, e.alpha]);
  block.lastEncoding = undefined;
};

describe("stamp-attention: hand-computed forward pass", () => {
  it("alpha, and the trilinear scores from Model.topK, match the hand computation", () => {
    const { model, block } = stampModel({ variant: "stamp" });
    expect(model.pooled).toBe(true);
    const s = topKScores(model, batch([[1, 2, 3], [2, 4, 0]]));
    const alpha = alphaRows(block);
    close(alpha[0]!, aA);
    close(alpha[1]!, [aB[0]!, aB[1]!, 0]);
    close(s[0]!.slice(1), scoresA.slice(1));
    close(s[1]!.slice(1), scoresB.slice(1));
    // h_s and h_t themselves
    close(block.lastEncoding!.hs.dataSync(), [...hsA, ...hsB]);
    close(block.lastEncoding!.ht.dataSync(), [...htA, ...htB]);
    // ranking follows the scores (padding id 0 is never returned before a real item)
    const top = model.topK(batch([[1, 2, 3]]), 4);
    const order = [1, 2, 3, 4].sort((a, b) => scoresA[b]! - scoresA[a]!);
    expect(Array.from(top.itemIds)).toEqual(order);
    disposeEncoding(block);
    model.dispose();
  });

  it("the training loss on prefix examples is the softmax cross-entropy of those scores", () => {
    const { model, block } = stampModel({ variant: "stamp" });
    // targets: row A -> 4, row B -> 1; softmax over the items 1..V-1 (the padding id 0 is never a
    // candidate, as in the reference and ../shared/peers/stamp_torch.py: E[1:])
    const ce = (s: number[], y: number) => Math.log(s.slice(1).reduce((a, v) => a + Math.exp(v), 0)) - s[y]!;
    const want = (ce(scoresA, 4) + ce(scoresB, 1)) / 2;
    const tb = model.trainBatch(batch([[1, 2, 3], [2, 4, 0]], [4, 1]), mulberry32(1))!;
    expect(tb.numLabels).toBe(2);
    const loss = tf.tidy(() => tb.loss().dataSync()[0]!);
    expect(Math.abs(loss - want)).toBeLessThan(1e-5);
    disposeEncoding(block);
    model.dispose();
  });

  it("variant stmp: no attention, m_a = m_s", () => {
    const { model, block } = stampModel({ variant: "stmp" });
    expect([...model.namedVariables().keys()].filter((k) => k.startsWith("body/")).sort()).toEqual([
      "body/0/stamp-attention/cell_last/kernel",
      "body/0/stamp-attention/cell_session/kernel",
    ]);
    // Row A: h_s = tanh(m_s WA) = tanh([2/3, 2/3 + 1/3]);  Row B: tanh([-0.5, -0.5 + 1.25])
    const s = topKScores(model, batch([[1, 2, 3], [2, 4, 0]]));
    close(s[0]!.slice(1), scores([Math.tanh(2 / 3), Math.tanh(1)], htA).slice(1));
    close(s[1]!.slice(1), scores([Math.tanh(-0.5), Math.tanh(0.75)], htB).slice(1));
    close(block.lastEncoding!.alpha.dataSync(), [0, 0, 0, 0, 0, 0]);
    disposeEncoding(block);
    model.dispose();
  });

  it("biases: true adds b_A and b_B inside the tanh cells", () => {
    const { model, block } = stampModel({ variant: "stmp", biases: true });
    const vars = model.namedVariables();
    tf.tidy(() => vars.get("body/0/stamp-attention/cell_session/bias")!.assign(tf.tensor1d([0.5, -1])));
    tf.tidy(() => vars.get("body/0/stamp-attention/cell_last/bias")!.assign(tf.tensor1d([1, 0])));
    // Row A: h_s = tanh([2/3 + 0.5, 1 - 1]) = tanh([7/6, 0]) -> q1 = 0; h_t = tanh([-1 + 1, -0.5]) = [0, tanh(-0.5)] -> q0 = 0
    // so every score of row A is 0 (a wrong bias placement breaks this)
    const s = topKScores(model, batch([[1, 2, 3], [2, 4, 0]]));
    close(s[0]!.slice(1), [0, 0, 0, 0]);
    // Row B: h_s = tanh([-0.5 + 0.5, 0.75 - 1]) = [0, tanh(-0.25)]; h_t = tanh([1.25, 0.25])
    close(s[1]!.slice(1), scores([0, Math.tanh(-0.25)], [Math.tanh(1.25), Math.tanh(0.25)]).slice(1));
    disposeEncoding(block);
    model.dispose();
  });
});

describe("stamp-attention: maxNorm", () => {
  it("maxNormRows rescales rows with a larger norm and leaves the others", () => {
    const y = tf.tidy(() => maxNormRows(tf.tensor2d([[3, 4], [0.3, 0.4], [0, 0], [1, 0]]), 1).arraySync());
    close(y.flat(), [0.6, 0.8, 0.3, 0.4, 0, 0, 1, 0], 1e-6);
  });

  it("inputs above maxNorm are rescaled, those below are not; the scored table is not changed", () => {
    const { model, block } = stampModel({ variant: "stamp", maxNorm: 1.5 });
    // Row B = [2, 4]: |E2| = 2 > 1.5 -> x1 = [0, 1.5];  |E4| = sqrt(1.25) < 1.5 -> x2 = m_t = [-1, 0.5]
    //   m_s = [-0.5, 1]; context = [-0.5, 0.25] + [0, -0.5] = [-0.5, -0.25]
    //   pre_1 = [-0.5, 1.25], pre_2 = [-1.5, 0.25]
    const a = [sig(-0.5) + 2 * sig(1.25), sig(-1.5) + 2 * sig(0.25)];
    //   m_a = a1 [0, 1.5] + a2 [-1, 0.5] + [-0.5, 1] = [-a2 - 0.5, 1.5 a1 + 0.5 a2 + 1]; h_t unchanged
    const ma = [-a[1]! - 0.5, 1.5 * a[0]! + 0.5 * a[1]! + 1];
    // candidates are scored against the stored table (E2 = [0, 2], not rescaled)
    const want = scores([Math.tanh(ma[0]!), Math.tanh(ma[0]! + ma[1]!)], htB);
    const s = topKScores(model, batch([[2, 4, 0]]));
    close(alphaRows(block)[0]!, [a[0]!, a[1]!, 0]);
    close(s[0]!.slice(1), want.slice(1));
    // and it differs from the unclipped answer, so the check above is not vacuous
    expect(Math.abs(s[0]![2]! - scoresB[2]!)).toBeGreaterThan(1e-3);
    // the stored item table is unchanged
    expect(Array.from(model.namedVariables().get("inputs/embeddings/item_id")!.dataSync())).toEqual(E.flat());
    disposeEncoding(block);
    model.dispose();
  });
});

describe("stamp-attention: padding", () => {
  it("left and right padding give the same scores; the [MASK] vector on padding is ignored", () => {
    const { model, block } = stampModel({ variant: "stamp" });
    const right = topKScores(model, batch([[2, 4, 0], [3, 0, 0]]));
    const alphaRight = alphaRows(block);
    disposeEncoding(block);
    const left = topKScores(model, batch([[0, 2, 4], [0, 0, 3]]));
    const alphaLeft = alphaRows(block);
    close(right[0]!.slice(1), scoresB.slice(1));
    close(left[0]!.slice(1), scoresB.slice(1));
    close(left[1]!.slice(1), right[1]!.slice(1));
    close(alphaLeft[0]!, [0, aB[0]!, aB[1]!]);
    close(alphaRight[0]!, [aB[0]!, aB[1]!, 0]);
    // a different [MASK] vector (what padding holds after the input block) changes nothing
    tf.tidy(() => model.namedVariables().get("inputs/masked_item_embedding")!.assign(tf.tensor1d([-40, 17])));
    disposeEncoding(block);
    close(topKScores(model, batch([[0, 2, 4]]))[0]!.slice(1), scoresB.slice(1));
    disposeEncoding(block);
    model.dispose();
  });
});

describe("stamp-attention: block contract", () => {
  it("schema defaults fill the config; getConfig round-trips; [B, L, d] -> [B, d]", () => {
    const b = new StampAttentionBlock();
    expect(b.config).toEqual({ type: "stamp-attention", name: "stamp-attention", variant: "stamp", biases: false, maxNorm: 1, initStd: 0.05 });
    const again = createBlock(b.getConfig() as never);
    expect(again).toBeInstanceOf(StampAttentionBlock);
    expect(again.getConfig()).toEqual(b.getConfig());
    const ctx = new BlockContext({ rng: mulberry32(1), path: "/model/body/0" });
    expect(b.computeOutputSpec({ shape: [null, 7, 4], dtype: "float32" }, ctx)).toEqual({ shape: [null, 4], dtype: "float32" });
    let err: unknown;
    try {
      b.computeOutputSpec({ shape: [null, 7], dtype: "int32" }, ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BlockError);
    expect((err as BlockError).code).toBe("incompatible_input");
    expect((err as BlockError).path).toBe("/model/body/0");
  });

  it("a pooled model refuses to train on whole sequences, with a clear error", async () => {
    const { model, block } = stampModel({ variant: "stamp" });
    expect(() => model.trainBatch(batch([[1, 2, 3]]), mulberry32(1))).toThrow(/one next item per session.*prefix examples/);
    const sessions: Session[] = [[1, 2, 3], [2, 4], [3, 1, 4]].map((items, i) => ({ id: `s${i}`, items: Int32Array.from(items), categorical: {}, continuous: {}, context: {} }));
    let err: unknown;
    try {
      await fit(model, { train: sessions, maxSequenceLength: L }, { train: { epochs: 1, examples: "sequences" } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RecblocksError);
    const issue = (err as RecblocksError).issues[0]!;
    expect(issue.code).toBe("incompatible_examples");
    expect(issue.path).toBe("/train/examples");
    expect(issue.hint).toMatch(/prefixes/);
    // auto picks prefixes for a pooled model: 2 + 1 + 2 = 5 examples in one batch
    block.keepEncoding = false;
    const before = tf.memory().numTensors;
    const r = await fit(model, { train: sessions, maxSequenceLength: L }, { train: { epochs: 1, batchSize: 8, examples: "auto" }, progress: { quiet: true } as never });
    expect(r.steps).toBe(1);
    expect(Number.isFinite(r.history[0]!.loss)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    disposeEncoding(block);
    model.dispose();
  });
});
