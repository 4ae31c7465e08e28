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
import { getMaskingScheme, type MaskResult } from "../../src/masking/index.js";
import { permutationBiases } from "../attention/masks.js";
import { createTransformerParams, maxInputLength, transformerForward, type Architecture, type TransformerParams, type TransformerSettings } from "./transformer-layers.js";

export type { TransformerConfig };

/**
 * Masking schemes each preset trains with (Transformers4Rec's MappingTransformerMasking, plus causal
 * for bert, which this block makes causal with an attention mask). Permutation LM needs XLNet's
 * two-stream attention; gpt2 is a causal decoder.
 */
export const MASKING_BY_ARCHITECTURE: Readonly<Record<Architecture, readonly string[]>> = {
  xlnet: ["causal", "masked", "permutation", "rtd"],
  gpt2: ["causal"],
  bert: ["causal", "masked", "rtd"],
};

/** The canonical type of a masking config's type (aliases such as "plm" resolved), or the type itself. */
function canonicalMasking(type: string | undefined): string | undefined {
  return type === undefined ? undefined : (getMaskingScheme(type)?.type ?? type);
}

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
  /** XLNet's mask_emb: the query stream's starting vector (permutation masking only). */
  private queryInit: tf.Variable | undefined;

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
    const maskingType = canonicalMasking(masking?.type);
    if (maskingType !== undefined) {
      const allowed = MASKING_BY_ARCHITECTURE[s.architecture];
      if (!allowed.includes(maskingType)) {
        const fits = (Object.keys(MASKING_BY_ARCHITECTURE) as Architecture[]).filter((a) => MASKING_BY_ARCHITECTURE[a].includes(maskingType));
        throw new BlockError(`${ctx.path}/architecture`, "incompatible_masking", `architecture ${s.architecture} does not train with ${maskingType} masking (the input block's masking.type); ${s.architecture} allows: ${allowed.join(", ")}.`, {
          expected: [...allowed],
          received: maskingType,
          hint: `Use masking type ${allowed.map((a) => `"${a}"`).join(" or ")}, or architecture ${fits.join(" or ")} for ${maskingType} masking.`,
        });
      }
      if (maskingType === "permutation" && this.config.causal === true) {
        throw new BlockError(`${ctx.path}/causal`, "incompatible_masking", "causal: true with permutation masking: the permutation mask decides what each position sees.", {
          hint: "Remove causal: true.",
        });
      }
    }
    return { shape: [input.shape[0] ?? null, input.shape[1] ?? null, s.dModel], dtype: "float32" };
  }

  protected override buildWeights(_input: PortSpec, ctx: BlockContext): void {
    const s = this.resolveSettings();
    this.settings = s;
    const masking = ctx.get<{ type: string }>("masking");
    this.isCausal = this.config.causal ?? (s.architecture === "gpt2" || masking?.type === "causal");
    this.params = createTransformerParams(s, (name: string, shape: number[], init: Initializer) => this.addWeight(name, shape, init, ctx));
    if (canonicalMasking(masking?.type) === "permutation") {
      this.queryInit = this.addWeight("mask_emb", [s.dModel], { kind: "normal", std: s.initializerRange }, ctx);
      ctx.set("permutation-attention", ctx.path);
    }
  }

  /** True when the block runs XLNet's two-stream attention (permutation masking). */
  get twoStream(): boolean {
    return this.queryInit !== undefined;
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor3D {
    if (!this.params || !this.settings) throw new Error(`transformer "${this.name}" is not built`);
    const x = input as tf.Tensor3D;
    const pm = ctx.paddingMask;
    const padding = pm ? ({ kind: "tensor", valid: pm } as const) : ({ kind: "none" } as const);
    const state = { training: ctx.training, rng: ctx.rng };
    if (this.queryInit) {
      // permutation LM: the perm mask of the batch (src/masking/plm.ts) drives both streams
      const mask = ctx.get<MaskResult>("mask");
      const permMask = mask?.extras?.permMask;
      if (!mask || !permMask) throw new Error(`transformer "${this.name}": permutation masking needs the batch's permMask in the CallContext ("mask")`);
      const [B, L] = x.shape;
      if (mask.batchSize !== B || mask.seqLen !== L) throw new Error(`transformer "${this.name}": permMask is for [${mask.batchSize}, ${mask.seqLen}], input is [${B}, ${L}]`);
      const { content, query } = permutationBiases(permMask, mask.validPositions, B, L);
      const twoStream = { contentBias: content, queryBias: query, queryInit: this.queryInit };
      return transformerForward(this.params, this.settings, x, { padding, causal: false, twoStream }, state).output;
    }
    return transformerForward(this.params, this.settings, x, { padding, causal: this.isCausal }, state).output;
  }
}
