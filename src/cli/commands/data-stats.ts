import type { CommandSpec, ParsedArgs } from "../args.js";

// Placeholder: replaced by the issue that builds this command.
export const spec: CommandSpec = { name: "data stats", summary: "not built yet", usage: "recblocks data stats", options: [] };

export async function run(_args: ParsedArgs): Promise<number> {
  process.stderr.write('recblocks: "data stats" is not built yet.\n');
  return 2;
}
