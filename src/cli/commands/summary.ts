import { type CommandSpec, type ParsedArgs } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "summary",
  summary: "Print a model's blocks as a table (block, type, output shape, parameters) with the total, from a recipe (built, not trained), a model directory or a run directory.",
  usage: "recblocks summary <recipe.yaml|modelDir|runDir> [--weights] [--schema-only] [--backend b] [--json]",
  options: [
    { name: "weights", kind: "boolean", description: "list every weight (name, shape, size) under its block" },
    { name: "schema-only", kind: "boolean", description: "recipe: size the embedding tables from the feature schema's cardinalities instead of reading the data (faster; a trained model follows the data's vocabularies)" },
    { name: "backend", kind: "string", description: "TensorFlow.js backend used to build the weights (default cpu)" },
    { name: "json", kind: "boolean", description: "print the summary as one JSON object last" },
  ],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  const json = o.json === true;
  return reportErrors(json, async () => {
    const { summarize, formatSummary } = await import("../../report/summary.js");
    const s = await summarize(args.positionals[0]!, {
      schemaOnly: o["schema-only"] === true,
      backend: o.backend as string | undefined,
      log: json ? undefined : (m) => process.stderr.write(m + "\n"),
    });
    process.stdout.write(json ? JSON.stringify(s) + "\n" : formatSummary(s, { weights: o.weights === true }));
    return 0;
  });
}
