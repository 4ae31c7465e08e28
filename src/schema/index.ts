export { FeatureSchema, isMerlinDoc, loadFeatureSchemaSource, featureSchemaFromParsed, type ColumnSelector, type FeatureColumn, type FeatureSchemaDoc, type FeatureTag } from "./feature-schema.js";
export { fromMerlinDoc, toMerlinDoc, MERLIN_KEEP, type MerlinFeature, type MerlinSchema } from "./merlin.js";
export { checkFeatureSchemaDoc } from "./check.js";
export { registerBuiltinFeatureSchema, unregisterBuiltinFeatureSchema, parseBuiltinSpec, builtinSchemaSource, builtinSchemaNames, type BuiltinSchemaProvider } from "./builtin.js";
export { FEATURE_TAGS, CONFLICTING_TAGS } from "./tags.js";
export { parsePbtxtSource, readPbtxtSource, toPbtxt, decodeStruct } from "./pbtxt.js";
