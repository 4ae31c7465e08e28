/**
 * The transformer presets as plain functions: parameters (a struct of tf.Variables) and a forward
 * pass over [B, L, dModel]. The maths follows Hugging Face's models as Transformers4Rec builds them
 * (inputs_embeds in, last hidden state out); docs/blocks/transformer.md lists the differences.
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
 */
import * as tf from "@tensorflow/tfjs";
import { attentionBias, type KeyPadding } from "../attention/masks.js";
import { createMultiHeadAttention, multiHeadSelfAttention, type MultiHeadAttentionParams } from "../attention/multi-head.js";
import {
  activate, createDense, createLayerNorm, dense, dropout, layerNorm, normalVariable,
  type ActivationName, type DenseParams, type ForwardState, type LayerNormParams, type VariableFactory,
} from "../attention/ops.js";
import {
  createRelativeAttention, relativePositionEncoding, relativeSelfAttention, relativeTwoStreamAttention, type RelativeAttentionParams,
} from "../attention/relative.js";

export type Architecture = "xlnet" | "gpt2" | "bert";
export const ARCHITECTURES: readonly Architecture[] = ["xlnet", "gpt2", "bert"];

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
  layers: TransformerLayerParams[];
}

/** Rows of the learned position table, or 0 when the preset has none. */
export function positionTableSize(s: Pick<TransformerSettings, "architecture" | "maxSequenceLength">): number {
  switch (s.architecture) {
    case "gpt2":
      return s.maxSequenceLength;
    case "bert":
      return s.maxSequenceLength + 2;
    case "xlnet":
      return 0;
  }
}

/** Longest input the preset accepts (Infinity for xlnet). */
export function maxInputLength(s: Pick<TransformerSettings, "architecture" | "maxSequenceLength">): number {
  const n = positionTableSize(s);
  return n === 0 ? Infinity : n;
}

/** Creates every weight, in a fixed order, through `make` (which owns naming and the seeded RNG). */
export function createTransformerParams(s: TransformerSettings, make: VariableFactory): TransformerParams {
  const std = s.initializerRange;
  const D = s.dModel;
  const params: TransformerParams = { layers: [] };
  const tableRows = positionTableSize(s);
  if (tableRows > 0) params.positions = normalVariable(make, "positions", [tableRows, D], std);
  if (s.architecture === "bert") params.inputNorm = createLayerNorm(make, "input_norm", D);
  // GPT-2's scheme: the projections that write into the residual stream start smaller.
  const residualStd = s.architecture === "gpt2" ? std / Math.sqrt(2 * s.numLayers) : std;
  for (let i = 0; i < s.numLayers; i++) {
    const n = `layer_${i}`;
    const attention =
      s.architecture === "xlnet"
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
  const bias = opts.twoStream ? null : attentionBias(opts.padding, B, L, opts.causal);
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
  } else {
    h = dropout(layerNorm(tf.add(x, tf.slice(p.positions!, [0, 0], [L, s.dModel])), p.inputNorm!, eps), rate, state);
    for (const l of p.layers) {
      const a = multiHeadSelfAttention(h as tf.Tensor3D, l.attention as MultiHeadAttentionParams, bias, mha, state);
      if (a.probs) attn.push(a.probs);
      h = layerNorm(tf.add(h, dropout(a.output, rate, state)), l.attentionNorm, eps);
      h = layerNorm(tf.add(h, ff(h, l, false)), l.feedForwardNorm, eps);
    }
  }
  return opts.returnAttention ? { output: h as tf.Tensor3D, attention: attn } : { output: h as tf.Tensor3D };
}
