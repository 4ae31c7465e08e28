import type { CommandSpec, ParsedArgs } from "../args.js";

// Placeholder: replaced by the issue that builds this command.
export const spec: CommandSpec = { name: "recommend", summary: "not built yet", usage: "recblocks recommend", options: [] };

export async function run(_args: ParsedArgs): Promise<number> {
  process.stderr.write('recblocks: "recommend" is not built yet.\n');
  return 2;
}
