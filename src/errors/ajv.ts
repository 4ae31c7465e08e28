import type { ErrorObject } from "ajv";
import { didYouMean } from "./did-you-mean.js";
import { describeValue, shortValue, typeWord } from "./format.js";
import type { Issue, SourceLocation } from "./issue.js";
import { escapeSegment, getAt } from "./pointer.js";

type Json = Record<string, unknown>;

/** What the translator needs from the schema registry (src/recipe/schema-set.ts). */
export interface SchemaContext {
  /** Re-validate `data` against one oneOf/anyOf branch; returns Ajv errors (paths relative to data). */
  validateBranch(branch: Json, branches: unknown[], data: unknown): ErrorObject[];
  /** The schema a branch stands for ($ref resolved), to choose the branch that fits the data. */
  branchTarget(branch: Json, branches: unknown[]): Json | undefined;
  /** Known block type ids (for did-you-mean). */
  blockIds: readonly string[];
  /** Known prebuilt model ids. */
  modelIds: readonly string[];
}

export type Locate = (pointer: string, opts?: { key?: boolean }) => SourceLocation;

const TYPE_WORDS: Record<string, string> = {
  integer: "an integer",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  object: "a mapping (key: value pairs)",
  array: "a list",
  null: "null",
};

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typesOf(schema: Json | undefined): string[] | undefined {
  const t = schema?.type;
  if (typeof t === "string") return [t];
  if (Array.isArray(t)) return t as string[];
  if (schema && "const" in schema) return [jsonType(schema.const)];
  return undefined;
}

/** Pick the oneOf/anyOf branch meant for this data: one whose type fits, sharing the most keys. */
function chooseBranch(branches: unknown[], data: unknown, ctx: SchemaContext): Json {
  let best = branches[0] as Json;
  let bestScore = -Infinity;
  for (const b of branches) {
    const target = ctx.branchTarget(b as Json, branches);
    const types = typesOf(target);
    const jt = jsonType(data);
    const fits = !types || types.includes(jt) || (jt === "integer" && types.includes("number"));
    let score = fits ? 0 : -1000;
    if (fits && jt === "object" && target?.properties) {
      const props = target.properties as Json;
      for (const k of Object.keys(data as Json)) if (Object.prototype.hasOwnProperty.call(props, k)) score += 1;
    }
    if (score > bestScore) {
      bestScore = score;
      best = b as Json;
    }
  }
  return best;
}

function within(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Turn Ajv errors into issues people can act on: one issue per problem, located in the source,
 * with did-you-mean for unknown keys and block types. Raw Ajv messages are never used.
 */
export function translateAjvErrors(errors: readonly ErrorObject[], data: unknown, locate: Locate, ctx: SchemaContext, prefix = ""): Issue[] {
  let list = [...errors];
  const issues: Issue[] = [];
  // oneOf / anyOf: drop what every branch said, re-validate against the branch meant for the data.
  for (;;) {
    const alt = list.find((e) => (e.keyword === "oneOf" || e.keyword === "anyOf") && !(e.params as { passingSchemas?: unknown }).passingSchemas);
    if (!alt) break;
    const at = alt.instancePath;
    list = list.filter((e) => !within(e.instancePath, at));
    const branches = alt.schema as unknown[];
    const sub = getAt(data, at);
    const branch = chooseBranch(branches, sub, ctx);
    const subErrors = ctx.validateBranch(branch, branches, sub);
    issues.push(...translateAjvErrors(subErrors, sub, (p, o) => locate(at + p, o), ctx, prefix + at));
  }
  for (const e of list) {
    const issue = translateOne(e, data, locate, ctx, prefix);
    if (issue) issues.push(issue);
  }
  return dedupe(issues);
}

/** One issue per code and place; a block without `type` is one missing_block_type, not also a missing_key. */
function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>();
  const noType = new Set(issues.filter((i) => i.code === "missing_block_type" || i.code === "missing_model_type").map((i) => `${i.path}/type`));
  return issues.filter((i) => {
    if (i.code === "missing_key" && noType.has(i.path)) return false;
    const k = `${i.code}|${i.path}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function expectedType(parent: Json | undefined, fallback = "number"): string {
  const t = typesOf(parent)?.[0] ?? fallback;
  return TYPE_WORDS[t] ?? t;
}

function translateOne(e: ErrorObject, root: unknown, locate: Locate, ctx: SchemaContext, prefix: string): Issue | undefined {
  if ((e as { propertyName?: string }).propertyName !== undefined && e.keyword !== "propertyNames") return undefined;
  const p = e.params as Record<string, unknown>;
  const parent = e.parentSchema as Json | undefined;
  const value = e.data;
  const here = e.instancePath;
  const mk = (code: string, path: string, message: string, extra: Partial<Issue> = {}, loc?: SourceLocation): Issue => ({
    code,
    path: prefix + path,
    message,
    ...extra,
    source: loc ?? locate(path),
  });
  const received = { received: shortValue(value) };
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(p.additionalProperty);
      const known = Object.keys((parent?.properties as Json | undefined) ?? {});
      const path = `${here}/${escapeSegment(key)}`;
      const dym = didYouMean(key, known);
      return mk(
        "unknown_key",
        path,
        `Unknown key "${shortValue(key)}" in ${prefix + here || "the top level"}.${dym}`,
        { received: shortValue(key), expected: known, ...(dym ? {} : { hint: `Known keys here: ${known.join(", ")}.` }) },
        locate(path, { key: true }),
      );
    }
    case "required": {
      const key = String(p.missingProperty);
      const prop = (parent?.properties as Record<string, Json> | undefined)?.[key];
      const desc = typeof prop?.description === "string" ? prop.description : undefined;
      return mk("missing_key", `${here}/${escapeSegment(key)}`, `Missing required key "${key}" in ${prefix + here || "the top level"}.`, { expected: key, ...(desc ? { hint: `Add "${key}": ${desc}` } : {}) }, locate(here));
    }
    case "discriminator": {
      const isModel = parent?.title === "PrebuiltModel";
      const ids = isModel ? ctx.modelIds : ctx.blockIds;
      const what = isModel ? "prebuilt model type" : "block type";
      if (p.error === "mapping") {
        const tag = getAt(value, "/type");
        const dym = typeof tag === "string" ? didYouMean(tag, ids) : "";
        return mk(
          isModel ? "unknown_model_type" : "unknown_block_type",
          `${here}/type`,
          `Unknown ${what} ${describeValue(tag)}.${dym}`,
          { received: shortValue(tag), expected: [...ids], hint: `Known ${what}s: ${ids.join(", ")}.` },
        );
      }
      const tag = value && typeof value === "object" ? (value as Json).type : undefined;
      if (tag === undefined) {
        return mk(isModel ? "missing_model_type" : "missing_block_type", here, `This ${isModel ? "model" : "block"} has no "type".`, { expected: [...ids], hint: `Add "type:" with one of: ${ids.join(", ")}.` });
      }
      return mk("wrong_type", `${here}/type`, `Expected the ${what} as a string. Received: ${describeValue(tag)}.`, { received: shortValue(tag), expected: "string" });
    }
    case "type": {
      const want = Array.isArray(p.type) ? (p.type as string[]) : String(p.type).split(",");
      const words = want.map((t) => TYPE_WORDS[t] ?? t).join(" or ");
      const kind = value !== null && typeof value === "object" ? "" : ` (${typeWord(value)})`;
      return mk("wrong_type", here, `Expected ${words}. Received: ${describeValue(value)}${kind}.`, { ...received, expected: want.join("|") });
    }
    case "const": {
      return mk("invalid_value", here, `Expected ${JSON.stringify(p.allowedValue)}. Received: ${describeValue(value)}.`, { ...received, expected: p.allowedValue });
    }
    case "enum": {
      const allowed = p.allowedValues as unknown[];
      const dym = typeof value === "string" ? didYouMean(value, allowed.filter((a): a is string => typeof a === "string")) : "";
      return mk("invalid_value", here, `Expected one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}. Received: ${describeValue(value)}.${dym}`, { ...received, expected: allowed });
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return mk("out_of_range", here, `Expected ${expectedType(parent)} ${String(p.comparison)} ${String(p.limit)}. Received: ${describeValue(value)}.`, { ...received, expected: `${String(p.comparison)} ${String(p.limit)}` });
    case "multipleOf":
      return mk("out_of_range", here, `Expected a multiple of ${String(p.multipleOf)}. Received: ${describeValue(value)}.`, { ...received, expected: `multiple of ${String(p.multipleOf)}` });
    case "minLength":
    case "maxLength": {
      const lim = Number(p.limit);
      const word = e.keyword === "minLength" ? "at least" : "at most";
      return mk("invalid_length", here, `Expected a string of ${word} ${lim} character${lim === 1 ? "" : "s"}. Received: ${describeValue(value)}.`, { ...received, expected: `${word} ${lim} characters` });
    }
    case "minItems":
    case "maxItems":
    case "minProperties":
    case "maxProperties": {
      const lim = Number(p.limit);
      const word = e.keyword.startsWith("min") ? "at least" : "at most";
      const unit = e.keyword.endsWith("Items") ? "item" : "key";
      return mk("invalid_length", here, `Expected ${word} ${lim} ${unit}${lim === 1 ? "" : "s"}. Received: ${describeValue(value)}.`, { ...received, expected: `${word} ${lim} ${unit}s` });
    }
    case "uniqueItems": {
      const later = Math.max(Number(p.i), Number(p.j));
      const first = Math.min(Number(p.i), Number(p.j));
      const list = value as unknown[];
      return mk("duplicate_items", `${here}/${later}`, `Item ${later} of this list repeats item ${first} (${describeValue(list?.[later])}); each may appear once.`, { received: shortValue(list?.[later]) }, locate(`${here}/${later}`));
    }
    case "pattern": {
      const desc = typeof parent?.description === "string" ? parent.description : undefined;
      return mk("pattern_mismatch", here, `${describeValue(value)} is not allowed here: expected text matching ${String(p.pattern)}.`, { ...received, expected: p.pattern, ...(desc ? { hint: desc } : {}) });
    }
    case "propertyNames": {
      const key = String(p.propertyName);
      return mk("invalid_key", `${here}/${escapeSegment(key)}`, `The key "${shortValue(key)}" is not allowed here.`, { received: shortValue(key) }, locate(`${here}/${escapeSegment(key)}`, { key: true }));
    }
    case "dependencies":
    case "dependentRequired":
      return mk("missing_key", `${here}/${escapeSegment(String(p.missingProperty))}`, `Missing key "${String(p.missingProperty)}", needed when "${String(p.property)}" is set.`, { expected: p.missingProperty });
    case "not":
      return mk("forbidden_value", here, `This value is not allowed here: ${describeValue(value)}.`, received);
    case "oneOf":
    case "anyOf":
      return mk("ambiguous_value", here, "This value fits more than one of the allowed forms; add keys that say which one is meant.");
    case "if":
    case "false schema":
      return e.keyword === "if" ? undefined : mk("forbidden_value", here, "Nothing is allowed here.", received);
    default:
      return mk("schema_violation", here, `This value breaks the schema rule "${e.keyword}". Received: ${describeValue(value)}.`, received);
  }
}
