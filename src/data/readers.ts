import { parse, type CsvError } from "csv-parse";
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } from "hyparquet";
import { RecblocksError } from "../errors/issue.js";
import { BadRows, dataIssue, failData, short, type BadRowPolicy } from "./errors.js";
import type { DataFormat, RawTable } from "./table.js";
import { checkDataFile, readUtf8Chunks } from "./text-input.js";

export interface TableReadOptions {
  format: Exclude<DataFormat, "sessions-text">;
  delimiter?: string;
  header?: boolean;
  /** Quote character ("" turns quoting off). Default '"'. */
  quote?: string;
  /** Column names for a headerless file (default column_1, column_2, ...). */
  columnNames?: string[];
  /** Given every column name, returns the ones to read (it may throw a missing-column error). Default: all. */
  select?: (columns: string[]) => string[];
  badRows?: BadRowPolicy;
  /** Called with one line per notable event (e.g. bad rows skipped). */
  onWarning?: (msg: string) => void;
  /** Progress: rows read so far. */
  onProgress?: (rows: number) => void;
}

/** A located "column does not exist" error with a did-you-mean and the list of columns. */
export function missingColumn(file: string, name: string, role: string, columns: string[]): RecblocksError {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of columns) {
    const d = levenshtein(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const guess = best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? ` Did you mean "${best}"?` : "";
  return new RecblocksError(file, [
    dataIssue("data_missing_column", { file, column: name }, `The ${role} column "${name}" does not exist in ${file}.${guess} Columns: ${columns.map((c) => `"${c}"`).join(", ")}.`, {
      received: name,
      expected: columns,
    }),
  ]);
}

class Growable32 {
  buf = new Int32Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      const b = new Int32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
  done(): Int32Array {
    return this.buf.slice(0, this.n);
  }
}

/**
 * Line breaks inside the fields of a record (quoted values that span lines): `parser` as csv-parse counts
 * them (every CR and every LF char, so a CRLF counts twice), `real` as an editor does (CRLF, LF or CR once).
 */
function breaksIn(record: string[]): { parser: number; real: number } {
  let parser = 0;
  let real = 0;
  for (const f of record) {
    if (f.indexOf("\n") < 0 && f.indexOf("\r") < 0) continue;
    for (let i = 0; i < f.length; i++) {
      const c = f.charCodeAt(i);
      if (c === 10) parser++, real++;
      else if (c === 13) {
        parser++;
        if (f.charCodeAt(i + 1) !== 10) real++;
      }
    }
  }
  return { parser, real };
}

function dedupeNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((raw, j) => {
    const base = raw.trim() === "" ? `column_${j + 1}` : raw.trim();
    const k = seen.get(base) ?? 0;
    seen.set(base, k + 1);
    return k === 0 ? base : `${base}_${k + 1}`;
  });
}

/** Reads a CSV/TSV file as a stream (constant memory per chunk; only the selected columns are kept). */
export async function readDelimited(file: string, opts: TableReadOptions): Promise<RawTable> {
  checkDataFile(file);
  const delimiter = opts.delimiter ?? (opts.format === "tsv" ? "\t" : ",");
  const quote = opts.quote ?? '"';
  const bad = new BadRows(file, opts.badRows);
  let names: string[] | undefined = opts.header ? undefined : opts.columnNames ? [...opts.columnNames] : undefined;
  let selected: number[] = [];
  let cols: unknown[][] = [];
  let selNames: string[] = [];
  const lines = new Growable32();
  let rows = 0;
  let headerLine = 0;
  let firstRecord = true;
  let fatal: unknown;
  let lineDrift = 0; // lines csv-parse counted twice so far (CRLF inside quoted values)

  const setNames = (n: string[]) => {
    names = n;
    selNames = opts.select ? opts.select(n) : n;
    selected = selNames.map((s) => n.indexOf(s));
    const missing = selNames.filter((_, i) => selected[i]! < 0);
    if (missing.length) throw missingColumn(file, missing[0]!, "selected", n);
    cols = selNames.map(() => []);
  };

  const parser = parse({
    delimiter,
    quote: quote === "" ? false : quote,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    on_record: (record: string[], ctx: { lines: number }) => {
      if (fatal !== undefined) return null;
      try {
        return onRecord(record, ctx);
      } catch (err) {
        fatal = err;
        return null;
      }
    },
  });
  function onRecord(record: string[], ctx: { lines: number }): null {
      if (record.length === 1 && record[0]!.trim() === "") return null;
      // Fix: csv-parse's ctx.lines is the line a record *ends* on, and it counts a CRLF inside a quoted
      // value as two lines; rows after a multi-line value (and their messages) pointed past the row's
      // first line. Count those breaks back, and carry the over-count to later rows.
      const br = breaksIn(record);
      const line = ctx.lines - lineDrift - br.parser;
      lineDrift += br.parser - br.real;
      if (firstRecord) {
        firstRecord = false;
        if (opts.header) {
          headerLine = line;
          setNames(dedupeNames(record));
          return null;
        }
        setNames(names ?? record.map((_, j) => `column_${j + 1}`));
      }
      const n = names!;
      if (record.length !== n.length) {
        bad.add(
          dataIssue("data_ragged_row", { file, line, row: rows + bad.count }, `Line ${line} has ${record.length} field${record.length === 1 ? "" : "s"}, expected ${n.length} (${n.join(delimiter === "\t" ? ", " : delimiter)}).`, {
            received: record.length,
            expected: n.length,
            hint: delimiter === "\t" ? "Check for tabs inside values." : `Check the delimiter (${JSON.stringify(delimiter)}) and quoting of values that contain it.`,
          }),
        );
        return null;
      }
      for (let k = 0; k < selected.length; k++) cols[k]!.push(record[selected[k]!]);
      lines.push(line);
      rows++;
      if (opts.onProgress && (rows & 0x3ffff) === 0) opts.onProgress(rows);
      return null;
  }
  parser.on("data", () => {});
  const done = new Promise<void>((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
  });
  try {
    let any = false;
    for await (const chunk of readUtf8Chunks(file)) {
      if (chunk.length) any = true;
      if (!parser.write(chunk)) await new Promise((r) => parser.once("drain", r));
      if (fatal !== undefined) break;
    }
    parser.end();
    await done;
    if (fatal !== undefined) throw fatal;
    if (!any) failData("data_file_empty", { file }, `Data file "${file}" is empty.`);
  } catch (err) {
    if (err instanceof RecblocksError) throw err;
    const e = err as CsvError & { lines?: number };
    if (e.code === "CSV_QUOTE_NOT_CLOSED")
      failData("data_unclosed_quote", { file, line: e.lines }, `A quoted value opened before line ${e.lines ?? "?"} is never closed (quote character ${JSON.stringify(quote)}).`, {
        hint: 'Close the quote, double quotes inside quoted values (""), or set csv.quote to another character.',
      });
    if (typeof e.code === "string" && e.code.startsWith("CSV_")) failData("data_csv_syntax", { file, line: e.lines }, `CSV syntax error at line ${e.lines ?? "?"}: ${e.message}`);
    throw err;
  }
  if (names === undefined || rows === 0) {
    bad.finish();
    failData("data_file_empty", { file, ...(headerLine ? { line: headerLine } : {}) }, headerLine ? `Data file "${file}" has a header but no data rows.` : `Data file "${file}" has no rows.`);
  }
  bad.finish();
  const s = bad.summary();
  if (s) opts.onWarning?.(s);
  const data: Record<string, unknown[]> = {};
  selNames.forEach((n, k) => (data[n] = cols[k]!));
  return { file, format: opts.format, columns: names, data, rows, lines: lines.done(), skipped: bad.count, header: !!opts.header };
}

/** Reads a JSON Lines file: one JSON object per line. Values may be arrays (list columns). */
export async function readJsonl(file: string, opts: Omit<TableReadOptions, "format">): Promise<RawTable> {
  checkDataFile(file);
  const bad = new BadRows(file, opts.badRows);
  const cols = new Map<string, unknown[]>();
  const lines = new Growable32();
  let rows = 0;
  let lineNo = 0;
  let rest = "";
  let sawText = false;
  const handle = (line: string) => {
    lineNo++;
    const t = line.trim();
    if (t === "") return;
    sawText = true;
    let obj: unknown;
    try {
      obj = JSON.parse(t);
    } catch (err) {
      bad.add(dataIssue("data_bad_json", { file, line: lineNo, row: rows + bad.count }, `Line ${lineNo} is not valid JSON: ${(err as Error).message}. Received: ${short(t)}`, { received: short(t) }));
      return;
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      bad.add(dataIssue("data_bad_jsonl_row", { file, line: lineNo, row: rows + bad.count }, `Line ${lineNo} must hold a JSON object (one row), got ${Array.isArray(obj) ? "an array" : JSON.stringify(obj) === "null" ? "null" : typeof obj}.`, { received: short(t) }));
      return;
    }
    for (const [k, v] of Object.entries(obj)) {
      let c = cols.get(k);
      if (!c) {
        c = new Array(rows).fill(null);
        cols.set(k, c);
      }
      c[rows] = v;
    }
    rows++;
    for (const c of cols.values()) if (c.length < rows) c.push(null);
    lines.push(lineNo);
  };
  for await (const chunk of readUtf8Chunks(file)) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const p of parts) handle(p);
  }
  if (rest) handle(rest);
  if (!sawText) failData("data_file_empty", { file }, `Data file "${file}" is empty.`);
  bad.finish();
  if (rows === 0) failData("data_file_empty", { file }, `Data file "${file}" has no valid rows (${bad.count} skipped).`);
  const s = bad.summary();
  if (s) opts.onWarning?.(s);
  const columns = [...cols.keys()];
  const sel = opts.select ? opts.select(columns) : columns;
  const data: Record<string, unknown[]> = {};
  for (const n of sel) {
    const c = cols.get(n);
    if (!c) throw missingColumn(file, n, "selected", columns);
    data[n] = c;
  }
  return { file, format: "jsonl", columns, data, rows, lines: lines.done(), skipped: bad.count };
}

/** Reads a Parquet file row group by row group; list columns come back as arrays, INT64 as numbers when safe. */
export async function readParquet(file: string, opts: Omit<TableReadOptions, "format">): Promise<RawTable> {
  const size = checkDataFile(file);
  if (size === 0) failData("data_file_empty", { file }, `Data file "${file}" is empty.`);
  const buffer = await asyncBufferFromFile(file);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    failData("data_bad_parquet", { file }, `"${file}" is not a readable Parquet file: ${(err as Error).message}.`, { hint: "Check that the file is Parquet (it starts and ends with PAR1), or set data.format." });
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const sel = opts.select ? opts.select(columns) : columns;
  for (const n of sel) if (!columns.includes(n)) throw missingColumn(file, n, "selected", columns);
  const rows = Number(metadata.num_rows);
  if (rows === 0) failData("data_file_empty", { file }, `Parquet file "${file}" has no rows.`);
  const data: Record<string, unknown[]> = {};
  for (const n of sel) data[n] = new Array(rows);
  let groupStart = 0;
  for (const rg of metadata.row_groups) {
    const groupEnd = groupStart + Number(rg.num_rows);
    try {
      await parquetRead({
        file: buffer,
        metadata,
        columns: sel,
        rowStart: groupStart,
        rowEnd: groupEnd,
        onChunk: ({ columnName, columnData, rowStart, rowEnd }) => {
          const out = data[columnName];
          if (!out) return;
          const lo = Math.max(rowStart, groupStart);
          const hi = Math.min(rowEnd, groupEnd);
          for (let r = lo; r < hi; r++) out[r] = normalizeParquetValue(columnData[r - rowStart]);
        },
      });
    } catch (err) {
      failData("data_bad_parquet", { file, row: groupStart }, `Cannot read row group at rows ${groupStart}..${groupEnd - 1} of "${file}": ${(err as Error).message}.`);
    }
    opts.onProgress?.(groupEnd);
    groupStart = groupEnd;
  }
  return { file, format: "parquet", columns, data, rows, skipped: 0 };
}

function normalizeParquetValue(v: unknown): unknown {
  if (typeof v === "bigint") return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v === undefined) return null;
  if (Array.isArray(v)) return v.map(normalizeParquetValue);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number | bigint>, normalizeParquetValue);
  if (v instanceof Date) return v.getTime() / 1000;
  return v;
}

/** Reads any table format. */
export async function readTable(file: string, opts: TableReadOptions): Promise<RawTable> {
  if (opts.format === "parquet") return readParquet(file, opts);
  if (opts.format === "jsonl") return readJsonl(file, opts);
  return readDelimited(file, opts);
}

/** Edit distance, for did-you-mean suggestions. */
export function levenshtein(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
