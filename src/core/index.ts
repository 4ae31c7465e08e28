// Public API of the block core. Re-exports only.
export { Block, type BlockConfig, type BlockInput, type BlockOutput } from "./block.js";
export { BlockContext, CallContext, type CallMode, type RandomSource } from "./context.js";
export { BlockError } from "./errors.js";
export { blockSchema, deepFreeze, withSchemaDefaults } from "./defaults.js";
export { initialValues, makeVariable, type Initializer } from "./init.js";
export { columnsOf, hasTag, cardinalityOf, itemIdColumnOf, type ColumnLike, type FeatureSchemaLike } from "./feature-columns.js";
export { registerBlock, createBlock, listBlockTypes, canonicalBlockType, getBlockClass, type BlockClass } from "./registry.js";
export { isTensorSpec, tensorSpec, formatSpec, shapeMatches, type DType, type TensorSpec, type PortSpec } from "./spec.js";
export { activation, dropout, layerNorm, crossEntropyPerRow, pickPerRow, type ActivationName } from "./ops.js";
export type { SequenceBatchLike } from "./batch.js";
