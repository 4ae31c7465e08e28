// Registers every built-in block type with the core registry. One line per block; re-exports only.
import { registerBlock } from "../src/core/index.js";
import { MLPBlock } from "./core/mlp.js";
import { SequentialBlock } from "./core/sequential.js";
import { TabularSequenceFeatures } from "./features/tabular-sequence-features.js";
import { NextItemPredictionTask } from "./heads/next-item-prediction.js";
import { StampAttentionBlock } from "./sequence/stamp-attention.js";
import { TransformerBlock } from "./sequence/transformer.js";

registerBlock("mlp", MLPBlock);
registerBlock("sequential", SequentialBlock);
registerBlock("tabular-sequence-features", TabularSequenceFeatures);
registerBlock("next-item-prediction", NextItemPredictionTask);
registerBlock("stamp-attention", StampAttentionBlock);
registerBlock("transformer", TransformerBlock);

export { MLPBlock, type MLPConfig } from "./core/mlp.js";
export { SequentialBlock, type SequentialConfig } from "./core/sequential.js";
export {
  TabularSequenceFeatures,
  type TabularSequenceFeaturesConfig,
  type MaskingOptions,
  type FeaturePlan,
  type ItemEmbeddings,
  type PreparedBatch,
} from "./features/tabular-sequence-features.js";
export { NextItemPredictionTask, setCrossEntropy, type NextItemPredictionConfig, type CrossEntropyFn } from "./heads/next-item-prediction.js";
export { Head } from "./heads/head.js";
export { StampAttentionBlock, type StampAttentionConfig } from "./sequence/stamp-attention.js";
export { TransformerBlock, type TransformerConfig } from "./sequence/transformer.js";
