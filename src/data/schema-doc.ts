/**
 * The feature-schema document shape of contracts.md, as far as src/data needs it. Structural, so that the
 * generated `FeatureSchemaDoc` type (src/generated) is assignable to it.
 */
export interface FeatureColumnDoc {
  name: string;
  dtype: "int32" | "int64" | "float32" | "float64" | "string" | "bool";
  tags?: string[];
  cardinality?: number;
  min?: number;
  max?: number;
  valueCount?: { min?: number; max?: number };
  embeddingDim?: number;
  properties?: Record<string, unknown>;
}

export interface FeatureSchemaDocLike {
  version: 1;
  columns: FeatureColumnDoc[];
}

export function hasTag(c: FeatureColumnDoc, tag: string): boolean {
  return (c.tags ?? []).includes(tag);
}
