import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  formatSpec,
  isTensorSpec,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import type { StampAttentionConfig } from "../../src/generated/blocks/stamp-attention.js";
import { stampEncodeEmbedded, type StampEncoding, type StampWeights } from "./stamp-ops.js";

export type { StampAttentionConfig };

/**
 * STAMP's session encoder as a block (maths in stamp-ops.ts): [B, L, d] item vectors -> [B, d] query
 * h_s * h_t, read at each row's last item. The last item of row b is taken from the CallContext's
 * "positions" (flat b·L + t, one per row, set by the Model), the real items from "padding-mask".
 * A next-item-prediction head with weightTying gives STAMP's trilinear score (h_s * h_t) · E_j.
 */
export class StampAttentionBlock extends Block<StampAttentionConfig> {
  private w: StampWeights | undefined;
  /** The last forward pass's attention weights [B, L] and cells, when `keepEncoding` is set (tests, inspection). */
  lastEncoding: StampEncoding | undefined;
  keepEncoding = false;

  constructor(config: StampAttentionConfig | Omit<StampAttentionConfig, "type"> = {}) {
    super({ ...config, type: "stamp-attention" } as StampAttentionConfig);
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3 || typeof input.shape[2] !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `stamp-attention needs the session's item vectors as float32 [B, L, d], got ${formatSpec(input)}.`, {
        hint: "Put a tabular-sequence-features block before it.",
      });
    }
    return { shape: [input.shape[0] ?? null, input.shape[2]], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const d = (input as TensorSpec).shape[2] as number;
    const std = this.config.initStd!;
    const n = { kind: "normal", std } as const;
    const z = { kind: "zeros" } as const;
    const bias = this.config.biases!;
    const w: StampWeights = {
      wA: undefined as unknown as tf.Tensor2D,
      wB: undefined as unknown as tf.Tensor2D,
    };
    if (this.config.variant === "stamp") {
      w.w1 = this.addWeight("attention/items", [d, d], n, ctx) as tf.Tensor as tf.Tensor2D;
      w.w2 = this.addWeight("attention/last", [d, d], n, ctx) as tf.Tensor as tf.Tensor2D;
      w.w3 = this.addWeight("attention/mean", [d, d], n, ctx) as tf.Tensor as tf.Tensor2D;
      w.w0 = this.addWeight("attention/readout", [d, 1], n, ctx) as tf.Tensor as tf.Tensor2D;
      if (bias) w.ba = this.addWeight("attention/bias", [d], z, ctx) as tf.Tensor as tf.Tensor1D;
    }
    w.wA = this.addWeight("cell_session/kernel", [d, d], n, ctx) as tf.Tensor as tf.Tensor2D;
    if (bias) w.bA = this.addWeight("cell_session/bias", [d], z, ctx) as tf.Tensor as tf.Tensor1D;
    w.wB = this.addWeight("cell_last/kernel", [d, d], n, ctx) as tf.Tensor as tf.Tensor2D;
    if (bias) w.bB = this.addWeight("cell_last/bias", [d], z, ctx) as tf.Tensor as tf.Tensor1D;
    this.w = w;
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor2D {
    if (!this.w) throw new Error(`stamp-attention "${this.name}" is not built`);
    const x = input as tf.Tensor3D;
    const [B, L] = x.shape;
    const positions = ctx.get<tf.Tensor1D>("positions");
    if (!positions || positions.shape[0] !== B) {
      throw new BlockError("", "one_target_per_row", `stamp-attention predicts one next item per session, but the batch asks for ${positions?.shape[0] ?? 0} predictions from ${B} rows.`, {
        hint: "Train it on prefix examples (train.examples: prefixes) or with masking {type: causal, trainOnLastItemSeqOnly: true}.",
      });
    }
    const mask = ctx.paddingMask ?? (tf.ones([B, L]) as tf.Tensor2D);
    const lastIndex = tf.sub(positions, tf.mul(tf.range(0, B, 1, "int32"), tf.scalar(L, "int32"))) as tf.Tensor1D;
    const lengths = tf.maximum(tf.sum(mask, 1), tf.scalar(1)) as tf.Tensor1D;
    const enc = stampEncodeEmbedded(x, mask, lastIndex, lengths, this.w, { variant: this.config.variant!, maxNorm: this.config.maxNorm ?? null });
    if (this.keepEncoding) this.lastEncoding = { hs: tf.keep(enc.hs), ht: tf.keep(enc.ht), alpha: tf.keep(enc.alpha) };
    return tf.mul(enc.hs, enc.ht) as tf.Tensor2D;
  }
}
