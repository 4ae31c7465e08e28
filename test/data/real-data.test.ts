/**
 * The real datasets in ../shared/data (see its README.md): `recblocks data stats --json` counts, and the
 * prefix augmentation of Diginetica's train/test sessions. The expected counts are the datasets' published
 * figures (and were checked with awk, independently of this code). Skipped when the folder is absent.
 *
 * Runtime: the whole file takes about 2-3 s on 2 cores (train_sessions.txt is 5 MB and is read twice).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { loadRecipeData, openDataSource, prefixExamples, readCodedSessions } from "../../src/data/index.js";
import { rawSessions, SHARED } from "./helpers.js";

const DIGI = join(SHARED, "diginetica");
const ML = join(SHARED, "ml-100k");

/** Runs the CLI in-process and returns its exit code and the JSON object on the last line of stdout. */
async function cli(argv: string[]): Promise<{ code: number; json: Record<string, unknown>; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main(argv);
    return { code, json: JSON.parse(out.trim().split("\n").pop() ?? "null"), err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

if (!existsSync(SHARED)) console.warn(`test/data/real-data.test.ts: skipped, ${SHARED} is absent (the real datasets are not shipped with the project).`);

describe.skipIf(!existsSync(SHARED))(`real data in ${SHARED} (skipped when the folder is absent)`, () => {
  it("data stats: Diginetica raw clicks (sample_train-item-views.csv, ';')", async () => {
    const r = await cli(["data", "stats", join(DIGI, "sample_train-item-views.csv"), "--json"]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      rows: 12_391,
      sessions: 2_986,
      items: 7_139,
      users: 1_270, // distinct user_id other than NA
      prefixExamples: 12_391 - 2_986,
      format: "csv",
      columns: { item: "item_id", session: "session_id", user: "user_id", timestamp: "eventdate", order: "timeframe" },
      skippedRows: 0,
    });
  });

  it("orders a real Diginetica session by eventdate, then timeframe", async () => {
    const cs = await readCodedSessions(openDataSource(join(DIGI, "sample_train-item-views.csv")));
    expect(cs.ids[0]).toBe("1");
    // session 1's ten rows, sorted by hand by timeframe (all on 2016-05-09):
    // 75848 9654, 173912 33043, 243569 32118, 329870 12352, 390072 35077, 487369 36118,
    // 526309 81766, 991416 129055, 1031018 31331, 1112408 32627
    expect(rawSessions(cs)[0]).toEqual(["9654", "33043", "32118", "12352", "35077", "36118", "81766", "129055", "31331", "32627"]);
  });

  it("data stats: MovieLens 100K u.data (tab-separated, no header, grouped by user)", async () => {
    const r = await cli(["data", "stats", join(ML, "u.data"), "--json"]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      rows: 100_000,
      sessions: 943,
      items: 1_682,
      users: 943,
      prefixExamples: 100_000 - 943,
      format: "tsv",
      columns: { item: "item_id", user: "user_id", timestamp: "timestamp" },
    });
  });

  it("data stats: Diginetica sessions text (train 186,670 / test 15,963 sessions)", async () => {
    const tr = await cli(["data", "stats", join(DIGI, "train_sessions.txt"), "--json"]);
    expect(tr.code).toBe(0);
    // 906,140 clicks = 719,470 examples + 186,670 sessions; items renumbered 1..43097
    expect(tr.json).toMatchObject({ rows: 906_140, sessions: 186_670, items: 43_097, users: null, prefixExamples: 719_470, format: "sessions-text" });
    const te = await cli(["data", "stats", join(DIGI, "test_sessions.txt"), "--json"]);
    expect(te.code).toBe(0);
    expect(te.json).toMatchObject({ rows: 76_821, sessions: 15_963, items: 21_131, prefixExamples: 60_858, format: "sessions-text" });
  });

  it("prefix augmentation of Diginetica yields 719,470 train and 60,858 test examples", async () => {
    const d = await loadRecipeData({ train: join(DIGI, "train_sessions.txt"), test: join(DIGI, "test_sessions.txt") }, null);
    expect(d.train.length).toBe(186_670);
    expect(d.test!.length).toBe(15_963);
    expect(prefixExamples(d.train).session.length).toBe(719_470);
    expect(prefixExamples(d.test!).session.length).toBe(60_858);
    // every test item was seen in train (the SR-GNN preprocessing drops the others)
    const v = d.vocabularies.item_id!;
    expect(v.numValues).toBe(43_097);
    expect(d.stats.oovSteps).toBe(0);
    expect(v.has(1) && v.has(43_097) && !v.has(43_098) && !v.has(0)).toBe(true);
  });
});
