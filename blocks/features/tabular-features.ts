import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  cardinalityOf,
  columnsOf,
  itemIdColumnOf,
  dropout,
  formatSpec,
  hasTag,
  isTensorSpec,
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
import { MLPBlock } from "../core/mlp.js";
import { aggregateFeatures, bagEmbedding, softEmbedding } from "./feature-ops.js";
import { categoricalColumnPlan, checkNamedColumns, continuousColumnPlan } from "./column-plan.js";
import type { MultiHotOptions, PreparedBatch, SoftEmbeddingOptions } from "./tabular-sequence-features.js";

/** Config of `tabular-features` (schemas/blocks/tabular-features.schema.json). */
export interface TabularFeaturesConfig {
  type: "tabular-features";
  name?: string;
  categoricalTags?: string[];
  continuousTags?: string[];
  excludeFeatures?: string[];
  embeddingDims?: Record<string, number>;
  embeddingDimDefault?: number;
  inferEmbeddingSizes?: boolean;
  inferEmbeddingSizesMultiplier?: number;
  embeddingInitStd?: number;
  softEmbeddings?: Record<string, SoftEmbeddingOptions>;
  multiHot?: Record<string, MultiHotOptions>;
  aggregation?: "concat" | "element-wise-sum";
  layerNorm?: boolean;
  dropout?: number;
  dOutput?: number | null;
  itemEmbeddingDim?: number | null;
}

interface TabularPlan {
  name: string;
  kind: "categorical" | "continuous";
  dim: number;
  cardinality?: number;
  soft?: { cardinality: number; dim: number; layerNorm: boolean };
  multiHot?: { maxValues: number; combiner: "mean" | "sum" };
}

const LN_EPS = 1e-5;

/**
 * Non-sequential input block (Transformers4Rec TabularFeatures): the per-row (context / user) columns
 * of the feature schema - every selected column without the `list` tag, except the item, session and
 * list columns - embedded (categorical, multi-hot bags, soft one-hot) or kept as scalars, aggregated
 * in sorted name order into one float32 [B, D] tensor, optionally projected by dOutput.
 *
 * Input port: a record {column: int32 [B] (or [B, K] multi-hot) | float32 [B]}; output float32 [B, D].
 */
export class TabularFeatures extends Block<TabularFeaturesConfig> {
  schema: FeatureSchemaLike | undefined;
  private plan: TabularPlan[] = [];
  private tables = new Map<string, tf.Variable>();
  private softWeights = new Map<string, { kernel: tf.Variable; bias: tf.Variable; table: tf.Variable }>();
  private norms = new Map<string, { gamma: tf.Variable; beta: tf.Variable }>();
  private projection: MLPBlock | undefined;
  private itemColumnName: string | undefined;

  constructor(config: TabularFeaturesConfig | Omit<TabularFeaturesConfig, "type">) {
    super({ ...config, type: "tabular-features" } as TabularFeaturesConfig);
  }

  static fromSchema(schema: FeatureSchemaLike, options: Omit<TabularFeaturesConfig, "type"> = {}): TabularFeatures {
    const b = new TabularFeatures(options);
    b.schema = schema;
    return b;
  }

  get features(): readonly TabularPlan[] {
    return this.plan;
  }

  planFeatures(ctx: BlockContext): TabularPlan[] {
    const schema = ctx.schema ?? this.schema;
    const cols = columnsOf(schema);
    const c = this.config;
    const names = new Set(cols.map((x) => x.name));
    checkNamedColumns(names, c, ["embeddingDims", "softEmbeddings", "multiHot"], ctx.path);
    const excluded = new Set(c.excludeFeatures ?? []);
    const anyTag = (col: ColumnLike, tags: string[]) => tags.some((t) => hasTag(col, t));
    const plan: TabularPlan[] = [];
    for (const col of cols) {
      if (excluded.has(col.name) || hasTag(col, "list") || hasTag(col, "item-id") || hasTag(col, "session-id") || hasTag(col, "target")) continue; // targets are read by the tasks, never inputs
      if (anyTag(col, c.categoricalTags!)) plan.push({ name: col.name, kind: "categorical", ...categoricalColumnPlan(col, c, ctx.path) });
      else if (anyTag(col, c.continuousTags!)) plan.push({ name: col.name, kind: "continuous", ...continuousColumnPlan(col, c) });
    }
    const byName = new Map(plan.map((f) => [f.name, f]));
    for (const key of ["softEmbeddings", "multiHot"] as const) {
      for (const n of Object.keys(c[key] ?? {})) {
        const f = byName.get(n);
        const want = key === "softEmbeddings" ? "continuous" : "categorical";
        if (!f || f.kind !== want) throw new BlockError(`${ctx.path}/${key}/${n}`, "incompatible_feature", `${key} names "${n}", which is not a ${want} per-row input of this block.`);
      }
    }
    if (plan.length === 0) {
      throw new BlockError(ctx.path, "missing_feature", "TabularFeatures found no per-row (non-list) categorical or continuous column in the feature schema.", {
        hint: 'Context columns are the ones without the "list" tag, e.g. tags [categorical, context].',
      });
    }
    return plan.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  expectedInputSpec(ctx: BlockContext): Record<string, TensorSpec> {
    const out: Record<string, TensorSpec> = {};
    for (const f of this.planFeatures(ctx)) out[f.name] = { shape: f.multiHot ? [null, f.multiHot.maxValues] : [null], dtype: f.kind === "categorical" ? "int32" : "float32" };
    return out;
  }

  private aggregatedSize(plan: TabularPlan[], path: string): number {
    if (this.config.aggregation === "concat") return plan.reduce((a, f) => a + f.dim, 0);
    if (new Set(plan.map((f) => f.dim)).size > 1) {
      throw new BlockError(`${path}/aggregation`, "incompatible_feature_sizes", `element-wise-sum needs every feature to have the same size, got ${plan.map((f) => `${f.name}: ${f.dim}`).join(", ")}.`, {
        hint: "Set embeddingDims so that all features have one size, or use aggregation: concat.",
      });
    }
    return plan[0]!.dim;
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const plan = this.planFeatures(ctx);
    if (isTensorSpec(input)) throw new BlockError(ctx.path, "incompatible_input", `TabularFeatures takes named features, got one tensor ${formatSpec(input)}.`);
    for (const f of plan) {
      const s = input[f.name];
      if (!s) throw new BlockError(ctx.path, "missing_feature", `Feature "${f.name}" is not among the inputs (${Object.keys(input).sort().join(", ") || "none"}).`);
      const want = f.kind === "categorical" ? "int32" : "float32";
      const rank = f.multiHot ? 2 : 1;
      if (s.dtype !== want || s.shape.length !== rank) throw new BlockError(ctx.path, "incompatible_input", `Feature "${f.name}" should be ${want}[${f.multiHot ? `?, ${f.multiHot.maxValues}` : "?"}], got ${formatSpec(s)}.`);
    }
    const d = this.aggregatedSize(plan, ctx.path);
    return { shape: [null, this.config.dOutput ?? d], dtype: "float32" };
  }

  protected override buildWeights(_input: PortSpec, ctx: BlockContext): void {
    const c = this.config;
    this.plan = this.planFeatures(ctx);
    for (const f of this.plan) {
      if (f.kind === "categorical") this.tables.set(f.name, this.addWeight(`embeddings/${f.name}`, [f.cardinality!, f.dim], { kind: "normal", std: c.embeddingInitStd!, zeroRow0: true }, ctx));
      else if (f.soft) {
        this.softWeights.set(f.name, {
          kernel: this.addWeight(`soft_embeddings/${f.name}/kernel`, [f.soft.cardinality], { kind: "uniform", limit: 1 }, ctx),
          bias: this.addWeight(`soft_embeddings/${f.name}/bias`, [f.soft.cardinality], { kind: "uniform", limit: 1 }, ctx),
          table: this.addWeight(`soft_embeddings/${f.name}/embeddings`, [f.soft.cardinality, f.dim], { kind: "normal", std: c.embeddingInitStd! }, ctx),
        });
      }
      if (f.dim > 1 && (c.layerNorm || f.soft?.layerNorm)) {
        this.norms.set(f.name, { gamma: this.addWeight(`layer_norm/${f.name}/gamma`, [f.dim], { kind: "ones" }, ctx), beta: this.addWeight(`layer_norm/${f.name}/beta`, [f.dim], { kind: "zeros" }, ctx) });
      }
    }
    if (c.itemEmbeddingDim) {
      const item = itemIdColumnOf(ctx.schema ?? this.schema);
      const card = item ? cardinalityOf(item) : undefined;
      if (!item || !card) {
        throw new BlockError(`${ctx.path}/itemEmbeddingDim`, "missing_item_id", "itemEmbeddingDim needs a feature-schema column tagged item-id with a cardinality (the items to predict).");
      }
      const table = this.addWeight(`embeddings/${item.name}`, [card, c.itemEmbeddingDim], { kind: "normal", std: c.embeddingInitStd!, zeroRow0: true }, ctx);
      this.itemColumnName = item.name;
      ctx.set("item-id", item.name);
      ctx.set("item-embeddings", { column: item.name, table, cardinality: card, dim: c.itemEmbeddingDim });
      // labels: the row's target (see prepare), one per row, as causal LM on the last item
      ctx.set("masking", { type: "causal", trainOnLastItemSeqOnly: true });
    }
    const d = this.aggregatedSize(this.plan, ctx.path);
    if (c.dOutput) {
      this.projection = new MLPBlock({ units: [c.dOutput], activation: "relu" });
      this.projection.build({ shape: [null, d], dtype: "float32" }, ctx.child("dOutput"));
    }
  }

  override children(): [string, Block][] {
    return this.projection ? [["projection", this.projection]] : [];
  }

  /** The item-id column whose table itemEmbeddingDim creates (no item-id input: items are only predicted). */
  get itemIdColumn(): string | undefined {
    return this.itemColumnName;
  }

  /**
   * Host side of one batch for a Model (one prediction per row, a pooled model): the context arrays,
   * and as labels the row's target (prefix examples), or without targets the row's last item; at
   * inference no label, and the prediction is read at the row's only position.
   */
  prepare(batch: SequenceBatchLike, mode: "train" | "eval" | "inference", _rng: RandomSource, opts: { useTargets?: boolean } = {}): PreparedBatch {
    const B = batch.batchSize;
    const features: PreparedBatch["features"] = Object.fromEntries(this.contextArrays(batch).map(({ name, ...a }) => [name, a]));
    const labels = new Int32Array(B);
    if (mode !== "inference") {
      const targets = opts.useTargets !== false ? batch.targets : undefined;
      const L = batch.seqLen;
      for (let b = 0; b < B; b++) {
        if (targets) labels[b] = targets[b]!;
        else for (let t = L - 1; t >= 0; t--) if (batch.itemIds[b * L + t] !== 0) { labels[b] = batch.itemIds[b * L + t]!; break; }
      }
    }
    let numLabels = 0;
    const maskedPositions = new Uint8Array(B);
    for (let b = 0; b < B; b++) if (labels[b] !== 0 || mode === "inference") { maskedPositions[b] = 1; if (labels[b] !== 0) numLabels++; }
    const ones = new Uint8Array(B).fill(1);
    return {
      batchSize: B, seqLen: 1, features, validPositions: ones,
      mask: { batchSize: B, seqLen: 1, inputIds: new Int32Array(B), maskInput: new Uint8Array(B), maskedPositions, labels, validPositions: ones, readPositions: new Int32Array(B), numLabels, appendMask: false },
    };
  }

  /** A function making the input tensors of a batch's context features (call it inside a tidy). */
  inputsFromBatch(batch: SequenceBatchLike): () => Record<string, tf.Tensor> {
    const arrays = this.contextArrays(batch);
    return () => Object.fromEntries(arrays.map((a) => [a.name, tf.tensor(a.values, a.shape, a.dtype)]));
  }

  /** The host arrays of a batch's context features, one per planned feature: int32 / float32, [B] or [B, K] (multi-hot). */
  private contextArrays(batch: SequenceBatchLike): { name: string; values: Int32Array | Float32Array; shape: number[]; dtype: "int32" | "float32" }[] {
    if (!this.built) throw new Error(`TabularFeatures "${this.name}" is not built`);
    const B = batch.batchSize;
    return this.plan.map((f) => {
      const v = batch.context[f.name];
      if (!v) {
        throw new BlockError("", "missing_feature", `The data has no context feature "${f.name}" that the feature schema declares.`, {
          hint: `Available: ${Object.keys(batch.context).sort().join(", ") || "none"}. Exclude it with excludeFeatures, or fix the feature schema.`,
        });
      }
      const K = f.multiHot?.maxValues ?? 1;
      if (v.length !== B * K) throw new Error(`context feature "${f.name}" has ${v.length} values, expected ${B * K}`);
      const dtype = f.kind === "categorical" ? "int32" : "float32";
      return { name: f.name, values: dtype === "int32" ? Int32Array.from(v) : Float32Array.from(v), shape: f.multiHot ? [B, K] : [B], dtype };
    });
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor2D {
    const x = input as Record<string, tf.Tensor>;
    const tensors = this.plan.map((f) => {
      const v = x[f.name];
      if (!v) throw new Error(`TabularFeatures: input "${f.name}" is missing`);
      let t: tf.Tensor;
      if (f.kind === "categorical") {
        const ids = v.dtype === "int32" ? v : tf.cast(v, "int32");
        if (f.multiHot) t = bagEmbedding(ids, this.tables.get(f.name)!, f.multiHot.combiner);
        else t = tf.mul(tf.gather(this.tables.get(f.name)!, ids), tf.expandDims(tf.cast(tf.notEqual(ids, 0), "float32"), -1));
      } else if (f.soft) {
        const w = this.softWeights.get(f.name)!;
        t = softEmbedding(v, w.kernel, w.bias, w.table);
      } else t = tf.expandDims(v, -1);
      const ln = this.norms.get(f.name);
      if (ln) t = layerNorm(t, ln.gamma, ln.beta, LN_EPS);
      return dropout(t, this.config.dropout!, ctx.training, ctx.seed());
    });
    let out = aggregateFeatures(this.plan.map((f) => f.name), tensors, this.config.aggregation!);
    if (this.projection) out = this.projection.call(out, ctx) as tf.Tensor;
    return out as tf.Tensor2D;
  }
}
