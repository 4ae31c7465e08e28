import type * as tf from "@tensorflow/tfjs";
import type { Block, BlockOutput, CallContext } from "../core/index.js";

/**
 * What the Model needs from a per-session task (blocks/heads/target-task.ts: binary-classification,
 * regression, multi-class): one value per row from the body's output, a loss against the target column,
 * streaming metrics. Duck-typed so that src/ does not import blocks/.
 */
export interface TargetTaskLike extends Block {
  readonly kind: "binary" | "regression" | "multi-class";
  /** The column (a context feature of the batch) holding the target of each row. */
  readonly target: string;
  hasTarget(v: number): boolean;
  /** Raw outputs of every row ([B] or [B, C]). */
  raw(input: BlockOutput, ctx: CallContext): tf.Tensor;
  predictionsOf(raw: tf.Tensor): tf.Tensor;
  lossOf(raw: tf.Tensor, targets: tf.Tensor1D): tf.Scalar;
  targetLoss(input: BlockOutput, ctx: CallContext, targets: ArrayLike<number>): tf.Scalar | undefined;
  newMetrics(): { update(predictions: Float32Array, targets: Float32Array): void; result(): Record<string, number>; reset(): void };
}

/** A head holding several tasks (blocks/heads/multi-task.ts). */
interface MultiTaskLike extends Block {
  readonly nextItem: Block | undefined;
  readonly nextItemWeight: number;
  readonly targetTasks: { task: TargetTaskLike; weight: number }[];
}

export function isTargetTask(b: unknown): b is TargetTaskLike {
  const t = b as Partial<TargetTaskLike>;
  return !!t && typeof t.targetLoss === "function" && typeof t.raw === "function" && typeof t.target === "string";
}

function isMultiTask(b: unknown): b is MultiTaskLike {
  return !!b && Array.isArray((b as Partial<MultiTaskLike>).targetTasks) && "nextItem" in (b as object);
}

/** The parts of a head's task: the next-item task (if any) with its weight, and the per-session tasks with theirs. */
export function resolveTasks(task: Block): { nextItem: Block | undefined; nextItemWeight: number; targets: { task: TargetTaskLike; weight: number }[] } {
  if (isMultiTask(task)) return { nextItem: task.nextItem, nextItemWeight: task.nextItemWeight, targets: task.targetTasks };
  if (isTargetTask(task)) return { nextItem: undefined, nextItemWeight: 0, targets: [{ task, weight: 1 }] };
  return { nextItem: task, nextItemWeight: 1, targets: [] };
}
