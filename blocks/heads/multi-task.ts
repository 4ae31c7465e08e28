import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  createBlock,
  type BlockConfig,
  type BlockContext,
  type BlockInput,
  type BlockOutput,
  type CallContext,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import { NextItemPredictionTask } from "./next-item-prediction.js";
import { TargetTask } from "./target-task.js";

/** Config of `multi-task` (schemas/blocks/multi-task.schema.json). */
export interface MultiTaskConfig {
  type: "multi-task";
  name?: string;
  tasks: (BlockConfig & Record<string, unknown>)[];
  taskWeights?: number[];
}

/**
 * Several prediction tasks on one body (Transformers4Rec Head with several tasks and task_weights):
 * at most one next-item-prediction and any number of per-session tasks (binary-classification,
 * regression, multi-class). The training loss is Σ wᵢ · lossᵢ (taskWeights, default 1 each). Each task
 * gets the body's output; per-session tasks summarise a sequence themselves (summaryType). The
 * next-item part is reached by the Model through `nextItem` (ranking, catalogue top-k, fused loss).
 */
export class MultiTaskHead extends Block<MultiTaskConfig> {
  readonly tasks: Block[];

  constructor(config: Omit<MultiTaskConfig, "type"> | MultiTaskConfig | { tasks: Block[]; taskWeights?: number[]; name?: string }) {
    const blocks = config.tasks.every((t) => t instanceof Block) ? (config.tasks as Block[]) : undefined;
    const cfg = blocks ? { ...config, tasks: blocks.map((b) => b.getConfig() as MultiTaskConfig["tasks"][number]) } : config;
    super({ ...cfg, type: "multi-task" } as MultiTaskConfig);
    this.tasks = blocks ?? this.config.tasks.map((c, i) => createBlock(structuredClone(c) as MultiTaskConfig["tasks"][number], `/tasks/${i}`));
  }

  /** The next-item task, if one of the tasks is. */
  get nextItem(): NextItemPredictionTask | undefined {
    return this.tasks.find((t): t is NextItemPredictionTask => t instanceof NextItemPredictionTask);
  }

  /** The per-session tasks with their weights. */
  get targetTasks(): { task: TargetTask; weight: number }[] {
    const out: { task: TargetTask; weight: number }[] = [];
    this.tasks.forEach((t, i) => {
      if (t instanceof TargetTask) out.push({ task: t, weight: this.weight(i) });
    });
    return out;
  }

  /** Weight of the next-item loss. */
  get nextItemWeight(): number {
    const i = this.tasks.findIndex((t) => t instanceof NextItemPredictionTask);
    return i < 0 ? 0 : this.weight(i);
  }

  private weight(i: number): number {
    return this.config.taskWeights?.[i] ?? 1;
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): PortSpec {
    const c = this.config;
    if (!this.tasks.length) throw new BlockError(`${ctx.path}/tasks`, "incompatible_config", "multi-task needs at least one task.");
    if (c.taskWeights && c.taskWeights.length > 0 && c.taskWeights.length !== this.tasks.length) {
      throw new BlockError(`${ctx.path}/taskWeights`, "incompatible_config", `taskWeights has ${c.taskWeights.length} entries but there are ${this.tasks.length} tasks.`, {
        hint: "Give one weight per task, in the order of `tasks`.",
      });
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
    this.tasks.forEach((t, i) => {
      if (!t.built) t.build(input, ctx.child("tasks", i));
    });
    super.build(input, ctx);
  }

  override getConfig(): MultiTaskConfig {
    return { ...structuredClone(this.config), tasks: this.tasks.map((t) => t.getConfig() as MultiTaskConfig["tasks"][number]) };
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
