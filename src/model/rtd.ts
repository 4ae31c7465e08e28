/**
 * The training objectives that masking schemes add to a Model beyond "cross-entropy at the label
 * positions": replacement token detection's discriminator (ELECTRA), and the body checks of
 * permutation LM. docs/masking.md describes both.
 */
import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  isTensorSpec,
  type BlockContext,
  type BlockInput,
  type BlockOutput,
  type CallContext,
  type PortSpec,
  type RandomSource,
  type TensorSpec,
} from "../core/index.js";
import { hasNativeMultinomial, statelessMultinomial } from "../engine/ops.js";
import { corruptBatch, getMaskingScheme, type MaskResult } from "../masking/index.js";

/** What the RTD objective needs from a batch prepared by the input block (Model's PreparedBatchLike). */
export interface RtdPreparedBatch {
  batchSize: number;
  seqLen: number;
  features: Record<string, { values: Int32Array | Float32Array; shape: number[]; dtype: "int32" | "float32" }>;
  mask?: MaskResult;
  validPositions: Uint8Array;
}

/** What the RTD objective needs from the next-item task. */
export interface RtdTask {
  call(input: BlockInput, ctx: CallContext): BlockOutput;
  loss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar;
}

/** The parts of one RTD training loss (tensors are the caller's to dispose). */
export interface RtdLossParts {
  /** generator + weight x discriminator (what training minimises). */
  total: tf.Scalar;
  /** Masked-LM cross-entropy of the generator at the label positions. */
  generator: tf.Scalar;
  /** Binary cross-entropy of the discriminator, mean over the real positions. */
  discriminator: tf.Scalar;
  /** [B, L] discriminator logits (positive = "replaced"). */
  discriminatorLogits: tf.Tensor2D;
  /** [N] the sampled replacement of each label position (same order as the labels). */
  samples: Int32Array;
  /** [B*L] 1 where the discriminator's input differs from the original sequence. */
  replaced: Uint8Array;
  /** [B*L] the discriminator's input ids. */
  corruptedIds: Int32Array;
}

interface RtdSettings {
  discriminatorLossWeight: number;
  sampleFrom: "generator" | "batch";
}

/**
 * ELECTRA's discriminator head over the body's output: dense(D, D) -> gelu -> dense(D, 1), one logit
 * per position ("this item was replaced"). Weights are named `rtd/...` in the model; it is used in
 * training only (evaluation and inference are masked LM's).
 */
export class ReplacedItemDiscriminator extends Block<{ type: "rtd-discriminator"; name?: string }> {
  private dense: { kernel: tf.Variable; bias: tf.Variable } | undefined;
  private out: { kernel: tf.Variable; bias: tf.Variable } | undefined;
  readonly settings: RtdSettings;

  constructor(settings: RtdSettings) {
    super({ type: "rtd-discriminator", name: "rtd" });
    this.settings = settings;
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3 || typeof input.shape[2] !== "number") {
      throw new BlockError(ctx.path, "incompatible_masking", "rtd masking needs a body that outputs one vector per position, float32 [B, L, D] (e.g. a transformer): its discriminator classifies every position.", {
        hint: "Use a transformer body (xlnet or bert), or masking type masked.",
      });
    }
    return { shape: [input.shape[0] ?? null, input.shape[1] ?? null], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const d = (input as TensorSpec).shape[2] as number;
    this.dense = {
      kernel: this.addWeight("dense/kernel", [d, d], { kind: "normal", std: 0.02 }, ctx),
      bias: this.addWeight("dense/bias", [d], { kind: "zeros" }, ctx),
    };
    this.out = {
      kernel: this.addWeight("output/kernel", [d, 1], { kind: "normal", std: 0.02 }, ctx),
      bias: this.addWeight("output/bias", [1], { kind: "zeros" }, ctx),
    };
  }

  /** [B, L, D] -> [B, L] logits. */
  call(input: BlockInput): tf.Tensor2D {
    const h = input as tf.Tensor3D;
    const [B, L, D] = h.shape;
    const x = tf.reshape(h, [B * L, D]) as tf.Tensor2D;
    const u = gelu(tf.add(tf.matMul(x, this.dense!.kernel as tf.Tensor2D), this.dense!.bias));
    const z = tf.add(tf.matMul(u as tf.Tensor2D, this.out!.kernel as tf.Tensor2D), this.out!.bias);
    return tf.reshape(z, [B, L]) as tf.Tensor2D;
  }

  /**
   * One RTD training loss (call inside the caller's tape / tidy):
   * 1. generator: the body on the masked-LM input, item logits at the label positions, cross-entropy;
   * 2. one replacement per label position, sampled from the generator's softmax (no gradient):
   *    over every item but padding (`sampleFrom: generator`) or over the batch's label items (`batch`);
   * 3. discriminator: the same body on the original sequence with the samples at the label positions
   *    (no [MASK]), a logit per position, binary cross-entropy against "sample != original",
   *    averaged over the real positions;
   * 4. total = generator + discriminatorLossWeight x discriminator.
   * `runBody(prep, positions)` runs the input block and the body in training mode.
   */
  lossParts(
    prep: RtdPreparedBatch,
    positions: Int32Array,
    labels: Int32Array,
    itemColumn: string,
    task: RtdTask,
    runBody: (p: RtdPreparedBatch, positions: Int32Array) => { x: BlockOutput; ctx: CallContext },
    rng: RandomSource,
  ): RtdLossParts {
    const mask = prep.mask;
    if (!mask) throw new Error("rtd: the batch has no masking result");
    const labelsT = tf.tensor1d(labels, "int32");
    const gen = runBody(prep, positions);
    const logits = task.call(gen.x, gen.ctx) as tf.Tensor2D;
    const generator = task.loss(logits, labelsT);

    const samples = this.sample(logits, labels, rng);
    const corrupted = corruptBatch(mask, positions, samples);
    const dprep: RtdPreparedBatch = {
      ...prep,
      features: { ...prep.features, [itemColumn]: { ...prep.features[itemColumn]!, values: corrupted.inputIds } },
      mask: { ...mask, inputIds: corrupted.inputIds, maskInput: new Uint8Array(mask.maskInput.length) },
    };
    const disc = runBody(dprep, positions);
    const discriminatorLogits = this.call(disc.x as tf.Tensor3D);
    const y = tf.tensor2d(Float32Array.from(corrupted.replaced), [prep.batchSize, prep.seqLen]);
    const valid = tf.tensor2d(Float32Array.from(prep.validPositions), [prep.batchSize, prep.seqLen]);
    const discriminator = binaryCrossEntropy(discriminatorLogits, y, valid);
    const total = tf.add(generator, tf.mul(discriminator, this.settings.discriminatorLossWeight)) as tf.Scalar;
    return { total, generator, discriminator, discriminatorLogits, samples, replaced: corrupted.replaced, corruptedIds: corrupted.inputIds };
  }

  /**
   * One sample per row of the generator's logits [N, V]; padding (id 0) is never drawn. On the native
   * backend with `sampleFrom: generator`, TensorFlow's StatelessMultinomial seeded from `rng` (one
   * kernel: the TF.js inverse CDF below makes five [N, V] intermediates, ~70 MB each on Diginetica, and
   * took ~3.5 of the ~9 minutes of an RTD epoch there); a row that draws the padding id draws again by
   * inverse CDF without it. Elsewhere, and for `batch`, the inverse CDF with one host uniform per row
   * (seeded, the same on every backend).
   */
  sample(logits: tf.Tensor2D, labels: Int32Array, rng: RandomSource): Int32Array {
    if (this.settings.sampleFrom === "generator" && hasNativeMultinomial()) {
      const seed: [number, number] = [Math.floor(rng.next() * 2147483647), Math.floor(rng.next() * 2147483647)];
      const drawn = statelessMultinomial(logits, seed);
      const picked = Int32Array.from(drawn.dataSync() as Int32Array);
      drawn.dispose();
      const again: number[] = [];
      for (let i = 0; i < picked.length; i++) if (picked[i] === 0) again.push(i);
      if (again.length) {
        const sub = tf.gather(logits, tf.tensor1d(again, "int32")) as tf.Tensor2D;
        const redrawn = this.inverseCdf(sub, undefined, rng);
        sub.dispose();
        again.forEach((row, k) => (picked[row] = redrawn[k]!));
      }
      return picked;
    }
    return this.inverseCdf(logits, this.settings.sampleFrom === "batch" ? labels : undefined, rng);
  }

  /** Inverse-CDF draws, one host uniform per row: over every item but padding, or over `among` (the batch's labels). */
  private inverseCdf(logits: tf.Tensor2D, among: Int32Array | undefined, rng: RandomSource): Int32Array {
    const N = logits.shape[0];
    const u = new Float32Array(N);
    for (let i = 0; i < N; i++) u[i] = Math.max(rng.next(), 1e-7);
    const idx = tf.tidy(() => {
      const l = logits;
      let scores: tf.Tensor2D;
      if (among) scores = tf.gather(l, tf.tensor1d(among, "int32"), 1) as tf.Tensor2D;
      else {
        const pad = new Float32Array(l.shape[1]);
        pad[0] = -1e9;
        scores = tf.add(l, tf.tensor1d(pad)) as tf.Tensor2D;
      }
      const c = tf.cumsum(tf.softmax(scores, -1), 1) as tf.Tensor2D;
      const K = c.shape[1];
      const total = tf.slice(c, [0, K - 1], [N, 1]);
      const below = tf.sum(tf.cast(tf.less(c, tf.mul(tf.tensor2d(u, [N, 1]), total)), "int32"), 1);
      return tf.minimum(below, K - 1);
    });
    const picked = Int32Array.from(idx.dataSync() as Int32Array);
    idx.dispose();
    if (among) for (let i = 0; i < N; i++) picked[i] = among[picked[i]!]!;
    return picked;
  }
}

/** Mean over `valid` positions of BCE-with-logits(z, y) = max(z, 0) - z y + log(1 + exp(-|z|)). */
export function binaryCrossEntropy(z: tf.Tensor2D, y: tf.Tensor2D, valid: tf.Tensor2D): tf.Scalar {
  const per = tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
  return tf.div(tf.sum(tf.mul(per, valid)), tf.maximum(tf.sum(valid), 1)) as tf.Scalar;
}

function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/** The canonical masking type of the shared masking config (aliases resolved), or undefined. */
export function maskingTypeOf(masking: { type?: string } | undefined): string | undefined {
  if (!masking?.type) return undefined;
  return getMaskingScheme(masking.type)?.type ?? masking.type;
}

/** Body blocks that act on each position separately (safe around XLNet's two-stream attention). */
const POSITION_WISE = new Set(["mlp"]);

/**
 * Permutation LM only works when the one thing mixing positions is an xlnet transformer using the
 * permutation mask: another sequence block (gru, attention, stamp...) would let a label's position see
 * its own item. Throws a BlockError at the offending block, or at the masking type.
 */
export function checkPermutationBody(body: readonly Block[], basePath: string): void {
  let transformers = 0;
  body.forEach((b, i) => {
    const type = b.config.type;
    if (type === "transformer") {
      transformers++;
      if (transformers > 1) {
        throw new BlockError(`${basePath}/body/${i}`, "incompatible_masking", "permutation masking supports one xlnet transformer in the body, and this is the second.", {
          hint: "Use one transformer with more numLayers.",
        });
      }
    } else if (!POSITION_WISE.has(type)) {
      throw new BlockError(`${basePath}/body/${i}/type`, "incompatible_masking", `permutation masking cannot be used with a ${type} block in the body: it mixes positions without the permutation mask, so a label would see its own item.`, {
        expected: ["transformer (architecture xlnet)", ...POSITION_WISE],
        received: type,
        hint: "With permutation masking the body is one xlnet transformer (plus mlp blocks). Use masking type masked or causal for other bodies.",
      });
    }
  });
  if (transformers === 0) {
    throw new BlockError(`${basePath}/inputs/masking/type`, "incompatible_masking", "permutation masking needs a transformer with architecture xlnet in the body (its two-stream attention uses the permutation mask).", {
      expected: ["causal", "masked", "rtd"],
      received: "permutation",
      hint: "Add a transformer (architecture: xlnet) to the body, or use masking type masked or causal.",
    });
  }
}
