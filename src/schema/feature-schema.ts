import { RecblocksError, type Issue } from "../errors/issue.js";
import { readSource, type ParsedSource } from "../errors/source.js";
import type { FeatureColumn, FeatureSchemaDoc, FeatureTag } from "../generated/feature-schema.js";
import { checkFeatureSchemaDoc } from "./check.js";
import { fromMerlinDoc, toMerlinDoc, type MerlinSchema } from "./merlin.js";
import { readPbtxtSource } from "./pbtxt.js";

export type { FeatureColumn, FeatureSchemaDoc, FeatureTag };

/** Which columns to keep: any of these tags, all of these tags, these names (all given conditions must hold). */
export interface ColumnSelector {
  anyTags?: readonly FeatureTag[];
  allTags?: readonly FeatureTag[];
  names?: readonly string[];
}

/** Is this plain value a Merlin schema.json (a `feature` list) rather than ours (a `columns` list)? */
export function isMerlinDoc(value: unknown): boolean {
  return value !== null && typeof value === "object" && !Array.isArray(value) && Array.isArray((value as { feature?: unknown }).feature) && !("columns" in value);
}

/**
 * The feature schema: the columns of a dataset with their dtypes, tags, domains and value counts.
 * Immutable; built only from a valid document (else a RecblocksError with every issue).
 */
export class FeatureSchema {
  readonly columns: readonly Readonly<FeatureColumn>[];
  readonly description?: string;
  private readonly byName: Map<string, Readonly<FeatureColumn>>;

  private constructor(doc: FeatureSchemaDoc) {
    this.columns = Object.freeze(doc.columns.map((c) => Object.freeze({ ...c, tags: [...(c.tags ?? [])] })));
    if (doc.description !== undefined) this.description = doc.description;
    this.byName = new Map(this.columns.map((c) => [c.name, c]));
  }

  /** From a plain document of our format; throws RecblocksError (kind SchemaError) listing every issue. */
  static fromJSON(doc: unknown, opts: { file?: string } = {}): FeatureSchema {
    const file = opts.file ?? "<inline>";
    const issues = checkFeatureSchemaDoc(doc, () => ({ file }));
    if (issues.length) throw new RecblocksError(file, issues, { kind: "SchemaError" });
    return new FeatureSchema(doc as FeatureSchemaDoc);
  }

  /** From a Merlin / TensorFlow-Metadata schema.json document (see t4r-parity §2.3). */
  static fromMerlin(doc: unknown, opts: { file?: string } = {}): FeatureSchema {
    const file = opts.file ?? "<inline>";
    const { doc: ours, issues } = fromMerlinDoc(doc);
    if (!ours) throw new RecblocksError(file, issues.map((i) => ({ ...i, source: { file } })), { kind: "SchemaError" });
    return FeatureSchema.fromJSON(ours, { file });
  }

  /** Read a feature schema file: ours (YAML or JSON) or Merlin's schema.json, told apart by content, or Merlin's schema.pbtxt (by extension). */
  static load(file: string): FeatureSchema {
    const r = loadFeatureSchemaSource(file);
    if (!r.schema) throw new RecblocksError(r.source.file, r.issues, { kind: "SchemaError" });
    return r.schema;
  }

  /** The document of our format. */
  toJSON(): FeatureSchemaDoc {
    const doc: FeatureSchemaDoc = { version: 1, columns: this.columns.map((c) => structuredClone({ ...c, tags: [...(c.tags ?? [])] })) };
    if (this.description !== undefined) doc.description = this.description;
    return doc;
  }

  /** Merlin / TensorFlow-Metadata schema.json. */
  toMerlin(): MerlinSchema {
    return toMerlinDoc(this.toJSON());
  }

  get names(): string[] {
    return this.columns.map((c) => c.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  column(name: string): Readonly<FeatureColumn> | undefined {
    return this.byName.get(name);
  }

  /** The columns matching a selector, as a new schema (columns keep their order). */
  select(sel: ColumnSelector): FeatureSchema {
    const names = sel.names ? new Set(sel.names) : undefined;
    const cols = this.columns.filter((c) => {
      const tags = c.tags ?? [];
      if (sel.anyTags && sel.anyTags.length && !sel.anyTags.some((t) => tags.includes(t))) return false;
      if (sel.allTags && !sel.allTags.every((t) => tags.includes(t))) return false;
      if (names && !names.has(c.name)) return false;
      return true;
    });
    return new FeatureSchema({ version: 1, columns: cols.map((c) => ({ ...c, tags: [...(c.tags ?? [])] })) });
  }

  /** Columns carrying every one of these tags. */
  withTags(...tags: FeatureTag[]): Readonly<FeatureColumn>[] {
    return this.columns.filter((c) => tags.every((t) => (c.tags ?? []).includes(t)));
  }

  /** The one column tagged item-id; a RecblocksError (missing_item_id / multiple_item_ids) otherwise. */
  itemIdColumn(): Readonly<FeatureColumn> {
    const ids = this.withTags("item-id");
    if (ids.length === 1) return ids[0]!;
    const issue: Issue =
      ids.length === 0
        ? { code: "missing_item_id", path: "/columns", message: "No column is tagged item-id; exactly one must be.", hint: "Add item-id to the tags of the column holding item ids." }
        : { code: "multiple_item_ids", path: "/columns", message: `${ids.length} columns are tagged item-id (${ids.map((c) => c.name).join(", ")}); exactly one must be.` };
    throw new RecblocksError("feature schema", [issue], { kind: "SchemaError" });
  }

  /**
   * Number of ids of a categorical column including 0 (padding): `cardinality`, else domain max + 1.
   * Throws when neither is known.
   */
  cardinality(name: string): number {
    const c = this.byName.get(name);
    if (!c) throw new RecblocksError("feature schema", [{ code: "unknown_feature", path: "/columns", message: `No column "${name}" in the feature schema.` }], { kind: "SchemaError" });
    if (c.cardinality !== undefined) return c.cardinality;
    if (c.max !== undefined) return Math.floor(c.max) + 1;
    throw new RecblocksError("feature schema", [{ code: "missing_cardinality", path: `/columns/${this.columns.indexOf(c)}`, message: `Column "${name}" has neither cardinality nor max; its number of ids is unknown.`, hint: "Add cardinality (domain max + 1) to the column." }], { kind: "SchemaError" });
  }
}

/**
 * Read and check a feature schema file without throwing: the schema when valid, else the located issues.
 * Merlin files are converted first; issues of the converted document point at the Merlin feature.
 * A `.pbtxt` file is Merlin's schema in protobuf text format (./pbtxt.ts).
 */
export function loadFeatureSchemaSource(file: string): { schema?: FeatureSchema; issues: Issue[]; source: ParsedSource; merlin: boolean } {
  const source = /\.pbtxt$/i.test(file) ? readPbtxtSource(file) : readSource(file);
  if (source.issues.length) return { issues: source.issues, source, merlin: false };
  return featureSchemaFromParsed(source);
}

/** The same for an already parsed source. */
export function featureSchemaFromParsed(source: ParsedSource): { schema?: FeatureSchema; issues: Issue[]; source: ParsedSource; merlin: boolean } {
  if (isMerlinDoc(source.value)) {
    const { doc, issues } = fromMerlinDoc(source.value);
    if (!doc) return { issues: issues.map((i) => ({ ...i, source: source.locate(i.path) })), source, merlin: true };
    const locate = (p: string) => source.locate(p.replace(/^\/columns\/(\d+).*$/, "/feature/$1"));
    const more = checkFeatureSchemaDoc(doc, locate);
    return more.length ? { issues: more, source, merlin: true } : { schema: FeatureSchema.fromJSON(doc, { file: source.file }), issues: [], source, merlin: true };
  }
  const issues = checkFeatureSchemaDoc(source.value, source.locate);
  return issues.length ? { issues, source, merlin: false } : { schema: FeatureSchema.fromJSON(source.value, { file: source.file }), issues: [], source, merlin: false };
}
