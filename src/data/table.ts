/** The formats src/data reads. */
export type DataFormat = "sessions-text" | "csv" | "tsv" | "jsonl" | "parquet";

/**
 * A table read from a file, columnar: each selected column is one array of raw values
 * (strings from text files; numbers, bigints, booleans, strings or arrays from Parquet/JSONL; null when missing).
 */
export interface RawTable {
  /** The file (or builtin spec) the table came from, for messages. */
  file: string;
  format: DataFormat;
  /** Every column of the file, in file order. */
  columns: string[];
  /** The columns read (all columns unless a selection was asked for). */
  data: Record<string, unknown[]>;
  rows: number;
  /** 1-based source line of each row (text formats). */
  lines?: Int32Array;
  /** Rows dropped under badRows: skip. */
  skipped: number;
  /** Whether the file had a header row (CSV/TSV). */
  header?: boolean;
}

/** Where a row is, for messages: line for text formats, row index for Parquet. */
export function rowLocation(t: RawTable, row: number): { file: string; row: number; line?: number } {
  const line = t.lines?.[row];
  return line !== undefined ? { file: t.file, row, line } : { file: t.file, row };
}
