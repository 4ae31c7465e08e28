import { Block } from "../../src/core/index.js";
import { SequentialBlock } from "../core/sequential.js";
import { MultiTaskHead } from "./multi-task.js";
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

  /** The body as a flat list of blocks: the children of a SequentialBlock, else the body itself. */
  chain(): Block[] {
    return this.body instanceof SequentialBlock ? [...this.body.blocks] : [this.body];
  }
}
