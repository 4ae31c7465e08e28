import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  formatSpec,
  isTensorSpec,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type Initializer,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import type { MultiHeadAttentionConfig } from "../../src/generated/blocks/multi-head-attention.js";
import { attentionBias, type KeyPadding } from "./masks.js";
import { createMultiHeadAttention, multiHeadCrossAttention, multiHeadSelfAttention, type MultiHeadAttentionParams } from "./multi-head.js";
import { createLayerNorm, dropout, layerNorm, type ForwardState, type LayerNormParams } from "./ops.js";

export type { MultiHeadAttentionConfig };

/**
 * One multi-head attention layer as a block (the maths is multi-head.ts and masks.ts, shared with the
 * transformer): `query: self` gives [B, L, D] -> [B, L, D]; `query: last` lets the vector at each
 * row's read position (CallContext "positions", flat b·L + t, one per row, as for stamp-attention)
 * attend the sequence and gives [B, L, D] -> [B, D], one vector per session (Model.pooled).
 * Keys are the real steps of "padding-mask" (and, causal, those <= the query's position); every
 * query may attend itself (masks.ts). y = Attention(q_in, x); with `residual`, y = q_in + Dropout(y);
 * with `layerNorm`, y = LayerNorm(y).
 * Weights: `attention/qkv/{kernel,bias}` [D, 3D] (columns q | k | v), `attention/output/{kernel,bias}`,
 * `layer_norm/{gamma,beta}`.
 */
export class MultiHeadAttentionBlock extends Block<MultiHeadAttentionConfig> {
  private params: MultiHeadAttentionParams | undefined;
  private norm: LayerNormParams | undefined;
  private isCausal = false;

  constructor(config: MultiHeadAttentionConfig | Omit<MultiHeadAttentionConfig, "type"> = {}) {
    super({ ...config, type: "multi-head-attention" } as MultiHeadAttentionConfig);
  }

  /** Whether attention is causal (after build). */
  get causal(): boolean {
    return this.isCausal;
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3 || typeof input.shape[2] !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `multi-head-attention needs a float32 sequence [B, L, D] with a known D as input, got ${formatSpec(input)}.`, {
        hint: "Put a tabular-sequence-features block (or a sequence block such as gru or transformer) before it.",
      });
    }
    const d = input.shape[2];
    const c = this.config;
    if (c.dModel != null && c.dModel !== d) {
      throw new BlockError(`${ctx.path}/dModel`, "incompatible_input", `multi-head-attention has dModel ${c.dModel} but its input has size ${d}.`, {
        hint: `Remove dModel (null uses the input's size), or set dOutput: ${c.dModel} on the inputs block.`,
      });
    }
    if (d % c.numHeads! !== 0) {
      throw new BlockError(`${ctx.path}/numHeads`, "incompatible_config", `dModel ${d} is not divisible by numHeads ${c.numHeads}.`, {
        hint: "Each head gets dModel / numHeads dimensions; pick numHeads that divides dModel.",
      });
    }
    const masking = ctx.get<{ type: string }>("masking");
    if (c.query === "self" && c.causal === false && masking?.type === "causal") {
      throw new BlockError(`${ctx.path}/causal`, "incompatible_masking", "causal: false with causal masking would let each position see the item it must predict.", {
        hint: "Remove causal: false, or use masking: {type: masked}.",
      });
    }
    return c.query === "last"
      ? { shape: [input.shape[0] ?? null, d], dtype: "float32" }
      : { shape: [input.shape[0] ?? null, input.shape[1] ?? null, d], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const d = (input as TensorSpec).shape[2] as number;
    const make = (name: string, shape: number[], init: Initializer) => this.addWeight(name, shape, init, ctx);
    this.params = createMultiHeadAttention(make, "attention", { dModel: d, std: this.config.initializerRange!, bias: this.config.bias! });
    if (this.config.layerNorm) this.norm = createLayerNorm(make, "layer_norm", d);
    this.isCausal = this.config.causal ?? ctx.get<{ type: string }>("masking")?.type === "causal";
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor {
    if (!this.params) throw new Error(`multi-head-attention "${this.name}" is not built`);
    const c = this.config;
    const x = input as tf.Tensor3D;
    const [B, L, D] = x.shape;
    const pm = ctx.paddingMask;
    const padding: KeyPadding = pm ? { kind: "tensor", valid: pm } : { kind: "none" };
    const bias = attentionBias(padding, B, L, this.isCausal);
    const state: ForwardState = { training: ctx.training, rng: ctx.rng };
    const opts = { numHeads: c.numHeads!, attentionDropout: c.dropout! };
    let q: tf.Tensor;
    let y: tf.Tensor;
    if (c.query === "last") {
      const positions = ctx.get<tf.Tensor1D>("positions");
      if (!positions || positions.shape[0] !== B) {
        throw new BlockError("", "one_target_per_row", `multi-head-attention with query: last predicts one next item per session, but the batch asks for ${positions?.shape[0] ?? 0} predictions from ${B} rows.`, {
          hint: "Train it on prefix examples (train.examples: prefixes) or with masking {type: causal, trainOnLastItemSeqOnly: true}.",
        });
      }
      q = tf.gather(tf.reshape(x, [B * L, D]), positions); // [B, D]
      // the bias row of each row's query position: [B, L, L] -> rows b·L + t; [1, L, L] -> rows t
      let qBias: tf.Tensor3D | null = null;
      if (bias) {
        qBias = (bias.shape[0] === 1
          ? tf.gather(tf.reshape(bias, [L, L]), tf.sub(positions, tf.mul(tf.range(0, B, 1, "int32"), tf.scalar(L, "int32"))))
          : tf.gather(tf.reshape(bias, [B * L, L]), positions)
        ).reshape([B, 1, L]) as tf.Tensor3D;
      }
      y = tf.reshape(multiHeadCrossAttention(tf.reshape(q, [B, 1, D]) as tf.Tensor3D, x, this.params, qBias, opts, state).output, [B, D]);
    } else {
      q = x;
      y = multiHeadSelfAttention(x, this.params, bias, opts, state).output;
    }
    if (c.residual) y = tf.add(q, dropout(y, c.dropout!, state));
    else y = dropout(y, c.dropout!, state);
    if (this.norm) y = layerNorm(y, this.norm, c.layerNormEps!);
    return y;
  }
}
