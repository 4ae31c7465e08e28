import { type CommandSpec, type ParsedArgs } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "report",
  summary: "Write the training report (report.html) of a run directory from its files: loss and validation charts, timing, data, final metrics next to the most-popular baseline, recipe, feature schema.",
  usage: "recblocks report <runDir> [--out <file>] [--json]",
  options: [
    { name: "out", kind: "string", description: "where to write the HTML (default <runDir>/report.html)" },
    { name: "json", kind: "boolean", description: 'print {"report": <file>} as one JSON line last' },
  ],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const json = args.options.json === true;
  return reportErrors(json, async () => {
    const { writeRunReport } = await import("../../report/report.js");
    const file = writeRunReport(args.positionals[0]!, { out: args.options.out as string | undefined });
    process.stdout.write(json ? JSON.stringify({ report: file }) + "\n" : `wrote ${file}\n`);
    return 0;
  });
}
