/** Where an issue is in a source file (1-based line and column). */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
}

/**
 * One problem found in a recipe, a feature schema, a data file or a request.
 * Issues are data; formatting lives in ./format.ts.
 */
export interface Issue {
  /** Stable snake_case code, documented in docs/errors.md. */
  code: string;
  /** JSON Pointer into the document ("" for the whole document), or a data location such as "/rows/12/price". */
  path: string;
  /** What happened, what was expected, in a sentence a person can act on. */
  message: string;
  received?: unknown;
  expected?: unknown;
  hint?: string;
  source?: SourceLocation;
}

/** An error that carries a list of located issues. The CLI prints them and exits 1. */
export class RecblocksError extends Error {
  readonly issues: Issue[];
  readonly subject: string;
  /** The heading word of the rendered report: "RecipeError", "SchemaError", "DataError"... */
  readonly kind: string;
  constructor(subject: string, issues: Issue[], options?: { kind?: string }) {
    super(`${subject} is invalid (${issues.length} issue${issues.length === 1 ? "" : "s"})`);
    this.name = "RecblocksError";
    this.subject = subject;
    this.issues = issues;
    this.kind = options?.kind ?? "RecblocksError";
  }
}
