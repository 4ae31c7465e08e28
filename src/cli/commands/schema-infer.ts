import type { CommandSpec, ParsedArgs } from "../args.js";

// Placeholder: replaced by the issue that builds this command.
export const spec: CommandSpec = { name: "schema infer", summary: "not built yet", usage: "recblocks schema infer", options: [] };

export async function run(_args: ParsedArgs): Promise<number> {
  process.stderr.write('recblocks: "schema infer" is not built yet.\n');
  return 2;
}
