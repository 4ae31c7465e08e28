/**
 * Grouping rows into sessions (session id, else user id), ordering by timestamp then a tie-breaker column
 * then file order, and the session filters (consecutive repeats, minimum length, minimum item support,
 * iterated to a fixed point). Expected values are worked out by hand in the comments.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { dataStats, filterSessions, groupSessions, numSessions, openDataSource, readCodedSessions, readDelimited, type RawTable } from "../../src/data/index.js";
import { codedFromLists, FIX, rawSessions } from "./helpers.js";

// digi-mini.csv, rows in file order (session;user;item;timeframe;eventdate):
//   r0 1;NA;81766;526309;2016-05-09     r4 3;u7;9654;500;2016-05-10
//   r1 1;NA;31331;1031018;2016-05-09    r5 3;u7;81766;100;2016-05-10
//   r2 1;NA;32118;243569;2016-05-09     r6 2;NA;32118;20;2016-05-09
//   r3 2;NA;9654;75848;2016-05-09       r7 3;u7;555;300;2016-05-08
// By (eventdate, timeframe):
//   session 1 (one date): timeframes 243569 < 526309 < 1031018 -> 32118, 81766, 31331
//   session 2 (one date): 20 < 75848                            -> 32118, 9654
//   session 3: 555 (05-08) first; then on 05-10 timeframe 100 < 500 -> 81766, 9654
const DIGI = join(FIX, "digi-mini.csv");
// 2016-05-09T00:00:00Z in epoch seconds: 2016-01-01 is day 46*365 + 11 leap days (1972..2012) = 16801;
// + Jan 31 + Feb 29 + Mar 31 + Apr 30 + 8 = 16801 + 129 = 16930 days; * 86400 = 1,462,752,000.
const MAY9 = 1_462_752_000;
const DAY = 86_400;

describe("grouping and ordering", () => {
  it("groups by session id, orders by timestamp then the tie-breaker column", async () => {
    const cs = await readCodedSessions(openDataSource(DIGI));
    expect(cs.sessionColumn).toBe("session_id");
    expect(cs.timestampColumn).toBe("eventdate");
    expect(cs.orderColumn).toBe("timeframe");
    expect(cs.ids).toEqual(["1", "2", "3"]); // first-seen order of the session ids
    expect(Array.from(cs.offsets)).toEqual([0, 3, 5, 8]);
    expect(rawSessions(cs)).toEqual([
      ["32118", "81766", "31331"],
      ["32118", "9654"],
      ["555", "81766", "9654"],
    ]);
    // item codes are given in step order: 32118 0, 81766 1, 31331 2, 9654 3, 555 4
    expect(Array.from(cs.item)).toEqual([0, 1, 2, 0, 3, 4, 1, 3]);
    expect(Array.from(cs.timestamps!)).toEqual([MAY9, MAY9, MAY9, MAY9, MAY9, MAY9 - DAY, MAY9 + DAY, MAY9 + DAY]);
    // users: NA is missing; session 3 is u7
    expect(cs.users![0]).toBe(-1);
    expect(cs.users![1]).toBe(-1);
    expect(cs.interners.user_id!.keys[cs.users![2]!]).toBe("u7");
    expect(cs.distinctUsers).toBe(1);
    expect(cs.rows).toBe(8);
  });

  it("without the tie-breaker, equal timestamps keep file order", async () => {
    const t = await readDelimited(DIGI, { format: "csv", delimiter: ";", header: true });
    const cs = groupSessions(t, { item: "item_id", session: "session_id", timestamp: "eventdate" });
    // session 1: r0 r1 r2 (same date); session 2: r3 r6; session 3: r7 (05-08), then r4 r5 (05-10) in file order
    expect(rawSessions(cs)).toEqual([
      ["81766", "31331", "32118"],
      ["9654", "32118"],
      ["555", "9654", "81766"],
    ]);
    // and with no timestamp at all, file order throughout
    const plain = groupSessions(t, { item: "item_id", session: "session_id" });
    expect(rawSessions(plain)).toEqual([
      ["81766", "31331", "32118"],
      ["9654", "32118"],
      ["9654", "81766", "555"],
    ]);
    expect(plain.timestamps).toBeUndefined();
  });

  it("orders by the tie-breaker alone, as numbers (as strings 1031018 would sort before 243569)", async () => {
    const t = await readDelimited(DIGI, { format: "csv", delimiter: ";", header: true });
    const cs = groupSessions(t, { item: "item_id", session: "session_id", order: "timeframe" });
    // session 3 by timeframe: 100 (81766) < 300 (555) < 500 (9654)
    expect(rawSessions(cs)).toEqual([
      ["32118", "81766", "31331"],
      ["32118", "9654"],
      ["81766", "555", "9654"],
    ]);
  });

  it("groups by user when there is no session column", () => {
    const table: RawTable = {
      file: "in-memory",
      format: "csv",
      columns: ["user", "item", "t"],
      data: { user: ["b", "a", "b", "a", "b"], item: [1, 2, 3, 4, 5], t: ["30", "20", "10", "10", "20"] },
      rows: 5,
      skipped: 0,
    };
    const cs = groupSessions(table, { item: "item", user: "user", timestamp: "t" });
    // b: items 1 (t30), 3 (t10), 5 (t20) -> 3, 5, 1; a: 2 (t20), 4 (t10) -> 4, 2
    expect(cs.ids).toEqual(["b", "a"]);
    expect(rawSessions(cs)).toEqual([["3", "5", "1"], ["4", "2"]]);
    expect(cs.distinctUsers).toBe(2);
  });

  it("turns millisecond timestamps into seconds", () => {
    const table: RawTable = {
      file: "in-memory",
      format: "csv",
      columns: ["s", "i", "t"],
      data: { s: [1, 1], i: [1, 2], t: [1_700_000_001_000, 1_700_000_000_500] },
      rows: 2,
      skipped: 0,
    };
    const cs = groupSessions(table, { item: "i", session: "s", timestamp: "t" });
    expect(rawSessions(cs)).toEqual([["2", "1"]]);
    expect(Array.from(cs.timestamps!)).toEqual([1_700_000_000.5, 1_700_000_001]);
  });

  it("carries categorical and continuous step features and context features, in step order", () => {
    const table: RawTable = {
      file: "in-memory",
      format: "csv",
      columns: ["s", "i", "t", "cat", "price", "device", "age"],
      data: {
        s: ["x", "x", "y", "x"],
        i: ["a", "b", "c", "d"],
        t: [3, 1, 5, 2],
        cat: ["k", "m", "k", ""],
        price: ["1.5", "2", "3", "4.25"],
        device: ["pc", "pc", "tv", "pc"],
        age: ["30", "30", "41", "30"],
      },
      rows: 4,
      skipped: 0,
    };
    const cs = groupSessions(table, { item: "i", session: "s", timestamp: "t" }, { categorical: ["cat"], continuous: ["price"], contextCategorical: ["device"], contextContinuous: ["age"] });
    // session x by time: b (t1), d (t2), a (t3); session y: c
    expect(rawSessions(cs)).toEqual([["b", "d", "a"], ["c"]]);
    // cat in step order m, "" (missing -> -1), k, then k; codes m 0, k 1
    expect(Array.from(cs.categorical.cat!)).toEqual([0, -1, 1, 1]);
    expect(cs.interners.cat!.keys).toEqual(["m", "k"]);
    expect(Array.from(cs.continuous.price!)).toEqual([2, 4.25, 1.5, 3]);
    expect(Array.from(cs.contextCategorical.device!)).toEqual([0, 1]);
    expect(Array.from(cs.contextContinuous.age!)).toEqual([30, 41]);
  });

  it("counts rows, sessions, items and users (data stats)", async () => {
    const s = await dataStats(DIGI);
    // 8 rows; sessions 1 2 3; items 81766 31331 32118 9654 555; users: u7 only (NA is missing)
    expect(s).toEqual({
      rows: 8,
      sessions: 3,
      items: 5,
      users: 1,
      avgSessionLength: 2.6667, // 8 / 3 rounded to 4 places
      prefixExamples: 5, // (3-1) + (2-1) + (3-1)
      format: "csv",
      columns: { item: "item_id", session: "session_id", user: "user_id", timestamp: "eventdate", order: "timeframe" },
      skippedRows: 0,
    });
  });

  it("fails with a located error when neither a session nor a user column exists", () => {
    const table: RawTable = { file: "t.csv", format: "csv", columns: ["item"], data: { item: [1] }, rows: 1, skipped: 0 };
    try {
      groupSessions(table, { item: "item" });
      expect.unreachable();
    } catch (err) {
      expect((err as RecblocksError).issues[0]!.code).toBe("data_missing_column");
    }
  });
});

describe("filters", () => {
  it("dropConsecutiveRepeats removes only immediate repeats", () => {
    const cs = codedFromLists([[1, 1, 2, 1, 3, 3, 3], [7, 7], [5]]);
    const out = filterSessions(cs, { dropConsecutiveRepeats: true });
    // 1 1 2 1 3 3 3 -> 1 2 1 3 (the second 1 is not next to the first); 7 7 -> 7
    expect(rawSessions(out)).toEqual([["1", "2", "1", "3"], ["7"], ["5"]]);
    expect(out.ids).toEqual(["s1", "s2", "s3"]);
    // the input is left as it was
    expect(rawSessions(cs)[0]).toEqual(["1", "1", "2", "1", "3", "3", "3"]);
  });

  it("dropConsecutiveRepeats runs before minSessionLength", () => {
    const out = filterSessions(codedFromLists([[7, 7], [1, 2]]), { dropConsecutiveRepeats: true, minSessionLength: 2 });
    expect(out.ids).toEqual(["s2"]);
    expect(rawSessions(out)).toEqual([["1", "2"]]);
  });

  it("minSessionLength drops short sessions", () => {
    const out = filterSessions(codedFromLists([[1, 2, 3], [4, 5], [6, 7, 8, 9], [1]]), { minSessionLength: 3 });
    expect(out.ids).toEqual(["s1", "s3"]);
    expect(Array.from(out.offsets)).toEqual([0, 3, 7]);
  });

  it("minItemSupport removes rare items from sessions (and sessions left empty)", () => {
    // counts: 1 x3, 2 x1, 3 x2, 4 x1, 5 x1
    const out = filterSessions(codedFromLists([[1, 2, 3], [1, 4], [1, 3], [5]]), { minItemSupport: 2 });
    // s1 1 2 3 -> 1 3; s2 1 4 -> 1; s3 1 3 stays; s4 5 -> empty -> dropped
    expect(out.ids).toEqual(["s1", "s2", "s3"]);
    expect(rawSessions(out)).toEqual([["1", "3"], ["1"], ["1", "3"]]);
  });

  // The chain: S1 90 20 | S2 20 30 | S3 30 40 | S4 40 50 50 | S5 60 60, with minItemSupport 2, minSessionLength 2.
  // Counts: 90:1, 20:2, 30:2, 40:2, 50:2, 60:2.
  const chain = () => codedFromLists([[90, 20], [20, 30], [30, 40], [40, 50, 50], [60, 60]]);

  it("applies support once, then length once, by default", () => {
    // support: 90 goes -> S1 = [20]; length: S1 dropped. Later count changes are not looked at.
    const out = filterSessions(chain(), { minItemSupport: 2, minSessionLength: 2 });
    expect(out.ids).toEqual(["s2", "s3", "s4", "s5"]);
    expect(rawSessions(out)).toEqual([["20", "30"], ["30", "40"], ["40", "50", "50"], ["60", "60"]]);
  });

  it("iterates the two filters to a fixed point with iterateFilters", () => {
    // round 1: 90 goes, S1 dropped -> 20:1. round 2: 20 goes, S2 = [30] dropped -> 30:1.
    // round 3: 30 goes, S3 = [40] dropped -> 40:1. round 4: 40 goes, S4 = [50 50] stays.
    // round 5: 50:2, 60:2, every session >= 2: nothing changes.
    const out = filterSessions(chain(), { minItemSupport: 2, minSessionLength: 2, iterateFilters: true });
    expect(out.ids).toEqual(["s4", "s5"]);
    expect(rawSessions(out)).toEqual([["50", "50"], ["60", "60"]]);
    expect(numSessions(out)).toBe(2);
    expect(out.item.length).toBe(4);
  });

  it("filters keep step features aligned with their items", () => {
    const table: RawTable = {
      file: "in-memory",
      format: "csv",
      columns: ["s", "i", "p"],
      data: { s: [1, 1, 1, 2, 2], i: [5, 5, 6, 6, 7], p: ["0.5", "0.5", "1", "2", "3"] },
      rows: 5,
      skipped: 0,
    };
    const cs = groupSessions(table, { item: "i", session: "s" }, { continuous: ["p"] });
    // repeats first: s1 5 5 6 -> 5 6 (prices 0.5 1); support is counted after that:
    // 5:1, 6:2, 7:1 -> s1 = [6] (p 1), s2 = 6 7 -> [6] (p 2)
    const out = filterSessions(cs, { dropConsecutiveRepeats: true, minItemSupport: 2 });
    expect(rawSessions(out)).toEqual([["6"], ["6"]]);
    expect(Array.from(out.continuous.p!)).toEqual([1, 2]);
  });
});
