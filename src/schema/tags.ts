import type { FeatureTag } from "../generated/feature-schema.js";

/** Every tag of the feature schema (kept equal to schemas/feature-schema.schema.json by a test). */
export const FEATURE_TAGS: readonly FeatureTag[] = [
  "item-id", "user-id", "session-id", "item", "user", "session", "id", "categorical", "continuous", "list", "sequence",
  "timestamp", "time", "text", "tokenized", "embedding", "context", "target", "binary", "regression", "classification",
  "multi-class", "binary-classification", "multi-class-classification",
];

/** Pairs of tags one column cannot carry together (as Merlin's TagSet). */
export const CONFLICTING_TAGS: readonly [FeatureTag, FeatureTag][] = [
  ["categorical", "continuous"],
  ["categorical", "embedding"],
  ["continuous", "embedding"],
  ["continuous", "id"],
  ["continuous", "item-id"],
  ["continuous", "user-id"],
  ["continuous", "session-id"],
];
