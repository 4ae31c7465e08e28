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
import { CAUSAL_DECODERS as DECODERS, canonicalMaskingType as canonicalMasking, MASKING_BY_ARCHITECTURE as MASKING_TABLE, maskingMismatch, type MaskResult } from "../../src/masking/index.js";
import { permutationBiases } from "../attention/masks.js";
import {
  createTransformerParams, defaultFeedForwardSize, inputSize, maxInputLength, transformerForward,
  type Architecture, type TransformerParams, type TransformerSettings,
} from "./transformer-layers.js";

export type { TransformerConfig };

/** The masking each preset trains with: one table in src/masking/architectures.ts (recblocks validate reads it too). */
export const MASKING_BY_ARCHITECTURE: Readonly<Record<Architecture, readonly string[]>> = MASKING_TABLE;

/**
 * A stack of transformer layers, [B, L, D_in] -> [B, L, dModel] (Transformers4Rec TransformerBlock
 * with an XLNet / GPT-2 / BERT / RoBERTa / ELECTRA / ALBERT / Transfo-XL config, plus a LLaMA-style decoder);
 * D_in is dModel, or embeddingSize for albert/electra. The padding mask comes from the input block
 * through the CallContext ("padding-mask"); causality follows `causal`, or the preset and the
 * masking scheme when it is null (gpt2, llama and transfo-xl always; the others when the masking is causal).
 * The maths is in transformer-layers.ts; docs/transformers.md describes every preset.
 */
export class TransformerBlock extends Block<TransformerConfig> {
  private params: TransformerParams | undefined;
  private settings: TransformerSettings | undefined;
  /** Recipe path of the block (for errors found at call time). */
  private where = "";
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
    const architecture = c.architecture as Architecture;
    return {
      architecture,
      dModel: c.dModel!,
      numHeads: c.numHeads!,
      numLayers: c.numLayers!,
      maxSequenceLength: c.maxSequenceLength!,
      dropout: c.dropout!,
      activation: c.activation!,
      feedForwardSize: c.feedForwardSize ?? defaultFeedForwardSize(architecture, c.dModel!),
      layerNormEps: c.layerNormEps!,
      initializerRange: c.initializerRange!,
      ...(c.embeddingSize != null ? { embeddingSize: c.embeddingSize } : {}),
      numHiddenGroups: c.numHiddenGroups ?? 1,
      rmsNormEps: c.rmsNormEps ?? 1e-6,
      ropeTheta: c.ropeTheta ?? 10000,
      memLength: c.memLength ?? 1,
      ...(c.segmentLength != null ? { segmentLength: c.segmentLength } : {}),
      // Transformers4Rec's default, maxSequenceLength + 2, rounded up to even (Longformer's windows are even)
      ...(architecture === "longformer" ? { attentionWindow: c.attentionWindow ?? 2 * Math.ceil((c.maxSequenceLength! + 2) / 2) } : {}),
    };
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const s = this.resolveSettings();
    this.checkPresetOptions(s, ctx);
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3) {
      throw new BlockError(ctx.path, "incompatible_input", `transformer needs a float32 sequence [B, L, D] as input, got ${formatSpec(input)}.`, {
        hint: "Put a tabular-sequence-features block (with an aggregation) before it.",
      });
    }
    const d = input.shape[2];
    const dIn = inputSize(s);
    if (dIn !== s.dModel && d !== dIn) {
      throw new BlockError(`${ctx.path}/embeddingSize`, "incompatible_input", `transformer (${s.architecture}) has embeddingSize ${dIn} but its input has size ${String(d)}.`, {
        hint: `Set dOutput: ${dIn} on the inputs block, or embeddingSize: ${String(d)} here (the body projects embeddingSize -> dModel ${s.dModel}).`,
      });
    }
    if (d !== dIn) {
      const factorised = s.architecture === "albert" || s.architecture === "electra";
      throw new BlockError(`${ctx.path}/dModel`, "incompatible_input", `transformer has dModel ${s.dModel} but its input has size ${String(d)}.`, {
        hint: `Set dOutput: ${s.dModel} on the inputs block (Transformers4Rec's d_output = d_model), or dModel: ${String(d)} here` +
          (factorised ? `, or embeddingSize: ${String(d)} (${s.architecture} projects its input to dModel).` : "."),
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
    if (DECODERS.has(s.architecture) && this.config.causal === false) {
      throw new BlockError(`${ctx.path}/causal`, "incompatible_config", `${s.architecture} is a causal decoder; causal: false is not supported for it.`, { hint: "Use architecture: bert for bidirectional attention." });
    }
    if (masking?.type === "causal" && this.config.causal === false) {
      throw new BlockError(`${ctx.path}/causal`, "incompatible_masking", "causal: false with causal masking would let each position see the item it must predict.", {
        hint: "Remove causal: false, or use masking: {type: masked}.",
      });
    }
    const maskingType = canonicalMasking(masking?.type);
    if (maskingType !== undefined) {
      const mismatch = maskingMismatch(s.architecture, maskingType);
      if (mismatch) {
        const { message, ...extra } = mismatch;
        throw new BlockError(`${ctx.path}/architecture`, "incompatible_masking", message, extra);
      }
      if (maskingType === "permutation" && this.config.causal === true) {
        throw new BlockError(`${ctx.path}/causal`, "incompatible_masking", "causal: true with permutation masking: the permutation mask decides what each position sees.", {
          hint: "Remove causal: true.",
        });
      }
    }
    return { shape: [input.shape[0] ?? null, input.shape[1] ?? null, s.dModel], dtype: "float32" };
  }

  /** Options that only some presets take, and their ranges. */
  private checkPresetOptions(s: TransformerSettings, ctx: BlockContext): void {
    const c = this.config;
    if (c.embeddingSize != null && s.architecture !== "albert" && s.architecture !== "electra") {
      throw new BlockError(`${ctx.path}/embeddingSize`, "incompatible_config", `embeddingSize (factorised embeddings) is an option of albert and electra, not ${s.architecture}.`, {
        hint: "Remove embeddingSize, or use architecture: albert or electra.",
      });
    }
    if (s.architecture === "albert") {
      const g = s.numHiddenGroups ?? 1;
      if (g > s.numLayers || s.numLayers % g !== 0) {
        throw new BlockError(`${ctx.path}/numHiddenGroups`, "incompatible_config", `numHiddenGroups ${g} must divide numLayers ${s.numLayers} (each group of shared weights serves numLayers / numHiddenGroups consecutive layers).`, {
          hint: "Use numHiddenGroups: 1 (one set of weights for every layer, ALBERT's default) or a divisor of numLayers.",
        });
      }
    } else if (c.numHiddenGroups != null && c.numHiddenGroups !== 1) {
      throw new BlockError(`${ctx.path}/numHiddenGroups`, "incompatible_config", `numHiddenGroups (cross-layer sharing) is an option of albert, not ${s.architecture}.`, {
        hint: "Remove numHiddenGroups, or use architecture: albert.",
      });
    }
    if (s.architecture !== "transfo-xl" && ((c.memLength != null && c.memLength !== 1) || c.segmentLength != null)) {
      throw new BlockError(`${ctx.path}/${c.segmentLength != null ? "segmentLength" : "memLength"}`, "incompatible_config", `memLength and segmentLength (segment-recurrence memory) are options of transfo-xl, not ${s.architecture}.`, {
        hint: "Remove them, or use architecture: transfo-xl.",
      });
    }
    if (c.attentionWindow != null && s.architecture !== "longformer") {
      throw new BlockError(`${ctx.path}/attentionWindow`, "incompatible_config", `attentionWindow (sliding-window attention) is an option of longformer, not ${s.architecture}.`, {
        hint: "Remove attentionWindow, or use architecture: longformer.",
      });
    }
    if (s.attentionWindow !== undefined && !(Number.isInteger(s.attentionWindow) && s.attentionWindow >= 2 && s.attentionWindow % 2 === 0)) {
      throw new BlockError(`${ctx.path}/attentionWindow`, "incompatible_config", `longformer's attentionWindow must be an even integer >= 2 (each step attends attentionWindow / 2 steps on each side), got ${String(s.attentionWindow)}.`, {
        hint: "Use an even window, e.g. maxSequenceLength + 2 (Transformers4Rec's value), which is full attention.",
      });
    }
    if (s.architecture === "llama" && s.dModel % s.numHeads === 0 && (s.dModel / s.numHeads) % 2 !== 0) {
      throw new BlockError(`${ctx.path}/numHeads`, "incompatible_config", `llama's rotary position embeddings rotate pairs of dimensions: the head size dModel / numHeads = ${s.dModel / s.numHeads} must be even.`, {
        hint: "Pick numHeads so that dModel / numHeads is even.",
      });
    }
  }

  protected override buildWeights(_input: PortSpec, ctx: BlockContext): void {
    this.where = ctx.path;
    const s = this.resolveSettings();
    this.settings = s;
    const masking = ctx.get<{ type: string }>("masking");
    this.isCausal = this.config.causal ?? (DECODERS.has(s.architecture) || masking?.type === "causal");
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
    // the sequence length is only known here when the spec left it open (recipes do): a longer input
    // than the position table is a located error, not TensorFlow's slice error
    const maxL = maxInputLength(this.settings);
    if (x.shape[1] > maxL) {
      throw new BlockError(`${this.where}/maxSequenceLength`, "sequence_too_long", `The input has ${x.shape[1]} steps but the ${this.settings.architecture} position table holds ${maxL}.`, {
        hint: "Raise maxSequenceLength to at least the data's data.sessions.maxSequenceLength.",
      });
    }
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
