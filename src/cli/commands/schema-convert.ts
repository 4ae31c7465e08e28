import type { CommandSpec, ParsedArgs } from "../args.js";

// Placeholder: replaced by the issue that builds this command.
export const spec: CommandSpec = { name: "schema convert", summary: "not built yet", usage: "recblocks schema convert", options: [] };

export async function run(_args: ParsedArgs): Promise<number> {
  process.stderr.write('recblocks: "schema convert" is not built yet.\n');
  return 2;
}
