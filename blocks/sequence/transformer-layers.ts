/**
 * The transformer presets as plain functions: parameters (a struct of tf.Variables) and a forward
 * pass over [B, L, dModel]. The maths follows Hugging Face's models as Transformers4Rec builds them
 * (inputs_embeds in, last hidden state out); docs/transformers.md lists the differences.
 *
 *   xlnet: h = drop(x); pos = drop(relative encodings)
 *          per layer: h = LN(h + drop(RelAttn(h, pos))); h = LN(h + drop(W2 drop(act(W1 h))))
 *          out = drop(h)
 *   gpt2:  h = drop(x + P[:L])
 *          per layer: h = h + drop(Attn(LN1(h))); h = h + drop(W2 act(W1 LN2(h)))
 *          out = LNf(h)
 *   bert:  h = drop(LN(x + P[:L]))
 *          per layer: h = LN(h + drop(Attn(h))); h = LN(h + drop(W2 act(W1 h)))
 *          out = h
 *   roberta: bert with positions read from row 1 on: h = drop(LN(x + P[1:L+1])) (RoBERTa's
 *          padding_idx + 1 offset with pad_token 0, as Transformers4Rec configures it)
 *   longformer: roberta whose attention is Longformer's sliding window: step i attends step j only
 *          when |i - j| <= attentionWindow / 2 (and the padding / causal rules). Longformer's global
 *          attention (its separate *_global projections) is used only for steps given a global
 *          attention mask, which Transformers4Rec never passes, so it is left out.
 *   electra: embeddings of size E = embeddingSize: h = drop(LN_E(x + P_E[:L])); h = Proj(h) when
 *          E != dModel; then bert layers
 *   albert: h = Proj(drop(LN_E(x + P_E[:L]))) (always projected, E may equal dModel); then ONE
 *          bert-style layer (per group) applied numLayers times, without dropout after the
 *          feed-forward (Hugging Face's AlbertLayer defines it but does not use it)
 *   llama: h = drop(x)
 *          per layer: h = h + drop(Attn_rope(RMS1(h))); h = h + drop(W_down(silu(W_gate u) * W_up u)), u = RMS2(h)
 *          out = RMSf(h); no biases anywhere, rotary positions on q and k, no position table
 *   transfo-xl: h = drop(x); the steps are cut into segments of segmentLength (one segment by default);
 *          per segment, per layer i: m_i = memory of layer i (memLength zero vectors at first, as
 *          Hugging Face's init_mems), h = LN(h + drop(RelAttnMem(h, [m_i; h]))); h = LN(h + drop(W2 drop(act(W1 h))));
 *          then m_i = last memLength steps of [m_i; input of layer i]; out = drop(concat of the segments)
 */
import * as tf from "@tensorflow/tfjs";
import { attentionBias, type KeyPadding } from "../attention/masks.js";
import { createMultiHeadAttention, multiHeadSelfAttention, type MultiHeadAttentionParams } from "../attention/multi-head.js";
import {
  activate, createDense, createLayerNorm, createRmsNorm, dense, dropout, layerNorm, normalVariable, rmsNorm,
  type ActivationName, type DenseParams, type ForwardState, type LayerNormParams, type RmsNormParams, type VariableFactory,
} from "../attention/ops.js";
import { ropeTables, ropeTransform } from "../attention/rope.js";
import { memoryAttentionBias, memoryPositionEncoding, memoryRelativeAttention } from "../attention/transfo-xl.js";
import {
  createRelativeAttention, relativePositionEncoding, relativeSelfAttention, relativeTwoStreamAttention, type RelativeAttentionParams,
} from "../attention/relative.js";

export type Architecture = "xlnet" | "gpt2" | "bert" | "roberta" | "electra" | "albert" | "llama" | "transfo-xl" | "longformer";
/** The first three presets (transformer-layers.test.ts runs its generic checks over these). */
export const ARCHITECTURES: readonly Architecture[] = ["xlnet", "gpt2", "bert"];
/** The presets added for Transformers4Rec parity and the modern decoder (test/blocks/sequence/presets.test.ts). */
export const MORE_ARCHITECTURES: readonly Architecture[] = ["roberta", "electra", "albert", "llama", "transfo-xl", "longformer"];
export const ALL_ARCHITECTURES: readonly Architecture[] = [...ARCHITECTURES, ...MORE_ARCHITECTURES];
/** Presets built from BERT's post-layer-norm encoder layer. */
const BERT_FAMILY: ReadonlySet<Architecture> = new Set(["bert", "roberta", "electra", "albert", "longformer"]);

/** Default feed-forward size: 4 * dModel, or for llama 8/3 * dModel rounded up to a multiple of 8 (LLaMA's rule). */
export function defaultFeedForwardSize(architecture: Architecture, dModel: number): number {
  if (architecture !== "llama") return 4 * dModel;
  return 8 * Math.ceil(Math.floor((8 * dModel) / 3) / 8);
}

/** The resolved numbers a preset needs (the block's config with defaults applied). */
export interface TransformerSettings {
  architecture: Architecture;
  dModel: number;
  numHeads: number;
  numLayers: number;
  maxSequenceLength: number;
  dropout: number;
  activation: ActivationName;
  /** Feed-forward inner size (4 * dModel when the config says null). */
  feedForwardSize: number;
  layerNormEps: number;
  initializerRange: number;
  /** albert/electra: size E of the input (the factorised embeddings); dModel when absent. */
  embeddingSize?: number;
  /** albert: number of distinct layer parameter sets shared across the numLayers applications (default 1). */
  numHiddenGroups?: number;
  /** llama: epsilon of the RMS norms (default 1e-6). */
  rmsNormEps?: number;
  /** llama: base of the rotary frequencies (default 10000). */
  ropeTheta?: number;
  /** transfo-xl: steps of memory each layer keeps from the previous segment (default 1, Transformers4Rec's mem_len). */
  memLength?: number;
  /** transfo-xl: steps per segment (default: the whole sequence, one segment). */
  segmentLength?: number;
  /** longformer: sliding attention window (even; each step attends attentionWindow / 2 steps on each side). */
  attentionWindow?: number;
}

/** llama's layer: RMS norms, attention without biases (rotary q/k), SwiGLU feed-forward without biases. */
export interface LlamaLayerParams {
  attentionNorm: RmsNormParams;
  attention: MultiHeadAttentionParams;
  feedForwardNorm: RmsNormParams;
  /** Fused gate and up projections, kernel [dModel, 2 * ffn] (columns: gate | up). */
  gateUp: DenseParams;
  /** Down projection, kernel [ffn, dModel]. */
  down: DenseParams;
}

export interface TransformerLayerParams {
  attention: MultiHeadAttentionParams | RelativeAttentionParams;
  /** gpt2: ln_1 (before attention); xlnet/bert: the layer norm after the attention residual. */
  attentionNorm: LayerNormParams;
  feedForwardInner: DenseParams;
  feedForwardOutput: DenseParams;
  /** gpt2: ln_2 (before the feed-forward); xlnet/bert: the layer norm after its residual. */
  feedForwardNorm: LayerNormParams;
}

export interface TransformerParams {
  /** Learned absolute positions (gpt2: maxSequenceLength rows, bert: maxSequenceLength + 2). */
  positions?: tf.Variable;
  /** bert: the embeddings' layer norm. */
  inputNorm?: LayerNormParams;
  /** gpt2: ln_f. */
  finalNorm?: LayerNormParams;
  /**
   * The distinct layer parameter sets. albert: numHiddenGroups sets (1 by default) applied numLayers
   * times (see `layerSchedule`); llama: empty (its layers are in `llamaLayers`).
   */
  layers: TransformerLayerParams[];
  /** albert always, electra when embeddingSize != dModel: the E -> dModel projection (with bias). */
  inputProjection?: DenseParams;
  /** llama's layers. */
  llamaLayers?: LlamaLayerParams[];
  /** llama: the final RMS norm. */
  finalRmsNorm?: RmsNormParams;
}

/** Size of the input the preset expects: embeddingSize for albert/electra (when set), else dModel. */
export function inputSize(s: Pick<TransformerSettings, "architecture" | "dModel" | "embeddingSize">): number {
  return (s.architecture === "albert" || s.architecture === "electra") && s.embeddingSize ? s.embeddingSize : s.dModel;
}

/** Which parameter set each of the numLayers applications uses (albert: Hugging Face's group index; others: i). */
export function layerSchedule(s: Pick<TransformerSettings, "architecture" | "numLayers" | "numHiddenGroups">): number[] {
  const out: number[] = [];
  if (s.architecture !== "albert") {
    for (let i = 0; i < s.numLayers; i++) out.push(i);
    return out;
  }
  const groups = s.numHiddenGroups ?? 1;
  const perGroup = Math.floor(s.numLayers / groups);
  for (let i = 0; i < s.numLayers; i++) out.push(Math.min(groups - 1, Math.floor(i / perGroup)));
  return out;
}

/** First row of the position table read at step 0 (roberta: 1, its padding_idx + 1 with pad token 0). */
export function positionOffset(s: Pick<TransformerSettings, "architecture">): number {
  return s.architecture === "roberta" || s.architecture === "longformer" ? 1 : 0;
}

/** Rows of the learned position table, or 0 when the preset has none. */
export function positionTableSize(s: Pick<TransformerSettings, "architecture" | "maxSequenceLength">): number {
  switch (s.architecture) {
    case "gpt2":
      return s.maxSequenceLength;
    case "bert":
    case "roberta":
    case "longformer":
    case "electra":
    case "albert":
      return s.maxSequenceLength + 2;
    case "xlnet":
    case "llama":
    case "transfo-xl":
      return 0;
  }
}

/** Longest input the preset accepts (Infinity for xlnet). */
export function maxInputLength(s: Pick<TransformerSettings, "architecture" | "maxSequenceLength">): number {
  const n = positionTableSize(s);
  return n === 0 ? Infinity : n - positionOffset(s);
}

/** Creates every weight, in a fixed order, through `make` (which owns naming and the seeded RNG). */
export function createTransformerParams(s: TransformerSettings, make: VariableFactory): TransformerParams {
  const std = s.initializerRange;
  const D = s.dModel;
  const params: TransformerParams = { layers: [] };
  if (s.architecture === "llama") return createLlamaParams(s, make);
  const E = inputSize(s);
  const tableRows = positionTableSize(s);
  if (tableRows > 0) params.positions = normalVariable(make, "positions", [tableRows, E], std);
  if (BERT_FAMILY.has(s.architecture)) params.inputNorm = createLayerNorm(make, "input_norm", E);
  if (s.architecture === "albert" || (s.architecture === "electra" && E !== D)) {
    params.inputProjection = createDense(make, "input_projection", E, D, std);
  }
  const sets = s.architecture === "albert" ? (s.numHiddenGroups ?? 1) : s.numLayers;
  // GPT-2's scheme: the projections that write into the residual stream start smaller.
  const residualStd = s.architecture === "gpt2" ? std / Math.sqrt(2 * s.numLayers) : std;
  for (let i = 0; i < sets; i++) {
    const n = s.architecture === "albert" ? `shared_layer_${i}` : `layer_${i}`;
    const attention =
      s.architecture === "xlnet" || s.architecture === "transfo-xl"
        ? createRelativeAttention(make, `${n}/attention`, D, s.numHeads, std)
        : createMultiHeadAttention(make, `${n}/attention`, { dModel: D, std, outStd: residualStd, bias: true });
    params.layers.push({
      attention,
      attentionNorm: createLayerNorm(make, `${n}/attention_norm`, D),
      feedForwardInner: createDense(make, `${n}/feed_forward/inner`, D, s.feedForwardSize, std),
      feedForwardOutput: createDense(make, `${n}/feed_forward/output`, s.feedForwardSize, D, residualStd),
      feedForwardNorm: createLayerNorm(make, `${n}/feed_forward_norm`, D),
    });
  }
  if (s.architecture === "gpt2") params.finalNorm = createLayerNorm(make, "final_norm", D);
  return params;
}

function createLlamaParams(s: TransformerSettings, make: VariableFactory): TransformerParams {
  const std = s.initializerRange;
  const D = s.dModel;
  const F = s.feedForwardSize;
  const llamaLayers: LlamaLayerParams[] = [];
  for (let i = 0; i < s.numLayers; i++) {
    const n = `layer_${i}`;
    llamaLayers.push({
      attentionNorm: createRmsNorm(make, `${n}/attention_norm`, D),
      attention: createMultiHeadAttention(make, `${n}/attention`, { dModel: D, std, bias: false }),
      feedForwardNorm: createRmsNorm(make, `${n}/feed_forward_norm`, D),
      gateUp: createDense(make, `${n}/feed_forward/gate_up`, D, 2 * F, std, false),
      down: createDense(make, `${n}/feed_forward/down`, F, D, std, false),
    });
  }
  return { layers: [], llamaLayers, finalRmsNorm: createRmsNorm(make, "final_norm", D) };
}

/** The rows [start, start + n) of each of the B rows of a host [B, L] mask. */
function segmentRows(valid: ArrayLike<number>, B: number, L: number, start: number, n: number): Uint8Array {
  const out = new Uint8Array(B * n);
  for (let b = 0; b < B; b++) for (let t = 0; t < n; t++) out[b * n + t] = valid[b * L + start + t] ? 1 : 0;
  return out;
}

/** Transformer-XL over the segments of x (see the header); returns the concatenated outputs before the final dropout. */
function transfoXlStack(
  p: TransformerParams, s: TransformerSettings, x: tf.Tensor3D, opts: ForwardOptions, state: ForwardState, attn: tf.Tensor4D[],
  mha: { numHeads: number; attentionDropout: number; returnProbs: boolean }, ff: (h: tf.Tensor, l: TransformerLayerParams) => tf.Tensor,
): tf.Tensor {
  const [B, L, D] = x.shape;
  const rate = s.dropout;
  const eps = s.layerNormEps;
  const m = s.memLength ?? 1;
  const segLen = Math.min(L, s.segmentLength ?? L);
  const pad = opts.padding;
  const valid: ArrayLike<number> | null = pad.kind === "none" ? null : pad.kind === "host" ? pad.valid : pad.valid.dataSync();
  const h = dropout(x, rate, state);
  // Hugging Face's init_mems: memLength zero vectors per layer, visible to every query
  let mems: (tf.Tensor3D | null)[] = p.layers.map(() => (m > 0 ? (tf.zeros([B, m, D]) as tf.Tensor3D) : null));
  let memValid = new Uint8Array(B * m).fill(1);
  const outs: tf.Tensor[] = [];
  for (let start = 0; start < L; start += segLen) {
    const ql = Math.min(segLen, L - start);
    const segValid = valid ? segmentRows(valid, B, L, start, ql) : null;
    const pos = dropout(memoryPositionEncoding(ql, m + ql, D), rate, state) as tf.Tensor2D;
    const bias = memoryAttentionBias(memValid, segValid, B, m, ql, opts.causal);
    let hs: tf.Tensor = tf.slice(h, [0, start, 0], [B, ql, D]);
    const hids: tf.Tensor[] = [];
    p.layers.forEach((l, i) => {
      hids.push(hs);
      const a = memoryRelativeAttention(hs as tf.Tensor3D, mems[i]!, pos, l.attention as RelativeAttentionParams, bias, mha, state);
      if (a.probs) attn.push(a.probs);
      hs = layerNorm(tf.add(hs, dropout(a.output, rate, state)), l.attentionNorm, eps);
      hs = layerNorm(tf.add(hs, ff(hs, l)), l.feedForwardNorm, eps);
    });
    outs.push(hs);
    if (m > 0 && start + ql < L) {
      // Transformer-XL's _update_mems: the last memLength steps of [memory; this segment's layer inputs]
      mems = mems.map((mem, i) => tf.slice(tf.concat([mem!, hids[i]!], 1), [0, ql, 0], [B, m, D]) as tf.Tensor3D);
      const next = new Uint8Array(B * m);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < m; j++) {
          const src = j + ql; // index in [memory (m); segment (ql)]
          next[b * m + j] = src < m ? memValid[b * m + src]! : segValid ? segValid[b * ql + src - m]! : 1;
        }
      }
      memValid = next;
    }
  }
  return dropout(outs.length === 1 ? outs[0]! : tf.concat(outs, 1), rate, state);
}

/** SwiGLU feed-forward: W_down (silu(x W_gate) * (x W_up)); gateUp holds [W_gate | W_up]. */
export function swiGlu(x: tf.Tensor, gateUp: DenseParams, down: DenseParams): tf.Tensor {
  const [gate, up] = tf.split(dense(x, gateUp), 2, -1) as [tf.Tensor, tf.Tensor];
  return dense(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), down);
}

export interface ForwardOptions {
  /** Key padding of the batch. */
  padding: KeyPadding;
  causal: boolean;
  /** Also return each layer's attention probabilities [H, B, L, L] (tests, inspection). */
  returnAttention?: boolean;
  /**
   * xlnet only: XLNet's two-stream attention (permutation LM). The content stream starts from x and
   * uses `contentBias`; the query stream starts from `queryInit` ([D], XLNet's mask_emb) at every
   * position and uses `queryBias`; the output is the query stream. `padding` and `causal` are
   * ignored (the biases hold them). See blocks/attention/masks.ts `permutationBiases`.
   */
  twoStream?: { contentBias: tf.Tensor3D; queryBias: tf.Tensor3D; queryInit: tf.Tensor };
}

export interface ForwardResult {
  output: tf.Tensor3D;
  attention?: tf.Tensor4D[];
}

/**
 * x [B, L, dModel] -> [B, L, dModel]. Call inside a tidy (the caller's); the attention bias is
 * built once here and shared by all layers.
 */
export function transformerForward(
  p: TransformerParams, s: TransformerSettings, x: tf.Tensor3D, opts: ForwardOptions, state: ForwardState,
): ForwardResult {
  const [B, L] = x.shape;
  const window = s.architecture === "longformer" ? Math.floor((s.attentionWindow ?? s.maxSequenceLength + 2) / 2) : undefined;
  const bias = opts.twoStream ? null : attentionBias(opts.padding, B, L, opts.causal, window);
  const attn: tf.Tensor4D[] = [];
  const rate = s.dropout;
  const eps = s.layerNormEps;
  const mha = { numHeads: s.numHeads, attentionDropout: rate, returnProbs: opts.returnAttention ?? false };
  const ff = (h: tf.Tensor, l: TransformerLayerParams, innerDropout: boolean): tf.Tensor => {
    let u = activate(dense(h, l.feedForwardInner), s.activation);
    if (innerDropout) u = dropout(u, rate, state);
    return dropout(dense(u, l.feedForwardOutput), rate, state);
  };

  let h: tf.Tensor;
  if (s.architecture === "xlnet" && opts.twoStream) {
    // Hugging Face XLNetModel with target_mapping = identity: both streams share every weight
    const ts = opts.twoStream;
    h = dropout(x, rate, state);
    let g: tf.Tensor = dropout(tf.mul(tf.onesLike(x), tf.reshape(ts.queryInit, [1, 1, s.dModel])), rate, state);
    const pos = dropout(relativePositionEncoding(L, s.dModel), rate, state) as tf.Tensor2D;
    for (const l of p.layers) {
      const a = relativeTwoStreamAttention(h as tf.Tensor3D, g as tf.Tensor3D, pos, l.attention as RelativeAttentionParams, ts.contentBias, ts.queryBias, mha, state);
      h = layerNorm(tf.add(h, dropout(a.content, rate, state)), l.attentionNorm, eps);
      g = layerNorm(tf.add(g, dropout(a.query, rate, state)), l.attentionNorm, eps);
      h = layerNorm(tf.add(h, ff(h, l, true)), l.feedForwardNorm, eps);
      g = layerNorm(tf.add(g, ff(g, l, true)), l.feedForwardNorm, eps);
    }
    h = dropout(g, rate, state);
  } else if (s.architecture === "xlnet") {
    h = dropout(x, rate, state);
    const pos = dropout(relativePositionEncoding(L, s.dModel), rate, state) as tf.Tensor2D;
    for (const l of p.layers) {
      const a = relativeSelfAttention(h as tf.Tensor3D, pos, l.attention as RelativeAttentionParams, bias, mha, state);
      if (a.probs) attn.push(a.probs);
      h = layerNorm(tf.add(h, dropout(a.output, rate, state)), l.attentionNorm, eps);
      h = layerNorm(tf.add(h, ff(h, l, true)), l.feedForwardNorm, eps);
    }
    h = dropout(h, rate, state);
  } else if (s.architecture === "gpt2") {
    h = dropout(tf.add(x, tf.slice(p.positions!, [0, 0], [L, s.dModel])), rate, state);
    for (const l of p.layers) {
      const a = multiHeadSelfAttention(layerNorm(h, l.attentionNorm, eps) as tf.Tensor3D, l.attention as MultiHeadAttentionParams, bias, mha, state);
      if (a.probs) attn.push(a.probs);
      h = tf.add(h, dropout(a.output, rate, state));
      h = tf.add(h, ff(layerNorm(h, l.feedForwardNorm, eps), l, false));
    }
    h = layerNorm(h, p.finalNorm!, eps);
  } else if (s.architecture === "transfo-xl") {
    h = transfoXlStack(p, s, x, opts, state, attn, mha, (hh, l) => ff(hh, l, true));
  } else if (s.architecture === "llama") {
    const rmsEps = s.rmsNormEps ?? 1e-6;
    const rope = ropeTables(L, s.dModel / s.numHeads, s.ropeTheta ?? 10000);
    const ropeMha = { ...mha, transformQK: ropeTransform(rope) };
    h = dropout(x, rate, state);
    for (const l of p.llamaLayers!) {
      const a = multiHeadSelfAttention(rmsNorm(h, l.attentionNorm, rmsEps) as tf.Tensor3D, l.attention, bias, ropeMha, state);
      if (a.probs) attn.push(a.probs);
      h = tf.add(h, dropout(a.output, rate, state));
      h = tf.add(h, dropout(swiGlu(rmsNorm(h, l.feedForwardNorm, rmsEps), l.gateUp, l.down), rate, state));
    }
    h = rmsNorm(h, p.finalRmsNorm!, rmsEps);
  } else {
    // bert, roberta, electra, albert, longformer
    const E = inputSize(s);
    const positions = tf.slice(p.positions!, [positionOffset(s), 0], [L, E]);
    h = dropout(layerNorm(tf.add(x, positions), p.inputNorm!, eps), rate, state);
    if (p.inputProjection) h = dense(h, p.inputProjection);
    const ffDropout = s.architecture !== "albert";
    for (const i of layerSchedule(s)) {
      const l = p.layers[i]!;
      const a = multiHeadSelfAttention(h as tf.Tensor3D, l.attention as MultiHeadAttentionParams, bias, mha, state);
      if (a.probs) attn.push(a.probs);
      h = layerNorm(tf.add(h, dropout(a.output, rate, state)), l.attentionNorm, eps);
      const f = ffDropout ? ff(h, l, false) : dense(activate(dense(h, l.feedForwardInner), s.activation), l.feedForwardOutput);
      h = layerNorm(tf.add(h, f), l.feedForwardNorm, eps);
    }
  }
  return opts.returnAttention ? { output: h as tf.Tensor3D, attention: attn } : { output: h as tf.Tensor3D };
}
