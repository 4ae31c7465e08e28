import { RecblocksError, type Issue } from "../errors/issue.js";

/**
 * Issue codes raised by src/data. Each is documented in docs/data.md (merged into docs/errors.md).
 */
export type DataIssueCode =
  | "data_file_not_found"
  | "data_file_empty"
  | "data_invalid_utf8"
  | "data_ragged_row"
  | "data_unclosed_quote"
  | "data_csv_syntax"
  | "data_missing_column"
  | "data_bad_timestamp"
  | "data_bad_number"
  | "data_missing_value"
  | "data_bad_json"
  | "data_bad_jsonl_row"
  | "data_bad_list"
  | "data_bad_parquet"
  | "data_unknown_format"
  | "data_bad_builtin"
  | "data_bad_config"
  | "data_no_sessions"
  | "data_too_many_bad_rows"
  | "vocab_file_invalid";

/** How rows that cannot be read are handled: `error` (default) stops, `skip` drops them and counts them. */
export type BadRowPolicy = "error" | "skip";

export interface DataLocation {
  file: string;
  /** 1-based line in a text file (CSV/TSV/JSONL/sessions text). */
  line?: number;
  /** 0-based data row (the row index in a Parquet file, the record index in a text file). */
  row?: number;
  /** Column name, when the problem is in one column. */
  column?: string;
}

export function dataIssue(code: DataIssueCode, loc: DataLocation, message: string, extra: Partial<Issue> = {}): Issue {
  const path = loc.row !== undefined ? `/rows/${loc.row}${loc.column !== undefined ? `/${escapePointer(loc.column)}` : ""}` : loc.column !== undefined ? `/columns/${escapePointer(loc.column)}` : "";
  const issue: Issue = { code, path, message, ...extra };
  issue.source = { file: loc.file, ...(loc.line !== undefined ? { line: loc.line } : {}) };
  return issue;
}

export function dataError(subject: string, issues: Issue[]): RecblocksError {
  return new RecblocksError(subject, issues);
}

/** Throws a RecblocksError with a single data issue. */
export function failData(code: DataIssueCode, loc: DataLocation, message: string, extra: Partial<Issue> = {}): never {
  throw new RecblocksError(loc.file, [dataIssue(code, loc, message, extra)]);
}

function escapePointer(s: string): string {
  return s.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** A value as shown in a message: strings quoted, others as JSON, cut short. */
export function quoted(v: unknown, max = 40): string {
  return typeof v === "string" ? JSON.stringify(short(v, max)) : short(v, max);
}

/** Cuts a received value short for a message. */
export function short(v: unknown, max = 40): string {
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * Collects bad rows under a policy. With `error`, reading goes on to gather up to `maxIssues`
 * issues, then `finish()` throws them all at once; with `skip`, rows are dropped and counted.
 */
export class BadRows {
  readonly issues: Issue[] = [];
  count = 0;
  constructor(
    readonly file: string,
    readonly policy: BadRowPolicy = "error",
    readonly maxIssues = 20,
  ) {}

  /** Records a bad row. Returns normally (the caller drops the row); throws when too many issues piled up under `error`. */
  add(issue: Issue): void {
    this.count++;
    if (this.issues.length < this.maxIssues) this.issues.push(issue);
    if (this.policy === "error" && this.count >= this.maxIssues) this.finish();
  }

  /** Throws under `error` if any bad row was seen. */
  finish(): void {
    if (this.policy !== "error" || this.count === 0) return;
    const issues = [...this.issues];
    if (this.count >= this.maxIssues)
      issues.push(dataIssue("data_too_many_bad_rows", { file: this.file }, `Stopped after ${this.count} bad rows; fix them, or set badRows: skip to drop bad rows and count them.`));
    throw new RecblocksError(this.file, issues);
  }

  /** One line for the log: "skipped 3 bad rows in f.csv (first: line 7: ...)". */
  summary(): string | undefined {
    if (this.count === 0) return undefined;
    const first = this.issues[0];
    const where = first?.source?.line !== undefined ? `line ${first.source.line}: ` : "";
    return `skipped ${this.count} bad row${this.count === 1 ? "" : "s"} in ${this.file}${first ? ` (first: ${where}${first.message})` : ""}`;
  }
}

/** Renders a RecblocksError in the house style (used by the data CLI commands). */
export function formatIssues(err: RecblocksError): string {
  const lines = [`RecblocksError: ${err.message}`, ""];
  for (const i of err.issues) {
    const src = i.source ? `${i.source.file}${i.source.line !== undefined ? `:${i.source.line}` : ""}${i.source.column !== undefined ? `:${i.source.column}` : ""}` : "";
    lines.push(`✖ ${i.path || "/"}  ${src}  [${i.code}]`);
    lines.push(`  ${i.message}`);
    if (i.hint) lines.push(`  Hint: ${i.hint}`);
  }
  return lines.join("\n") + "\n";
}
