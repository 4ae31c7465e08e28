import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockContext,
  CallContext,
  createBlock,
  type BlockConfig,
  type BlockOutput,
  type CallMode,
  type FeatureSchemaLike,
  type PortSpec,
  type RandomSource,
  type SequenceBatchLike,
  type TensorSpec,
} from "../core/index.js";
import { mulberry32, type MaskResult } from "../masking/index.js";
import { buildCatalogue, catalogueScores, catalogueScoresTopK, softmaxCrossEntropyLoss, type Catalogue } from "../core/catalogue.js";
import { RankingMetrics, type RankingMetricName } from "../metrics/index.js";
import { checkPermutationBody, maskingTypeOf, ReplacedItemDiscriminator, type RtdLossParts } from "./rtd.js";
import { resolveTasks, type TargetTaskLike } from "./tasks.js";
import { RecblocksError } from "../errors/issue.js";

/** Host-side arrays of one batch after masking (what the input block's `prepare` returns). */
export interface PreparedBatchLike {
  batchSize: number;
  seqLen: number;
  features: Record<string, { values: Int32Array | Float32Array; shape: number[]; dtype: "int32" | "float32" }>;
  mask?: MaskResult;
  validPositions: Uint8Array;
}

/** What the model needs from its input block (TabularSequenceFeatures). */
export interface InputBlockLike extends Block {
  prepare(batch: SequenceBatchLike, mode: CallMode, rng: RandomSource, opts?: { useTargets?: boolean }): PreparedBatchLike;
  expectedInputSpec(ctx: BlockContext): Record<string, TensorSpec>;
  readonly itemIdColumn: string | undefined;
  schema?: FeatureSchemaLike;
}

/** What the model needs from its task (NextItemPredictionTask). */
export interface TaskLike extends Block {
  logits(hidden: tf.Tensor2D): tf.Tensor2D;
  loss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar;
  /** Optional: the training loss from the body's output (a fused path); else loss(call(...)). */
  trainLoss?(input: BlockOutput, ctx: CallContext, labels: tf.Tensor1D): tf.Scalar;
  /** Optional: query rows q with q · E_jᵀ = logit j, scored against a catalogue of `itemTable` (fast top-k). */
  queryRows?(input: BlockOutput, ctx: CallContext): tf.Tensor2D | undefined;
  readonly itemTable?: tf.Tensor2D | undefined;
  readonly numItems: number;
}

/** A head as `new Head(body, task)` makes it (blocks/heads/head.ts). */
export interface HeadLike {
  body: Block;
  task: Block;
  chain(): Block[];
}

/** The `model` section of a recipe built from blocks. */
export interface ModelConfig {
  inputs: BlockConfig & Record<string, unknown>;
  body: (BlockConfig & Record<string, unknown>)[];
  head: BlockConfig & Record<string, unknown>;
}

export interface EvaluateOptions {
  ks?: number[];
  metrics?: RankingMetricName[];
  /** Seed of the masking RNG (eval masking is deterministic for causal / last-item masked LM anyway). */
  seed?: number;
  onBatch?: (done: number) => void;
  /** Also compute the mean cross-entropy ("loss"; default true). Off, evaluation only ranks. */
  loss?: boolean;
}

export interface TopKResult {
  batchSize: number;
  k: number;
  /** [B*k] item ids (dense ids), best first. */
  itemIds: Int32Array;
  /** [B*k] logits of those items. */
  scores: Float32Array;
}

/** One training batch ready for `tf.variableGrads`: the loss closure and its number of labels. */
export interface TrainBatch {
  loss: () => tf.Scalar;
  numLabels: number;
}

const NEG = -1e9;

/**
 * A sequential recommender: input block -> body blocks -> next-item task (Transformers4Rec Model
 * with one Head). Built from code (`new Model(new Head(new SequentialBlock([inputs, ...]), task))`)
 * or from a recipe (`Model.fromConfig(recipe.model, schema)`); both give the same config and weights.
 */
export class Model {
  /** Score tied heads against a cached item catalogue with a blocked top-k (tests switch it off to compare). */
  static catalogueTopK = true;
  readonly inputs: InputBlockLike;
  readonly blocks: Block[];
  /** The head's task block as given (a next-item task, a per-session task, or a multi-task head). */
  readonly headTask: Block;
  /** The per-session tasks (binary-classification, regression, multi-class) and their loss weights. */
  readonly targetTasks: readonly { task: TargetTaskLike; weight: number }[];
  /** Weight of the next-item loss (1 unless a multi-task head sets it). */
  readonly nextItemWeight: number;
  private readonly nextItemTask: TaskLike | undefined;
  readonly schema: FeatureSchemaLike | undefined;
  private _built = false;
  private exclusion: tf.Tensor1D | undefined;
  private shared = new Map<string, unknown>();
  /**
   * Catalogue of the item table for top-k (tied heads), rebuilt after training steps and whenever the
   * table's value changes (`assign` by an optimizer, early stopping's restore, loading or copying weights
   * gives the variable new data: `source` is the data it was built from).
   */
  private catalogue: { cat: Catalogue; version: number; source: unknown } | undefined;
  /** Bumped by every trainBatch: weights may change after it, so the catalogue is stale. */
  private version = 0;
  /** rtd masking: the discriminator (training only; src/model/rtd.ts). */
  private rtd: ReplacedItemDiscriminator | undefined;

  constructor(head: HeadLike, opts: { schema?: FeatureSchemaLike } = {}) {
    const chain = head.chain();
    const inputs = chain[0] as InputBlockLike | undefined;
    if (!inputs || typeof (inputs as Partial<InputBlockLike>).prepare !== "function") {
      throw new TypeError("Model: the first block of the head's body must be an input block (TabularSequenceFeatures)");
    }
    const parts = resolveTasks(head.task);
    if (parts.nextItem && typeof (parts.nextItem as Partial<TaskLike>).logits !== "function") {
      throw new TypeError("Model: the head's task must be a NextItemPredictionTask, a per-session task (binary-classification, regression, multi-class) or a multi-task head");
    }
    this.inputs = inputs;
    this.blocks = chain.slice(1);
    this.headTask = head.task;
    this.nextItemTask = parts.nextItem as TaskLike | undefined;
    this.nextItemWeight = parts.nextItemWeight;
    this.targetTasks = parts.targets;
    this.schema = opts.schema ?? inputs.schema;
  }

  /** The next-item task (ranking, top-k); throws for a model that has none (only per-session tasks). */
  get task(): TaskLike {
    if (!this.nextItemTask) throw new Error("Model: this model has no next-item-prediction task (its head has only per-session tasks)");
    return this.nextItemTask;
  }

  /** True when the head predicts next items (alone or among other tasks). */
  get hasNextItem(): boolean {
    return !!this.nextItemTask;
  }

  /** Builds the blocks of a recipe's `model` section (block types must be registered: import blocks/index.js). */
  static fromConfig(cfg: ModelConfig, schema: FeatureSchemaLike, opts: { path?: string } = {}): Model {
    const base = opts.path ?? "/model";
    const inputs = createBlock(cfg.inputs, `${base}/inputs`);
    const body = (cfg.body ?? []).map((c, i) => createBlock(c, `${base}/body/${i}`));
    const task = createBlock(cfg.head, `${base}/head`);
    return new Model({ body: inputs, task, chain: () => [inputs, ...body] }, { schema });
  }

  get built(): boolean {
    return this._built;
  }

  /**
   * True when the body encodes each session into one vector ([B, D], e.g. stamp-attention) rather
   * than a sequence: such a model predicts one next item per row, so it trains on prefix examples.
   */
  get pooled(): boolean {
    this.requireBuilt();
    const last = this.blocks.length ? this.blocks[this.blocks.length - 1]!.outputSpec : this.inputs.outputSpec;
    return !!last && "shape" in last && Array.isArray((last as TensorSpec).shape) && (last as TensorSpec).shape.length === 2;
  }

  /** Shape-checks and creates every weight, seeded. Problems are BlockErrors at their recipe path. */
  build(opts: { seed?: number; path?: string } = {}): this {
    if (this._built) return this;
    const ctx = new BlockContext({ schema: this.schema, path: opts.path ?? "/model", rng: mulberry32(opts.seed ?? 42), shared: this.shared });
    const ictx = ctx.child("inputs");
    let spec: PortSpec = this.inputs.expectedInputSpec(ictx);
    this.inputs.build(spec, ictx);
    spec = this.inputs.outputSpec!;
    const masking = this.shared.get("masking") as { type?: string; discriminatorLossWeight?: number; sampleFrom?: "generator" | "batch" } | undefined;
    if (maskingTypeOf(masking) === "permutation") checkPermutationBody(this.blocks, ctx.path);
    this.blocks.forEach((b, i) => {
      const c = ctx.child("body", i);
      b.build(spec, c);
      spec = b.outputSpec!;
    });
    this.headTask.build(spec, ctx.child("head"));
    const niCfg = this.nextItemTask?.config as { sampledSoftmax?: unknown; loss?: string } | undefined;
    if (maskingTypeOf(masking) === "rtd" && niCfg && (niCfg.sampledSoftmax || (niCfg.loss ?? "cross-entropy") !== "cross-entropy")) {
      throw new RecblocksError("model", [{ code: "incompatible_config", path: `${ctx.path}/head`, message: "rtd masking trains its generator with the full-softmax cross-entropy; sampledSoftmax and the bpr / top1 losses are not supported with it.", hint: "Remove sampledSoftmax / loss from the head, or use another masking." }]);
    }
    if (maskingTypeOf(masking) === "rtd" && this.targetTasks.length) {
      throw new RecblocksError("model", [{ code: "incompatible_config", path: `${ctx.path}/head`, message: "rtd masking trains a next-item generator and a discriminator; per-session tasks cannot be added to it." }]);
    }
    if (maskingTypeOf(masking) === "rtd") {
      this.rtd = new ReplacedItemDiscriminator({ discriminatorLossWeight: masking!.discriminatorLossWeight ?? 50, sampleFrom: masking!.sampleFrom ?? "generator" });
      this.rtd.build(spec, ctx.child("inputs", "masking"));
    }
    this._built = true;
    return this;
  }

  /** The recipe `model` section that rebuilds this model. */
  toRecipe(): ModelConfig {
    return {
      inputs: this.inputs.getConfig() as ModelConfig["inputs"],
      body: this.blocks.map((b) => b.getConfig() as ModelConfig["body"][number]),
      head: this.headTask.getConfig() as ModelConfig["head"],
    };
  }

  /** Every weight by its stable name: inputs/..., body/<i>/..., head/... */
  namedVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>(this.inputs.namedVariables());
    this.blocks.forEach((b, i) => {
      for (const [k, v] of b.namedVariables(`body/${i}`)) out.set(k, v);
    });
    for (const [k, v] of this.headTask.namedVariables("head")) out.set(k, v);
    if (this.rtd) for (const [k, v] of this.rtd.namedVariables()) out.set(k, v);
    return out;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.namedVariables().values()].filter((v) => v.trainable);
  }

  countParams(): number {
    let n = 0;
    for (const v of this.namedVariables().values()) n += v.size;
    return n;
  }

  /** Number of items scored (item-id cardinality, 0 = padding included). */
  get numItems(): number {
    if (this.nextItemTask) return this.nextItemTask.numItems;
    // a head without next-item prediction: the item-id cardinality of the input block
    const items = this.shared.get("item-embeddings") as { cardinality?: number } | undefined;
    if (items?.cardinality === undefined) throw new Error("Model: call build() first");
    return items.cardinality;
  }

  private requireBuilt(): void {
    if (!this._built) throw new Error("Model: call build() first");
  }

  /** Runs the blocks on a prepared batch and returns logits at the flat positions (call inside a tidy). */
  private forward(prep: PreparedBatchLike, mode: CallMode, rng: RandomSource, positions: Int32Array): tf.Tensor2D {
    const { x, ctx } = this.runBody(prep, mode, rng, positions);
    return this.task.call(x, ctx) as tf.Tensor2D;
  }

  /** Runs the input block and the body; the head's input and its CallContext (call inside a tidy). */
  private runBody(prep: PreparedBatchLike, mode: CallMode, rng: RandomSource, positions: Int32Array): { x: BlockOutput; ctx: CallContext } {
    const ctx = new CallContext({ mode, rng });
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, f] of Object.entries(prep.features)) inputs[k] = tf.tensor(f.values, f.shape, f.dtype);
    ctx.set("padding-mask", tf.tensor2d(Float32Array.from(prep.validPositions), [prep.batchSize, prep.seqLen]));
    if (prep.mask) {
      ctx.set("mask-input", tf.tensor2d(Float32Array.from(prep.mask.maskInput), [prep.batchSize, prep.seqLen]));
      ctx.set("mask", prep.mask);
    }
    ctx.set("item-ids", inputs[this.inputs.itemIdColumn!]);
    ctx.set("positions", tf.tensor1d(positions, "int32"));
    let x: BlockOutput = this.inputs.call(inputs, ctx);
    for (const b of this.blocks) x = b.call(x, ctx);
    return { x, ctx };
  }

  /** Label positions (flat b·L + t) and labels of a masked batch. */
  private static labelPositions(prep: PreparedBatchLike): { positions: Int32Array; labels: Int32Array } {
    const m = prep.mask;
    if (!m) return { positions: new Int32Array(0), labels: new Int32Array(0) };
    const positions = new Int32Array(m.numLabels);
    const labels = new Int32Array(m.numLabels);
    let k = 0;
    for (let i = 0; i < m.labels.length; i++) {
      if (m.labels[i] !== 0) {
        positions[k] = i;
        labels[k++] = m.labels[i]!;
      }
    }
    return { positions: positions.subarray(0, k), labels: labels.subarray(0, k) };
  }

  /** Where each row's prediction is read at inference (flat b·L' + t). */
  private static readPositions(prep: PreparedBatchLike): Int32Array {
    const B = prep.batchSize;
    const L = prep.seqLen;
    const out = new Int32Array(B);
    const rp = prep.mask?.readPositions;
    for (let b = 0; b < B; b++) {
      let t = rp ? rp[b]! : -1;
      if (!rp) for (let j = 0; j < L; j++) if (prep.validPositions[b * L + j]) t = j;
      out[b] = b * L + Math.max(0, t);
    }
    return out;
  }

  /**
   * A training batch: host-side masking now, and a closure computing the mean loss over the label
   * positions (for `tf.variableGrads`). Undefined when the batch has no label.
   */
  trainBatch(batch: SequenceBatchLike, rng: RandomSource): TrainBatch | undefined {
    this.requireBuilt();
    if (this.targetTasks.length) return this.multiTaskBatch(batch, rng);
    if (this.pooled && !batch.targets) {
      throw new Error("Model: this model predicts one next item per session; train it on prefix examples (batches with targets)");
    }
    this.version++;
    const prep = this.inputs.prepare(batch, "train", rng);
    const { positions, labels } = Model.labelPositions(prep);
    if (labels.length === 0) return undefined;
    return {
      numLabels: labels.length,
      loss: () => {
        if (this.rtd) return this.rtdParts(prep, positions, labels, rng).total;
        if (this.task.trainLoss) {
          const { x, ctx } = this.runBody(prep, "train", rng, positions);
          return this.task.trainLoss(x, ctx, tf.tensor1d(labels, "int32"));
        }
        return this.task.loss(this.forward(prep, "train", rng, positions), tf.tensor1d(labels, "int32"));
      },
    };
  }

  /** The targets [B] of a per-session task: its column among the batch's context features. */
  private targetsOf(batch: SequenceBatchLike, task: TargetTaskLike): Int32Array | Float32Array {
    const v = batch.context?.[task.target];
    if (!v) {
      throw new RecblocksError("data", [{
        code: "missing_feature", path: `/model/head`, message: `The batch has no per-session column "${task.target}", the target of task "${task.name}".`,
        hint: "The target must reach the batches as a context (per-session) feature of the data.",
      }]);
    }
    if (v.length !== batch.batchSize) throw new Error(`target "${task.target}" has ${v.length} values, expected batchSize = ${batch.batchSize}`);
    return v;
  }

  /**
   * A training batch of a head with per-session tasks: loss = w_next · next-item loss (when the head has
   * one and the batch has labels) + Σ wᵢ · lossᵢ over the per-session tasks (rows with a target), the body
   * run once. Undefined when nothing in the batch has a label or a target.
   */
  private multiTaskBatch(batch: SequenceBatchLike, rng: RandomSource): TrainBatch | undefined {
    const ni = this.nextItemTask;
    if (ni && this.pooled && !batch.targets) {
      throw new Error("Model: this model predicts one next item per session; train it on prefix examples (batches with targets)");
    }
    this.version++;
    const prep = this.inputs.prepare(batch, "train", rng);
    const { positions, labels } = ni ? Model.labelPositions(prep) : { positions: new Int32Array(0), labels: new Int32Array(0) };
    const targets = this.targetTasks.map((t) => this.targetsOf(batch, t.task));
    const withTarget = targets.map((v, i) => Array.from(v).filter((x) => this.targetTasks[i]!.task.hasTarget(x)).length);
    if (labels.length === 0 && withTarget.every((n) => n === 0)) return undefined;
    return {
      numLabels: labels.length || Math.max(...withTarget),
      loss: () => {
        const { x, ctx } = this.runBody(prep, "train", rng, positions);
        let total: tf.Scalar = tf.scalar(0);
        if (ni && labels.length && this.nextItemWeight > 0) {
          const y = tf.tensor1d(labels, "int32");
          const l = ni.trainLoss ? ni.trainLoss(x, ctx, y) : ni.loss(ni.call(x, ctx) as tf.Tensor2D, y);
          total = tf.add(total, tf.mul(l, this.nextItemWeight));
        }
        this.targetTasks.forEach(({ task, weight }, i) => {
          const l = weight > 0 ? task.targetLoss(x, ctx, targets[i]!) : undefined;
          if (l) total = tf.add(total, tf.mul(l, weight));
        });
        return total;
      },
    };
  }

  /**
   * Evaluation of a head with per-session tasks: the next-item ranking metrics (as `evaluate`) when the
   * head has a next-item task, and each per-session task's metrics and mean loss as "<task name>/<metric>".
   * "loss" is Σ w · mean loss over the tasks (the next-item part: full cross-entropy).
   */
  private evaluateMultiTask(data: Iterable<SequenceBatchLike>, opts: EvaluateOptions): Record<string, number> {
    const ni = this.nextItemTask;
    const ks = opts.ks ?? [20];
    const maxK = Math.max(...ks);
    const ranking = ni ? new RankingMetrics(ks, opts.metrics ?? ["ndcg", "recall", "mrr"]) : undefined;
    const K = ni ? Math.min(maxK, ni.numItems - 1) : 0;
    const per = this.targetTasks.map((t) => ({ ...t, metrics: t.task.newMetrics(), lossSum: 0, n: 0 }));
    const rng = mulberry32(opts.seed ?? 1234);
    let niLoss = 0;
    let niN = 0;
    let sessions = 0;
    let done = 0;
    for (const batch of data) {
      const prep = this.inputs.prepare(batch, "eval", rng);
      const { positions, labels } = ni ? Model.labelPositions(prep) : { positions: new Int32Array(0), labels: new Int32Array(0) };
      const targets = per.map((t) => this.targetsOf(batch, t.task));
      const kept = per.map((t, i) => {
        const rows: number[] = [];
        targets[i]!.forEach((v, b) => {
          if (t.task.hasTarget(v)) rows.push(b);
        });
        return Int32Array.from(rows);
      });
      done++;
      sessions += batch.batchSize;
      const out = tf.tidy(() => {
        const { x, ctx } = this.runBody(prep, "eval", rng, positions);
        const r: tf.Tensor[] = [];
        if (ni && labels.length) {
          const logits = ni.call(x, ctx) as tf.Tensor2D;
          r.push(tf.topk(this.excluded(logits), K, true).indices, tf.mul(ni.loss(logits, tf.tensor1d(labels, "int32")), labels.length));
        }
        per.forEach((t, i) => {
          if (!kept[i]!.length) return;
          const idx = tf.tensor1d(kept[i]!, "int32");
          const raw = tf.gather(t.task.raw(x, ctx), idx);
          const y = tf.tensor1d(Float32Array.from(kept[i]!, (b) => targets[i]![b]!));
          r.push(t.task.predictionsOf(raw), tf.mul(t.task.lossOf(raw, y), kept[i]!.length));
        });
        return r;
      });
      let j = 0;
      if (ni && labels.length) {
        const ids = out[j++]!.dataSync() as Int32Array;
        niLoss += out[j++]!.dataSync()[0]!;
        niN += labels.length;
        if (K < maxK) {
          const padded = new Int32Array(labels.length * maxK);
          for (let r = 0; r < labels.length; r++) padded.set(ids.subarray(r * K, r * K + K), r * maxK);
          ranking!.update(padded, Int32Array.from(labels), maxK);
        } else ranking!.update(ids, Int32Array.from(labels), K);
      }
      per.forEach((t, i) => {
        if (!kept[i]!.length) return;
        const pred = Float32Array.from(out[j++]!.dataSync() as Float32Array);
        t.lossSum += out[j++]!.dataSync()[0]!;
        t.n += kept[i]!.length;
        t.metrics.update(pred, Float32Array.from(kept[i]!, (b) => targets[i]![b]!));
      });
      tf.dispose(out);
      opts.onBatch?.(done);
    }
    const res: Record<string, number> = ranking ? { ...ranking.result() } : {};
    let loss = ni && niN ? this.nextItemWeight * (niLoss / niN) : 0;
    for (const t of per) {
      for (const [k, v] of Object.entries(t.metrics.result())) res[`${t.task.name}/${k}`] = v;
      const l = t.n ? t.lossSum / t.n : NaN;
      res[`${t.task.name}/loss`] = l;
      if (t.n) loss += t.weight * l;
    }
    if (opts.loss !== false) res.loss = loss;
    res.examples = ni ? niN : sessions;
    return res;
  }

  /**
   * rtd masking: the parts of the training loss of a batch (generator and discriminator losses, the
   * samples, the discriminator's labels); undefined when the batch has no label. Call inside a tidy.
   */
  rtdLossParts(batch: SequenceBatchLike, rng: RandomSource): RtdLossParts | undefined {
    this.requireBuilt();
    if (!this.rtd) throw new Error("Model: rtdLossParts needs masking type rtd");
    const prep = this.inputs.prepare(batch, "train", rng);
    const { positions, labels } = Model.labelPositions(prep);
    return labels.length === 0 ? undefined : this.rtdParts(prep, positions, labels, rng);
  }

  private rtdParts(prep: PreparedBatchLike, positions: Int32Array, labels: Int32Array, rng: RandomSource): RtdLossParts {
    return this.rtd!.lossParts(prep, positions, labels, this.inputs.itemIdColumn!, this.task, (p, pos) => this.runBody(p, "train", rng, pos), rng);
  }

  /** Logits + [-1e9 at id 0]: padding is never recommended. */
  private excluded(logits: tf.Tensor2D): tf.Tensor2D {
    if (!this.exclusion || this.exclusion.isDisposed) {
      const v = new Float32Array(this.numItems);
      v[0] = NEG;
      this.exclusion = tf.keep(tf.tensor1d(v));
    }
    return tf.add(logits, this.exclusion);
  }

  /**
   * Ranking metrics over batches (SequenceBatch with `targets`: the target of each row is predicted
   * from its prefix; without: the masking's eval labels). Top-k runs inside TF.js; only the k best
   * ids per row come back to JS. Adds "loss" (mean cross-entropy) and "examples".
   */
  evaluate(data: Iterable<SequenceBatchLike>, opts: EvaluateOptions = {}): Record<string, number> {
    this.requireBuilt();
    if (this.targetTasks.length) return this.evaluateMultiTask(data, opts);
    const ks = opts.ks ?? [20];
    const metrics = new RankingMetrics(ks, opts.metrics ?? ["ndcg", "recall", "mrr"]);
    const cat = this.itemCatalogue();
    // candidates: items 1..V-1 (padding is never ranked: -1e9 on the plain path, so it is left out of the top-k)
    const K = Math.min(Math.max(...ks), cat ? cat.numItems : this.numItems - 1);
    const rng = mulberry32(opts.seed ?? 1234);
    const withLoss = opts.loss !== false;
    let lossSum = 0;
    let n = 0;
    let done = 0;
    for (const batch of data) {
      const prep = this.inputs.prepare(batch, "eval", rng);
      const { positions, labels } = Model.labelPositions(prep);
      done++;
      if (labels.length === 0) continue;
      const [idx, loss] = tf.tidy(() => {
        const { x, ctx } = this.runBody(prep, "eval", rng, positions);
        const q = cat ? this.task.queryRows!(x, ctx) : undefined;
        if (q && cat) {
          // scores of items 1..V-1 (+ rounding columns at -1e30), a blocked top-k, and the loss from the same scores
          const scores = catalogueScores(q, cat);
          const top = catalogueScoresTopK(scores, cat, K);
          const l = withLoss ? tf.sum(softmaxCrossEntropyLoss(scores, tf.sub(tf.tensor1d(labels, "int32"), tf.scalar(1, "int32")) as tf.Tensor1D)) : undefined;
          return [top.ids, l] as const;
        }
        const logits = this.task.call(x, ctx) as tf.Tensor2D;
        const l = withLoss ? tf.mul(this.task.loss(logits, tf.tensor1d(labels, "int32")), labels.length) : undefined;
        const top = tf.topk(this.excluded(logits), K, true);
        return [top.indices, l] as const;
      });
      const ids = idx.dataSync() as Int32Array;
      if (loss) lossSum += (loss.dataSync() as Float32Array)[0]!;
      tf.dispose(loss ? [idx, loss] : [idx]);
      if (K < Math.max(...ks)) {
        // fewer items than the largest cut-off: pad the ranking with 0 (never a target)
        const maxK = Math.max(...ks);
        const padded = new Int32Array(labels.length * maxK);
        for (let r = 0; r < labels.length; r++) padded.set(ids.subarray(r * K, r * K + K), r * maxK);
        metrics.update(padded, Int32Array.from(labels), maxK);
      } else metrics.update(ids, Int32Array.from(labels), K);
      n += labels.length;
      opts.onBatch?.(done);
    }
    return { ...metrics.result(), ...(withLoss ? { loss: n ? lossSum / n : NaN } : {}), examples: n };
  }

  /**
   * Top-k next items for each row of a batch (inference mode: for masked LM a [MASK] is appended
   * after the last item). Returns dense item ids and their scores (logits), best first.
   */
  topK(batch: SequenceBatchLike, k: number, opts: { exclude?: (b: number) => Iterable<number>; eligible?: Uint8Array } = {}): TopKResult {
    this.requireBuilt();
    const cat = this.itemCatalogue();
    // at most the V - 1 real items: the padding id is never returned, even when k >= V
    const kk = Math.min(k, cat ? cat.numItems : this.numItems - 1);
    const prep = this.inputs.prepare(batch, "inference", mulberry32(0));
    const positions = Model.readPositions(prep);
    if (opts.eligible && opts.eligible.length !== this.numItems) throw new Error(`Model.topK: eligible has ${opts.eligible.length} entries, expected ${this.numItems}`);
    const [idx, val] = tf.tidy(() => {
      const { x, ctx } = this.runBody(prep, "inference", mulberry32(0), positions);
      const q = cat ? this.task.queryRows!(x, ctx) : undefined;
      if (q && cat) {
        // scores of items 1..V-1 against the cached catalogue (column j = item id j + 1), rules as additive
        // -1e9 inside TF, then a blocked top-k
        let scores = catalogueScores(q, cat);
        const W = scores.shape[1];
        if (opts.eligible) {
          const bias = new Float32Array(W);
          for (let i = 1; i < this.numItems; i++) if (!opts.eligible[i]) bias[i - 1] = NEG;
          scores = tf.add(scores, tf.tensor1d(bias));
        }
        if (opts.exclude) {
          const ex: number[] = [];
          for (let b = 0; b < batch.batchSize; b++) for (const id of opts.exclude(b)) if (id > 0 && id < this.numItems) ex.push(b * W + id - 1);
          if (ex.length) {
            const flat = tf.reshape(scores, [-1]);
            const pen = tf.scatterND(tf.tensor2d(Int32Array.from(ex), [ex.length, 1], "int32"), tf.fill([ex.length], NEG), [flat.size]);
            scores = tf.reshape(tf.add(flat, pen), scores.shape) as tf.Tensor2D;
          }
        }
        const top = catalogueScoresTopK(scores as tf.Tensor2D, cat, kk);
        return [top.ids, top.scores] as const;
      }
      let logits = this.excluded(this.task.call(x, ctx) as tf.Tensor2D);
      if (opts.eligible) {
        // business rules: ineligible items get -1e9 inside TF, so top-k never returns them
        const bias = new Float32Array(this.numItems);
        for (let i = 0; i < bias.length; i++) if (!opts.eligible[i]) bias[i] = NEG;
        logits = tf.add(logits, tf.tensor1d(bias));
      }
      if (opts.exclude) {
        const ex: number[] = [];
        for (let b = 0; b < batch.batchSize; b++) for (const id of opts.exclude(b)) if (id > 0 && id < this.numItems) ex.push(b * this.numItems + id);
        if (ex.length) {
          const flat = tf.reshape(logits, [-1]);
          const pen = tf.scatterND(tf.tensor2d(Int32Array.from(ex), [ex.length, 1], "int32"), tf.fill([ex.length], NEG), [flat.size]);
          logits = tf.reshape(tf.add(flat, pen), logits.shape) as tf.Tensor2D;
        }
      }
      const top = tf.topk(logits, kk, true);
      return [top.indices, top.values] as const;
    });
    const out = { batchSize: batch.batchSize, k: kk, itemIds: Int32Array.from(idx.dataSync() as Int32Array), scores: Float32Array.from(val.dataSync() as Float32Array) };
    tf.dispose([idx, val]);
    return out;
  }

  /**
   * The item table as a top-k catalogue (candidates 1..V-1, rounded up to whole blocks at -1e30), for
   * heads that score by a dot product with it; cached until the next training step.
   */
  private itemCatalogue(): Catalogue | undefined {
    const table = this.task.itemTable;
    if (!Model.catalogueTopK || !table || !this.task.queryRows) return undefined;
    const source = (table as unknown as { dataId: unknown }).dataId;
    if (this.catalogue && this.catalogue.version === this.version && this.catalogue.source === source && !this.catalogue.cat.matrix.isDisposed) return this.catalogue.cat;
    this.catalogue?.cat.matrix.dispose();
    const cat = buildCatalogue(table);
    tf.keep(cat.matrix);
    this.catalogue = { cat, version: this.version, source };
    return cat;
  }

  /**
   * The input block's item-id embedding table as host values [rows = item-id cardinality, dim]: row i is
   * dense item id i (row 0 = padding; row 1 = OOV when the vocabulary has one). src/export maps rows to raw ids.
   */
  itemEmbeddings(): { rows: number; dim: number; values: Float32Array } {
    this.requireBuilt();
    const table = (this.inputs as { itemEmbeddingTable?: tf.Variable }).itemEmbeddingTable ?? this.task.itemTable;
    if (!table) throw new Error("Model.itemEmbeddings: the input block has no item-id embedding table");
    return { rows: table.shape[0]!, dim: table.shape[1]!, values: Float32Array.from(table.dataSync() as Float32Array) };
  }

  /**
   * One vector per row of a batch, read where `topK` reads its prediction (inference mode: each row's
   * last position, or masked LM's appended [MASK]). `vector: "query"` (default) is the vector the head
   * scores: q with q · item tableᵀ = the logits (tied heads without an output bias; projection and
   * temperature folded in), so a dot-product nearest-neighbour search over `itemEmbeddings()` gives
   * `topK`'s ranking. Heads without that form (untied, output bias) and `vector: "hidden"` give the
   * body's hidden state there; `scoresWithItemTable` says which one came back.
   */
  sessionEmbeddings(batch: SequenceBatchLike, opts: { vector?: "query" | "hidden" } = {}): { batchSize: number; dim: number; values: Float32Array; scoresWithItemTable: boolean } {
    this.requireBuilt();
    const prep = this.inputs.prepare(batch, "inference", mulberry32(0));
    const positions = Model.readPositions(prep);
    let query = false;
    const out = tf.tidy(() => {
      const { x, ctx } = this.runBody(prep, "inference", mulberry32(0), positions);
      const q = opts.vector !== "hidden" && this.task.queryRows ? this.task.queryRows(x, ctx) : undefined;
      if (q) {
        query = true;
        return q;
      }
      const h = x as tf.Tensor;
      if (h.rank === 2) return h as tf.Tensor2D;
      const [B, L, D] = h.shape as [number, number, number];
      return tf.gather(tf.reshape(h, [B * L, D]), tf.tensor1d(positions, "int32")) as tf.Tensor2D;
    });
    const res = { batchSize: batch.batchSize, dim: out.shape[1], values: Float32Array.from(out.dataSync() as Float32Array), scoresWithItemTable: query };
    out.dispose();
    return res;
  }

  /** Alias of topK (Transformers4Rec's predict with predict_top_k). */
  predict(batch: SequenceBatchLike, k = 100): TopKResult {
    return this.topK(batch, k);
  }

  /** Frees every weight. */
  dispose(): void {
    this.inputs.dispose();
    for (const b of this.blocks) b.dispose();
    this.headTask.dispose();
    this.rtd?.dispose();
    this.exclusion?.dispose();
    this.catalogue?.cat.matrix.dispose();
    this.catalogue = undefined;
  }
}
