// Registers every built-in block type with the core registry. One line per block; re-exports only.
import { registerBlock } from "../src/core/index.js";
import { MultiHeadAttentionBlock } from "./attention/mha-block.js";
import { MLPBlock } from "./core/mlp.js";
import { PostContextFusionBlock } from "./core/post-context-fusion.js";
import { SequentialBlock } from "./core/sequential.js";
import { TabularFeatures } from "./features/tabular-features.js";
import { TabularSequenceFeatures } from "./features/tabular-sequence-features.js";
import { NextItemPredictionTask } from "./heads/next-item-prediction.js";
import { SequenceSummaryBlock } from "./heads/sequence-summary.js";
import { BinaryClassificationTask } from "./heads/binary-classification.js";
import { RegressionTask } from "./heads/regression.js";
import { MultiClassTask } from "./heads/multi-class.js";
import { MultiTaskHead } from "./heads/multi-task.js";
import { GRUBlock } from "./recurrent/gru.js";
import { LSTMBlock } from "./recurrent/lstm.js";
import { StampAttentionBlock } from "./sequence/stamp-attention.js";
import { TransformerBlock } from "./sequence/transformer.js";

registerBlock("gru", GRUBlock);
registerBlock("lstm", LSTMBlock);
registerBlock("mlp", MLPBlock);
registerBlock("post-context-fusion", PostContextFusionBlock);
registerBlock("multi-head-attention", MultiHeadAttentionBlock);
registerBlock("sequential", SequentialBlock);
registerBlock("tabular-features", TabularFeatures);
registerBlock("tabular-sequence-features", TabularSequenceFeatures);
registerBlock("next-item-prediction", NextItemPredictionTask);
registerBlock("sequence-summary", SequenceSummaryBlock);
registerBlock("binary-classification", BinaryClassificationTask);
registerBlock("regression", RegressionTask);
registerBlock("multi-class", MultiClassTask);
registerBlock("multi-task", MultiTaskHead);
registerBlock("stamp-attention", StampAttentionBlock);
registerBlock("transformer", TransformerBlock);

export { MultiHeadAttentionBlock, type MultiHeadAttentionConfig } from "./attention/mha-block.js";
export { MLPBlock, type MLPConfig } from "./core/mlp.js";
export { PostContextFusionBlock, fuseContext, type PostContextFusionConfig, type FusionAggregation } from "./core/post-context-fusion.js";
export { type PretrainedEmbeddingFeatureOptions } from "./features/pretrained-embedding-features.js";
export { SequentialBlock, type SequentialConfig } from "./core/sequential.js";
export {
  TabularSequenceFeatures,
  type TabularSequenceFeaturesConfig,
  type MaskingOptions,
  type FeaturePlan,
  type ItemEmbeddings,
  type PreparedBatch,
  type SoftEmbeddingOptions,
  type PretrainedEmbeddingOptions,
  type MultiHotOptions,
  type StochasticSwapNoiseOptions,
} from "./features/tabular-sequence-features.js";
export { TabularFeatures, type TabularFeaturesConfig } from "./features/tabular-features.js";
export { aggregateFeatures, bagEmbedding, softEmbedding, stochasticSwapNoise, type AggregationName } from "./features/feature-ops.js";
export { NextItemPredictionTask, setCrossEntropy, type NextItemPredictionConfig, type CrossEntropyFn } from "./heads/next-item-prediction.js";
export { Head } from "./heads/head.js";
export { SequenceSummaryBlock, summarize, type SequenceSummaryConfig, type SummaryType } from "./heads/sequence-summary.js";
export { TargetTask, type TargetTaskConfig, type TaskMetrics } from "./heads/target-task.js";
export { BinaryClassificationTask, type BinaryClassificationConfig } from "./heads/binary-classification.js";
export { RegressionTask, type RegressionConfig } from "./heads/regression.js";
export { MultiClassTask, type MultiClassConfig } from "./heads/multi-class.js";
export { MultiTaskHead, type MultiTaskConfig } from "./heads/multi-task.js";
export { LogUniformSampler, type NegativeSample } from "./heads/sampling.js";
export { bprLoss, top1Loss, sampledSoftmaxLogits, firstColumnCrossEntropy, hitMask, logInclusionProbability, HIT_LOGIT } from "./heads/losses.js";
export { GRUBlock, type GRUConfig } from "./recurrent/gru.js";
export { LSTMBlock, type LSTMConfig } from "./recurrent/lstm.js";
export { RecurrentBlock, type RecurrentConfig } from "./recurrent/recurrent-block.js";
export { StampAttentionBlock, type StampAttentionConfig } from "./sequence/stamp-attention.js";
export { TransformerBlock, type TransformerConfig } from "./sequence/transformer.js";
