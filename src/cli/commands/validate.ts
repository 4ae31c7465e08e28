import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { formatIssues } from "../../errors/format.js";
import type { Issue } from "../../errors/issue.js";
import { readSource } from "../../errors/source.js";
import { checkRecipeSource, type RecipeOptions } from "../../recipe/load.js";
import { featureSchemaFromParsed, isMerlinDoc } from "../../schema/feature-schema.js";
import { type CommandSpec, type ParsedArgs } from "../args.js";

export const spec: CommandSpec = {
  name: "validate",
  summary: "Validate recipes and feature schemas (ours or Merlin schema.json); every issue with file:line:col.",
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

const EXT = /\.(ya?ml|json)$/i;

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

/** Validate one file; never throws for user errors. */
export function validateFile(file: string, kind: "auto" | "recipe" | "features" = "auto", opts: RecipeOptions = {}): FileReport {
  const source = readSource(file);
  if (source.issues.length) return { file: source.file, valid: false, issues: source.issues };
  const k: FileKind = kind === "auto" ? detectKind(source.value) : kind === "features" ? (isMerlinDoc(source.value) ? "merlin" : "features") : "recipe";
  if (k === "recipe") {
    const r = checkRecipeSource(source, file, opts);
    return { file: source.file, valid: r.issues.length === 0, kind: k, issues: r.issues };
  }
  const r = featureSchemaFromParsed(source);
  return { file: source.file, valid: r.issues.length === 0, kind: k, issues: r.issues };
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
    process.stderr.write(`recblocks validate: no .yaml, .yml or .json files in ${args.positionals.join(", ")}\n`);
    return 1;
  }
  const reports = files.map((f) => validateFile(f, kind as "auto"));
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
