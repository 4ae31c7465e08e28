/**
 * Pre-computed embedding vectors as input features (Transformers4Rec PretrainedEmbeddingFeatures, fed
 * by a Merlin dataloader EmbeddingOperator). As with the EmbeddingOperator, the vectors are looked up
 * from a frozen matrix read from a file (.npy / .json / .csv, row i = the vector of dense id i of the
 * lookup column, row 0 = padding) by a categorical id column of the batch (the item id by default):
 * a sequential lookup column gives [B, L, dim] (one vector per interaction), a per-row (context) one
 * [B, dim] (one per session). Per feature: an optional Linear projection to `outputDim`
 * (pretrained_output_dims), an optional `sequenceCombiner` (mean / sum / max / min over the real
 * steps, giving [B, dim]) and an optional layer-norm `normalizer`. tabular-sequence-features merges
 * the result with its other features by its aggregation ([B, dim] features repeated over L).
 */
import * as tf from "@tensorflow/tfjs";
import { BlockError, hasTag, type BlockContext, type ColumnLike, type Initializer } from "../../src/core/index.js";
import type { TabularSequenceFeaturesConfig as GeneratedTabularSequenceFeaturesConfig } from "../../src/generated/blocks/tabular-sequence-features.js";
import { MLPBlock } from "../core/mlp.js";
import { EmbeddingFileError, fileReadingAvailable, readEmbeddingMatrix, type EmbeddingMatrix } from "./pretrained.js";

/** One pre-trained embedding feature (tabular-sequence-features `pretrainedEmbeddingFeatures.<name>`, schema-generated). */
export type PretrainedEmbeddingFeatureOptions = NonNullable<GeneratedTabularSequenceFeaturesConfig["pretrainedEmbeddingFeatures"]>[string];

/** A planned pre-trained embedding feature. */
export interface PretrainedEmbeddingPlan {
  name: string;
  path: string;
  lookup: string;
  /** The lookup column is per step ([B, L]) rather than per row ([B]). */
  lookupSequential: boolean;
  /** Rows of the matrix needed: the lookup column's cardinality. */
  cardinality: number;
  /** Vector size in the file. */
  dim: number;
  outputDim?: number;
  combiner?: "mean" | "sum" | "max" | "min";
  layerNorm: boolean;
  /** The matrix (read when planning; undefined where files cannot be read). */
  matrix?: EmbeddingMatrix;
}

/** The weights of one feature after build. */
export interface PretrainedEmbeddingWeights {
  table: tf.Variable;
  projection?: MLPBlock;
}

type AddWeight = (localName: string, shape: number[], init: Initializer, trainable: boolean) => tf.Variable;

/**
 * Plans `options` (feature name -> options). `inputs` maps the block's categorical inputs to whether
 * they are sequential and their cardinality. Reads each file once (cache by path). BlockErrors at
 * `<path>/pretrainedEmbeddingFeatures/<name>`.
 */
export function planPretrainedEmbeddingFeatures(
  options: Record<string, PretrainedEmbeddingFeatureOptions> | undefined,
  columns: readonly ColumnLike[],
  inputs: ReadonlyMap<string, { sequential: boolean; cardinality: number }>,
  itemColumn: string,
  path: string,
  cache: Map<string, EmbeddingMatrix>,
): PretrainedEmbeddingPlan[] {
  const out: PretrainedEmbeddingPlan[] = [];
  for (const [name, o] of Object.entries(options ?? {})) {
    const at = `${path}/pretrainedEmbeddingFeatures/${name}`;
    const col = columns.find((c) => c.name === name);
    if (col && !hasTag(col, "embedding")) {
      throw new BlockError(at, "incompatible_feature", `pretrainedEmbeddingFeatures names "${name}", a feature-schema column without the "embedding" tag.`, {
        hint: 'Give the pre-trained feature a new name, or tag the column "embedding" (its vectors then come from the file).',
      });
    }
    if (inputs.has(name)) throw new BlockError(at, "incompatible_feature", `pretrainedEmbeddingFeatures names "${name}", which is already an input of this block.`);
    const lookup = o.lookup ?? itemColumn;
    const key = inputs.get(lookup);
    if (!key) {
      throw new BlockError(`${at}/lookup`, "incompatible_feature", `"${name}" is looked up by "${lookup}", which is not a categorical input of this block (excluded, multi-hot, or not selected by its tags).`, {
        expected: [...inputs.keys()].sort(),
      });
    }
    let matrix: EmbeddingMatrix | undefined;
    if (fileReadingAvailable()) {
      matrix = cache.get(o.path);
      if (!matrix) {
        try {
          matrix = readEmbeddingMatrix(o.path);
        } catch (e) {
          if (!(e instanceof EmbeddingFileError)) throw e;
          throw new BlockError(`${at}/path`, "bad_pretrained_embeddings", `The vectors of "${name}" cannot be read: ${e.message}.`, { received: o.path, hint: "Give a .npy, .json (array of rows) or .csv file; relative paths are resolved against the current folder." });
        }
        cache.set(o.path, matrix);
      }
      if (matrix.rows < key.cardinality || (o.dim != null && o.dim !== matrix.cols)) {
        throw new BlockError(`${at}/path`, "bad_pretrained_embeddings", `The vectors of "${name}" (${o.path}) have shape [${matrix.rows}, ${matrix.cols}], expected at least ${key.cardinality} rows (the cardinality of "${lookup}", row i = id i, row 0 = padding)${o.dim != null ? ` and ${o.dim} columns (dim)` : ""}.`, {
          received: [matrix.rows, matrix.cols], expected: [key.cardinality, o.dim ?? matrix.cols],
        });
      }
    } else if (o.dim == null) {
      throw new BlockError(`${at}/dim`, "bad_pretrained_embeddings", `The vectors of "${name}" cannot be read here (no file access), so their size must be given as dim.`);
    }
    out.push({
      name, path: o.path, lookup, lookupSequential: key.sequential, cardinality: key.cardinality, dim: matrix?.cols ?? o.dim!,
      ...(o.outputDim ? { outputDim: o.outputDim } : {}), ...(o.sequenceCombiner ? { combiner: o.sequenceCombiner } : {}),
      layerNorm: o.normalizer === "layer-norm", ...(matrix ? { matrix } : {}),
    });
  }
  return out;
}

/** Size of the feature's vectors as aggregated. */
export function pretrainedFeatureSize(p: PretrainedEmbeddingPlan): number {
  return p.outputDim ?? p.dim;
}

/** Frozen table [cardinality, dim] (rows past the lookup's cardinality are dropped) and the projection. */
export function buildPretrainedEmbeddingFeature(p: PretrainedEmbeddingPlan, addWeight: AddWeight, ctx: BlockContext): PretrainedEmbeddingWeights {
  const table = addWeight(`pretrained_embedding_features/${p.name}/table`, [p.cardinality, p.dim], { kind: "zeros" }, false);
  // in a browser the model is rebuilt from a saved model directory, whose weights replace the zeros
  if (p.matrix) tf.tidy(() => table.assign(tf.tensor2d(p.matrix!.data.subarray(0, p.cardinality * p.dim), [p.cardinality, p.dim])));
  const w: PretrainedEmbeddingWeights = { table };
  if (p.outputDim) {
    w.projection = new MLPBlock({ name: "projection", units: [p.outputDim], activation: "linear" });
    w.projection.build({ shape: [null, null, p.dim], dtype: "float32" }, ctx.child("pretrainedEmbeddingFeatures", p.name, "outputDim"));
  }
  return w;
}

/**
 * The feature for the batch: vectors of the lookup ids (padding id 0 -> zero vector), projected,
 * reduced over the real steps by the combiner, and, when `L` is given, a [B, d] result repeated to
 * [B, L, d]. Call inside the caller's tidy; `ids` int32 [B, L] or [B].
 */
export function pretrainedEmbeddingFeature(p: PretrainedEmbeddingPlan, w: PretrainedEmbeddingWeights, ids: tf.Tensor, ctx: Parameters<MLPBlock["call"]>[1], L?: number): tf.Tensor {
  const i32 = ids.dtype === "int32" ? ids : tf.cast(ids, "int32");
  const real = tf.expandDims(tf.cast(tf.notEqual(i32, 0), "float32"), -1); // [.., 1]
  let t: tf.Tensor = tf.gather(w.table, i32);
  if (w.projection) t = w.projection.call(t, ctx);
  t = tf.mul(t, real); // padding steps stay zero after the projection's bias
  if (p.combiner && t.rank === 3) {
    const count = tf.sum(real, 1); // [B, 1]
    if (p.combiner === "sum") t = tf.sum(t, 1);
    else if (p.combiner === "mean") t = tf.div(tf.sum(t, 1), tf.maximum(count, 1));
    else {
      const fill = p.combiner === "max" ? -3.4e38 : 3.4e38; // padding steps never win
      const masked = tf.add(t, tf.mul(tf.sub(1, real), fill));
      t = p.combiner === "max" ? tf.max(masked, 1) : tf.min(masked, 1);
      t = tf.mul(t, tf.cast(tf.greater(count, 0), "float32")); // a row without steps gives zeros
    }
  }
  if (L !== undefined && t.rank === 2) t = tf.tile(tf.expandDims(t, 1), [1, L, 1]);
  return t;
}
