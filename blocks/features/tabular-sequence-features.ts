import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  cardinalityOf,
  columnsOf,
  dropout,
  formatSpec,
  hasTag,
  isTensorSpec,
  itemIdColumnOf,
  layerNorm,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type ColumnLike,
  type FeatureSchemaLike,
  type PortSpec,
  type RandomSource,
  type SequenceBatchLike,
  type TensorSpec,
} from "../../src/core/index.js";
import { getMaskingScheme, maskBatch, type MaskMode, type MaskResult } from "../../src/masking/index.js";
import { MLPBlock } from "../core/mlp.js";
import { aggregateFeatures, bagEmbedding, softEmbedding, stochasticSwapNoise, type AggregationName } from "./feature-ops.js";
import { categoricalColumnPlan, checkNamedColumns, continuousColumnPlan } from "./column-plan.js";
import { EmbeddingFileError, fileReadingAvailable, readEmbeddingMatrix, type EmbeddingMatrix } from "./pretrained.js";
import { buildPretrainedEmbeddingFeature, planPretrainedEmbeddingFeatures, pretrainedEmbeddingFeature, pretrainedFeatureSize, type PretrainedEmbeddingFeatureOptions, type PretrainedEmbeddingPlan, type PretrainedEmbeddingWeights } from "./pretrained-embedding-features.js";
import { addRequestedFeatures, INPUT_FEATURES, openFeatureRequests } from "./requested-features.js";

/** The masking scheme attached to the input block (see src/masking). */
export interface MaskingOptions {
  type: "causal" | "masked" | "permutation" | "rtd";
  trainOnLastItemSeqOnly?: boolean;
  evalOnLastItemSeqOnly?: boolean;
  mlmProbability?: number;
  plmProbability?: number;
  maxSpanLength?: number;
  permuteAll?: boolean;
  discriminatorLossWeight?: number;
  sampleFrom?: "generator" | "batch";
}

/** Config of `tabular-sequence-features` (schemas/blocks/tabular-sequence-features.schema.json). */
export interface TabularSequenceFeaturesConfig {
  type: "tabular-sequence-features";
  name?: string;
  categoricalTags?: string[];
  continuousTags?: string[];
  excludeFeatures?: string[];
  embeddingDims?: Record<string, number>;
  embeddingDimDefault?: number;
  inferEmbeddingSizes?: boolean;
  inferEmbeddingSizesMultiplier?: number;
  embeddingInitStd?: number;
  continuousProjection?: number[] | null;
  /** Soft one-hot embeddings of continuous columns (Transformers4Rec SoftEmbedding). */
  softEmbeddings?: Record<string, SoftEmbeddingOptions>;
  aggregation?: AggregationName;
  /** element-wise-sum-item-multi: item * (1 + sum of the others) instead of item * sum. */
  itemMultiPlusOne?: boolean;
  /** Column -> the column whose embedding table it uses. */
  sharedEmbeddings?: Record<string, string>;
  /** Column -> pre-trained table file. */
  pretrainedEmbeddings?: Record<string, PretrainedEmbeddingOptions>;
  /** Multi-hot (fixed-size padded list) categorical columns. */
  multiHot?: Record<string, MultiHotOptions>;
  /** Feature name -> pre-computed vectors looked up from a frozen file matrix (pretrained-embedding-features.ts). */
  pretrainedEmbeddingFeatures?: Record<string, PretrainedEmbeddingFeatureOptions>;
  layerNorm?: boolean;
  dropout?: number;
  stochasticSwapNoise?: StochasticSwapNoiseOptions | null;
  dOutput?: number | null;
  maxSequenceLength?: number | null;
  masking?: MaskingOptions | null;
}

export interface SoftEmbeddingOptions {
  cardinality?: number;
  dim?: number;
  layerNorm?: boolean;
}
export interface PretrainedEmbeddingOptions {
  path: string;
  trainable?: boolean;
}
export interface MultiHotOptions {
  maxValues: number;
  combiner?: "mean" | "sum";
}
export interface StochasticSwapNoiseOptions {
  replacementProbability: number;
  features?: string[] | null;
}

/** One input feature as the block uses it. */
export interface FeaturePlan {
  name: string;
  kind: "categorical" | "continuous";
  /** true: [B, L] per step; false: [B] per row (context), broadcast along the sequence. */
  sequential: boolean;
  cardinality?: number;
  /** Size of the feature's vector before aggregation (embedding dim, or 1 for a scalar). */
  dim: number;
  /** Continuous column embedded with a soft one-hot embedding of P = soft.cardinality rows. */
  soft?: { cardinality: number; dim: number; layerNorm: boolean };
  /** Multi-hot column: K values per step (or per row), combined by mean or sum. */
  multiHot?: { maxValues: number; combiner: "mean" | "sum" };
  /** Categorical column that uses another column's embedding table. */
  sharesTableOf?: string;
}

/**
 * Bags of another size than the block's K (the data's bag size, properties.multiHot.maxValues, differs from
 * the block's multiHot maxValues): each of the n steps' bags cut or padded with 0 to K. Other arrays as they are.
 */
export function rebag<T extends Int32Array | Float32Array>(src: T, n: number, K: number): T {
  if (n === 0 || src.length === n * K || src.length % n !== 0) return src;
  const Kd = src.length / n;
  const out = new (src.constructor as { new (len: number): T })(n * K);
  const m = Math.min(K, Kd);
  for (let i = 0; i < n; i++) for (let k = 0; k < m; k++) out[i * K + k] = src[i * Kd + k]!;
  return out;
}

/** What the shared "item-embeddings" entry holds (for weight tying). */
export interface ItemEmbeddings {
  column: string;
  table: tf.Variable;
  cardinality: number;
  dim: number;
}

/** Host-side arrays of one batch after masking, ready to become tensors. */
export interface PreparedBatch {
  batchSize: number;
  seqLen: number;
  features: Record<string, { values: Int32Array | Float32Array; shape: number[]; dtype: "int32" | "float32" }>;
  mask?: MaskResult;
  /** [B*L'] 1 where the position holds an item (real or [MASK]). */
  validPositions: Uint8Array;
}

const CONTINUOUS_PROJECTION = "continuous_projection";
const LN_EPS = 1e-5;

/**
 * Schema-driven sequence input block (Transformers4Rec TabularSequenceFeatures): one embedding table
 * per categorical column (row 0 = padding, kept at zero), continuous scalars, optional continuous
 * projection, aggregation (concat in sorted name order, or element-wise sum), optional dOutput
 * projection, context (non-list) features broadcast along the sequence, and the masking scheme
 * with its trainable [MASK] embedding.
 *
 * Input port: a record of named tensors (int32 ids / float32 values, [B, L] per step or [B] per row).
 * Output: float32 [B, L, D]. Reads "mask-input" (float32 [B, L]) from the CallContext.
 */
export class TabularSequenceFeatures extends Block<TabularSequenceFeaturesConfig> {
  /** The feature schema given to fromSchema (the BlockContext's schema wins when both exist). */
  schema: FeatureSchemaLike | undefined;
  private plan: FeaturePlan[] = [];
  private itemColumn: string | undefined;
  private tables = new Map<string, tf.Variable>();
  private norms = new Map<string, { gamma: tf.Variable; beta: tf.Variable }>();
  private softWeights = new Map<string, { kernel: tf.Variable; bias: tf.Variable; table: tf.Variable }>();
  private continuousMlp: MLPBlock | undefined;
  private projection: MLPBlock | undefined;
  private maskEmbedding: tf.Variable | undefined;
  private outputDim = 0;
  private pretrainedPlan: PretrainedEmbeddingPlan[] = [];
  private pretrainedWeights = new Map<string, PretrainedEmbeddingWeights>();
  private readonly pretrainedFiles = new Map<string, EmbeddingMatrix>();
  /** Raw columns later body blocks read (requested-features.ts), passed on by prepare. */
  private requests: Map<string, TensorSpec> | undefined;

  constructor(config: TabularSequenceFeaturesConfig | Omit<TabularSequenceFeaturesConfig, "type">) {
    super({ ...config, type: "tabular-sequence-features" } as TabularSequenceFeaturesConfig);
  }

  /** Transformers4Rec's `TabularSequenceFeatures.from_schema(schema, ...)`. */
  static fromSchema(schema: FeatureSchemaLike, options: Omit<TabularSequenceFeaturesConfig, "type"> = {}): TabularSequenceFeatures {
    const b = new TabularSequenceFeatures(options);
    b.schema = schema;
    return b;
  }

  /** The masking options, or undefined. */
  get masking(): MaskingOptions | undefined {
    return this.config.masking ?? undefined;
  }

  /** Name of the item-id column (after planning). */
  get itemIdColumn(): string | undefined {
    return this.itemColumn;
  }

  get features(): readonly FeaturePlan[] {
    return this.plan;
  }

  /** Works out the features from the schema; throws BlockError at ctx.path. */
  planFeatures(ctx: BlockContext): FeaturePlan[] {
    const schema = ctx.schema ?? this.schema;
    const cols = columnsOf(schema);
    if (cols.length === 0) {
      throw new BlockError(ctx.path, "missing_feature_schema", "TabularSequenceFeatures needs a feature schema with at least one column.", {
        hint: "Give the recipe a `features` schema, or call TabularSequenceFeatures.fromSchema(schema, options).",
      });
    }
    const c = this.config;
    const item = itemIdColumnOf(schema);
    if (!item) {
      throw new BlockError(ctx.path, "missing_item_id", "The feature schema has no column tagged item-id; sequence inputs need one.", {
        hint: 'Tag the item column with "item-id" in the feature schema.',
      });
    }
    const names = new Set(cols.map((x) => x.name));
    checkNamedColumns(names, c, ["embeddingDims", "softEmbeddings", "sharedEmbeddings", "pretrainedEmbeddings", "multiHot"], ctx.path);
    if (c.stochasticSwapNoise?.features) {
      for (const [i, n] of c.stochasticSwapNoise.features.entries()) {
        if (!names.has(n)) throw new BlockError(`${ctx.path}/stochasticSwapNoise/features/${i}`, "unknown_feature", `stochasticSwapNoise names "${n}", which is not a column of the feature schema.`, { expected: [...names].sort() });
      }
    }
    const excluded = new Set(c.excludeFeatures ?? []);
    const plan: FeaturePlan[] = [];
    const anyTag = (col: ColumnLike, tags: string[]): boolean => tags.some((t) => hasTag(col, t));
    for (const col of cols) {
      const isItem = col.name === item.name;
      if ((excluded.has(col.name) || c.pretrainedEmbeddingFeatures?.[col.name]) && !isItem) continue;
      if (!isItem && hasTag(col, "session-id")) continue; // an identifier, not a feature
      if (!isItem && hasTag(col, "target")) continue; // read by the tasks, never an input
      const sequential = isItem || hasTag(col, "list");
      if (isItem || anyTag(col, c.categoricalTags!)) plan.push({ name: col.name, kind: "categorical", sequential, ...categoricalColumnPlan(col, c, ctx.path) });
      else if (anyTag(col, c.continuousTags!)) plan.push({ name: col.name, kind: "continuous", sequential, ...continuousColumnPlan(col, c) });
    }
    const byName = new Map(plan.map((f) => [f.name, f]));
    for (const key of ["softEmbeddings", "multiHot", "pretrainedEmbeddings", "sharedEmbeddings"] as const) {
      for (const n of Object.keys(c[key] ?? {})) {
        const f = byName.get(n);
        const want = key === "softEmbeddings" ? "continuous" : "categorical";
        if (!f || f.kind !== want) {
          throw new BlockError(`${ctx.path}/${key}/${n}`, "incompatible_feature", `${key} names "${n}", which is not ${want === "continuous" ? "a continuous" : "a categorical"} input of this block${f ? ` (it is ${f.kind})` : " (excluded, or not selected by its tags)"}.`);
        }
        if (key === "multiHot" && n === item.name) {
          throw new BlockError(`${ctx.path}/multiHot/${n}`, "incompatible_feature", `The item-id column "${n}" cannot be multi-hot: the masking reads one item per step.`);
        }
      }
    }
    for (const [n, owner] of Object.entries(c.sharedEmbeddings ?? {})) {
      const f = byName.get(n)!;
      const o = byName.get(owner);
      const at = `${ctx.path}/sharedEmbeddings/${n}`;
      if (!o || o.kind !== "categorical") throw new BlockError(at, "incompatible_feature", `"${n}" shares the table of "${owner}", which is not a categorical input of this block.`, { expected: plan.filter((x) => x.kind === "categorical" && x.name !== n).map((x) => x.name) });
      if (owner === n || c.sharedEmbeddings![owner] !== undefined) throw new BlockError(at, "incompatible_feature", `"${n}" shares the table of "${owner}", which itself shares a table (or is "${n}"): name the column that owns the table.`);
      if (c.pretrainedEmbeddings?.[n]) throw new BlockError(at, "incompatible_feature", `"${n}" shares the table of "${owner}" and also names a pre-trained table: give the pre-trained table to "${owner}".`);
      if (f.cardinality! > o.cardinality!) {
        throw new BlockError(at, "incompatible_feature", `"${n}" has cardinality ${f.cardinality}, more than the ${o.cardinality} rows of "${owner}"'s table it shares.`, {
          received: f.cardinality, expected: `<= ${o.cardinality}`, hint: "Columns that share a table must use the same id space (the same vocabulary).",
        });
      }
      if (c.embeddingDims?.[n] !== undefined && c.embeddingDims[n] !== o.dim) {
        throw new BlockError(`${ctx.path}/embeddingDims/${n}`, "incompatible_feature", `embeddingDims gives "${n}" size ${c.embeddingDims[n]}, but it shares the table of "${owner}" of size ${o.dim}.`, { received: c.embeddingDims[n], expected: o.dim });
      }
      f.dim = o.dim;
      f.sharesTableOf = owner;
    }
    this.itemColumn = item.name;
    const lookups = new Map(plan.filter((f) => f.kind === "categorical" && !f.multiHot).map((f) => [f.name, { sequential: f.sequential, cardinality: f.cardinality! }]));
    this.pretrainedPlan = planPretrainedEmbeddingFeatures(c.pretrainedEmbeddingFeatures, cols, lookups, item.name, ctx.path, this.pretrainedFiles);
    return plan.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The input port this block expects for a schema: {column: int32|float32 [B, L] or [B]}. */
  expectedInputSpec(ctx: BlockContext): Record<string, TensorSpec> {
    const out: Record<string, TensorSpec> = {};
    for (const f of this.planFeatures(ctx)) {
      const shape: (number | null)[] = f.sequential ? [null, null] : [null];
      if (f.multiHot) shape.push(f.multiHot.maxValues);
      out[f.name] = { shape, dtype: f.kind === "categorical" ? "int32" : "float32" };
    }
    return out;
  }

  /** Sizes of the aggregated features: [name, dim] in aggregation order. */
  private aggregatedParts(plan: FeaturePlan[]): [string, number][] {
    const cont = plan.filter((f) => f.kind === "continuous");
    const parts: [string, number][] = plan.filter((f) => f.kind === "categorical" || f.soft).map((f) => [f.name, f.dim]);
    const scalars = cont.filter((f) => !f.soft);
    const proj = this.config.continuousProjection;
    if (proj && proj.length && scalars.length) parts.push([CONTINUOUS_PROJECTION, proj[proj.length - 1]!]);
    else for (const f of scalars) parts.push([f.name, 1]);
    for (const p of this.pretrainedPlan) parts.push([p.name, pretrainedFeatureSize(p)]);
    return parts.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const plan = this.planFeatures(ctx);
    if (isTensorSpec(input)) {
      throw new BlockError(ctx.path, "incompatible_input", `TabularSequenceFeatures takes named features, got one tensor ${formatSpec(input)}.`);
    }
    for (const f of plan) {
      const s = input[f.name];
      const want = f.kind === "categorical" ? "int32" : "float32";
      if (!s) {
        throw new BlockError(ctx.path, "missing_feature", `Feature "${f.name}" is not among the inputs (${Object.keys(input).sort().join(", ") || "none"}).`);
      }
      const rank = (f.sequential ? 2 : 1) + (f.multiHot ? 1 : 0);
      const k = f.multiHot?.maxValues;
      if (s.dtype !== want || s.shape.length !== rank || (k !== undefined && s.shape[rank - 1] !== null && s.shape[rank - 1] !== k)) {
        const dims = [...(f.sequential ? ["?", "?"] : ["?"]), ...(k !== undefined ? [String(k)] : [])];
        throw new BlockError(ctx.path, "incompatible_input", `Feature "${f.name}" should be ${want}[${dims.join(", ")}], got ${formatSpec(s)}.`);
      }
    }
    const d = this.aggregatedSize(this.aggregatedParts(plan), ctx.path);
    if (this.config.aggregation === "stack") return { shape: [null, null, d, this.aggregatedParts(plan).length], dtype: "float32" };
    return { shape: [null, null, this.config.dOutput ?? d], dtype: "float32" };
  }

  /** Last-axis size after aggregation (for stack: the common feature size); checks the sizes agree. */
  private aggregatedSize(parts: [string, number][], path: string): number {
    const agg = this.config.aggregation!;
    if (agg === "concat") return parts.reduce((a, p) => a + p[1], 0);
    const list = parts.map(([n, x]) => `${n}: ${x}`).join(", ");
    if (new Set(parts.map((p) => p[1])).size > 1) {
      throw new BlockError(`${path}/aggregation`, "incompatible_feature_sizes", `${agg} needs every feature to have the same size, got ${list}.`, {
        hint: "Set embeddingDims (and softEmbeddings dims, continuousProjection) so that all features have one size, or use aggregation: concat.",
      });
    }
    if (agg === "element-wise-sum-item-multi" && parts.length < 2) {
      throw new BlockError(`${path}/aggregation`, "incompatible_feature_sizes", `element-wise-sum-item-multi multiplies the item embedding by the sum of the other features, but "${this.itemColumn}" is the only feature.`, {
        hint: "Add side features (categoricalTags / continuousTags), or use aggregation: concat.",
      });
    }
    if (agg === "stack" && (this.config.masking || this.config.dOutput)) {
      throw new BlockError(`${path}/aggregation`, "incompatible_aggregation", `stack gives a 4-D tensor [B, L, D, ${parts.length}], which ${this.config.masking ? "masking" : "dOutput"} cannot take (it needs [B, L, D]).`, {
        hint: "Use concat, element-wise-sum or element-wise-sum-item-multi with masking and dOutput; stack is for blocks built in code that read the stacked features.",
      });
    }
    return parts[0]![1];
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const plan = this.planFeatures(ctx);
    this.plan = plan;
    const c = this.config;
    for (const f of plan.filter((x) => x.kind === "categorical" && !x.sharesTableOf)) {
      const pre = c.pretrainedEmbeddings?.[f.name];
      if (pre) this.tables.set(f.name, this.pretrainedTable(f, pre, ctx));
      else this.tables.set(f.name, this.addWeight(`embeddings/${f.name}`, [f.cardinality!, f.dim], { kind: "normal", std: c.embeddingInitStd!, zeroRow0: true }, ctx));
    }
    for (const f of plan.filter((x) => x.sharesTableOf)) this.tables.set(f.name, this.tables.get(f.sharesTableOf!)!);
    for (const f of plan.filter((x) => x.soft)) {
      const P = f.soft!.cardinality;
      // torch Linear(1 -> P) initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = 1
      this.softWeights.set(f.name, {
        kernel: this.addWeight(`soft_embeddings/${f.name}/kernel`, [P], { kind: "uniform", limit: 1 }, ctx),
        bias: this.addWeight(`soft_embeddings/${f.name}/bias`, [P], { kind: "uniform", limit: 1 }, ctx),
        table: this.addWeight(`soft_embeddings/${f.name}/embeddings`, [P, f.dim], { kind: "normal", std: c.embeddingInitStd! }, ctx),
      });
    }
    const cont = plan.filter((f) => f.kind === "continuous" && !f.soft);
    if (c.continuousProjection && c.continuousProjection.length && cont.length) {
      this.continuousMlp = new MLPBlock({ units: [...c.continuousProjection], activation: "relu" });
      this.continuousMlp.build({ shape: [null, null, cont.length], dtype: "float32" }, ctx.child("continuousProjection"));
    }
    const parts = this.aggregatedParts(plan);
    for (const p of this.pretrainedPlan) this.pretrainedWeights.set(p.name, buildPretrainedEmbeddingFeature(p, (n, s, i, t) => this.addWeight(n, s, i, ctx, t), ctx));
    const softNorm = new Set([...plan.filter((f) => f.soft?.layerNorm).map((f) => f.name), ...this.pretrainedPlan.filter((p) => p.layerNorm).map((p) => p.name)]);
    for (const [name, d] of parts) {
      if (d > 1 && (c.layerNorm || softNorm.has(name))) {
        this.norms.set(name, { gamma: this.addWeight(`layer_norm/${name}/gamma`, [d], { kind: "ones" }, ctx), beta: this.addWeight(`layer_norm/${name}/beta`, [d], { kind: "zeros" }, ctx) });
      }
    }
    const aggDim = this.aggregatedSize(parts, ctx.path);
    if (c.dOutput) {
      this.projection = new MLPBlock({ units: [c.dOutput], activation: "relu" });
      this.projection.build({ shape: [null, null, aggDim], dtype: "float32" }, ctx.child("dOutput"));
    }
    this.outputDim = c.dOutput ?? aggDim;
    if (c.masking && c.aggregation !== "stack") this.maskEmbedding = this.addWeight("masked_item_embedding", [this.outputDim], { kind: "normal", std: 0.001 }, ctx);
    const item = plan.find((f) => f.name === this.itemColumn)!;
    ctx.set("item-id", item.name);
    ctx.set("item-embeddings", { column: item.name, table: this.tables.get(item.name)!, cardinality: item.cardinality!, dim: item.dim } satisfies ItemEmbeddings);
    if (c.masking) ctx.set("masking", c.masking);
    this.requests = openFeatureRequests(ctx);
    void input;
  }

  /** A pre-trained table read from its file; its shape must be [cardinality, dim]. */
  private pretrainedTable(f: FeaturePlan, pre: PretrainedEmbeddingOptions, ctx: BlockContext): tf.Variable {
    const at = `${ctx.path}/pretrainedEmbeddings/${f.name}/path`;
    const trainable = pre.trainable ?? false;
    if (!fileReadingAvailable()) {
      // in a browser the model is always rebuilt from a saved model directory, whose weights replace these
      return this.addWeight(`embeddings/${f.name}`, [f.cardinality!, f.dim], { kind: "zeros" }, ctx, trainable);
    }
    let m;
    try {
      m = readEmbeddingMatrix(pre.path);
    } catch (e) {
      if (!(e instanceof EmbeddingFileError)) throw e;
      throw new BlockError(at, "bad_pretrained_embeddings", `The pre-trained table of "${f.name}" cannot be read: ${e.message}.`, { received: pre.path, hint: "Give a .npy, .json (array of rows) or .csv file; relative paths are resolved against the current folder." });
    }
    if (m.rows !== f.cardinality || m.cols !== f.dim) {
      throw new BlockError(at, "bad_pretrained_embeddings", `The pre-trained table of "${f.name}" (${pre.path}) has shape [${m.rows}, ${m.cols}], expected [${f.cardinality}, ${f.dim}] (cardinality rows including row 0 = padding, embedding size columns).`, {
        received: [m.rows, m.cols], expected: [f.cardinality, f.dim],
        hint: m.rows === f.cardinality! - 1 ? "The table seems to lack the padding row 0: prepend a row of zeros." : m.rows === f.cardinality ? `Set embeddingDims.${f.name} to ${m.cols}.` : "The rows must follow the column's vocabulary: row i is the vector of dense id i.",
      });
    }
    const v = this.addWeight(`embeddings/${f.name}`, [f.cardinality!, f.dim], { kind: "zeros" }, ctx, trainable);
    tf.tidy(() => v.assign(tf.tensor2d(m.data, [m.rows, m.cols])));
    return v;
  }

  override children(): [string, Block][] {
    const out: [string, Block][] = [];
    if (this.continuousMlp) out.push(["continuous_projection", this.continuousMlp]);
    if (this.projection) out.push(["projection", this.projection]);
    for (const [n, w] of this.pretrainedWeights) if (w.projection) out.push([`pretrained_embedding_features/${n}`, w.projection]);
    return out;
  }

  /** The item embedding table (after build). */
  get itemEmbeddingTable(): tf.Variable | undefined {
    return this.itemColumn ? this.tables.get(this.itemColumn) : undefined;
  }

  /**
   * Host side of one batch: masking (train / eval / inference, as configured) and the arrays of every
   * feature, with a padding step inserted where masked LM appends its [MASK] at inference.
   */
  prepare(batch: SequenceBatchLike, mode: MaskMode, rng: RandomSource, opts: { useTargets?: boolean } = {}): PreparedBatch {
    if (!this.built) throw new Error(`TabularSequenceFeatures "${this.name}" is not built`);
    const B = batch.batchSize;
    const L = batch.seqLen;
    let mask: MaskResult | undefined;
    if (this.config.masking) {
      const scheme = getMaskingScheme(this.config.masking.type)!;
      const cfg: Record<string, unknown> = { type: this.config.masking.type };
      for (const k of Object.keys(scheme.defaults)) {
        const v = (this.config.masking as unknown as Record<string, unknown>)[k];
        if (v !== undefined) cfg[k] = v;
      }
      // prefix examples (eval, or prefix training) carry their target: it is the label at the read position
      const targets = opts.useTargets !== false && mode !== "inference" ? batch.targets : undefined;
      mask = maskBatch(cfg as { type: string }, batch.itemIds, B, L, mode, rng, targets ? { targets } : {});
    }
    const L1 = mask ? mask.seqLen : L;
    const insertAt = mask?.appendMask ? mask.readPositions! : undefined;
    const seq = <T extends Int32Array | Float32Array>(src: T, name: string, K = 1): T => {
      if (src.length !== B * L * K) throw new Error(`feature "${name}" has ${src.length} values, expected batchSize*seqLen${K > 1 ? "*maxValues" : ""} = ${B * L * K}`);
      if (!insertAt) return src;
      const out = new (src.constructor as { new (n: number): T })(B * L1 * K);
      for (let b = 0; b < B; b++) {
        const m = insertAt[b]!;
        for (let t = 0; t < L; t++) for (let k = 0; k < K; k++) out[(b * L1 + (t < m ? t : t + 1)) * K + k] = src[(b * L + t) * K + k]!;
      }
      return out;
    };
    const features: PreparedBatch["features"] = {};
    for (const f of this.plan) {
      const dtype = f.kind === "categorical" ? "int32" : "float32";
      if (f.name === this.itemColumn) {
        features[f.name] = { values: mask ? mask.inputIds : batch.itemIds, shape: [B, L1], dtype: "int32" };
        continue;
      }
      const pool = f.sequential ? (f.kind === "categorical" ? batch.categorical : batch.continuous) : batch.context;
      const values = pool?.[f.name];
      if (!values) {
        throw new BlockError("", "missing_feature", `The data has no ${f.sequential ? "sequence" : "context"} feature "${f.name}" that the feature schema declares.`, {
          hint: `Available: ${Object.keys(pool ?? {}).sort().join(", ") || "none"}. Exclude it with excludeFeatures, or fix the feature schema.`,
        });
      }
      const K = f.multiHot?.maxValues ?? 1;
      const tail = f.multiHot ? [K] : [];
      if (f.sequential) features[f.name] = { values: seq(f.multiHot ? rebag(values as Int32Array | Float32Array, B * L, K) : (values as Int32Array | Float32Array), f.name, K), shape: [B, L1, ...tail], dtype };
      else {
        if (values.length !== B * K) throw new Error(`context feature "${f.name}" has ${values.length} values, expected batchSize${K > 1 ? "*maxValues" : ""} = ${B * K}`);
        features[f.name] = { values: dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values), shape: [B, ...tail], dtype };
      }
    }
    let validPositions: Uint8Array;
    if (mask) validPositions = mask.validPositions;
    else {
      validPositions = new Uint8Array(B * L);
      for (let i = 0; i < B * L; i++) validPositions[i] = batch.itemIds[i] !== 0 ? 1 : 0;
    }
    const ssn = this.config.stochasticSwapNoise;
    if (ssn && mode === "train") this.swapNoise(features, validPositions, ssn, rng);
    addRequestedFeatures(features, batch, this.requests);
    return { batchSize: B, seqLen: L1, features, mask, validPositions };
  }

  /**
   * Stochastic swap noise on the prepared arrays (training only). A value is eligible when its step
   * holds an item (validPositions; every row for context features) and, for categorical features, it
   * is not 0 (padding, or the [MASK] of the item input). Labels come from the masking, before the noise.
   */
  private swapNoise(features: PreparedBatch["features"], valid: Uint8Array, ssn: StochasticSwapNoiseOptions, rng: RandomSource): void {
    const only = ssn.features ? new Set(ssn.features) : undefined;
    for (const f of this.plan) {
      if (only && !only.has(f.name)) continue;
      const x = features[f.name]!;
      const K = f.multiHot?.maxValues ?? 1;
      const eligible = new Uint8Array(x.values.length);
      for (let i = 0; i < eligible.length; i++) {
        const stepOk = f.sequential ? valid[Math.floor(i / K)] === 1 : true;
        eligible[i] = stepOk && (f.kind !== "categorical" || x.values[i] !== 0) ? 1 : 0;
      }
      x.values = stochasticSwapNoise(x.values, eligible, ssn.replacementProbability, rng).values;
    }
  }

  /** Tensors of a prepared batch (create them inside the caller's tidy / tape). */
  static toTensors(p: PreparedBatch): { inputs: Record<string, tf.Tensor>; paddingMask: tf.Tensor2D; maskInput?: tf.Tensor2D } {
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, f] of Object.entries(p.features)) inputs[k] = tf.tensor(f.values, f.shape, f.dtype);
    const paddingMask = tf.tensor2d(Float32Array.from(p.validPositions), [p.batchSize, p.seqLen]);
    const maskInput = p.mask ? tf.tensor2d(Float32Array.from(p.mask.maskInput), [p.batchSize, p.seqLen]) : undefined;
    return { inputs, paddingMask, maskInput };
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor3D {
    const x = input as Record<string, tf.Tensor>;
    const item = x[this.itemColumn!];
    if (!item || item.rank !== 2) throw new Error(`TabularSequenceFeatures: input "${this.itemColumn}" must be an int32 [B, L] tensor`);
    const [B, L] = item.shape as [number, number];
    const broadcast = (t: tf.Tensor): tf.Tensor => tf.tile(tf.expandDims(t, 1), [1, L, 1]); // [B, d] -> [B, L, d]
    const parts = new Map<string, tf.Tensor>();
    const cont: tf.Tensor[] = [];
    for (const f of this.plan) {
      const v = x[f.name];
      if (!v) throw new Error(`TabularSequenceFeatures: input "${f.name}" is missing`);
      let t: tf.Tensor;
      if (f.kind === "categorical") {
        const ids = v.dtype === "int32" ? v : tf.cast(v, "int32");
        if (f.multiHot) t = bagEmbedding(ids, this.tables.get(f.name)!, f.multiHot.combiner);
        else {
          const emb = tf.gather(this.tables.get(f.name)!, ids);
          t = tf.mul(emb, tf.expandDims(tf.cast(tf.notEqual(ids, 0), "float32"), -1)); // padding row stays 0, gets no gradient
        }
        if (!f.sequential) t = broadcast(t);
      } else if (f.soft) {
        const w = this.softWeights.get(f.name)!;
        t = softEmbedding(v, w.kernel, w.bias, w.table);
        if (f.sequential) {
          // padding steps get a zero vector (Transformers4Rec embeds the padding value 0 like any other)
          const steps = ctx.paddingMask ?? tf.cast(tf.notEqual(item, 0), "float32");
          t = tf.mul(t, tf.expandDims(steps, -1));
        } else t = broadcast(t);
      } else {
        t = f.sequential ? tf.expandDims(v, -1) : broadcast(tf.expandDims(v, -1));
        if (this.continuousMlp) {
          cont.push(t);
          continue;
        }
      }
      parts.set(f.name, t);
    }
    if (this.continuousMlp && cont.length) parts.set(CONTINUOUS_PROJECTION, this.continuousMlp.call(tf.concat(cont, -1), ctx));
    for (const p of this.pretrainedPlan) parts.set(p.name, pretrainedEmbeddingFeature(p, this.pretrainedWeights.get(p.name)!, x[p.lookup]!, ctx, L));
    ctx.set(INPUT_FEATURES, x);
    const names = [...parts.keys()].sort();
    const tensors = names.map((n) => {
      let t = parts.get(n)!;
      const ln = this.norms.get(n);
      if (ln) t = layerNorm(t, ln.gamma, ln.beta, LN_EPS);
      return dropout(t, this.config.dropout!, ctx.training, ctx.seed());
    });
    let out = aggregateFeatures(names, tensors, this.config.aggregation!, this.itemColumn, this.config.itemMultiPlusOne);
    if (this.projection) out = this.projection.call(out, ctx);
    const maskInput = ctx.get<tf.Tensor2D>("mask-input");
    if (this.maskEmbedding && maskInput) {
      const m = tf.expandDims(maskInput, -1);
      out = tf.add(tf.mul(out, tf.sub(1, m)), tf.mul(m, this.maskEmbedding));
    }
    void B;
    return out as tf.Tensor3D;
  }
}
