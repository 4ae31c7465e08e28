import type { RandomSource } from "./rng.js";

/** The three runtime modes of Transformers4Rec (`training=True`, `testing=True`, neither). */
export type MaskMode = "train" | "eval" | "inference";

/** Causal language modelling (T4R `"clm"` / `"causal"`): predict item t+1 from items 0..t. */
export interface CausalMaskingConfig {
  type: "causal";
  /** Train on the last item of each sequence only (T4R `train_on_last_item_seq_only`). Default false. */
  trainOnLastItemSeqOnly?: boolean;
  /** Evaluate on the last item of each sequence only (T4R `eval_on_last_item_seq_only`). Default true. */
  evalOnLastItemSeqOnly?: boolean;
}

/** Masked language modelling (T4R `"mlm"` / `"masked"`), BERT4Rec-style. */
export interface MaskedMaskingConfig {
  type: "masked";
  /** Probability that a real item becomes a label (and is hidden) during training. Default 0.15. */
  mlmProbability?: number;
  /** Evaluate on the last item of each sequence only. Default true. */
  evalOnLastItemSeqOnly?: boolean;
}

/**
 * Every masking config by canonical type id. Other modules add schemes (permutation LM,
 * replacement token detection) by augmenting this interface:
 * `declare module "../masking/types.js" { interface MaskingConfigs { permutation: PlmConfig } }`
 * and calling `registerMaskingScheme(...)`.
 */
export interface MaskingConfigs {
  causal: CausalMaskingConfig;
  masked: MaskedMaskingConfig;
}

export type MaskingType = keyof MaskingConfigs;
export type MaskingConfig = MaskingConfigs[MaskingType];
/** A config with every default filled in (what `resolveMaskingConfig` returns). */
export type Resolved<C> = { [K in keyof C]-?: Exclude<C[K], undefined> };

/** Extra inputs for `maskBatch`. */
export interface MaskOptions {
  /**
   * [B] the next item of each row when it is not part of the sequence (prefix examples of the
   * all-prefixes protocol, `SequenceBatch.targets`). In "eval" mode this switches every scheme to its
   * inference layout with this id as the only label of the row, read where inference reads it.
   * 0 = no target for that row.
   */
  targets?: Int32Array;
}

/**
 * What masking hands to the model, all host-side typed arrays, row-major [B, seqLen].
 * `seqLen` is L, or L + 1 when `appendMask` (masked LM at inference: a [MASK] after the last item).
 */
export interface MaskResult {
  batchSize: number;
  seqLen: number;
  /** Ids fed to the model. Positions holding [MASK] in place of a hidden item hold 0. */
  inputIds: Int32Array;
  /** 1 where the model replaces the input embedding with the trainable [MASK] vector. */
  maskInput: Uint8Array;
  /** 1 where the model must predict: label positions (train/eval), the read position (inference). */
  maskedPositions: Uint8Array;
  /** The target id at label positions, else 0 (always 0 at inference unless targets were given). */
  labels: Int32Array;
  /** 1 where the position stands for an item (real or [MASK]ed), 0 on padding: a key padding mask. */
  validPositions: Uint8Array;
  /**
   * [B] the position whose output predicts the item after the sequence (inference, and eval with
   * `targets`); absent otherwise. Empty rows read position 0.
   */
  readPositions?: Int32Array;
  /** Number of label positions in the batch (sum of `labels != 0`). */
  numLabels: number;
  /** True when a [MASK] position was appended (seqLen = L + 1). */
  appendMask: boolean;
  /** Scheme-specific arrays (e.g. a permutation LM's perm mask / target mapping), by name. */
  extras?: Record<string, Int32Array | Float32Array | Uint8Array>;
}

/** One masking scheme. Implementations are pure host-side functions of typed arrays. */
export interface MaskingScheme<C extends { type: string } = { type: string }> {
  /** Canonical type id (the key in MaskingConfigs). */
  readonly type: string;
  /** Accepted alternative names (e.g. "clm"); configs are always resolved to `type`. */
  readonly aliases: readonly string[];
  /** Option names the scheme accepts besides `type`, with their defaults. */
  readonly defaults: Readonly<Record<string, unknown>>;
  /** Checks option values (after defaults are filled in); returns issues as {key, message, expected}. */
  check(cfg: Resolved<C>): { key: string; message: string; expected?: unknown; received?: unknown }[];
  mask(cfg: Resolved<C>, itemIds: Int32Array, B: number, L: number, mode: MaskMode, rng: RandomSource, opts: MaskOptions): MaskResult;
}
