/**
 * Readers: CSV (header, quoting, delimiter), TSV without a header, JSONL, Parquet and the one-session-per-line
 * text format. Every expected value below is read off the fixture by hand (see the comments), not taken from
 * the code's output.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetMetadataAsync, asyncBufferFromFile } from "hyparquet";
import { parquetWriteFile } from "hyparquet-writer";
import { afterAll, describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import {
  dataStats,
  detectFormat,
  Interner,
  numSessions,
  openDataSource,
  readCodedSessions,
  readDelimited,
  readJsonl,
  readParquet,
  readSessionsText,
  readTable,
  type FeatureSchemaDocLike,
} from "../../src/data/index.js";
import { FIX, rawSessions, tempDir } from "./helpers.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function issueOf(p: Promise<unknown>): Promise<{ code: string; line?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof RecblocksError)) throw err;
    const i = err.issues[0]!;
    return { code: i.code, line: i.source?.line, message: i.message };
  }
  throw new Error("expected a RecblocksError");
}

describe("CSV", () => {
  // quoted.csv (6 lines):
  //   1 session_id,item_id,title,price
  //   2 1,"A,1","Red ""big"" shoe",9.5      <- a comma inside quotes, doubled quotes
  //   3 1,B,plain,2
  //   4 2,"A,1","two                          <- a quoted value spanning lines 4-5
  //   5 lines",3.25
  //   6 3,C,"",7                              <- an empty quoted value
  const file = join(FIX, "quoted.csv");

  it("reads a header, quoted commas, doubled quotes, and a value spanning two lines", async () => {
    const t = await readDelimited(file, { format: "csv", header: true });
    expect(t.columns).toEqual(["session_id", "item_id", "title", "price"]);
    expect(t.rows).toBe(4);
    expect(t.header).toBe(true);
    expect(t.data.session_id).toEqual(["1", "1", "2", "3"]);
    expect(t.data.item_id).toEqual(["A,1", "B", "A,1", "C"]);
    expect(t.data.title).toEqual(['Red "big" shoe', "plain", "two\nlines", ""]);
    // text readers keep strings: numbers are parsed where a column is used
    expect(t.data.price).toEqual(["9.5", "2", "3.25", "7"]);
    // the line a row starts on: the multi-line row starts on line 4 (not 5), the next one on 6
    expect(Array.from(t.lines!)).toEqual([2, 3, 4, 6]);
    expect(t.skipped).toBe(0);
  });

  it("counts lines right after a quoted value holding CRLF (CRLF file)", async () => {
    // lines: 1 a,b | 2 1,"x | 3 y" | 4 2,z | 5 3,"p | 6 q" | 7 4,w
    const f = join(tmp.dir, "crlf.csv");
    writeFileSync(f, 'a,b\r\n1,"x\r\ny"\r\n2,z\r\n3,"p\nq"\r\n4,w\r\n');
    const t = await readDelimited(f, { format: "csv", header: true });
    expect(t.data.a).toEqual(["1", "2", "3", "4"]);
    expect(t.data.b).toEqual(["x\r\ny", "z", "p\nq", "w"]);
    expect(Array.from(t.lines!)).toEqual([2, 4, 5, 7]);
  });

  it("reports a ragged row after a multi-line value at the row's own line", async () => {
    // lines: 1 a,b | 2 1,"x | 3 y" | 4 2 (one field: ragged)
    const f = join(tmp.dir, "ragged-after-multiline.csv");
    writeFileSync(f, 'a,b\n1,"x\ny"\n2\n');
    const i = await issueOf(readDelimited(f, { format: "csv", header: true }));
    expect(i.code).toBe("data_ragged_row");
    expect(i.line).toBe(4);
    expect(i.message).toContain("Line 4 has 1 field, expected 2");
  });

  it("selects columns: only those are kept, every name stays listed", async () => {
    const t = await readDelimited(file, { format: "csv", header: true, select: () => ["price", "item_id"] });
    expect(Object.keys(t.data).sort()).toEqual(["item_id", "price"]);
    expect(t.data.price).toEqual(["9.5", "2", "3.25", "7"]);
    expect(t.columns).toEqual(["session_id", "item_id", "title", "price"]);
    const i = await issueOf(readDelimited(file, { format: "csv", header: true, select: () => ["prize"] }));
    expect(i.code).toBe("data_missing_column");
    expect(i.message).toContain('Did you mean "price"?');
  });

  it("makes header names unique and names empty ones", async () => {
    const f = join(tmp.dir, "dupes.csv");
    writeFileSync(f, " a ,a,,b\n1,2,3,4\n");
    const t = await readDelimited(f, { format: "csv", header: true });
    // " a " trimmed -> a; second a -> a_2; empty third -> column_3
    expect(t.columns).toEqual(["a", "a_2", "column_3", "b"]);
    expect(t.data.column_3).toEqual(["3"]);
  });

  it("reads the ';' delimiter of the raw Diginetica format", async () => {
    const t = await readDelimited(join(FIX, "digi-mini.csv"), { format: "csv", delimiter: ";", header: true });
    expect(t.columns).toEqual(["session_id", "user_id", "item_id", "timeframe", "eventdate"]);
    expect(t.rows).toBe(8);
    expect(t.data.item_id).toEqual(["81766", "31331", "32118", "9654", "9654", "81766", "32118", "555"]);
    expect(t.data.user_id).toEqual(["NA", "NA", "NA", "NA", "u7", "u7", "NA", "u7"]);
  });

  it("sniffs the delimiter and the header", () => {
    const d = detectFormat(join(FIX, "digi-mini.csv"));
    expect(d).toMatchObject({ format: "csv", delimiter: ";", header: true });
    const q = detectFormat(join(FIX, "quoted.csv"));
    expect(q).toMatchObject({ format: "csv", delimiter: ",", header: true });
  });
});

describe("TSV without a header", () => {
  // ratings.tsv: user item rating timestamp, tab-separated, no header:
  //   1 10 5 881250949 | 1 20 3 881250950 | 2 10 4 881250951 | 2 "30" 1 881250952
  const file = join(FIX, "ratings.tsv");

  it("names columns column_1.. by default, or as given", async () => {
    const t = await readDelimited(file, { format: "tsv" });
    expect(t.header).toBe(false);
    expect(t.columns).toEqual(["column_1", "column_2", "column_3", "column_4"]);
    expect(t.rows).toBe(4);
    expect(t.data.column_2).toEqual(["10", "20", "10", "30"]);
    expect(Array.from(t.lines!)).toEqual([1, 2, 3, 4]);
    const named = await readTable(file, { format: "tsv", header: false, columnNames: ["user_id", "item_id", "rating", "timestamp"] });
    expect(named.data.rating).toEqual(["5", "3", "4", "1"]);
    expect(named.data.timestamp).toEqual(["881250949", "881250950", "881250951", "881250952"]);
  });

  it("keeps quote characters with quoting off", async () => {
    const t = await readDelimited(file, { format: "tsv", quote: "" });
    expect(t.data.column_2![3]).toBe('"30"');
  });

  it("is detected as TSV without a header, and grouped by user", async () => {
    expect(detectFormat(file)).toMatchObject({ format: "tsv", delimiter: "\t", header: false });
    // users 1 and 2 -> 2 sessions; items 10, 20, 30 -> 3; 4 rows
    const s = await dataStats(file, { columnNames: ["user_id", "item_id", "rating", "timestamp"] });
    expect(s).toMatchObject({ rows: 4, sessions: 2, items: 3, users: 2, prefixExamples: 2, format: "tsv" });
    expect(s.columns).toEqual({ item: "item_id", user: "user_id", timestamp: "timestamp" });
  });
});

describe("JSONL", () => {
  // events.jsonl: line 1 s1/5, line 2 s1/7 (+ "extra": true), line 3 blank, line 4 s2/"x9"
  const file = join(FIX, "events.jsonl");

  it("reads objects, unions their keys, fills missing keys with null, skips blank lines", async () => {
    const t = await readJsonl(file, {});
    expect(t.format).toBe("jsonl");
    expect(t.columns).toEqual(["session_id", "item_id", "ts", "extra"]);
    expect(t.rows).toBe(3);
    expect(t.data.item_id).toEqual([5, 7, "x9"]);
    expect(t.data.extra).toEqual([null, true, null]);
    expect(Array.from(t.lines!)).toEqual([1, 2, 4]);
    expect(detectFormat(file).format).toBe("jsonl");
  });

  it("groups by session and orders by ISO timestamps", async () => {
    const cs = await readCodedSessions(openDataSource(file));
    expect(cs.ids).toEqual(["s1", "s2"]);
    // s1: item 7 at 00:00:05 before item 5 at 00:00:10
    expect(rawSessions(cs)).toEqual([["7", "5"], ["x9"]]);
    // 2024-01-01T00:00:00Z = 19723 days * 86400 = 1704067200 (54 years of 365 days + 13 leap days)
    expect(Array.from(cs.timestamps!)).toEqual([1704067205, 1704067210, 1704067200 + 86400]);
  });

  it("reads a session table: list columns are per step, scalars are context", async () => {
    // session-table.jsonl: 10: [3,4,5] price [1.5,2,3] device m; 11: [4] [7] d; 12: [5,3] [0.5,1] m
    const src = openDataSource(join(FIX, "session-table.jsonl"));
    const schema: FeatureSchemaDocLike = {
      version: 1,
      columns: [
        { name: "session_id", dtype: "int64", tags: ["session-id"] },
        { name: "item_id", dtype: "int64", tags: ["item-id", "list"] },
        { name: "price", dtype: "float64", tags: ["continuous", "list"] },
        { name: "device", dtype: "string", tags: ["categorical", "context"] },
      ],
    };
    const cs = await readCodedSessions(src, { schema });
    expect(cs.ids).toEqual(["10", "11", "12"]);
    expect(rawSessions(cs)).toEqual([["3", "4", "5"], ["4"], ["5", "3"]]);
    expect(Array.from(cs.offsets)).toEqual([0, 3, 4, 6]);
    expect(Array.from(cs.continuous.price!)).toEqual([1.5, 2, 3, 7, 0.5, 1]);
    // device codes in first-seen order: m -> 0, d -> 1
    expect(Array.from(cs.contextCategorical.device!)).toEqual([0, 1, 0]);
    expect(cs.interners.device!.keys).toEqual(["m", "d"]);
  });
});

describe("Parquet", () => {
  it("reads every row group of an interaction log; INT64 becomes numbers, nulls stay null", async () => {
    const f = join(tmp.dir, "log.parquet");
    parquetWriteFile({
      filename: f,
      rowGroupSize: 2, // 5 rows -> row groups of 2, 2, 1
      columnData: [
        { name: "session_id", data: [1, 1, 2, 2, 1], type: "INT32" },
        { name: "item_id", data: [10n, 11n, 12n, 10n, 13n], type: "INT64" },
        { name: "ts", data: [5, 3, 1, 2, 4], type: "DOUBLE" },
        { name: "tag", data: ["a", "b", null, "d", "e"], type: "STRING" },
      ],
    });
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(f));
    expect(meta.row_groups.map((g) => Number(g.num_rows))).toEqual([2, 2, 1]);
    const t = await readParquet(f, {});
    expect(t.format).toBe("parquet");
    expect(t.columns).toEqual(["session_id", "item_id", "ts", "tag"]);
    expect(t.rows).toBe(5);
    expect(t.data).toEqual({ session_id: [1, 1, 2, 2, 1], item_id: [10, 11, 12, 10, 13], ts: [5, 3, 1, 2, 4], tag: ["a", "b", null, "d", "e"] });
    expect(detectFormat(f).format).toBe("parquet");

    // grouped: session 1 = rows (10,t5) (11,t3) (13,t4) -> by time 11, 13, 10; session 2 = (12,t1) (10,t2)
    const cs = await readCodedSessions(openDataSource(f));
    expect(cs.ids).toEqual(["1", "2"]);
    expect(rawSessions(cs)).toEqual([["11", "13", "10"], ["12", "10"]]);
    expect(Array.from(cs.timestamps!)).toEqual([3, 4, 5, 1, 2]);
    // only the selected columns are read
    const sel = await readParquet(f, { select: () => ["item_id"] });
    expect(Object.keys(sel.data)).toEqual(["item_id"]);
  });

  it("reads a session table with LIST columns", async () => {
    const f = join(tmp.dir, "sessions.parquet");
    parquetWriteFile({
      filename: f,
      columnData: [
        { name: "session_id", data: [7, 8] },
        { name: "item_id", data: [[10, 11, 12], [13, 10]] },
      ],
      schema: [
        { name: "root", num_children: 2 },
        { name: "session_id", type: "INT32", repetition_type: "REQUIRED" },
        { name: "item_id", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "INT32", repetition_type: "REQUIRED" },
      ],
    });
    const t = await readParquet(f, {});
    expect(t.data.item_id).toEqual([[10, 11, 12], [13, 10]]);
    const cs = await readCodedSessions(openDataSource(f));
    expect(cs.ids).toEqual(["7", "8"]);
    expect(rawSessions(cs)).toEqual([["10", "11", "12"], ["13", "10"]]);
  });
});

describe("sessions text", () => {
  // sessions.txt (no final newline):
  //   1 "1 2 3" | 2 "" | 3 "4<TAB>5,6<CR>" | 4 " 7  " | 5 "x y 007 7"
  const file = join(FIX, "sessions.txt");

  it("reads one session per line: spaces, tabs, commas, CRs; blank lines skipped; ids are line numbers", async () => {
    const cs = await readSessionsText(file);
    expect(cs.ids).toEqual(["1", "3", "4", "5"]);
    expect(Array.from(cs.offsets)).toEqual([0, 3, 6, 7, 11]);
    // codes in first-seen order: 1..7 -> 0..6, x -> 7, y -> 8, "007" (not canonical, kept as a string) -> 9, 7 -> 6 again
    expect(Array.from(cs.item)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 6]);
    expect(cs.interners.item_id!.keys).toEqual(["1", "2", "3", "4", "5", "6", "7", "x", "y", "007"]);
    expect(cs.interners.item_id!.numeric).toBe(false);
    expect(cs.rows).toBe(11);
    expect(cs.itemColumn).toBe("item_id");
  });

  it("is detected from space-separated ids and shares an interner across files", async () => {
    const train = join(tmp.dir, "train.txt");
    const test = join(tmp.dir, "test.txt");
    writeFileSync(train, "5 6\n7 5 8\n");
    writeFileSync(test, "8 9\n");
    expect(detectFormat(train).format).toBe("sessions-text");
    const it = new Interner();
    const a = await readSessionsText(train, { interner: it });
    const b = await readSessionsText(test, { interner: it });
    // train: 5->0 6->1 7->2 8->3; test: 8 is 3 again, 9 is new -> 4
    expect(Array.from(a.item)).toEqual([0, 1, 2, 0, 3]);
    expect(Array.from(b.item)).toEqual([3, 4]);
    expect(it.numeric).toBe(true);
    // 2 sessions, 5 clicks, items 5 6 7 8 -> 4; prefix examples (2-1)+(3-1) = 3
    const s = await dataStats(train);
    expect(s).toMatchObject({ rows: 5, sessions: 2, items: 4, users: null, prefixExamples: 3, avgSessionLength: 2.5, format: "sessions-text" });
    expect(numSessions(b)).toBe(1);
  });
});
