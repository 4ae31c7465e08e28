// Public API of src/data. Re-exports only.
export type { DataFormat, RawTable } from "./table.js";
export { type DataIssueCode, type BadRowPolicy, BadRows, formatIssues } from "./errors.js";
export { Interner } from "./interner.js";
export { Vocabulary, type VocabularyJSON, type VocabularyOptions, type VocabularyOrder } from "./vocabulary.js";
export { detectFormat, sniffDelimiter, sniffHeader, type FormatOption, type Sniffed } from "./detect.js";
export { readTable, readDelimited, readJsonl, readParquet, type TableReadOptions } from "./readers.js";
export { readSessionsText, type SessionsTextOptions } from "./sessions-text.js";
export { type CodedSessions, numSessions, subsetSessions, filterSteps } from "./coded.js";
export { groupSessions, filterSessions, parseTime, type ColumnRoles, type FeatureColumns, type SessionFilterOptions } from "./sessions.js";
export { splitSessions, type SplitConfig, type SplitResult } from "./split.js";
export {
  type Session,
  type SequenceBatch,
  type ExampleSet,
  type BatchOptions,
  prefixExamples,
  countPrefixExamples,
  fullSequenceExamples,
  lastItemExamples,
  makeBatch,
  batches,
  numBatches,
} from "./batches.js";
export { generateSynthetic, parseBuiltinSpec, syntheticFeatureSchema, syntheticSpec, isBuiltin, type SyntheticOptions } from "./synthetic.js";
export { openDataSource, readCodedSessions, resolveRoles, type DataSource, type SourceOptions, type ColumnsConfig, type CsvOptions } from "./source.js";
export { loadRecipeData, toSessions, codeToIds, type DataConfig, type LoadOptions, type RecipeData } from "./load.js";
export { dataStats, inferSchema, statsOf, type DataStats, type StatsOptions } from "./stats.js";
export type { FeatureSchemaDocLike, FeatureColumnDoc } from "./schema-doc.js";
export { mulberry32 } from "./rng.js";
export { writeFileAtomic } from "./atomic.js";
