import { Block } from "../../src/core/index.js";
import { SequentialBlock } from "../core/sequential.js";
import { NextItemPredictionTask } from "./next-item-prediction.js";

/**
 * A body and its prediction task (Transformers4Rec Head). The body is usually
 * `new SequentialBlock([inputs, ...blocks])` whose first block is the input block.
 */
export class Head {
  readonly body: Block;
  readonly task: NextItemPredictionTask;

  constructor(body: Block, task: NextItemPredictionTask) {
    if (!(task instanceof NextItemPredictionTask)) throw new TypeError("Head: the task must be a NextItemPredictionTask");
    this.body = body;
    this.task = task;
  }

  /** The body as a flat list of blocks: the children of a SequentialBlock, else the body itself. */
  chain(): Block[] {
    return this.body instanceof SequentialBlock ? [...this.body.blocks] : [this.body];
  }
}
