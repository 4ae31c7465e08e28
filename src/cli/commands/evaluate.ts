import { type CommandSpec, type ParsedArgs } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "evaluate",
  summary: "Score a saved model directory on data: its recipe's test split (or validation split), or --data.",
  usage: "recblocks evaluate <modelDir> [--data <spec>] [--backend b] [--threads N] [--json]",
  options: [
    { name: "data", kind: "string", description: "sessions to score instead of the recipe's test data (a path relative to the current folder, or builtin:...)" },
    { name: "backend", kind: "string", description: "auto | tensorflow | wasm | cpu" },
    { name: "threads", kind: "number", description: "TensorFlow intra-op threads" },
    { name: "json", kind: "boolean", description: 'print the metrics as one JSON line last, keyed like "ndcg@20"' },
  ],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  const json = o.json === true;
  return reportErrors(json, async () => {
    const { evaluateModelDir } = await import("../../run/evaluate.js");
    const r = await evaluateModelDir(args.positionals[0]!, { data: o.data as string | undefined, backend: o.backend as string | undefined, threads: o.threads as number | undefined });
    if (!json) {
      for (const [k, v] of Object.entries(r.metrics)) if (k.includes("@")) process.stdout.write(`${k.padEnd(14)} ${v.toFixed(4)}${r.baseline[k] !== undefined ? `   (most popular ${r.baseline[k]!.toFixed(4)})` : ""}\n`);
    } else {
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(r.metrics)) if (k.includes("@") || k === "loss" || k === "examples") metrics[k] = v;
      process.stdout.write(JSON.stringify({ ...metrics, mostPopular: r.baseline, source: r.source }) + "\n");
    }
    return 0;
  });
}
