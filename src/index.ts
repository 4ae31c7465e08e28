// Public API of recblocks. Re-exports only; no logic here.
// The package entry is the one place under src/ that re-exports blocks/: importing "recblocks"
// registers every built-in block type, so `Model.fromConfig` and `createBlock` know them.
export { type Issue, type SourceLocation, RecblocksError } from "./errors/issue.js";
export { packageRoot } from "./paths.js";

// Blocks (docs/blocks.md)
export {
  MLPBlock,
  SequentialBlock,
  TabularSequenceFeatures,
  NextItemPredictionTask,
  Head,
  TransformerBlock,
  StampAttentionBlock,
  GRUBlock,
  LSTMBlock,
  MultiHeadAttentionBlock,
  type MLPConfig,
  type SequentialConfig,
  type TabularSequenceFeaturesConfig,
  type MaskingOptions,
  type NextItemPredictionConfig,
  type TransformerConfig,
  type StampAttentionConfig,
  type GRUConfig,
  type LSTMConfig,
  type MultiHeadAttentionConfig,
} from "../blocks/index.js";

// The block core: writing your own blocks
export {
  Block,
  BlockContext,
  CallContext,
  BlockError,
  registerBlock,
  createBlock,
  listBlockTypes,
  type BlockConfig,
  type BlockInput,
  type BlockOutput,
  type CallMode,
  type TensorSpec,
  type PortSpec,
  type FeatureSchemaLike,
  type SequenceBatchLike,
} from "./core/index.js";

// Model, feature schema, recipes
export { Model, type ModelConfig, type EvaluateOptions, type TopKResult, type TrainBatch } from "./model/index.js";
export { FeatureSchema, type FeatureSchemaDoc } from "./schema/index.js";
export { loadRecipe } from "./recipe/index.js";

// Data, training, metrics, engine, model directories
export { type Session, type SequenceBatch, batches, fullSequenceExamples, lastItemExamples, prefixExamples } from "./data/index.js";
export { fit, evaluationBatches, createOptimizer, disposeGradients, type FitOptions, type FitResult, type TrainSettings, type SessionData, type OptimizerConfig } from "./train/index.js";
export { RankingMetrics, type RankingMetricName } from "./metrics/index.js";
export { initEngine, type EngineInfo } from "./engine/index.js";
export { mulberry32 } from "./masking/index.js";
export { saveModelDir, loadModelDir } from "./io/model-dir.js";
