export {
  RankingMetrics,
  RANKING_METRIC_NAMES,
  DEFAULT_RANKING_METRICS,
  type RankingMetricName,
  type TieMode,
  type ExcludeSpec,
  type ScoreUpdateOptions,
} from "./ranking.js";
export { popularityCounts, popularityTopK } from "./popularity.js";
export { BinaryClassificationMetrics, RegressionMetrics, MultiClassMetrics, auc } from "./classification.js";
