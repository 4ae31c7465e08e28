import { mkdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { stringify } from "yaml";
import { formatIssues } from "../../errors/format.js";
import { schemaPath } from "../../paths.js";
import { loadFeatureSchemaSource } from "../../schema/feature-schema.js";
import { toPbtxt } from "../../schema/pbtxt.js";
import { type CommandSpec, type ParsedArgs } from "../args.js";

export const spec: CommandSpec = {
  name: "schema convert",
  summary: "Convert a feature schema between the recblocks format (YAML/JSON) and Merlin / TensorFlow-Metadata schema.json or schema.pbtxt.",
  usage: "recblocks schema convert <in> --to merlin|recblocks [--out <file>]",
  options: [
    { name: "to", kind: "string", description: "target format: merlin (schema.json, or protobuf text schema.pbtxt when --out ends in .pbtxt) or recblocks (YAML, or JSON when --out ends in .json); <in> may be any of them (.pbtxt by extension)" },
    { name: "out", alias: "o", kind: "string", description: "write here (atomically) instead of standard output" },
  ],
  positionals: { min: 1, max: 1 },
};

/** Write a file atomically: a temporary file in the same folder, then rename. */
function writeAtomic(file: string, text: string): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing to clean */
    }
    throw err;
  }
}

export async function run(args: ParsedArgs): Promise<number> {
  const to = args.options.to;
  if (to !== "merlin" && to !== "recblocks") {
    process.stderr.write(`recblocks: "schema convert" needs --to merlin or --to recblocks${to === undefined ? "" : ` (got "${String(to)}")`}\n`);
    return 2;
  }
  const input = args.positionals[0]!;
  const out = args.options.out as string | undefined;
  const r = loadFeatureSchemaSource(input);
  if (!r.schema) {
    process.stderr.write(formatIssues("SchemaError", r.source.file, r.issues));
    return 1;
  }
  let text: string;
  const pbtxt = !!out && /\.pbtxt$/i.test(out);
  if (to === "merlin") text = pbtxt ? toPbtxt(r.schema.toMerlin()) : `${JSON.stringify(r.schema.toMerlin(), null, 2)}\n`;
  else if (out && /\.json$/i.test(out)) text = `${JSON.stringify(r.schema.toJSON(), null, 2)}\n`;
  else {
    const modeline = out ? `# yaml-language-server: $schema=${relative(dirname(resolve(out)), schemaPath("feature-schema.schema.json")).split("\\").join("/")}\n` : "";
    text = modeline + stringify(r.schema.toJSON(), { lineWidth: 0 });
  }
  if (!out) {
    process.stdout.write(text);
    return 0;
  }
  writeAtomic(out, text);
  process.stderr.write(`recblocks: wrote ${out} (${r.schema.columns.length} columns, ${to === "merlin" ? (pbtxt ? "Merlin schema.pbtxt" : "Merlin schema.json") : "recblocks format"})\n`);
  return 0;
}
