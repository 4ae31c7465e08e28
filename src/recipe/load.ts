import { translateAjvErrors } from "../errors/ajv.js";
import { RecblocksError, type Issue } from "../errors/issue.js";
import { sortIssues } from "../errors/sort.js";
import { displayPath, parseSource, readSource, type ParsedSource } from "../errors/source.js";
import type { Recipe } from "../generated/recipe.js";
import type { FeatureSchema } from "../schema/feature-schema.js";
import { CURRENT_RECIPE_VERSION, RECIPE_MIGRATIONS } from "./migrations.js";
import { checkAgainstFeatures, resolveFeatureSchema } from "./resolve.js";
import { checkSemantics } from "./semantic.js";
import { defaultSchemaSet, RECIPE_URI, SchemaSet } from "./schema-set.js";
import { walkSchema } from "./walk.js";

/** The stages of the recipe pipeline; the run stops after the first one that finds issues. */
export type RecipeStage = "read" | "version" | "schema" | "resolve" | "semantic" | "build";

export interface RecipeCheck {
  /** The file as shown in messages. */
  file: string;
  /** The recipe with every default filled in (a copy; only when there are no issues). */
  recipe?: Recipe;
  /** The resolved feature schema (only when there are no issues). */
  featureSchema?: FeatureSchema;
  /** Every issue of the first stage that found any, in file order. */
  issues: Issue[];
  /** The stage that found the issues. */
  stage?: RecipeStage;
  /** Where a JSON Pointer of the recipe is written (for issues found later, e.g. by checkModelBuild). */
  locate?: ParsedSource["locate"];
}

export interface RecipeOptions {
  /** Schemas to validate against (default: the package's schemas/). Tests pass fixture block folders. */
  schemaSet?: SchemaSet;
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Upgrade an older recipe to the current version (a copy), or say why it cannot be. */
function upgrade(source: ParsedSource, value: Record<string, unknown>): { doc?: Record<string, unknown>; issues: Issue[] } {
  const at = (p: string) => source.locate(p);
  if (!Object.prototype.hasOwnProperty.call(value, "version")) {
    return { issues: [{ code: "missing_version", path: "/version", message: `The recipe has no "version".`, expected: CURRENT_RECIPE_VERSION, hint: `Add "version: ${CURRENT_RECIPE_VERSION}" as the first key.`, source: at("") }] };
  }
  const v = value.version;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    return { issues: [{ code: "wrong_type", path: "/version", message: `Expected the version as an integer (e.g. ${CURRENT_RECIPE_VERSION}). Received: ${JSON.stringify(v)?.slice(0, 40)}.`, received: typeof v === "string" ? v.slice(0, 40) : v, expected: CURRENT_RECIPE_VERSION, source: at("/version") }] };
  }
  if (v < 1 || v > CURRENT_RECIPE_VERSION) {
    return { issues: [{ code: "unsupported_version", path: "/version", message: `Recipe version ${v} is not supported; this recblocks reads versions 1 to ${CURRENT_RECIPE_VERSION}.`, received: v, expected: CURRENT_RECIPE_VERSION, hint: v > CURRENT_RECIPE_VERSION ? "The recipe was written for a newer recblocks; upgrade recblocks." : undefined, source: at("/version") }] };
  }
  let doc = structuredClone(value);
  for (let n = v; n < CURRENT_RECIPE_VERSION; n++) {
    const m = RECIPE_MIGRATIONS[n];
    if (!m) return { issues: [{ code: "unsupported_version", path: "/version", message: `No upgrade from recipe version ${n} to ${n + 1}.`, received: v, source: at("/version") }] };
    doc = m(doc);
    doc.version = n + 1;
  }
  return { doc, issues: [] };
}

/** Run the pipeline on a parsed source: version -> schema -> defaults -> resolve -> semantic checks (src/recipe/semantic.ts). */
export function checkRecipeSource(source: ParsedSource, recipeFile: string, opts: RecipeOptions = {}): RecipeCheck {
  const file = source.file;
  const done = (stage: RecipeStage, issues: Issue[]): RecipeCheck => ({ file, issues: sortIssues(issues, file), stage });
  if (source.issues.length) return done("read", source.issues);
  if (!isMap(source.value)) {
    return done("read", [{ code: "not_a_mapping", path: "", message: `A recipe is a mapping of keys (version, name, features, data, model, ...); this file holds ${Array.isArray(source.value) ? "a list" : `a single value (${JSON.stringify(source.value)?.slice(0, 40)})`}.`, hint: "See docs/recipes.md for the shape of a recipe.", source: source.locate("") }]);
  }
  const up = upgrade(source, source.value);
  if (!up.doc) return done("version", up.issues);
  const set = opts.schemaSet ?? defaultSchemaSet();
  const doc = up.doc;
  if (!set.validateRecipe(doc)) {
    return done("schema", translateAjvErrors(set.validateRecipe.errors ?? [], doc, source.locate, set.context()));
  }
  const recipe = structuredClone(doc) as unknown as Recipe;
  walkSchema(set, set.byUri.get(RECIPE_URI)!, RECIPE_URI, recipe, undefined, { fillDefaults: true });
  const fs = resolveFeatureSchema(recipe, recipeFile, source, set);
  if (!fs.schema) return done("resolve", fs.issues);
  const issues = checkAgainstFeatures(recipe, fs.schema, source.locate, set);
  if (issues.length) return done("resolve", issues);
  const semantic = checkSemantics(recipe, source.locate);
  if (semantic.length) return done("semantic", semantic);
  return { file, recipe, featureSchema: fs.schema, issues: [], locate: source.locate };
}

/** Check recipe text (YAML or JSON) as if it were the file `file` (used for relative paths and messages). Never throws for user errors. */
export function validateRecipeText(text: string, file: string, opts: RecipeOptions = {}): RecipeCheck {
  const source = parseSource(text, displayPath(file), { json: /\.json$/i.test(file) });
  return checkRecipeSource(source, file, opts);
}

/** Check a recipe file. Never throws for user errors. */
export function checkRecipeFile(file: string, opts: RecipeOptions = {}): RecipeCheck {
  return checkRecipeSource(readSource(file), file, opts);
}

/**
 * Load a recipe file: parsed, upgraded, validated, defaulted and resolved against its feature schema.
 * Throws a RecblocksError (kind "RecipeError") holding every issue of the first stage that found any.
 */
export function loadRecipe(file: string, opts: RecipeOptions = {}): { recipe: Recipe; featureSchema: FeatureSchema; issues: Issue[] } {
  const r = checkRecipeFile(file, opts);
  if (r.issues.length || !r.recipe || !r.featureSchema) throw new RecblocksError(r.file, r.issues, { kind: "RecipeError" });
  return { recipe: r.recipe, featureSchema: r.featureSchema, issues: [] };
}
