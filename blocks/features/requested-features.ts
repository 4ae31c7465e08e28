/**
 * Raw input features that a later block (e.g. post-context-fusion) needs besides the input block's
 * output. The input block (tabular-sequence-features) opens a request list in the shared BlockContext
 * when it is built; a body block built after it adds the columns it reads; the input block's
 * `prepare` then also emits those columns (from the batch) and its `call` publishes the record of
 * input tensors in the CallContext under INPUT_FEATURES.
 */
import { BlockError, type BlockContext, type SequenceBatchLike, type TensorSpec } from "../../src/core/index.js";

/** BlockContext key: Map<column, TensorSpec> of the raw features later blocks asked for. */
export const INPUT_FEATURE_REQUESTS = "input-feature-requests";
/** CallContext key: the record of input tensors the input block was called with. */
export const INPUT_FEATURES = "input-features";

/** The request list for an input block to keep (opened in the shared context). */
export function openFeatureRequests(ctx: BlockContext): Map<string, TensorSpec> {
  const m = new Map<string, TensorSpec>();
  ctx.set(INPUT_FEATURE_REQUESTS, m);
  return m;
}

/** Asks the input block for per-row columns; BlockError at ctx.path when no input block takes requests. */
export function requestInputFeatures(ctx: BlockContext, specs: Record<string, TensorSpec>, who: string): void {
  const m = ctx.get<Map<string, TensorSpec>>(INPUT_FEATURE_REQUESTS);
  if (!m) {
    throw new BlockError(ctx.path, "incompatible_input", `${who} reads the session's raw context features, which only a tabular-sequence-features input block passes on.`, {
      hint: "Use tabular-sequence-features as the model's inputs block.",
    });
  }
  for (const [k, s] of Object.entries(specs)) m.set(k, s);
}

/** Adds the requested per-row (context) columns that `features` lacks, from the batch (host arrays, [B] or [B, K]). */
export function addRequestedFeatures(features: Record<string, { values: Int32Array | Float32Array; shape: number[]; dtype: "int32" | "float32" }>, batch: SequenceBatchLike, requests: ReadonlyMap<string, TensorSpec> | undefined): void {
  const B = batch.batchSize;
  for (const [name, spec] of requests ?? []) {
    const have = features[name];
    if (have) {
      if (have.dtype !== spec.dtype || have.shape.length !== spec.shape.length) throw new Error(`feature "${name}" is ${have.dtype}[${have.shape.join(", ")}] in the input block but a later block reads it as ${spec.dtype} of rank ${spec.shape.length}`);
      continue;
    }
    const v = batch.context[name];
    if (!v) {
      throw new BlockError("", "missing_feature", `The data has no context feature "${name}" that a body block (post-context-fusion) reads.`, {
        hint: `Available: ${Object.keys(batch.context).sort().join(", ") || "none"}.`,
      });
    }
    const K = spec.shape.length > 1 ? (spec.shape[1] ?? 1) : 1;
    if (v.length !== B * K) throw new Error(`context feature "${name}" has ${v.length} values, expected ${B * K}`);
    const values = spec.dtype === "int32" ? Int32Array.from(v) : Float32Array.from(v);
    features[name] = { values, shape: K > 1 || spec.shape.length > 1 ? [B, K] : [B], dtype: spec.dtype as "int32" | "float32" };
  }
}
