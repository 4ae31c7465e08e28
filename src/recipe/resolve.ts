import { dirname, resolve as resolvePath } from "node:path";
import type { Locate } from "../errors/ajv.js";
import { didYouMean } from "../errors/did-you-mean.js";
import type { Issue } from "../errors/issue.js";
import { escapeSegment } from "../errors/pointer.js";
import { displayPath, type ParsedSource } from "../errors/source.js";
import type { FeatureTag } from "../generated/feature-schema.js";
import type { Recipe } from "../generated/recipe.js";
import { builtinSchemaNames, builtinSchemaSource, parseBuiltinSpec } from "../schema/builtin.js";
import { checkFeatureSchemaDoc } from "../schema/check.js";
import { FeatureSchema, loadFeatureSchemaSource } from "../schema/feature-schema.js";
import { RECIPE_URI, type SchemaSet } from "./schema-set.js";
import { walkSchema } from "./walk.js";

type Json = Record<string, unknown>;

/** One rule of a block or model schema's `x-requires` (see docs/design/schemas.md). */
interface Requirement {
  allTags: FeatureTag[];
  count?: "exactly-one" | "at-least-one";
  why?: string;
}

/** Find the feature schema a recipe names (path, builtin:<name> or inline). */
export function resolveFeatureSchema(recipe: Recipe, recipeFile: string, source: ParsedSource, set: SchemaSet): { schema?: FeatureSchema; issues: Issue[] } {
  const f = recipe.features;
  const at = source.locate("/features");
  if (typeof f !== "string") {
    const issues = checkFeatureSchemaDoc(f, source.locate, { prefix: "/features", set });
    return issues.length ? { issues } : { schema: FeatureSchema.fromJSON(f, { file: source.file }), issues };
  }
  if (f.startsWith("builtin:")) {
    const spec = parseBuiltinSpec(f);
    const name = spec?.name ?? f.slice("builtin:".length);
    const where = spec ? builtinSchemaSource(spec.name) : {};
    if (where.provider) {
      try {
        let params = spec!.params;
        // `features: builtin:synthetic` takes the parameters of `data.train: builtin:synthetic?items=...`.
        const train = parseBuiltinSpec(recipe.data.train);
        if (Object.keys(params).length === 0 && train?.name === spec!.name) params = train.params;
        return { schema: where.provider(params), issues: [] };
      } catch (err) {
        const e = err as { issues?: Issue[]; message?: string };
        if (Array.isArray(e.issues)) return { issues: e.issues.map((i) => ({ ...i, path: "/features", source: at })) };
        return { issues: [{ code: "unknown_builtin", path: "/features", message: `The built-in feature schema "${name}" cannot be made: ${String(e.message)}`, source: at }] };
      }
    }
    if (where.file) {
      const r = loadFeatureSchemaSource(where.file);
      return r.schema ? { schema: r.schema, issues: [] } : { issues: r.issues };
    }
    const known = builtinSchemaNames();
    return {
      issues: [
        {
          code: "unknown_builtin",
          path: "/features",
          message: `Unknown built-in feature schema "${name}".${didYouMean(name, [...known, "synthetic"])}`,
          received: f,
          expected: known,
          hint: known.length ? `Built-in schemas: ${known.join(", ")}.` : "Built-in schemas come from recblocks' data module (builtin:synthetic); or give a path to a schema file.",
          source: at,
        },
      ],
    };
  }
  const path = resolvePath(dirname(recipeFile), f);
  const r = loadFeatureSchemaSource(path);
  if (r.schema) return { schema: r.schema, issues: [] };
  if (r.issues.length === 1 && r.issues[0]!.code === "file_not_found") {
    return { issues: [{ code: "feature_schema_not_found", path: "/features", message: `The feature schema "${f}" does not exist (looked for ${displayPath(path)}).`, received: f, hint: "Paths are relative to the recipe file; or use builtin:synthetic.", source: at }] };
  }
  return { issues: r.issues };
}

/**
 * Check a schema-valid, defaulted recipe against its feature schema: exactly one item-id column,
 * every feature a recipe names exists (strings with `format: feature-name`), named features carry
 * the tags their place needs (`x-feature-tags`), and blocks find the columns they need (`x-requires`).
 */
export function checkAgainstFeatures(recipe: Recipe, schema: FeatureSchema, locate: Locate, set: SchemaSet): Issue[] {
  const issues: Issue[] = [];
  const names = schema.names;
  const itemIds = schema.withTags("item-id");
  if (itemIds.length === 0) {
    issues.push({ code: "missing_item_id", path: "/features", message: "The feature schema has no column tagged item-id; exactly one is needed (the items to recommend).", hint: "Add item-id to the tags of the item column.", source: locate("/features") });
  } else if (itemIds.length > 1) {
    issues.push({ code: "multiple_item_ids", path: "/features", message: `The feature schema has ${itemIds.length} columns tagged item-id (${itemIds.map((c) => c.name).join(", ")}); exactly one is needed.`, source: locate("/features") });
  }
  const unknownFeature = (name: string, pointer: string, key: boolean) => {
    issues.push({
      code: "unknown_feature",
      path: pointer,
      message: `No feature "${name}" in the feature schema.${didYouMean(name, names)}`,
      received: name,
      expected: names,
      ...(didYouMean(name, names) ? {} : { hint: `Features: ${names.slice(0, 20).join(", ")}${names.length > 20 ? ", ..." : ""}.` }),
      source: locate(pointer, key ? { key: true } : undefined),
    });
  };
  walkSchema(set, set.byUri.get(RECIPE_URI)!, RECIPE_URI, recipe, (s, value, pointer) => {
    if (pointer === "/features" || pointer.startsWith("/features/")) return;
    if (s.format === "feature-name" && typeof value === "string") {
      const col = schema.column(value);
      if (!col) unknownFeature(value, pointer, false);
      else if (Array.isArray(s["x-feature-tags"])) {
        const need = s["x-feature-tags"] as FeatureTag[];
        const missing = need.filter((t) => !(col.tags ?? []).includes(t));
        if (missing.length) {
          issues.push({ code: "feature_tag_mismatch", path: pointer, message: `Feature "${value}" is used here as ${need.join(" + ")} but is not tagged ${missing.join(", ")}.`, received: col.tags, expected: need, hint: `Tag the column ${missing.join(", ")} in the feature schema, or name another feature.`, source: locate(pointer) });
        }
      }
    }
    const pn = s.propertyNames as Json | undefined;
    if (pn?.format === "feature-name" && value && typeof value === "object" && !Array.isArray(value)) {
      for (const k of Object.keys(value)) if (!schema.has(k)) unknownFeature(k, `${pointer}/${escapeSegment(k)}`, true);
    }
    const isIndex = s.title === "Block" || s.title === "PrebuiltModel";
    if (isIndex && !Array.isArray(s.oneOf) && value && typeof value === "object" && typeof (value as Json).type === "string") {
      const model = s.title === "PrebuiltModel";
      const ids = model ? set.modelIds : set.blockIds;
      const t = (value as Json).type as string;
      issues.push({
        code: model ? "unknown_model_type" : "unknown_block_type",
        path: `${pointer}/type`,
        message: `Unknown ${model ? "prebuilt model" : "block"} type "${t}".${didYouMean(t, ids)}`,
        received: t,
        expected: [...ids],
        hint: ids.length ? `Known: ${ids.join(", ")}.` : `No ${model ? "prebuilt model" : "block"} schema is installed (schemas/${model ? "models" : "blocks"}/ is empty).`,
        source: locate(`${pointer}/type`),
      });
    }
    if (Array.isArray(s["x-requires"]) && value && typeof value === "object") {
      const type = String((value as Json).type ?? "this block");
      for (const r of s["x-requires"] as Requirement[]) {
        const found = schema.withTags(...r.allTags);
        const tags = r.allTags.join(" + ");
        const why = r.why ? ` (${r.why})` : "";
        if (found.length === 0) {
          issues.push({ code: "missing_feature_tags", path: pointer, message: `"${type}" needs a feature tagged ${tags}${why}; the feature schema has none.`, expected: r.allTags, hint: `Tag a column ${tags} in the feature schema.`, source: locate(pointer) });
        } else if (r.count === "exactly-one" && found.length > 1) {
          issues.push({ code: "ambiguous_feature_tags", path: pointer, message: `"${type}" needs exactly one feature tagged ${tags}${why}; the feature schema has ${found.length} (${found.map((c) => c.name).join(", ")}).`, expected: r.allTags, source: locate(pointer) });
        }
      }
    }
  });
  return issues;
}
