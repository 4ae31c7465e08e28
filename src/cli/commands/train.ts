import { type CommandSpec, type ParsedArgs, UsageError } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "train",
  summary: "Train a recipe: read the data, build the model, fit it with progress, evaluate it and save the model directory.",
  usage: "recblocks train <recipe.yaml> [--data <spec>] [--out <dir>] [--epochs N] [--max-batches N] [--backend b] [--threads N] [--seed s] [--resume] [--json]",
  options: [
    { name: "data", kind: "string", description: "training data instead of the recipe's data.train (a path or builtin:synthetic?sessions=..&items=..&seed=..)" },
    { name: "out", kind: "string", description: "run directory (metrics.jsonl, summary.json, model/); default runs/<recipe name>" },
    { name: "epochs", kind: "number", description: "epochs (ALS: iterations) instead of the recipe's" },
    { name: "backend", kind: "string", description: "auto | tensorflow | wasm | cpu (default: the recipe's train.backend, RECBLOCKS_BACKEND, auto)" },
    { name: "threads", kind: "number", description: "TensorFlow intra-op threads (default: all cores)" },
    { name: "max-batches", kind: "number", description: "at most N training batches per epoch (a smoke run or a timing; validation and test are still whole)" },
    { name: "seed", kind: "number", description: "seed instead of the recipe's train.seed" },
    { name: "resume", kind: "boolean", description: "continue the run in --out from its last checkpoint (out/checkpoint/), if there is one; same recipe (only --epochs may change)" },
    { name: "json", kind: "boolean", description: 'print the final metrics as one JSON line last, keyed like "ndcg@20"' },
  ],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  const json = o.json === true;
  const mb = o["max-batches"];
  if (mb !== undefined && !(Number.isInteger(mb) && (mb as number) >= 1)) throw new UsageError(`--max-batches must be an integer >= 1, got ${String(mb)}`);
  return reportErrors(json, async () => {
    const { trainRecipe } = await import("../../run/train.js");
    const r = await trainRecipe(args.positionals[0]!, {
      data: o.data as string | undefined,
      out: o.out as string | undefined,
      epochs: o.epochs as number | undefined,
      seed: o.seed as number | undefined,
      backend: o.backend as string | undefined,
      threads: o.threads as number | undefined,
      resume: o.resume === true,
      ...(o["max-batches"] !== undefined ? { maxBatchesPerEpoch: o["max-batches"] as number } : {}),
    });
    if (json) {
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(r.metrics)) if (k.includes("@") || k === "loss" || k === "examples") metrics[k] = v;
      process.stdout.write(JSON.stringify({ ...metrics, mostPopular: r.baseline, modelDir: r.modelDir, backend: r.engine.backend }) + "\n");
    }
    return 0;
  });
}
