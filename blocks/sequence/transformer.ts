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
import type { TransformerConfig } from "../../src/generated/blocks/transformer.js";
import type { Initializer } from "../../src/core/index.js";
import { createTransformerParams, maxInputLength, transformerForward, type TransformerParams, type TransformerSettings } from "./transformer-layers.js";

export type { TransformerConfig };

/**
 * A stack of transformer layers, [B, L, dModel] -> [B, L, dModel] (Transformers4Rec TransformerBlock
 * with an XLNet / GPT-2 / BERT config). The padding mask comes from the input block through the
 * CallContext ("padding-mask"); causality follows `causal`, or the preset and the masking scheme
 * when it is null (gpt2 always; xlnet/bert when the masking is causal). The maths is in
 * transformer-layers.ts.
 */
export class TransformerBlock extends Block<TransformerConfig> {
  private params: TransformerParams | undefined;
  private settings: TransformerSettings | undefined;
  private isCausal = false;

  constructor(config: TransformerConfig | Omit<TransformerConfig, "type"> = {}) {
    super({ ...config, type: "transformer" } as TransformerConfig);
  }

  /** Whether attention is causal (after build). */
  get causal(): boolean {
    return this.isCausal;
  }

  private resolveSettings(): TransformerSettings {
    const c = this.config;
    return {
      architecture: c.architecture!,
      dModel: c.dModel!,
      numHeads: c.numHeads!,
      numLayers: c.numLayers!,
      maxSequenceLength: c.maxSequenceLength!,
      dropout: c.dropout!,
      activation: c.activation!,
      feedForwardSize: c.feedForwardSize ?? 4 * c.dModel!,
      layerNormEps: c.layerNormEps!,
      initializerRange: c.initializerRange!,
    };
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const s = this.resolveSettings();
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3) {
      throw new BlockError(ctx.path, "incompatible_input", `transformer needs a float32 sequence [B, L, D] as input, got ${formatSpec(input)}.`, {
        hint: "Put a tabular-sequence-features block (with an aggregation) before it.",
      });
    }
    const d = input.shape[2];
    if (d !== s.dModel) {
      throw new BlockError(`${ctx.path}/dModel`, "incompatible_input", `transformer has dModel ${s.dModel} but its input has size ${String(d)}.`, {
        hint: `Set dOutput: ${s.dModel} on the inputs block (Transformers4Rec's d_output = d_model), or dModel: ${String(d)} here.`,
      });
    }
    if (s.dModel % s.numHeads !== 0) {
      throw new BlockError(`${ctx.path}/numHeads`, "incompatible_config", `dModel ${s.dModel} is not divisible by numHeads ${s.numHeads}.`, {
        hint: "Each head gets dModel / numHeads dimensions; pick numHeads that divides dModel.",
      });
    }
    const L = input.shape[1];
    const maxL = maxInputLength(s);
    if (typeof L === "number" && L > maxL) {
      throw new BlockError(`${ctx.path}/maxSequenceLength`, "sequence_too_long", `The input has ${L} steps but the ${s.architecture} position table holds ${maxL}.`, {
        hint: "Raise maxSequenceLength to at least the data's data.sessions.maxSequenceLength.",
      });
    }
    const masking = ctx.get<{ type: string }>("masking");
    if (this.config.architecture === "gpt2" && this.config.causal === false) {
      throw new BlockError(`${ctx.path}/causal`, "incompatible_config", "gpt2 is a causal decoder; causal: false is not supported for it.", { hint: "Use architecture: bert for bidirectional attention." });
    }
    if (masking?.type === "causal" && this.config.causal === false) {
      throw new BlockError(`${ctx.path}/causal`, "incompatible_masking", "causal: false with causal masking would let each position see the item it must predict.", {
        hint: "Remove causal: false, or use masking: {type: masked}.",
      });
    }
    return { shape: [input.shape[0] ?? null, input.shape[1] ?? null, s.dModel], dtype: "float32" };
  }

  protected override buildWeights(_input: PortSpec, ctx: BlockContext): void {
    const s = this.resolveSettings();
    this.settings = s;
    const masking = ctx.get<{ type: string }>("masking");
    this.isCausal = this.config.causal ?? (s.architecture === "gpt2" || masking?.type === "causal");
    this.params = createTransformerParams(s, (name: string, shape: number[], init: Initializer) => this.addWeight(name, shape, init, ctx));
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor3D {
    if (!this.params || !this.settings) throw new Error(`transformer "${this.name}" is not built`);
    const x = input as tf.Tensor3D;
    const pm = ctx.paddingMask;
    const padding = pm ? ({ kind: "tensor", valid: pm } as const) : ({ kind: "none" } as const);
    return transformerForward(this.params, this.settings, x, { padding, causal: this.isCausal }, { training: ctx.training, rng: ctx.rng }).output;
  }
}
