import { formatHelp, parseArgs, UsageError, type CommandSpec, type ParsedArgs } from "./args.js";
import { editDistance } from "../errors/did-you-mean.js";
export { editDistance };

/** A CLI command module: src/cli/commands/<name>.ts exports these two. */
export interface CommandModule {
  spec: CommandSpec;
  run(args: ParsedArgs): Promise<number>;
}

/**
 * Every command, by the words that invoke it, and the module that implements it
 * (loaded lazily so that `recblocks --help` does not start TensorFlow).
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  validate: { summary: "validate recipes and feature schemas", load: () => import("./commands/validate.js") },
  "schema convert": { summary: "convert a feature schema between recblocks and Merlin formats", load: () => import("./commands/schema-convert.js") },
  "schema infer": { summary: "propose a feature schema from a data file", load: () => import("./commands/schema-infer.js") },
  "data stats": { summary: "count rows, sessions, items and users of a data file", load: () => import("./commands/data-stats.js") },
  doctor: { summary: "show the TensorFlow.js backend, threads and how the native engine was installed", load: () => import("./commands/doctor.js") },
  train: { summary: "train a recipe and save the model directory", load: () => import("./commands/train.js") },
  evaluate: { summary: "evaluate a saved model on data", load: () => import("./commands/evaluate.js") },
  recommend: { summary: "print top-k recommendations from a saved model", load: () => import("./commands/recommend.js") },
  report: { summary: "write the training report (report.html) of a run directory", load: () => import("./commands/report.js") },
  summary: { summary: "print a model's blocks, output shapes and parameter counts", load: () => import("./commands/summary.js") },
  "train-windows": { summary: "incremental time-window training: train on window t, evaluate on t+1, average over windows", load: () => import("./commands/train-windows.js") },
  export: { summary: "export item or session embeddings (npy, jsonl, csv) for nearest-neighbour search", load: () => import("./commands/export.js") },
  serve: { summary: "serve a saved model over HTTP (POST /recommend, filters, hot reload)", load: () => import("./commands/serve.js") },
};

function topHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = [
    "recblocks — declarative recommender systems on TensorFlow.js",
    "",
    "Usage: recblocks <command> [options]   (recblocks <command> --help for its options)",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`),
    "",
  ];
  return lines.join("\n");
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    process.stdout.write(topHelp());
    return 0;
  }
  if (argv[0] === "--version" || argv[0] === "-v") {
    const { packageRoot } = await import("../paths.js");
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    process.stdout.write(`${(JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version}\n`);
    return 0;
  }
  const two = argv.slice(0, 2).join(" ");
  let key: string;
  let rest: string[];
  if (COMMANDS[two]) {
    key = two;
    rest = argv.slice(2);
  } else if (COMMANDS[argv[0]!]) {
    key = argv[0]!;
    rest = argv.slice(1);
  } else {
    const group = Object.keys(COMMANDS).filter((k) => k.startsWith(`${argv[0]} `));
    if (group.length) {
      process.stderr.write(
        `recblocks: "${argv[0]}" needs a subcommand: ${group.map((g) => g.split(" ")[1]).join(", ")}` +
          (argv[1] ? ` (got "${argv[1]}")` : "") + "\n",
      );
      return 2;
    }
    const guess = closest(argv[0]!, Object.keys(COMMANDS).map((k) => k.split(" ")[0]!));
    process.stderr.write(`recblocks: unknown command "${argv[0]}".${guess ? ` Did you mean "${guess}"?` : ""} Run "recblocks --help" for the list.\n`);
    return 2;
  }
  let mod: CommandModule;
  try {
    mod = await COMMANDS[key]!.load();
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_MODULE_NOT_FOUND" && String((err as Error).message).includes(`commands/`)) {
      process.stderr.write(`recblocks: "${key}" is not available in this build yet.\n`);
      return 2;
    }
    throw err;
  }
  let args: ParsedArgs;
  try {
    args = parseArgs(mod.spec, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`recblocks: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(formatHelp(mod.spec));
    return 0;
  }
  try {
    return await mod.run(args);
  } catch (err) {
    // a command may find a usage mistake only once it knows more (e.g. the model's kind)
    if (err instanceof UsageError) {
      process.stderr.write(`recblocks ${key}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
