import { stringify } from "yaml";
import { RecblocksError } from "../../errors/issue.js";
import type { CommandSpec, ParsedArgs } from "../args.js";
import { inferSchema } from "../../data/stats.js";
import { formatIssues } from "../../data/errors.js";
import { dataOptions, statsOptionsFromArgs } from "./data-stats.js";

export const spec: CommandSpec = {
  name: "schema infer",
  summary: "propose a feature schema from a data file (YAML, or JSON with --json)",
  usage: "recblocks schema infer <data> [--json] [--session-col c] [--item-col c] [--delimiter d]",
  options: [...dataOptions.filter((o) => o.name !== "schema"), { name: "json", kind: "boolean", description: "print JSON (one line) instead of YAML" }],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  try {
    const doc = await inferSchema(args.positionals[0]!, statsOptionsFromArgs(args));
    if (args.options.json) process.stdout.write(JSON.stringify(doc) + "\n");
    else process.stdout.write(`# Feature schema proposed by recblocks schema infer from ${args.positionals[0]}\n` + stringify(doc, { flowCollectionPadding: false }));
    return 0;
  } catch (err) {
    if (err instanceof RecblocksError) {
      process.stderr.write(formatIssues(err));
      return 1;
    }
    throw err;
  }
}
