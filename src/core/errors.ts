import { RecblocksError, type Issue } from "../errors/issue.js";

/**
 * A problem with a block's configuration or with how blocks fit together (shapes, dtypes, missing
 * shared things), located at the block's JSON Pointer in the recipe (`path`).
 */
export class BlockError extends RecblocksError {
  constructor(path: string, code: string, message: string, extra: Partial<Pick<Issue, "received" | "expected" | "hint">> = {}) {
    super("model", [{ code, path, message, ...extra }]);
    this.name = "BlockError";
    this.message = `${path || "/"}: [${code}] ${message}`;
  }
  get path(): string {
    return this.issues[0]!.path;
  }
  get code(): string {
    return this.issues[0]!.code;
  }
}
