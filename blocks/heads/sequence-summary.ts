import * as tf from "@tensorflow/tfjs";
import { Block, BlockError, formatSpec, isTensorSpec, type BlockContext, type BlockInput, type CallContext, type PortSpec, type TensorSpec } from "../../src/core/index.js";

/** Config of `sequence-summary` (schemas/blocks/sequence-summary.schema.json). */
export interface SequenceSummaryConfig {
  type: "sequence-summary";
  name?: string;
  summaryType?: "last" | "first" | "mean" | "cls-index";
  clsIndex?: number;
}

/**
 * [B, L, D] -> [B, D], one vector per session (Transformers4Rec `summary_type`), using the padding
 * mask of the CallContext (1 = real step; all steps real when there is none): `last` reads each row's
 * last real step, `first` step 0, `mean` averages the real steps, `cls-index` reads step `clsIndex`
 * (negative: back from the last real step), clamped to the real steps.
 */
export class SequenceSummaryBlock extends Block<SequenceSummaryConfig> {
  constructor(config: Omit<SequenceSummaryConfig, "type"> | SequenceSummaryConfig = {}) {
    super({ ...config, type: "sequence-summary" } as SequenceSummaryConfig);
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3) {
      throw new BlockError(ctx.path, "incompatible_input", `sequence-summary needs a float32 sequence [B, L, D], got ${formatSpec(input)}.`, {
        hint: "Put it after a sequence block (transformer, gru, lstm, mlp on a sequence).",
      });
    }
    return { shape: [input.shape[0] ?? null, input.shape[2]!], dtype: "float32" };
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor2D {
    return summarize(input as tf.Tensor3D, ctx.paddingMask, this.config.summaryType ?? "last", this.config.clsIndex ?? -1);
  }
}

export type SummaryType = "last" | "first" | "mean" | "cls-index";

/**
 * One vector per row of a sequence h [B, L, D] (see SequenceSummaryBlock); `mask` [B, L] is 1 at real
 * steps (all steps when undefined). Call inside a tidy.
 */
export function summarize(h: tf.Tensor3D, mask: tf.Tensor2D | undefined, type: SummaryType, clsIndex = -1): tf.Tensor2D {
  const [B, L] = h.shape;
  if (type === "first") return tf.squeeze(tf.slice(h, [0, 0, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
  const m = mask ?? (tf.ones([B, L]) as tf.Tensor2D);
  if (type === "mean") {
    const n = tf.maximum(tf.sum(m, 1, true), 1);
    return tf.div(tf.sum(tf.mul(h, tf.expandDims(m, 2)), 1), n) as tf.Tensor2D;
  }
  // index of the last real step of each row (0 for an empty row)
  const last = tf.cast(tf.argMax(tf.mul(m, tf.add(tf.range(0, L, 1, "float32"), 1)), 1), "int32") as tf.Tensor1D;
  let idx = last;
  if (type === "cls-index") {
    const want = clsIndex >= 0 ? tf.fill([B], clsIndex, "int32") : tf.add(last, tf.scalar(clsIndex + 1, "int32"));
    idx = tf.minimum(tf.maximum(want, tf.scalar(0, "int32")), last) as tf.Tensor1D;
  }
  return tf.sum(tf.mul(h, tf.expandDims(tf.oneHot(idx, L).toFloat(), 2)), 1) as tf.Tensor2D;
}
