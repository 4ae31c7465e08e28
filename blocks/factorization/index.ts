// The ALS model family (blocks/factorization). Re-exports only.
export { AlsModel, IdMap, type RawId, type HistoryEntry, type RecommendOptions, type Recommendation, type SimilarOptions, type Similar, type Explanation } from "./als-model.js";
export { fitAls, alsLoss, rowSystems, solveHalf, initFactors, mulberry32, type FitOptions, type FitResult, type IterationRecord } from "./als-trainer.js";
export { type AlsConfig, alsDefaults, alsSchema, resolveAlsConfig } from "./config.js";
export { type Csr, csrFromTriplets, csrTranspose } from "./csr.js";
export { evaluateLeaveLastOut, popularityScores, rankingMetrics, type MetricName } from "./evaluate.js";
export { type Interactions, readInteractionsFile, syntheticInteractions, leaveLastOut, toCsr } from "./interactions.js";
export { gramTyped, gramTfjs, choleskyInPlace, choleskySolve, cgRow, choleskyRow } from "./linalg.js";
export { saveAlsModel, loadAlsModel, loadAlsRecipe, writeDirAtomic, ALS_FORMAT } from "./model-io.js";
export { trainAlsFromRecipe, loadRecipeInteractions, resolveDataPath, type AlsRecipe, type TrainAlsOptions, type TrainAlsResult } from "./recipe.js";
export { topKRow } from "./topk.js";
export { fitAlsParallel, partitionRows } from "./als-parallel.js";
