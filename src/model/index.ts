export { Model, type ModelConfig, type EvaluateOptions, type TopKResult, type TrainBatch, type HeadLike, type InputBlockLike, type TaskLike, type PreparedBatchLike } from "./model.js";
