/**
 * The part of a feature schema that blocks read: a structural view, so that blocks work with
 * src/schema's FeatureSchema class (which has `columns`) and with a plain FeatureSchemaDoc alike.
 */
export interface ColumnLike {
  name: string;
  dtype?: string;
  tags?: readonly string[];
  /** Number of ids including 0 = padding (categorical columns). */
  cardinality?: number;
  min?: number;
  max?: number;
  valueCount?: { min?: number; max?: number };
  embeddingDim?: number;
  properties?: Record<string, unknown>;
}

export interface FeatureSchemaLike {
  readonly columns: readonly ColumnLike[];
}

export function columnsOf(schema: FeatureSchemaLike | undefined): readonly ColumnLike[] {
  if (!schema) return [];
  const c = (schema as { columns?: unknown }).columns;
  if (Array.isArray(c)) return c as ColumnLike[];
  const toJSON = (schema as { toJSON?: () => { columns?: ColumnLike[] } }).toJSON;
  if (typeof toJSON === "function") return toJSON.call(schema).columns ?? [];
  return [];
}

export function hasTag(col: ColumnLike, tag: string): boolean {
  return (col.tags ?? []).includes(tag);
}

/** Cardinality of a categorical column: `cardinality`, else `max + 1`. */
export function cardinalityOf(col: ColumnLike): number | undefined {
  if (typeof col.cardinality === "number") return col.cardinality;
  if (typeof col.max === "number") return col.max + 1;
  return undefined;
}

/** The single column tagged item-id, or undefined. */
export function itemIdColumnOf(schema: FeatureSchemaLike | undefined): ColumnLike | undefined {
  return columnsOf(schema).find((c) => hasTag(c, "item-id"));
}
