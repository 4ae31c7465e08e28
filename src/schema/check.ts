import { translateAjvErrors, type Locate } from "../errors/ajv.js";
import type { Issue } from "../errors/issue.js";
import { sortIssues } from "../errors/sort.js";
import type { FeatureColumn, FeatureSchemaDoc } from "../generated/feature-schema.js";
import { defaultSchemaSet, type SchemaSet } from "../recipe/schema-set.js";
import { CONFLICTING_TAGS } from "./tags.js";

/**
 * All issues of a feature schema document: JSON Schema first, then (only when that passes) the
 * rules a schema cannot say: unique names, domains, cardinality, tag conflicts, one item-id.
 * `prefix` is the JSON Pointer of the document inside its file (e.g. "/features" for an inline one).
 */
export function checkFeatureSchemaDoc(doc: unknown, locate: Locate, opts: { prefix?: string; set?: SchemaSet } = {}): Issue[] {
  const set = opts.set ?? defaultSchemaSet();
  const prefix = opts.prefix ?? "";
  const loc: Locate = (p, o) => locate(prefix + p, o);
  if (!set.validateFeatureSchema(doc)) {
    return sortIssues(translateAjvErrors(set.validateFeatureSchema.errors ?? [], doc, loc, set.context(), prefix));
  }
  const issues: Issue[] = [];
  const mk = (code: string, path: string, message: string, extra: Partial<Issue> = {}): Issue => ({ code, path: prefix + path, message, ...extra, source: loc(path) });
  const cols = (doc as FeatureSchemaDoc).columns;
  const firstAt = new Map<string, number>();
  const itemIds: number[] = [];
  cols.forEach((c: FeatureColumn, i: number) => {
    const at = `/columns/${i}`;
    const prev = firstAt.get(c.name);
    if (prev !== undefined) issues.push(mk("duplicate_column", `${at}/name`, `Column "${c.name}" is defined twice (also /columns/${prev}).`, { received: c.name, hint: "Column names are unique; remove or rename one." }));
    else firstAt.set(c.name, i);
    const tags = new Set(c.tags ?? []);
    for (const [a, b] of CONFLICTING_TAGS) {
      if (tags.has(a) && tags.has(b)) issues.push(mk("conflicting_tags", `${at}/tags`, `Column "${c.name}" is tagged both ${a} and ${b}; a column is one or the other.`, { received: c.tags }));
    }
    if (tags.has("item-id")) itemIds.push(i);
    if (c.min !== undefined && c.max !== undefined && c.min > c.max) {
      issues.push(mk("invalid_domain", `${at}/min`, `Column "${c.name}" has min ${c.min} > max ${c.max}.`, { received: { min: c.min, max: c.max } }));
    }
    if (c.valueCount) {
      const { min, max } = c.valueCount;
      if (min !== undefined && max !== undefined && min > max) issues.push(mk("invalid_domain", `${at}/valueCount`, `Column "${c.name}" has valueCount.min ${min} > valueCount.max ${max}.`, { received: c.valueCount }));
      if (!tags.has("list")) issues.push(mk("value_count_without_list", `${at}/valueCount`, `Column "${c.name}" has a valueCount but is not tagged list.`, { hint: "Add list to its tags (it holds a sequence), or remove valueCount." }));
    }
    if (c.cardinality !== undefined && c.max !== undefined && c.cardinality < c.max + 1) {
      issues.push(mk("cardinality_mismatch", `${at}/cardinality`, `Column "${c.name}" has cardinality ${c.cardinality} but ids up to max ${c.max}; cardinality must be at least max + 1 = ${c.max + 1} (0 is padding).`, { received: c.cardinality, expected: c.max + 1 }));
    }
    if (tags.has("categorical") && c.cardinality === undefined && c.max === undefined && (c.dtype === "float32" || c.dtype === "float64")) {
      issues.push(mk("conflicting_tags", `${at}/dtype`, `Column "${c.name}" is categorical but holds ${c.dtype} values; categorical ids are integers or strings.`, { received: c.dtype }));
    }
  });
  if (itemIds.length > 1) {
    for (const i of itemIds.slice(1)) {
      issues.push(mk("multiple_item_ids", `/columns/${i}/tags`, `Column "${cols[i]!.name}" is tagged item-id, and so is "${cols[itemIds[0]!]!.name}"; a schema has exactly one item-id column.`, { hint: "Keep item-id on the column of the items to recommend; use item for item side features." }));
    }
  }
  return sortIssues(issues);
}
