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
import type { PostContextFusionConfig } from "../../src/generated/blocks/post-context-fusion.js";
import { TabularFeatures, type TabularFeaturesConfig } from "../features/tabular-features.js";
import { INPUT_FEATURES, requestInputFeatures } from "../features/requested-features.js";
import { MLPBlock } from "./mlp.js";

export type FusionAggregation = NonNullable<PostContextFusionConfig["fusionAggregation"]>;

export type { PostContextFusionConfig };

/**
 * seq [B, L, D] (or [B, D]) fused with a context representation ctx [B, C] (repeated over L) or
 * [B, L, C]: elementwise-mul -> seq * (1 + ctx W + b), elementwise-sum -> seq + ctx W + b,
 * concat -> [seq, ctx] (size D + C). `projection` is the Linear C -> D (unused for concat).
 */
export function fuseContext(seq: tf.Tensor, ctxRep: tf.Tensor, mode: FusionAggregation, projection?: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const expand = (t: tf.Tensor): tf.Tensor => (seq.rank === 3 && t.rank === 2 ? tf.expandDims(t, 1) : t);
  if (mode === "concat") {
    let c = expand(ctxRep);
    if (seq.rank === 3 && c.shape[1] !== seq.shape[1]) c = tf.tile(c, [1, seq.shape[1]!, 1]);
    return tf.concat([seq, c], -1);
  }
  const p = expand(projection!(ctxRep)); // project [B, C] first, then broadcast over L
  return mode === "elementwise-mul" ? tf.mul(seq, tf.add(p, 1)) : tf.add(seq, p);
}

/**
 * Latent Cross post-context fusion (Transformers4Rec experimental PostContextFusion, Beutel et al.
 * 2018): the sequence hidden states of the previous body block fused with an embedding of the
 * session's context (per-row) features. Put it in the body after the sequence block.
 *
 * Data flow. The context features are embedded by this block's own post-context module, a
 * `tabular-features` block (config key `context`; by default every per-row categorical / continuous
 * column without the list tag), as in Transformers4Rec where `post_context_module` is a separate
 * module over the same inputs. It does not reuse the input block's context embeddings because
 * those only exist for context columns that the input block also aggregates into the sequence
 * input, and Latent Cross usually applies the context after the sequence model only (recipes
 * exclude user_id from the inputs). The raw context columns reach this block through the input
 * block: at build time this block asks tabular-sequence-features for its columns (blocks/features/
 * requested-features.ts), whose `prepare` then takes them from the batch (whether or not it embeds
 * them itself) and whose `call` publishes the input tensors in the CallContext.
 *
 * Input port: float32 [B, L, D] (or [B, D]). Output: the same shape, or last size D + C for concat.
 */
export class PostContextFusionBlock extends Block<PostContextFusionConfig> {
  readonly context: TabularFeatures;
  private projection: MLPBlock | undefined;

  constructor(config: PostContextFusionConfig | Omit<PostContextFusionConfig, "type">) {
    super({ ...config, type: "post-context-fusion" } as PostContextFusionConfig);
    this.context = new TabularFeatures({ ...(this.config.context ?? {}) } as Omit<TabularFeaturesConfig, "type">);
  }

  private contextSpec(ctx: BlockContext): { inputs: Record<string, TensorSpec>; size: number } {
    const cctx = ctx.child("context");
    if (this.context.config.itemEmbeddingDim) {
      throw new BlockError(`${cctx.path}/itemEmbeddingDim`, "incompatible_config", "The post-context module embeds context features only; itemEmbeddingDim (an item table for a pooled model) is not allowed here.");
    }
    const inputs = this.context.expectedInputSpec(cctx);
    const out = this.context.built ? (this.context.outputSpec as TensorSpec) : this.context.computeOutputSpec(inputs, cctx);
    return { inputs, size: out.shape[out.shape.length - 1] as number };
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const d = isTensorSpec(input) ? input.shape[input.shape.length - 1] : undefined;
    if (!isTensorSpec(input) || input.dtype !== "float32" || (input.shape.length !== 2 && input.shape.length !== 3) || typeof d !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `post-context-fusion takes the sequence hidden states, float32 [B, L, D] or [B, D] with a known D, got ${formatSpec(input)}.`, {
        hint: "Put it in the body after a sequence block (transformer, gru, lstm, ...).",
      });
    }
    const { size } = this.contextSpec(ctx);
    return { shape: [...input.shape.slice(0, -1), this.config.fusionAggregation === "concat" ? d + size : d], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const { inputs, size } = this.contextSpec(ctx);
    requestInputFeatures(ctx, inputs, "post-context-fusion");
    this.context.build(inputs, ctx.child("context"));
    if (this.config.fusionAggregation !== "concat") {
      const d = (input as TensorSpec).shape.at(-1) as number;
      // torch.nn.Linear(C, D) with its default U(-1/sqrt(C), 1/sqrt(C)) initialisation
      this.projection = new MLPBlock({ units: [d], activation: "linear" });
      this.projection.build({ shape: [null, size], dtype: "float32" }, ctx.child("projection"));
    }
  }

  override children(): [string, Block][] {
    const out: [string, Block][] = [["context", this.context]];
    if (this.projection) out.push(["projection", this.projection]);
    return out;
  }

  /** The context representation [B, C] of the input features (the post-context module's output). */
  contextRepresentation(features: Record<string, tf.Tensor>, ctx: CallContext): tf.Tensor {
    return this.context.call(features, ctx);
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor {
    const features = ctx.get<Record<string, tf.Tensor>>(INPUT_FEATURES);
    if (!features) throw new Error(`post-context-fusion "${this.name}": no input features in the CallContext (the input block must be tabular-sequence-features)`);
    const c = this.contextRepresentation(features, ctx);
    return fuseContext(input as tf.Tensor, c, this.config.fusionAggregation!, (t) => this.projection!.call(t, ctx));
  }
}
