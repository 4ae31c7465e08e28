import { formatError } from "../errors/format.js";
import { RecblocksError } from "../errors/issue.js";

/**
 * Runs a command body: a RecblocksError (bad recipe, data, model directory...) is printed with its
 * located issues and gives exit 1; with `json`, `{"error": {kind, subject, issues}}` is the last line.
 * Anything else is a bug and propagates (bin/recblocks.js prints it as an internal error, exit 70).
 */
export async function reportErrors(json: boolean, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof RecblocksError) {
      process.stderr.write(formatError(err) + "\n");
      if (json) process.stdout.write(JSON.stringify({ error: { kind: err.kind, subject: err.subject, issues: err.issues } }) + "\n");
      return 1;
    }
    throw err;
  }
}
