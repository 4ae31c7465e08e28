import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  columnsOf,
  crossEntropyPerRow,
  pickPerRow,
  formatSpec,
  isTensorSpec,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import type { ItemEmbeddings } from "../features/tabular-sequence-features.js";
import { trilinearSoftmaxLoss } from "./trilinear-ops.js";
import { LogUniformSampler } from "./sampling.js";
import { bprLoss, bprMaxLoss, firstColumnCrossEntropy, hitMask, logInclusionProbability, sampledSoftmaxLogits, top1Loss, top1MaxLoss } from "./losses.js";

/** Config of `next-item-prediction` (schemas/blocks/next-item-prediction.schema.json). */
export interface NextItemPredictionConfig {
  type: "next-item-prediction";
  name?: string;
  weightTying?: boolean;
  softmaxTemperature?: number;
  labelSmoothing?: number;
  outputBias?: boolean;
  /** Training loss (default cross-entropy); bpr / top1 are GRU4Rec's pairwise losses, bpr-max / top1-max their softmax-weighted forms. */
  loss?: "cross-entropy" | "bpr" | "top1" | "bpr-max" | "top1-max";
  /** λ of BPR-max's score regularization λ Σ_j s_j r_j² (default 1, GRU4Rec's bpreg). */
  bprMaxRegularization?: number;
  /** Sampled softmax in training (absent: full softmax). */
  sampledSoftmax?: { numSamples?: number; sampler?: "log-uniform" };
}

/** Per-row cross-entropy, (logits [N, V], labels int32 [N]) -> [N]; src/engine's fused kernel plugs in here. */
export type CrossEntropyFn = (logits: tf.Tensor2D, labels: tf.Tensor1D) => tf.Tensor1D;

let crossEntropy: CrossEntropyFn = crossEntropyPerRow;

/** Sets the cross-entropy used by every next-item task (the training loop passes src/engine's). */
export function setCrossEntropy(fn: CrossEntropyFn): void {
  crossEntropy = fn;
}

/**
 * Next-item prediction over the whole item catalogue (Transformers4Rec NextItemPredictionTask):
 * hidden states at label positions -> logits [N, V] (V = item-id cardinality). With `weightTying`,
 * logits = h · Eᵀ using the input block's item table, with a linear projection added when the
 * body's size differs from the item embedding size; otherwise a separate output matrix (torch
 * Linear init, no bias unless `outputBias`). Logits are divided by `softmaxTemperature`.
 * Labels come from the masking scheme; padding positions are removed by the caller (Model).
 */
export class NextItemPredictionTask extends Block<NextItemPredictionConfig> {
  /** Use the fused training loss when it applies (tests switch it off to compare with the plain path). */
  static fusedLoss = true;
  private items: ItemEmbeddings | undefined;
  private proj: { kernel: tf.Variable; bias: tf.Variable } | undefined;
  private outKernel: tf.Variable | undefined;
  private outBias: tf.Variable | undefined;
  private padMask: tf.Tensor1D | undefined;

  constructor(config: Omit<NextItemPredictionConfig, "type"> | NextItemPredictionConfig = {}) {
    super({ ...config, type: "next-item-prediction" } as NextItemPredictionConfig);
  }

  /** Number of items scored (the item-id cardinality, including 0 = padding). */
  get numItems(): number {
    if (!this.items) throw new Error("NextItemPredictionTask is not built");
    return this.items.cardinality;
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const rank = isTensorSpec(input) ? input.shape.length : 0;
    if (!isTensorSpec(input) || input.dtype !== "float32" || (rank !== 3 && rank !== 2) || typeof input.shape[rank - 1] !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `next-item-prediction needs the body's output as float32 [B, L, D] (a sequence) or [B, D] (one vector per session), got ${formatSpec(input)}.`, {
        hint: "End the body with a sequence block (e.g. a transformer) or a session encoder (e.g. stamp-attention).",
      });
    }
    const items = ctx.get<ItemEmbeddings>("item-embeddings");
    if (!items) {
      throw new BlockError(ctx.path, "missing_item_id", "next-item-prediction needs an input block with an item-id embedding table (tabular-sequence-features).");
    }
    const c = this.config;
    const subset = (c.loss ?? "cross-entropy") !== "cross-entropy" || !!c.sampledSoftmax;
    if (subset && (c.labelSmoothing ?? 0) > 0) {
      throw new BlockError(`${ctx.path}/labelSmoothing`, "incompatible_config", `labelSmoothing applies to the full-softmax cross-entropy only, not to ${c.sampledSoftmax && (c.loss ?? "cross-entropy") === "cross-entropy" ? "sampledSoftmax" : `loss ${c.loss}`}.`, {
        hint: "Remove labelSmoothing, or use the full softmax (no sampledSoftmax, loss: cross-entropy).",
      });
    }
    if (c.bprMaxRegularization !== undefined && c.loss !== "bpr-max") {
      throw new BlockError(`${ctx.path}/bprMaxRegularization`, "incompatible_config", `bprMaxRegularization applies to loss bpr-max only, not to loss ${c.loss ?? "cross-entropy"}.`, {
        hint: "Remove bprMaxRegularization, or set loss: bpr-max.",
      });
    }
    if (!ctx.get("masking")) {
      throw new BlockError(ctx.path, "missing_masking", "next-item-prediction needs a masking scheme on the input block to know its labels.", {
        hint: "Set `masking: {type: causal}` or `masking: {type: masked}` on the inputs block.",
      });
    }
    return { shape: [null, items.cardinality], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const spec = input as TensorSpec;
    const d = spec.shape[spec.shape.length - 1] as number;
    this.items = ctx.get<ItemEmbeddings>("item-embeddings")!;
    const V = this.items.cardinality;
    const col = columnsOf(ctx.schema).find((c) => c.name === this.items!.column) as { properties?: { vocabulary?: { withOov?: boolean } } } | undefined;
    this.firstRealId = col?.properties?.vocabulary?.withOov === true && V > 2 ? 2 : 1;
    if (this.config.weightTying) {
      if (d !== this.items.dim) {
        const limit = 1 / Math.sqrt(d);
        this.proj = {
          kernel: this.addWeight("projection/kernel", [d, this.items.dim], { kind: "uniform", limit }, ctx),
          bias: this.addWeight("projection/bias", [this.items.dim], { kind: "uniform", limit }, ctx),
        };
      }
    } else {
      this.outKernel = this.addWeight("output/kernel", [d, V], { kind: "uniform", limit: 1 / Math.sqrt(d) }, ctx);
    }
    if (this.config.outputBias) this.outBias = this.addWeight("output/bias", [V], { kind: "zeros" }, ctx);
  }

  /** Logits [N, V] of hidden states [N, D]. */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    let h: tf.Tensor2D = hidden;
    let out: tf.Tensor2D;
    if (this.config.weightTying) {
      if (this.proj) h = tf.add(tf.matMul(h, this.proj.kernel as tf.Tensor2D), this.proj.bias);
      out = tf.matMul(h, this.items!.table as tf.Tensor2D, false, true);
    } else out = tf.matMul(h, this.outKernel as tf.Tensor2D);
    if (this.outBias) out = tf.add(out, this.outBias);
    const T = this.config.softmaxTemperature!;
    if (T !== 1) out = tf.div(out, T);
    return out;
  }

  /**
   * Mean cross-entropy (with label smoothing) of logits [N, V] against int32 labels [N]. The softmax
   * runs over every item but the padding id 0 (never a target nor a candidate; Transformers4Rec keeps
   * it in the softmax), so this equals the fused path of `rowsLoss`.
   */
  loss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
    if (!this.padMask || this.padMask.isDisposed) {
      const v = new Float32Array(logits.shape[1]);
      v[0] = -1e9;
      this.padMask = tf.keep(tf.tensor1d(v));
    }
    const ce = crossEntropy(tf.add(logits, this.padMask), labels);
    const eps = this.config.labelSmoothing!;
    if (eps <= 0) return tf.mean(ce);
    // (1-eps)·CE + eps·mean_j(-log p_j) = CE + eps·(logit_y - mean_j logit_j), j over the items 1..V-1
    // (the candidates of the softmax: the padding column, at -1e9 above, is not one of them)
    const V = logits.shape[1];
    const picked = pickPerRow(logits, labels);
    const meanItems = tf.slice(logits, [0, 1], [-1, V - 1]).mean(1);
    return tf.mean(tf.add(ce, tf.mul(tf.sub(picked, meanItems), eps)));
  }

  /**
   * Hidden states [B, L, D] -> logits [N, V] at the flat positions (or [B, D] -> [B, V] when the body
   * pools each session to one vector) (b·L + t) given in the
   * CallContext as "positions" (int32 [N]); the Model puts label positions there (train / eval) or
   * the read position of each row (inference).
   */
  call(input: BlockInput, ctx: CallContext): tf.Tensor2D {
    return this.logits(this.rows(input, ctx));
  }

  /** The hidden states the Model asked for: [B, D] as is (a session encoder), else [B, L, D] at "positions". */
  private rows(input: BlockInput, ctx: CallContext): tf.Tensor2D {
    if ((input as tf.Tensor).rank === 2) return input as tf.Tensor2D;
    const h = input as tf.Tensor3D;
    const [B, L, D] = h.shape;
    const positions = ctx.get<tf.Tensor1D>("positions");
    if (!positions) throw new Error('next-item-prediction: the CallContext has no "positions"');
    return tf.gather(tf.reshape(h, [B * L, D]), positions) as tf.Tensor2D;
  }

  /**
   * Training loss straight from the body's output: mean cross-entropy at the Model's label positions.
   * With weight tying, temperature 1, no output bias and no label smoothing (the usual case) it is one
   * fused op: logits = h·Eᵀ are made once, the native backend's SparseSoftmaxCrossEntropyWithLogits
   * gives the loss and (softmax - onehot) in one pass, and the backward pass is two matmuls with the 1/N
   * scale applied to the small operands — no other [N, V] tensor is made. Same maths as
   * `loss(call(...))` (checked by test/blocks/heads).
   */
  trainLoss(input: BlockInput, ctx: CallContext, labels: tf.Tensor1D): tf.Scalar {
    const rows = this.rows(input, ctx);
    const c = this.config;
    if ((c.loss ?? "cross-entropy") !== "cross-entropy" || c.sampledSoftmax) return this.subsetLoss(rows, ctx, labels);
    if (NextItemPredictionTask.fusedLoss && c.weightTying && (c.softmaxTemperature ?? 1) === 1 && !this.outBias && !((c.labelSmoothing ?? 0) > 0)) {
      const h = this.proj ? (tf.add(tf.matMul(rows, this.proj.kernel as tf.Tensor2D), this.proj.bias) as tf.Tensor2D) : rows;
      return trilinearSoftmaxLoss(h, this.items!.table as tf.Tensor2D, labels);
    }
    return this.loss(this.logits(rows), labels);
  }

  /** The sampler of `sampledSoftmax` (built on first use). */
  private sampler: LogUniformSampler | undefined;
  /** 2 when the item vocabulary's id 1 is the OOV id (feature schema: properties.vocabulary.withOov), else 1. */
  private firstRealId = 1;

  /** Hidden rows as the output layer sees them: projected to the item size when tied with a projection. */
  private outputRows(rows: tf.Tensor2D): tf.Tensor2D {
    return this.proj ? (tf.add(tf.matMul(rows, this.proj.kernel as tf.Tensor2D), this.proj.bias) as tf.Tensor2D) : rows;
  }

  /** Output vectors [S, d] (and biases [S]) of the items `ids`: rows of the item table (tied) or columns of the output matrix. */
  private itemVectors(ids: tf.Tensor1D): { w: tf.Tensor2D; b?: tf.Tensor1D } {
    const w = this.config.weightTying ? (tf.gather(this.items!.table, ids) as tf.Tensor2D) : (tf.transpose(tf.gather(this.outKernel!, ids, 1)) as tf.Tensor2D);
    return { w, b: this.outBias ? (tf.gather(this.outBias, ids) as tf.Tensor1D) : undefined };
  }

  /**
   * Scores (logits before any correction, divided by the temperature) of each row's own label, pos [N],
   * and of the shared candidates `negIds` [S] for every row, neg [N, S].
   */
  subsetScores(rows: tf.Tensor2D, labels: tf.Tensor1D, negIds: tf.Tensor1D): { pos: tf.Tensor1D; neg: tf.Tensor2D } {
    const h = this.outputRows(rows);
    const P = this.itemVectors(labels);
    const Nv = this.itemVectors(negIds);
    let pos = tf.sum(tf.mul(h, P.w), 1) as tf.Tensor1D;
    if (P.b) pos = tf.add(pos, P.b);
    let neg = tf.matMul(h, Nv.w, false, true) as tf.Tensor2D;
    if (Nv.b) neg = tf.add(neg, Nv.b);
    const T = this.config.softmaxTemperature ?? 1;
    if (T !== 1) {
      pos = tf.div(pos, T);
      neg = tf.div(neg, T);
    }
    return { pos, neg };
  }

  /**
   * The training loss over a subset of the catalogue. Sampled softmax: `numSamples` distinct log-uniform
   * negatives shared by the batch's rows, logits [pos - log q(pos) | neg - log q(neg)] (q: probability of
   * being in the sample), accidental hits at -1e9, cross-entropy with target column 0. bpr / top1 /
   * bpr-max / top1-max: the row's positive against the other rows' labels (in-batch, GRU4Rec) plus the
   * sampled items when `sampledSoftmax` is set; negatives equal to the row's positive are left out.
   */
  private subsetLoss(rows: tf.Tensor2D, ctx: CallContext, labels: tf.Tensor1D): tf.Scalar {
    const c = this.config;
    const loss = c.loss ?? "cross-entropy";
    let sample: { ids: Int32Array; tries: number } | undefined;
    if (c.sampledSoftmax) {
      this.sampler ??= new LogUniformSampler(this.numItems, this.firstRealId);
      sample = this.sampler.sample(c.sampledSoftmax.numSamples ?? 100, ctx.rng);
    }
    if (loss === "cross-entropy") {
      const negIds = tf.tensor1d(sample!.ids, "int32");
      const { pos, neg } = this.subsetScores(rows, labels, negIds);
      const minId = this.sampler!.minId;
      const logits = sampledSoftmaxLogits(pos, neg, hitMask(labels, negIds), logInclusionProbability(labels, this.numItems, sample!.tries, minId), logInclusionProbability(negIds, this.numItems, sample!.tries, minId));
      return firstColumnCrossEntropy(logits);
    }
    const negIds = sample ? tf.concat([labels, tf.tensor1d(sample.ids, "int32")]) as tf.Tensor1D : labels;
    const { pos, neg } = this.subsetScores(rows, labels, negIds);
    const hits = hitMask(labels, negIds);
    switch (loss) {
      case "bpr":
        return bprLoss(pos, neg, hits);
      case "top1":
        return top1Loss(pos, neg, hits);
      case "bpr-max":
        return bprMaxLoss(pos, neg, hits, c.bprMaxRegularization ?? 1);
      default:
        return top1MaxLoss(pos, neg, hits);
    }
  }

  /**
   * Query vectors q [N, d] of the rows such that q · E_jᵀ = logit j (tied heads without an output bias;
   * the temperature is folded into q): the Model scores them against a cached catalogue of the item
   * table and takes a blocked top-k. Undefined when the head has no such form.
   */
  queryRows(input: BlockInput, ctx: CallContext): tf.Tensor2D | undefined {
    if (!this.config.weightTying || this.outBias) return undefined;
    let h = this.rows(input, ctx);
    if (this.proj) h = tf.add(tf.matMul(h, this.proj.kernel as tf.Tensor2D), this.proj.bias) as tf.Tensor2D;
    const T = this.config.softmaxTemperature ?? 1;
    return T !== 1 ? (tf.div(h, T) as tf.Tensor2D) : h;
  }

  /** The item table the query rows are scored against (tied heads). */
  get itemTable(): tf.Tensor2D | undefined {
    return this.config.weightTying ? (this.items?.table as tf.Tensor2D | undefined) : undefined;
  }

  override dispose(): void {
    this.padMask?.dispose();
    this.padMask = undefined;
    super.dispose();
  }
}
