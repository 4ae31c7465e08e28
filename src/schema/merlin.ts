import type { Issue } from "../errors/issue.js";
import type { FeatureColumn, FeatureSchemaDoc, FeatureTag } from "../generated/feature-schema.js";
import { FEATURE_TAGS } from "./tags.js";

/**
 * Merlin / TensorFlow-Metadata `schema.json` (the protobuf JSON mapping Transformers4Rec reads):
 * `{feature: [{name, type, intDomain|floatDomain, valueCount, shape, annotation: {tag, extraMetadata}}]}`.
 * 64-bit integers may be strings.
 */
export interface MerlinFeature {
  name: string;
  type?: "INT" | "FLOAT" | "BYTES";
  intDomain?: { name?: string; min?: string | number; max?: string | number; isCategorical?: boolean };
  floatDomain?: { name?: string; min?: number | string; max?: number | string };
  valueCount?: { min?: string | number; max?: string | number };
  shape?: { dim: { size: string | number }[] };
  annotation?: { tag?: string[]; extraMetadata?: Record<string, unknown>[] };
  [other: string]: unknown;
}
export interface MerlinSchema {
  feature: MerlinFeature[];
}

/** Property under which what our format has no field for is kept, so that a round trip loses nothing. */
export const MERLIN_KEEP = "recblocks.merlin";

interface Kept {
  type?: string;
  /** isCategorical: null when the source had none although the column is categorical. */
  domain?: { name?: string; isCategorical?: boolean | null; kind?: "int" | "float" };
  impliedTags?: string[];
  extraTags?: string[];
  shape?: unknown;
  extraMetadataRest?: unknown[];
  other?: Record<string, unknown>;
}

const KNOWN_FEATURE_KEYS = new Set(["name", "type", "intDomain", "floatDomain", "valueCount", "shape", "annotation"]);
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function merlinTagToOurs(tag: string): FeatureTag | undefined {
  const t = tag.toLowerCase().replace(/_/g, "-");
  return (FEATURE_TAGS as readonly string[]).includes(t) ? (t as FeatureTag) : undefined;
}
const ourTagToMerlin = (tag: string): string => tag.replace(/-/g, "_");

/** Import a Merlin schema.json. Problems are issues at /feature/<i>/... */
export function fromMerlinDoc(input: unknown): { doc?: FeatureSchemaDoc; issues: Issue[] } {
  const issues: Issue[] = [];
  const bad = (path: string, message: string, code = "invalid_merlin_schema", extra: Partial<Issue> = {}) => issues.push({ code, path, message, ...extra });
  if (!isObj(input) || !Array.isArray(input.feature)) {
    bad("", 'A Merlin schema is a JSON object with a "feature" list.');
    return { issues };
  }
  const columns: FeatureColumn[] = [];
  input.feature.forEach((f: unknown, i: number) => {
    const at = `/feature/${i}`;
    if (!isObj(f)) return bad(at, "Each feature is an object.");
    if (typeof f.name !== "string" || !f.name) return bad(`${at}/name`, "Each feature needs a name (a string).");
    const num = (v: unknown, path: string, integer: boolean): number | undefined => {
      if (v === undefined) return undefined;
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : typeof v === "number" ? v : NaN;
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
        bad(path, `Expected ${integer ? "an integer" : "a number"} (possibly as a string). Received: ${JSON.stringify(v)?.slice(0, 40)}.`, "invalid_merlin_schema", { received: v });
        return undefined;
      }
      return n;
    };
    const kept: Kept = {};
    const ann = isObj(f.annotation) ? f.annotation : {};
    const extra = Array.isArray(ann.extraMetadata) ? ann.extraMetadata : [];
    const props: Record<string, unknown> = isObj(extra[0]) ? { ...extra[0] } : {};
    if (extra.length > 1) kept.extraMetadataRest = extra.slice(1);
    const size = typeof props.dtype_item_size === "number" ? props.dtype_item_size : undefined;
    let dtype: FeatureColumn["dtype"];
    switch (f.type) {
      case "INT":
        dtype = props.dtype === "bool" ? "bool" : size === 32 ? "int32" : "int64";
        break;
      case "FLOAT":
        dtype = size === 64 ? "float64" : "float32";
        break;
      case "BYTES":
        dtype = "string";
        break;
      case undefined:
        dtype = f.intDomain ? "int64" : f.floatDomain ? "float32" : "string";
        kept.type = "";
        break;
      default:
        bad(`${at}/type`, `Feature type ${JSON.stringify(f.type)} is not supported; recblocks reads INT, FLOAT and BYTES features.`, "merlin_unsupported", { received: f.type });
        return;
    }
    const col: FeatureColumn = { name: f.name, dtype, tags: [] };
    const tags: FeatureTag[] = [];
    const extraTags: string[] = [];
    for (const t of Array.isArray(ann.tag) ? ann.tag : []) {
      const ours = typeof t === "string" ? merlinTagToOurs(t) : undefined;
      if (ours && !tags.includes(ours)) tags.push(ours);
      else if (!ours) extraTags.push(String(t));
    }
    const implied: FeatureTag[] = [];
    const imply = (t: FeatureTag) => {
      if (!tags.includes(t)) {
        tags.push(t);
        implied.push(t);
      }
    };
    if (isObj(f.intDomain)) {
      const d = f.intDomain;
      const min = num(d.min, `${at}/intDomain/min`, true);
      const max = num(d.max, `${at}/intDomain/max`, true);
      if (min !== undefined) col.min = min;
      if (max !== undefined) col.max = max;
      if (d.isCategorical === true) imply("categorical");
      if (tags.includes("categorical") && max !== undefined) col.cardinality = max + 1;
      const dom: Kept["domain"] = {};
      if (d.name !== undefined && d.name !== f.name) dom.name = String(d.name);
      const defaultCat = tags.includes("categorical") ? true : undefined;
      if (d.isCategorical !== defaultCat) dom.isCategorical = typeof d.isCategorical === "boolean" ? d.isCategorical : null;
      if (dtype === "float32" || dtype === "float64") dom.kind = "int";
      if (Object.keys(dom).length) kept.domain = dom;
    } else if (isObj(f.floatDomain)) {
      const d = f.floatDomain;
      const min = num(d.min, `${at}/floatDomain/min`, false);
      const max = num(d.max, `${at}/floatDomain/max`, false);
      if (min !== undefined) col.min = min;
      if (max !== undefined) col.max = max;
      const dom: Kept["domain"] = {};
      if (d.name !== undefined && d.name !== f.name) dom.name = String(d.name);
      if (dtype !== "float32" && dtype !== "float64") dom.kind = "float";
      if (Object.keys(dom).length) kept.domain = dom;
    }
    if (isObj(f.valueCount)) {
      const vc: { min?: number; max?: number } = {};
      const min = num(f.valueCount.min, `${at}/valueCount/min`, true);
      const max = num(f.valueCount.max, `${at}/valueCount/max`, true);
      if (min !== undefined) vc.min = min;
      if (max !== undefined) vc.max = max;
      col.valueCount = vc;
      imply("list");
    }
    if (tags.includes("item") && tags.includes("id")) imply("item-id");
    if (tags.includes("user") && tags.includes("id")) imply("user-id");
    if (tags.includes("session") && tags.includes("id")) imply("session-id");
    if (f.shape !== undefined) kept.shape = f.shape;
    const es = props.embedding_sizes;
    if (isObj(es) && typeof es.dimension === "number" && Number.isInteger(es.dimension) && es.dimension >= 1) col.embeddingDim = es.dimension;
    const other: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(f)) if (!KNOWN_FEATURE_KEYS.has(k)) other[k] = v;
    if (Object.keys(other).length) kept.other = other;
    if (extraTags.length) kept.extraTags = extraTags;
    if (implied.length) kept.impliedTags = implied;
    col.tags = tags;
    if (Object.keys(kept).length) props[MERLIN_KEEP] = kept;
    col.properties = props;
    columns.push(col);
  });
  return issues.length ? { issues } : { doc: { version: 1, columns }, issues };
}

const int = (n: number) => String(n);

/** Export to a Merlin schema.json (protobuf JSON: 64-bit integers as strings). */
export function toMerlinDoc(doc: FeatureSchemaDoc): MerlinSchema {
  return {
    feature: doc.columns.map((c) => {
      const props: Record<string, unknown> = { ...(c.properties ?? {}) };
      const kept = (props[MERLIN_KEEP] ?? {}) as Kept;
      delete props[MERLIN_KEEP];
      const tags = c.tags ?? [];
      const f: MerlinFeature = { name: c.name };
      const type = c.dtype.startsWith("int") || c.dtype === "bool" ? "INT" : c.dtype.startsWith("float") ? "FLOAT" : "BYTES";
      if (kept.type !== "") f.type = type;
      if (c.valueCount) {
        f.valueCount = {};
        if (c.valueCount.min !== undefined) f.valueCount.min = int(c.valueCount.min);
        if (c.valueCount.max !== undefined) f.valueCount.max = int(c.valueCount.max);
      }
      const categorical = tags.includes("categorical");
      const kind = kept.domain?.kind ?? (type === "FLOAT" ? "float" : "int");
      const hasDomain = c.min !== undefined || c.max !== undefined || (categorical && c.cardinality !== undefined);
      if (hasDomain && kind === "int") {
        const max = c.max ?? (c.cardinality !== undefined ? c.cardinality - 1 : undefined);
        const min = c.min ?? (c.cardinality !== undefined && c.max === undefined ? 0 : undefined);
        f.intDomain = { name: kept.domain?.name ?? c.name };
        if (min !== undefined) f.intDomain.min = int(min);
        if (max !== undefined) f.intDomain.max = int(max);
        const isCat = kept.domain && "isCategorical" in kept.domain ? kept.domain.isCategorical : categorical ? true : undefined;
        if (typeof isCat === "boolean") f.intDomain.isCategorical = isCat;
      } else if (hasDomain) {
        f.floatDomain = { name: kept.domain?.name ?? c.name };
        if (c.min !== undefined) f.floatDomain.min = c.min;
        if (c.max !== undefined) f.floatDomain.max = c.max;
      }
      if (kept.shape !== undefined) f.shape = kept.shape as MerlinFeature["shape"];
      const implied = new Set(kept.impliedTags ?? []);
      const outTags = [...tags.filter((t) => !implied.has(t)).map(ourTagToMerlin), ...(kept.extraTags ?? [])];
      if (c.embeddingDim !== undefined && !isObj(props.embedding_sizes)) props.embedding_sizes = { cardinality: c.cardinality ?? (c.max ?? 0) + 1, dimension: c.embeddingDim };
      if ((c.dtype === "int32" || c.dtype === "float64") && props.dtype_item_size === undefined) props.dtype_item_size = c.dtype === "int32" ? 32 : 64;
      if (c.dtype === "bool" && props.dtype === undefined) props.dtype = "bool";
      const extra = [props, ...((kept.extraMetadataRest as Record<string, unknown>[]) ?? [])];
      const annotation: NonNullable<MerlinFeature["annotation"]> = {};
      if (outTags.length) annotation.tag = outTags;
      if (Object.keys(props).length || extra.length > 1) annotation.extraMetadata = extra;
      if (Object.keys(annotation).length) f.annotation = annotation;
      if (kept.other) Object.assign(f, kept.other);
      return f;
    }),
  };
}
