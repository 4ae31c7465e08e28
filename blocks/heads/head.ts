import { Block, type FeatureSchemaLike } from "../../src/core/index.js";
import { SequentialBlock } from "../core/sequential.js";
import { MultiTaskHead, newTargetTask, tasksFromSchema } from "./multi-task.js";
import { NextItemPredictionTask } from "./next-item-prediction.js";
import { TargetTask } from "./target-task.js";

/**
 * A body and its prediction task (Transformers4Rec Head). The body is usually
 * `new SequentialBlock([inputs, ...blocks])` whose first block is the input block. The task is a
 * NextItemPredictionTask, a per-session task (BinaryClassificationTask, RegressionTask, MultiClassTask)
 * or a MultiTaskHead of several with their weights.
 */
export class Head {
  readonly body: Block;
  readonly task: NextItemPredictionTask | TargetTask | MultiTaskHead;

  constructor(body: Block, task: NextItemPredictionTask | TargetTask | MultiTaskHead) {
    if (!(task instanceof NextItemPredictionTask || task instanceof TargetTask || task instanceof MultiTaskHead)) {
      throw new TypeError("Head: the task must be a NextItemPredictionTask, a BinaryClassificationTask / RegressionTask / MultiClassTask, or a MultiTaskHead");
    }
    this.body = body;
    this.task = task;
  }

  /**
   * Transformers4Rec `Head.from_schema(schema, body, task_weight_dict=...)`: a multi-task head with a
   * binary-classification task for each column tagged target + binary (or binary-classification), a
   * regression task for target + regression and a multi-class task for target + multi-class (the task's
   * name and target are the column name), after the given `tasks` (e.g. a next-item task, never inferred).
   * `taskWeights` by task name, default 1. Throws when that leaves no task.
   */
  static fromSchema(schema: FeatureSchemaLike, body: Block, opts: { tasks?: Block[]; taskWeights?: Record<string, number> } = {}): Head {
    const given = opts.tasks ?? [];
    const targets = new Set(given.map((t) => (t as { target?: unknown }).target).filter((t): t is string => typeof t === "string"));
    const tasks = [...given, ...tasksFromSchema(schema, targets).map(newTargetTask)];
    if (!tasks.length) throw new TypeError("Head.fromSchema: the feature schema has no target column (tagged target and binary, regression or multi-class) and no task was given");
    return new Head(body, new MultiTaskHead({ tasks, ...(opts.taskWeights ? { taskWeights: opts.taskWeights } : {}) }));
  }

  /** The body as a flat list of blocks: the children of a SequentialBlock, else the body itself. */
  chain(): Block[] {
    return this.body instanceof SequentialBlock ? [...this.body.blocks] : [this.body];
  }
}
