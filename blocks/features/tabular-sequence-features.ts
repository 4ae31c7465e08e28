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
  aggregation?: "concat" | "element-wise-sum";
  layerNorm?: boolean;
  dropout?: number;
  dOutput?: number | null;
  maxSequenceLength?: number | null;
  masking?: MaskingOptions | null;
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
  private continuousMlp: MLPBlock | undefined;
  private projection: MLPBlock | undefined;
  private maskEmbedding: tf.Variable | undefined;
  private outputDim = 0;

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
    for (const [i, n] of (c.excludeFeatures ?? []).entries()) {
      if (!names.has(n)) throw new BlockError(`${ctx.path}/excludeFeatures/${i}`, "unknown_feature", `excludeFeatures names "${n}", which is not a column of the feature schema.`, { expected: [...names].sort() });
    }
    for (const n of Object.keys(c.embeddingDims ?? {})) {
      if (!names.has(n)) throw new BlockError(`${ctx.path}/embeddingDims/${n}`, "unknown_feature", `embeddingDims names "${n}", which is not a column of the feature schema.`, { expected: [...names].sort() });
    }
    const excluded = new Set(c.excludeFeatures ?? []);
    const plan: FeaturePlan[] = [];
    const anyTag = (col: ColumnLike, tags: string[]): boolean => tags.some((t) => hasTag(col, t));
    for (const col of cols) {
      const isItem = col.name === item.name;
      if (excluded.has(col.name) && !isItem) continue;
      if (!isItem && hasTag(col, "session-id")) continue; // an identifier, not a feature
      const sequential = isItem || hasTag(col, "list");
      if (isItem || anyTag(col, c.categoricalTags!)) {
        const card = cardinalityOf(col);
        if (card === undefined || card < 1) {
          throw new BlockError(ctx.path, "missing_cardinality", `Categorical column "${col.name}" has no cardinality in the feature schema, so its embedding table cannot be sized.`, {
            hint: "Set `cardinality` (number of ids including 0 = padding) or `max` on the column.",
          });
        }
        let dim = c.embeddingDims?.[col.name] ?? col.embeddingDim;
        if (dim === undefined) dim = c.inferEmbeddingSizes ? Math.ceil(Math.pow(card, 0.25) * c.inferEmbeddingSizesMultiplier!) : c.embeddingDimDefault!;
        plan.push({ name: col.name, kind: "categorical", sequential, cardinality: card, dim });
      } else if (anyTag(col, c.continuousTags!)) {
        plan.push({ name: col.name, kind: "continuous", sequential, dim: 1 });
      }
    }
    this.itemColumn = item.name;
    return plan.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The input port this block expects for a schema: {column: int32|float32 [B, L] or [B]}. */
  expectedInputSpec(ctx: BlockContext): Record<string, TensorSpec> {
    const out: Record<string, TensorSpec> = {};
    for (const f of this.planFeatures(ctx)) {
      out[f.name] = { shape: f.sequential ? [null, null] : [null], dtype: f.kind === "categorical" ? "int32" : "float32" };
    }
    return out;
  }

  /** Sizes of the aggregated features: [name, dim] in aggregation order. */
  private aggregatedParts(plan: FeaturePlan[]): [string, number][] {
    const cont = plan.filter((f) => f.kind === "continuous");
    const parts: [string, number][] = plan.filter((f) => f.kind === "categorical").map((f) => [f.name, f.dim]);
    const proj = this.config.continuousProjection;
    if (proj && proj.length && cont.length) parts.push([CONTINUOUS_PROJECTION, proj[proj.length - 1]!]);
    else for (const f of cont) parts.push([f.name, 1]);
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
      if (s.dtype !== want || s.shape.length !== (f.sequential ? 2 : 1)) {
        throw new BlockError(ctx.path, "incompatible_input", `Feature "${f.name}" should be ${want}[${f.sequential ? "?, ?" : "?"}], got ${formatSpec(s)}.`);
      }
    }
    const parts = this.aggregatedParts(plan);
    let d: number;
    if (this.config.aggregation === "element-wise-sum") {
      const dims = new Set(parts.map((p) => p[1]));
      if (dims.size > 1) {
        throw new BlockError(`${ctx.path}/aggregation`, "incompatible_feature_sizes", `element-wise-sum needs every feature to have the same size, got ${parts.map(([n, x]) => `${n}: ${x}`).join(", ")}.`, {
          hint: "Set embeddingDims so that all features have one size, or use aggregation: concat.",
        });
      }
      d = parts[0]![1];
    } else d = parts.reduce((a, p) => a + p[1], 0);
    if (this.config.dOutput) d = this.config.dOutput;
    return { shape: [null, null, d], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const plan = this.planFeatures(ctx);
    this.plan = plan;
    const c = this.config;
    for (const f of plan.filter((x) => x.kind === "categorical")) {
      this.tables.set(f.name, this.addWeight(`embeddings/${f.name}`, [f.cardinality!, f.dim], { kind: "normal", std: c.embeddingInitStd!, zeroRow0: true }, ctx));
    }
    const cont = plan.filter((f) => f.kind === "continuous");
    if (c.continuousProjection && c.continuousProjection.length && cont.length) {
      this.continuousMlp = new MLPBlock({ units: [...c.continuousProjection], activation: "relu" });
      this.continuousMlp.build({ shape: [null, null, cont.length], dtype: "float32" }, ctx.child("continuousProjection"));
    }
    const parts = this.aggregatedParts(plan);
    if (c.layerNorm) {
      for (const [name, d] of parts) {
        if (d > 1) this.norms.set(name, { gamma: this.addWeight(`layer_norm/${name}/gamma`, [d], { kind: "ones" }, ctx), beta: this.addWeight(`layer_norm/${name}/beta`, [d], { kind: "zeros" }, ctx) });
      }
    }
    const aggDim = c.aggregation === "element-wise-sum" ? parts[0]![1] : parts.reduce((a, p) => a + p[1], 0);
    if (c.dOutput) {
      this.projection = new MLPBlock({ units: [c.dOutput], activation: "relu" });
      this.projection.build({ shape: [null, null, aggDim], dtype: "float32" }, ctx.child("dOutput"));
    }
    this.outputDim = c.dOutput ?? aggDim;
    if (c.masking) this.maskEmbedding = this.addWeight("masked_item_embedding", [this.outputDim], { kind: "normal", std: 0.001 }, ctx);
    const item = plan.find((f) => f.name === this.itemColumn)!;
    ctx.set("item-id", item.name);
    ctx.set("item-embeddings", { column: item.name, table: this.tables.get(item.name)!, cardinality: item.cardinality!, dim: item.dim } satisfies ItemEmbeddings);
    if (c.masking) ctx.set("masking", c.masking);
    void input;
  }

  override children(): [string, Block][] {
    const out: [string, Block][] = [];
    if (this.continuousMlp) out.push(["continuous_projection", this.continuousMlp]);
    if (this.projection) out.push(["projection", this.projection]);
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
    const seq = <T extends Int32Array | Float32Array>(src: T, name: string): T => {
      if (src.length !== B * L) throw new Error(`feature "${name}" has ${src.length} values, expected batchSize*seqLen = ${B * L}`);
      if (!insertAt) return src;
      const out = new (src.constructor as { new (n: number): T })(B * L1);
      for (let b = 0; b < B; b++) {
        const m = insertAt[b]!;
        for (let t = 0; t < L; t++) out[b * L1 + (t < m ? t : t + 1)] = src[b * L + t]!;
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
      if (f.sequential) features[f.name] = { values: seq(values as Int32Array | Float32Array, f.name), shape: [B, L1], dtype };
      else {
        if (values.length !== B) throw new Error(`context feature "${f.name}" has ${values.length} values, expected batchSize = ${B}`);
        features[f.name] = { values: dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values), shape: [B], dtype };
      }
    }
    let validPositions: Uint8Array;
    if (mask) validPositions = mask.validPositions;
    else {
      validPositions = new Uint8Array(B * L);
      for (let i = 0; i < B * L; i++) validPositions[i] = batch.itemIds[i] !== 0 ? 1 : 0;
    }
    return { batchSize: B, seqLen: L1, features, mask, validPositions };
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
        const emb = tf.gather(this.tables.get(f.name)!, ids);
        t = tf.mul(emb, tf.expandDims(tf.cast(tf.notEqual(ids, 0), "float32"), -1)); // padding row stays 0, gets no gradient
        if (!f.sequential) t = broadcast(t);
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
    const names = [...parts.keys()].sort();
    const tensors = names.map((n) => {
      let t = parts.get(n)!;
      const ln = this.norms.get(n);
      if (ln) t = layerNorm(t, ln.gamma, ln.beta, LN_EPS);
      return dropout(t, this.config.dropout!, ctx.training, ctx.seed());
    });
    let out: tf.Tensor =
      tensors.length === 1 ? tensors[0]! : this.config.aggregation === "element-wise-sum" ? tf.addN(tensors) : tf.concat(tensors, -1);
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
