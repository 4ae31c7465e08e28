// Public API of src/train. Re-exports only.
export { fit, evaluationBatches, type FitOptions, type FitResult, type EpochRecord, type TrainSettings, type EvaluateSettings, type SessionData } from "./loop.js";
export { createOptimizer, resolveOptimizerConfig, Optimizer, type OptimizerConfig, type GradientMap } from "./optimizers.js";
export { createSchedule, scheduleFactor, type ScheduleConfig } from "./schedules.js";
export { clipByGlobalNorm, clipByNorm, globalNorm, disposeGradients } from "./clipping.js";
export { EarlyStopping, type EarlyStoppingConfig } from "./early-stopping.js";
export { ProgressReporter, type ProgressOptions } from "./progress.js";
