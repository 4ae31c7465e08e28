import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { formatIssues } from "../../errors/format.js";
import type { Issue } from "../../errors/issue.js";
import { readSource } from "../../errors/source.js";
import { sortIssues } from "../../errors/sort.js";
import type { ModelBuildCheck } from "../../recipe/build-check.js";
import { checkRecipeSource, type RecipeOptions } from "../../recipe/load.js";
import { featureSchemaFromParsed, isMerlinDoc } from "../../schema/feature-schema.js";
import { readPbtxtSource } from "../../schema/pbtxt.js";
import { type CommandSpec, type ParsedArgs } from "../args.js";

export const spec: CommandSpec = {
  name: "validate",
  summary: "Validate recipes (schema, features, masking/architecture, sizes, and a build of the model without data) and feature schemas (ours, Merlin schema.json or schema.pbtxt); every issue with file:line:col.",
  usage: "recblocks validate <file-or-folder...> [--json] [--kind auto|recipe|features]",
  options: [
    { name: "json", kind: "boolean", description: 'print {"files": [{"file", "valid", "kind", "issues"}]} as one JSON line' },
    { name: "kind", kind: "string", description: "what the files are: auto (by content), recipe, features", default: "auto" },
  ],
  positionals: { min: 1, max: 100_000 },
};

export type FileKind = "recipe" | "features" | "merlin";

export interface FileReport {
  file: string;
  valid: boolean;
  kind?: FileKind;
  issues: Issue[];
}

const EXT = /\.(ya?ml|json|pbtxt)$/i;

/** Expand folders into the YAML/JSON files they hold (sorted, recursively). */
function expand(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      /* reported as file_not_found */
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const full = join(dir, e.name);
        if (e.isDirectory()) walk(full);
        else if (EXT.test(e.name)) out.push(full);
      }
    };
    walk(p);
  }
  return out;
}

/** What a parsed document is: a Merlin schema (feature list), our feature schema (columns, no model) or a recipe. */
export function detectKind(value: unknown): FileKind {
  if (isMerlinDoc(value)) return "merlin";
  if (value && typeof value === "object" && !Array.isArray(value) && "columns" in value && !("model" in value) && !("features" in value)) return "features";
  return "recipe";
}

export interface ValidateOptions extends RecipeOptions {
  /**
   * Also build the model of a valid recipe without data (src/recipe/build-check.ts), so that a recipe
   * that validates also builds. The CLI passes it after loading the blocks (see `buildChecker`).
   */
  build?: ModelBuildCheck;
}

/** Validate one file; never throws for user errors. */
export function validateFile(file: string, kind: "auto" | "recipe" | "features" = "auto", opts: ValidateOptions = {}): FileReport {
  // Merlin's schema.pbtxt (protobuf text) is told by its extension; it is always a feature schema
  const pbtxt = /\.pbtxt$/i.test(file);
  const source = pbtxt ? readPbtxtSource(file) : readSource(file);
  if (source.issues.length) return { file: source.file, valid: false, issues: source.issues };
  if (pbtxt) kind = "features";
  const k: FileKind = kind === "auto" ? detectKind(source.value) : kind === "features" ? (isMerlinDoc(source.value) ? "merlin" : "features") : "recipe";
  if (k === "recipe") {
    const r = checkRecipeSource(source, file, opts);
    const issues = opts.build && r.recipe && r.featureSchema && r.locate ? sortIssues(opts.build(r.recipe, r.featureSchema, r.locate), source.file) : r.issues;
    return { file: source.file, valid: issues.length === 0, kind: k, issues };
  }
  const r = featureSchemaFromParsed(source);
  return { file: source.file, valid: r.issues.length === 0, kind: k, issues: r.issues };
}

/**
 * The build check with every block type loaded (TensorFlow.js on the CPU backend, quiet): the model
 * graph of a recipe is built once without data; prebuilt ALS models go through their config check.
 */
export async function buildChecker(): Promise<ModelBuildCheck> {
  const { initEngine } = await import("../../engine/index.js");
  await initEngine({ backend: "cpu" as never, quiet: true });
  const { registerBuiltinBlocks } = await import("../../run/train.js");
  await registerBuiltinBlocks();
  const { checkModelBuild } = await import("../../recipe/build-check.js");
  const { resolveAlsConfig } = await import("../../../blocks/factorization/config.js");
  const { RecblocksError } = await import("../../errors/issue.js");
  return (recipe, featureSchema, locate) => {
    const model = recipe.model as unknown as Record<string, unknown>;
    if (model?.type !== "als") return checkModelBuild(recipe, featureSchema, locate);
    try {
      resolveAlsConfig(model, "/model");
      return [];
    } catch (err) {
      if (err instanceof RecblocksError) return err.issues.map((i) => ({ ...i, source: i.source ?? locate(i.path, { key: true }) }));
      throw err;
    }
  };
}

const KIND_WORD: Record<FileKind, string> = { recipe: "recipe", features: "feature schema", merlin: "Merlin feature schema" };

export async function run(args: ParsedArgs): Promise<number> {
  const kind = String(args.options.kind ?? "auto");
  if (kind !== "auto" && kind !== "recipe" && kind !== "features") {
    process.stderr.write(`recblocks: --kind must be auto, recipe or features, got "${kind}"\n`);
    return 2;
  }
  const files = expand(args.positionals);
  if (files.length === 0) {
    process.stderr.write(`recblocks validate: no .yaml, .yml, .json or .pbtxt files in ${args.positionals.join(", ")}\n`);
    return 1;
  }
  const build = await buildChecker();
  const reports = files.map((f) => validateFile(f, kind as "auto", { build }));
  const bad = reports.filter((r) => !r.valid).length;
  if (args.options.json) {
    process.stdout.write(`${JSON.stringify({ files: reports })}\n`);
  } else {
    for (const r of reports) {
      if (r.valid) process.stdout.write(`✔ ${r.file} (${KIND_WORD[r.kind!]})\n`);
      else process.stdout.write(`\n${formatIssues(r.kind === "recipe" || !r.kind ? "RecipeError" : "SchemaError", r.file, r.issues)}\n`);
    }
    if (reports.length > 1) process.stdout.write(`${reports.length} files: ${reports.length - bad} valid, ${bad} invalid\n`);
  }
  return bad ? 1 : 0;
}
