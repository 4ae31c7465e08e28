import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  columnsOf,
  createBlock,
  hasTag,
  type BlockConfig,
  type BlockContext,
  type BlockInput,
  type BlockOutput,
  type CallContext,
  type ColumnLike,
  type FeatureSchemaLike,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import { NextItemPredictionTask } from "./next-item-prediction.js";
import { BinaryClassificationTask } from "./binary-classification.js";
import { MultiClassTask } from "./multi-class.js";
import { RegressionTask } from "./regression.js";
import { TargetTask } from "./target-task.js";

type TaskConfig = BlockConfig & Record<string, unknown>;

/** Config of `multi-task` (schemas/blocks/multi-task.schema.json). */
export interface MultiTaskConfig {
  type: "multi-task";
  name?: string;
  tasks?: TaskConfig[];
  /** One weight per task in the order of `tasks`, or weights by task name (tasks not named: 1). */
  taskWeights?: number[] | Record<string, number>;
  /** Add a task for every target column of the feature schema (Transformers4Rec Head.from_schema). */
  fromSchema?: boolean;
}

/**
 * The per-session task a target column of the feature schema gets (Transformers4Rec Head.from_schema):
 * binary-classification for `target` + binary / binary-classification, regression for `target` + regression,
 * multi-class for `target` + multi-class / multi-class-classification; undefined for other columns
 * (sequences, untagged targets). Task name and target are the column name.
 */
export function taskConfigForColumn(col: ColumnLike): (TaskConfig & { target: string }) | undefined {
  if (!hasTag(col, "target") || hasTag(col, "list")) return undefined;
  const type = hasTag(col, "binary") || hasTag(col, "binary-classification")
    ? "binary-classification"
    : hasTag(col, "regression")
      ? "regression"
      : hasTag(col, "multi-class") || hasTag(col, "multi-class-classification")
        ? "multi-class"
        : undefined;
  return type ? { type, name: col.name, target: col.name } : undefined;
}

/** The task block of a config from taskConfigForColumn (without the block registry). */
export function newTargetTask(c: TaskConfig & { target: string }): TargetTask {
  if (c.type === "binary-classification") return new BinaryClassificationTask(c as never);
  if (c.type === "regression") return new RegressionTask(c as never);
  return new MultiClassTask(c as never);
}

/** The task configs of the schema's target columns, in schema order, leaving out the columns in `skip`. */
export function tasksFromSchema(schema: FeatureSchemaLike | undefined, skip: Set<string> = new Set()): (TaskConfig & { target: string })[] {
  const out: (TaskConfig & { target: string })[] = [];
  for (const col of columnsOf(schema)) {
    const t = skip.has(col.name) ? undefined : taskConfigForColumn(col);
    if (t) out.push(t);
  }
  return out;
}

/**
 * Several prediction tasks on one body (Transformers4Rec Head with several tasks and task_weights):
 * at most one next-item-prediction and any number of per-session tasks (binary-classification,
 * regression, multi-class). With `fromSchema` the feature schema's target columns add their tasks
 * (tasksFromSchema). The training loss is Σ wᵢ · lossᵢ (taskWeights by position or by task name, default 1). Each task
 * gets the body's output; per-session tasks summarise a sequence themselves (summaryType). The
 * next-item part is reached by the Model through `nextItem` (ranking, catalogue top-k, fused loss).
 */
export class MultiTaskHead extends Block<MultiTaskConfig> {
  readonly tasks: Block[];
  /** The per-session tasks with their weights: one array, updated in place when `fromSchema` adds tasks. */
  private readonly targetList: { task: TargetTask; weight: number }[] = [];
  private schemaResolved = false;

  constructor(config: Omit<MultiTaskConfig, "type"> | MultiTaskConfig | { tasks: Block[]; taskWeights?: number[] | Record<string, number>; name?: string; fromSchema?: boolean }) {
    const given = config.tasks ?? [];
    const blocks = given.length > 0 && given.every((t) => t instanceof Block) ? (given as Block[]) : undefined;
    const cfg = blocks ? { ...config, tasks: blocks.map((b) => b.getConfig() as TaskConfig) } : { ...config, tasks: given as TaskConfig[] };
    super({ ...cfg, type: "multi-task" } as MultiTaskConfig);
    this.tasks = blocks ?? this.config.tasks!.map((c, i) => createBlock(structuredClone(c) as TaskConfig, `/tasks/${i}`));
    this.refreshTargets();
  }

  /**
   * With `fromSchema`, adds a task for every target column of the schema that no task reads yet
   * (taskConfigForColumn). Runs once; the Model and build call it, so a recipe head
   * `{type: multi-task, fromSchema: true}` gets its tasks from the feature schema.
   */
  resolveSchema(schema: FeatureSchemaLike | undefined): void {
    if (!this.config.fromSchema || this.schemaResolved || !columnsOf(schema).length) return;
    this.schemaResolved = true;
    const have = new Set(this.tasks.filter((t): t is TargetTask => t instanceof TargetTask).map((t) => t.target));
    for (const c of tasksFromSchema(schema, have)) this.tasks.push(newTargetTask(c)); // getConfig lists them
    this.refreshTargets();
  }

  private refreshTargets(): void {
    this.targetList.length = 0;
    this.tasks.forEach((t, i) => {
      if (t instanceof TargetTask) this.targetList.push({ task: t, weight: this.weight(i) });
    });
  }

  /** The next-item task, if one of the tasks is. */
  get nextItem(): NextItemPredictionTask | undefined {
    return this.tasks.find((t): t is NextItemPredictionTask => t instanceof NextItemPredictionTask);
  }

  /** The per-session tasks with their weights (the same array throughout: tasks added from the schema appear in it). */
  get targetTasks(): { task: TargetTask; weight: number }[] {
    return this.targetList;
  }

  /** Weight of the next-item loss. */
  get nextItemWeight(): number {
    const i = this.tasks.findIndex((t) => t instanceof NextItemPredictionTask);
    return i < 0 ? 0 : this.weight(i);
  }

  private weight(i: number): number {
    const w = this.config.taskWeights;
    if (Array.isArray(w)) return w[i] ?? 1;
    return w?.[this.tasks[i]!.name] ?? 1;
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): PortSpec {
    this.resolveSchema(ctx.schema);
    const c = this.config;
    if (!this.tasks.length) {
      throw new BlockError(`${ctx.path}/tasks`, "incompatible_config", c.fromSchema ? "multi-task with fromSchema found no target column in the feature schema (tagged target and binary, regression or multi-class) and has no other task." : "multi-task needs at least one task.", {
        ...(c.fromSchema ? { hint: "Tag the target columns in the feature schema (e.g. [target, binary]), or list tasks." } : {}),
      });
    }
    if (Array.isArray(c.taskWeights) && c.taskWeights.length > 0 && c.taskWeights.length !== this.tasks.length) {
      throw new BlockError(`${ctx.path}/taskWeights`, "incompatible_config", `taskWeights has ${c.taskWeights.length} entries but there are ${this.tasks.length} tasks.`, {
        hint: c.fromSchema ? "With fromSchema, give the weights by task name (a map), since the schema decides the tasks." : "Give one weight per task, in the order of `tasks`.",
      });
    }
    if (c.taskWeights && !Array.isArray(c.taskWeights)) {
      const names = this.tasks.map((t) => t.name);
      for (const k of Object.keys(c.taskWeights)) {
        if (!names.includes(k)) throw new BlockError(`${ctx.path}/taskWeights/${k}`, "incompatible_config", `taskWeights names "${k}", which is not a task of this head.`, { expected: names });
      }
    }
    if (this.tasks.filter((t) => t instanceof NextItemPredictionTask).length > 1) {
      throw new BlockError(`${ctx.path}/tasks`, "incompatible_config", "multi-task has more than one next-item-prediction task; at most one is supported.");
    }
    const out: Record<string, TensorSpec> = {};
    this.tasks.forEach((t, i) => {
      const at = ctx.child("tasks", i);
      if (!(t instanceof NextItemPredictionTask) && !(t instanceof TargetTask)) {
        throw new BlockError(at.path, "incompatible_config", `multi-task: "${t.config.type}" is not a prediction task (next-item-prediction, binary-classification, regression, multi-class).`);
      }
      if (out[t.name]) {
        throw new BlockError(`${at.path}/name`, "incompatible_config", `Two tasks are named "${t.name}"; task names prefix their metrics and weights, so they must differ.`, {
          hint: "Set `name` on one of them.",
        });
      }
      out[t.name] = (t.built ? t.outputSpec : t.computeOutputSpec(input, at)) as TensorSpec;
    });
    return out;
  }

  override build(input: PortSpec, ctx: BlockContext): void {
    this.resolveSchema(ctx.schema);
    this.tasks.forEach((t, i) => {
      if (!t.built) t.build(input, ctx.child("tasks", i));
    });
    super.build(input, ctx);
  }

  override getConfig(): MultiTaskConfig {
    return { ...structuredClone(this.config), tasks: this.tasks.map((t) => t.getConfig() as TaskConfig) };
  }

  override children(): [string, Block][] {
    return this.tasks.map((t, i) => [String(i), t]);
  }

  /** Every task's output by task name (next-item: logits at the CallContext's "positions"; others: predictions [B]). */
  call(input: BlockInput, ctx: CallContext): BlockOutput {
    const out: Record<string, tf.Tensor> = {};
    for (const t of this.tasks) out[t.name] = t.call(input, ctx) as tf.Tensor;
    return out;
  }
}
