import type { Issue } from "./issue.js";
import { RecblocksError } from "./issue.js";

const MAX_STRING = 60;

/**
 * A short, printable form of a value a user wrote: strings cut to 60 characters,
 * objects and lists summarised (never whole subtrees).
 */
/** Key counts of mappings already described (an issue per unknown key of a huge mapping would count its keys again each time). */
const keyCounts = new WeakMap<object, number>();
function keyCount(value: object): number {
  let n = keyCounts.get(value);
  if (n === undefined) {
    n = Object.keys(value).length;
    keyCounts.set(value, n);
  }
  return n;
}

export function shortValue(value: unknown): unknown {
  if (typeof value === "string") return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return `[a list of ${value.length} item${value.length === 1 ? "" : "s"}]`;
  if (typeof value === "object") {
    const n = keyCount(value as object);
    return `{a mapping with ${n} key${n === 1 ? "" : "s"}}`;
  }
  return String(value);
}

/** How a value reads in a message: `"adma"`, `-64`, `a list of 3 items`, `a mapping with 2 keys`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(shortValue(value));
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? "" : "s"}`;
  if (typeof value === "object") {
    const n = keyCount(value as object);
    return `a mapping with ${n} key${n === 1 ? "" : "s"}`;
  }
  return String(value);
}

/** The JSON type word of a value as a person reads it: "a string", "an integer", "a list"... */
export function typeWord(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a number";
  if (typeof value === "string") return "a string";
  if (typeof value === "boolean") return "a boolean";
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

/** `file:line:col` (or just the file) of an issue, "" when it has no source. */
export function formatLocation(issue: Issue): string {
  const s = issue.source;
  if (!s) return "";
  if (s.line === undefined) return s.file;
  return `${s.file}:${s.line}${s.column !== undefined ? `:${s.column}` : ""}`;
}

/** One issue as two or three lines (see docs/errors.md). */
export function formatIssue(issue: Issue): string {
  const where = formatLocation(issue);
  const head = `✖ ${issue.path === "" ? "/" : issue.path}${where ? `  ${where}` : ""}  [${issue.code}]`;
  const lines = [head, `  ${issue.message}`];
  if (issue.hint) lines.push(`  hint: ${issue.hint}`);
  return lines.join("\n");
}

/**
 * The report for a list of issues:
 * ```
 * RecipeError: recipes/sasrec.yaml is invalid (2 issues)
 *
 * ✖ /body/0/units/0  recipes/sasrec.yaml:15:13  [out_of_range]
 *   Expected an integer >= 1. Received: -64
 * ```
 */
export function formatIssues(kind: string, subject: string, issues: readonly Issue[]): string {
  const n = issues.length;
  const head = `${kind}: ${subject} is invalid (${n} issue${n === 1 ? "" : "s"})`;
  return [head, "", ...issues.map(formatIssue)].join("\n") + "\n";
}

/** The report of a RecblocksError. */
export function formatError(err: RecblocksError): string {
  return formatIssues(err.kind, err.subject, err.issues);
}
