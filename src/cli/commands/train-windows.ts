import { type CommandSpec, type ParsedArgs } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "train-windows",
  summary: "Incremental time-window training (Transformers4Rec paper protocol): train on window t continuing from window t-1, evaluate on window t+1; metrics per window and their average.",
  usage: "recblocks train-windows <recipe.yaml> --window day|week|<N>s [--windows K] [--out dir] [--epochs N] [--data spec] [--from-scratch] [--json]",
  options: [
    { name: "window", kind: "string", description: "window length: day (UTC calendar days), week (7 days from the first day's midnight), or N seconds (3600, 3600s, 12h, 2d)" },
    { name: "windows", kind: "number", description: "number of train→evaluate steps K (train on windows 1..K, evaluate on 2..K+1); default all windows" },
    { name: "out", kind: "string", description: "run directory (windows.jsonl, summary.json, model/); default runs/<recipe name>-windows" },
    { name: "epochs", kind: "number", description: "epochs per window instead of the recipe's train.epochs" },
    { name: "data", kind: "string", description: "data instead of the recipe's data.train (a path or builtin:synthetic?...)" },
    { name: "seed", kind: "number", description: "seed instead of the recipe's train.seed" },
    { name: "from-scratch", kind: "boolean", description: "re-initialise weights and optimizer at every window (for comparison; the protocol continues training)" },
    { name: "backend", kind: "string", description: "auto | tensorflow | wasm | cpu" },
    { name: "threads", kind: "number", description: "TensorFlow intra-op threads" },
    { name: "json", kind: "boolean", description: "print {windows: [...], average, averageMostPopular, runDir, modelDir} as one JSON line last" },
  ],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  const json = o.json === true;
  if (typeof o.window !== "string") {
    process.stderr.write("recblocks train-windows: give --window day, week or a length in seconds (e.g. 43200s, 12h)\n");
    return 2;
  }
  return reportErrors(json, async () => {
    const { trainWindows } = await import("../../run/windows.js");
    const r = await trainWindows(args.positionals[0]!, {
      window: o.window as string,
      windows: o.windows as number | undefined,
      out: o.out as string | undefined,
      epochs: o.epochs as number | undefined,
      data: o.data as string | undefined,
      seed: o.seed as number | undefined,
      fromScratch: o["from-scratch"] === true,
      backend: o.backend as string | undefined,
      threads: o.threads as number | undefined,
    });
    const table = r.windows.map((w) => `${String(w.step).padStart(3)}  ${w.train.start.slice(0, 10)} -> ${w.eval.start.slice(0, 10)}  ${Object.entries(w.metrics).filter(([k]) => k.includes("@")).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")}`);
    process.stdout.write([...table, `avg  ${Object.entries(r.average).filter(([k]) => k.includes("@")).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")}`].join("\n") + "\n");
    if (json) process.stdout.write(JSON.stringify({ windows: r.windows, average: r.average, averageMostPopular: r.averageMostPopular, runDir: r.runDir, modelDir: r.modelDir, backend: r.engine.backend }) + "\n");
    return 0;
  });
}
