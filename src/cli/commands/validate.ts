import type { CommandSpec, ParsedArgs } from "../args.js";

// Placeholder: replaced by the issue that builds this command.
export const spec: CommandSpec = { name: "validate", summary: "not built yet", usage: "recblocks validate", options: [] };

export async function run(_args: ParsedArgs): Promise<number> {
  process.stderr.write('recblocks: "validate" is not built yet.\n');
  return 2;
}
