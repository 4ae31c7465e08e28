import { basename, extname } from "node:path";
import { failData } from "./errors.js";
import type { DataFormat } from "./table.js";
import { decodeUtf8, readHead } from "./text-input.js";

/** "session-text" is the recipe schema's spelling of "sessions-text" (data.format); both are accepted. */
export type FormatOption = "auto" | "session-text" | DataFormat;

export interface Sniffed {
  format: DataFormat;
  delimiter?: string;
  header?: boolean;
  /** Column names for a known headerless layout (e.g. MovieLens u.data). */
  columnNames?: string[];
  /** Why: "extension .csv", "content", "known layout MovieLens u.data". */
  reason: string;
}

/** Known headerless layouts, recognised by file name and shape. */
const KNOWN_LAYOUTS: { name: string; file: RegExp; delimiter: string; columns: string[] }[] = [
  { name: "MovieLens 100K u.data", file: /^u\.data$|^u[1-5]\.(base|test)$|^u[ab]\.(base|test)$/, delimiter: "\t", columns: ["user_id", "item_id", "rating", "timestamp"] },
];

const PARQUET_MAGIC = "PAR1";

/** Splits a line on a delimiter, honouring double quotes (enough for sniffing). */
function splitSimple(line: string, d: string): string[] {
  const out: string[] = [];
  let cur = "";
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"') q = !q;
    else if (ch === d && !q) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const isNum = (s: string) => s.trim() !== "" && Number.isFinite(Number(s));

/** Picks the delimiter (among , ; tab |) that splits the first lines into the same number (> 1) of fields. */
export function sniffDelimiter(lines: string[]): string | undefined {
  let best: string | undefined;
  let bestFields = 1;
  for (const d of ["\t", ";", ",", "|"]) {
    const counts = lines.map((l) => splitSimple(l, d).length);
    if (counts.length === 0) continue;
    const n = counts[0]!;
    if (n > 1 && counts.every((c) => c === n) && n > bestFields) {
      best = d;
      bestFields = n;
    }
  }
  if (best) return best;
  // fall back to the delimiter most present in the first line
  for (const d of ["\t", ";", ",", "|"]) if (lines[0]?.includes(d)) return d;
  return undefined;
}

/** Whether the first row is a header: all its fields are non-numeric, and either a later row has a number in a column or the fields look like names. */
export function sniffHeader(rows: string[][]): boolean {
  const first = rows[0];
  if (!first) return false;
  if (first.some((f) => f.trim() === "" || isNum(f))) return false;
  const rest = rows.slice(1);
  if (rest.some((r) => r.some((f, j) => isNum(f) && j < first.length))) return true;
  return first.every((f) => /^[A-Za-z_][\w .\-/()]*$/.test(f.trim()));
}

/** Detects the format of a data file from its extension, magic bytes and first lines. */
export function detectFormat(file: string, opts: { format?: FormatOption; delimiter?: string; header?: boolean } = {}): Sniffed {
  const ext = extname(file).toLowerCase();
  const want = opts.format === "session-text" ? "sessions-text" : (opts.format ?? "auto");
  if (want === "parquet" || (want === "auto" && ext === ".parquet")) return { format: "parquet", reason: want === "auto" ? "extension .parquet" : "format: parquet" };
  const head = readHead(file);
  if (head.length === 0) failData("data_file_empty", { file }, `Data file "${file}" is empty.`, { hint: "Point the data path at a file with rows." });
  if (want === "auto" && head.subarray(0, 4).toString("latin1") === PARQUET_MAGIC) return { format: "parquet", reason: "Parquet magic bytes" };
  const text = decodeUtf8(file, head, head.length === 65536);
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (head.length === 65536 && lines.length > 1) lines.pop(); // possibly cut
  if (lines.length === 0) failData("data_file_empty", { file }, `Data file "${file}" has no rows (only blank lines).`);
  const sample = lines.slice(0, 50);
  if (want === "jsonl" || (want === "auto" && (ext === ".jsonl" || ext === ".ndjson" || (ext !== ".csv" && ext !== ".tsv" && sample[0]!.trimStart().startsWith("{")))))
    return { format: "jsonl", reason: want === "auto" ? "JSON objects" : "format: jsonl" };
  if (want === "sessions-text") return { format: "sessions-text", reason: "format: sessions-text" };

  const known = KNOWN_LAYOUTS.find((k) => k.file.test(basename(file)));
  let delimiter = opts.delimiter ?? (want === "tsv" ? "\t" : undefined);
  if (want === "auto" && ext === ".tsv") delimiter ??= "\t";
  if (known && want === "auto" && !opts.delimiter && sample.every((l) => l.split(known.delimiter).length === known.columns.length)) {
    return { format: known.delimiter === "\t" ? "tsv" : "csv", delimiter: known.delimiter, header: opts.header ?? false, columnNames: known.columns, reason: `known layout ${known.name}` };
  }
  delimiter ??= sniffDelimiter(sample);
  if (want === "auto" && delimiter === undefined) {
    // only spaces: one session per line
    if (ext === ".csv") delimiter = ",";
    else if (sample.every((l) => /^[^\s]+( +[^\s]+)*\s*$/.test(l))) return { format: "sessions-text", reason: "space-separated ids, one session per line" };
    else delimiter = ",";
  }
  delimiter ??= ",";
  const rows = sample.map((l) => splitSimple(l, delimiter!));
  const header = opts.header ?? sniffHeader(rows);
  const format: DataFormat = want === "csv" || want === "tsv" ? want : delimiter === "\t" ? "tsv" : "csv";
  return { format, delimiter, header, reason: want === "auto" ? (ext ? `extension ${ext} and content` : "content") : `format: ${want}` };
}
