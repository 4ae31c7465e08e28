/**
 * How one feature-schema column enters an input block, the rules that tabular-sequence-features and
 * tabular-features share: which per-column options must name existing columns, and the embedding
 * table (cardinality, size, multi-hot bag) of a categorical column or the scalar / soft one-hot
 * embedding of a continuous one.
 */
import { BlockError, cardinalityOf, hasTag, type ColumnLike } from "../../src/core/index.js";
import type { TabularSequenceFeaturesConfig } from "./tabular-sequence-features.js";

/** The block options the column rules read (the same keys in both blocks' configs). */
export type ColumnPlanOptions = Pick<
  TabularSequenceFeaturesConfig,
  "excludeFeatures" | "embeddingDims" | "embeddingDimDefault" | "inferEmbeddingSizes" | "inferEmbeddingSizesMultiplier" | "softEmbeddings" | "multiHot"
>;

/**
 * Throws `unknown_feature` (at `<path>/excludeFeatures/<i>` or `<path>/<key>/<name>`) when excludeFeatures
 * or a per-column option (the record options `keys` of `c`) names a column that is not in `names`.
 */
export function checkNamedColumns<C extends ColumnPlanOptions>(names: Set<string>, c: C, keys: readonly (keyof C & string)[], path: string): void {
  for (const [i, n] of (c.excludeFeatures ?? []).entries()) {
    if (!names.has(n)) throw new BlockError(`${path}/excludeFeatures/${i}`, "unknown_feature", `excludeFeatures names "${n}", which is not a column of the feature schema.`, { expected: [...names].sort() });
  }
  for (const key of keys) {
    for (const n of Object.keys((c[key] as Record<string, unknown> | undefined) ?? {})) {
      if (!names.has(n)) throw new BlockError(`${path}/${key}/${n}`, "unknown_feature", `${key} names "${n}", which is not a column of the feature schema.`, { expected: [...names].sort() });
    }
  }
}

/**
 * A categorical column's embedding table: its cardinality (from the schema; `missing_cardinality` at
 * `path` without one), its size (embeddingDims, else the column's embeddingDim, else inferred from the
 * cardinality or embeddingDimDefault) and, when `multiHot` names it, the bag of values.
 */
export function categoricalColumnPlan(col: ColumnLike, c: ColumnPlanOptions, path: string): { cardinality: number; dim: number; multiHot?: { maxValues: number; combiner: "mean" | "sum" } } {
  const card = cardinalityOf(col);
  if (card === undefined || card < 1) {
    throw new BlockError(path, "missing_cardinality", `Categorical column "${col.name}" has no cardinality in the feature schema, so its embedding table cannot be sized.`, {
      hint: "Set `cardinality` (number of ids including 0 = padding) or `max` on the column.",
    });
  }
  let dim = c.embeddingDims?.[col.name] ?? col.embeddingDim;
  if (dim === undefined) dim = c.inferEmbeddingSizes ? Math.ceil(Math.pow(card, 0.25) * c.inferEmbeddingSizesMultiplier!) : c.embeddingDimDefault!;
  const mh = c.multiHot?.[col.name] ?? schemaBagOf(col);
  return mh ? { cardinality: card, dim, multiHot: { maxValues: mh.maxValues, combiner: mh.combiner ?? "mean" } } : { cardinality: card, dim };
}

/**
 * The multi-hot bag a per-step column declares in the feature schema (`properties.multiHot: {maxValues,
 * combiner?}`, read per interaction by src/data), used when the block's `multiHot` option does not name it.
 * Item-id and context columns are never bags.
 */
export function schemaBagOf(col: ColumnLike): { maxValues: number; combiner?: "mean" | "sum" } | undefined {
  const mh = col.properties?.multiHot as { maxValues?: unknown; combiner?: unknown } | undefined;
  if (!mh || typeof mh !== "object" || !hasTag(col, "list") || hasTag(col, "item-id") || hasTag(col, "context")) return undefined;
  if (!Number.isInteger(mh.maxValues) || (mh.maxValues as number) < 1) return undefined;
  return { maxValues: mh.maxValues as number, combiner: mh.combiner === "sum" ? "sum" : "mean" };
}

/** A continuous column: a scalar (size 1), or a soft one-hot embedding when `softEmbeddings` names it (defaults 10 rows, size 8, layer norm). */
export function continuousColumnPlan(col: ColumnLike, c: ColumnPlanOptions): { dim: number; soft?: { cardinality: number; dim: number; layerNorm: boolean } } {
  const soft = c.softEmbeddings?.[col.name];
  if (!soft) return { dim: 1 };
  const sd = { cardinality: soft.cardinality ?? 10, dim: soft.dim ?? 8, layerNorm: soft.layerNorm ?? true };
  return { dim: sd.dim, soft: sd };
}
