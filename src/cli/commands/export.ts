import { type CommandSpec, type ParsedArgs } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "export",
  summary: "Export a next-item model's item embeddings or session embeddings (npy, jsonl or csv) for nearest-neighbour search.",
  usage: "recblocks export <modelDir> --what items|sessions [--data <spec>] [--format npy|jsonl|csv] [--out file] [--include-reserved] [--vector query|hidden] [--json]",
  options: [
    { name: "what", kind: "string", description: "items: the item table rows keyed by raw item id; sessions: one vector per session of --data, keyed by session id" },
    { name: "data", kind: "string", description: "sessions: the data to embed (a path or builtin:...); default the model's recipe data.train, all of it" },
    { name: "format", kind: "string", description: "npy (default; row ids in <name>.ids.json beside it), jsonl ({id, vector} per line) or csv (id,e0,...)" },
    { name: "out", kind: "string", description: "output file (default <what>-embeddings.<format> in the current folder)" },
    { name: "include-reserved", kind: "boolean", description: "items: keep the padding and OOV rows, flagged as reserved" },
    { name: "vector", kind: "string", description: "sessions: query (default: the vector the head scores; · item table = logits) or hidden (the body's output)" },
    { name: "batch-size", kind: "number", description: "sessions per batch (default 256)" },
    { name: "backend", kind: "string", description: "auto | tensorflow | wasm | cpu" },
    { name: "json", kind: "boolean", description: "print {what, files, rows, dim, format} as one JSON line" },
  ],
  positionals: { min: 1, max: 1 },
};

function usage(message: string): number {
  process.stderr.write(`recblocks export: ${message}\n`);
  return 2;
}

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  const json = o.json === true;
  const what = o.what as string | undefined;
  if (what !== "items" && what !== "sessions") return usage("give --what items or --what sessions");
  const format = (o.format as string | undefined) ?? "npy";
  if (!["npy", "jsonl", "csv"].includes(format)) return usage(`--format must be npy, jsonl or csv, got "${format}"`);
  const vector = o.vector as string | undefined;
  if (vector !== undefined && vector !== "query" && vector !== "hidden") return usage(`--vector must be query or hidden, got "${vector}"`);
  if (what === "items" && (o.data !== undefined || vector !== undefined)) return usage("--data and --vector apply to --what sessions");
  return reportErrors(json, async () => {
    const { exportEmbeddings } = await import("../../export/embeddings.js");
    const r = await exportEmbeddings(args.positionals[0]!, {
      what,
      format: format as "npy" | "jsonl" | "csv",
      data: o.data as string | undefined,
      out: o.out as string | undefined,
      includeReserved: o["include-reserved"] === true,
      vector: vector as "query" | "hidden" | undefined,
      batchSize: o["batch-size"] as number | undefined,
      backend: o.backend as string | undefined,
    });
    if (json) process.stdout.write(JSON.stringify(r) + "\n");
    return 0;
  });
}
