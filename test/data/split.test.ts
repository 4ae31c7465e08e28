/**
 * Splits: time (last N days, a cutoff, fractions of the latest sessions), leave-last-out (with and without a
 * validation item) and random with a seed. The expected sessions are worked out by hand below.
 */
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { groupSessions, splitSessions, type CodedSessions, type RawTable, type SplitConfig } from "../../src/data/index.js";
import { codedFromLists, rawSessions } from "./helpers.js";

const DAY = 86_400;

// Five sessions, times in days (item@day):
//   s1: 1@0 2@0.5 3@1     ends day 1
//   s2: 4@4 5@5           ends day 5
//   s3: 6@3               ends day 3
//   s4: 7@7 8@8 9@9 10@10 ends day 10
//   s5: 11@8 12@9         ends day 9
// By end time: s1 (1), s3 (3), s2 (5), s5 (9), s4 (10).
function fiveSessions(): CodedSessions {
  const rows: [string, number, number][] = [
    ["s1", 1, 0], ["s1", 2, 0.5], ["s1", 3, 1],
    ["s2", 4, 4], ["s2", 5, 5],
    ["s3", 6, 3],
    ["s4", 7, 7], ["s4", 8, 8], ["s4", 9, 9], ["s4", 10, 10],
    ["s5", 11, 8], ["s5", 12, 9],
  ];
  const table: RawTable = {
    file: "in-memory",
    format: "csv",
    columns: ["session_id", "item_id", "timestamp"],
    data: { session_id: rows.map((r) => r[0]), item_id: rows.map((r) => r[1]), timestamp: rows.map((r) => r[2] * DAY) },
    rows: rows.length,
    skipped: 0,
  };
  return groupSessions(table, { item: "item_id", session: "session_id", timestamp: "timestamp" });
}

const ids = (cs: CodedSessions | undefined) => cs?.ids ?? [];

describe("time split", () => {
  it("lastDays: sessions ending in the last N days before the latest timestamp are test", () => {
    // latest end: day 10; cutoff day 8; ends > 8: s4 (10), s5 (9)
    const r = splitSessions(fiveSessions(), { type: "time", lastDays: 2 });
    expect(ids(r.train)).toEqual(["s1", "s2", "s3"]);
    expect(ids(r.test)).toEqual(["s4", "s5"]);
    expect(r.valid).toBeUndefined();
    expect(rawSessions(r.test!)).toEqual([["7", "8", "9", "10"], ["11", "12"]]);
    expect(Array.from(r.test!.timestamps!)).toEqual([7, 8, 9, 10, 8, 9].map((d) => d * DAY));
  });

  it("lastDays with validFraction: the latest of the rest are validation", () => {
    // rest by end time: s1, s3, s2; round(0.5 * 3) = 2 -> valid s3, s2 (kept in original order: s2, s3)
    const r = splitSessions(fiveSessions(), { type: "time", lastDays: 2, validFraction: 0.5 });
    expect(ids(r.train)).toEqual(["s1"]);
    expect(ids(r.valid)).toEqual(["s2", "s3"]);
    expect(ids(r.test)).toEqual(["s4", "s5"]);
  });

  it("a cutoff timestamp (epoch seconds or ISO date)", () => {
    // ends after day 4: s2 (5), s4 (10), s5 (9)
    for (const timestamp of [4 * DAY, "1970-01-05T00:00:00Z"]) {
      const r = splitSessions(fiveSessions(), { type: "time", timestamp });
      expect(ids(r.train)).toEqual(["s1", "s3"]);
      expect(ids(r.test)).toEqual(["s2", "s4", "s5"]);
    }
  });

  it("fractions: the latest round(testFraction * S) are test, then the latest of the rest are valid", () => {
    // round(0.4 * 5) = 2 -> test s5, s4; rest s1 s3 s2, round(0.34 * 3) = 1 -> valid s2
    const r = splitSessions(fiveSessions(), { type: "time", testFraction: 0.4, validFraction: 0.34 });
    expect(ids(r.train)).toEqual(["s1", "s3"]);
    expect(ids(r.valid)).toEqual(["s2"]);
    expect(ids(r.test)).toEqual(["s4", "s5"]);
  });

  it("needs timestamps", () => {
    try {
      splitSessions(codedFromLists([[1, 2]]), { type: "time", lastDays: 1 });
      expect.unreachable();
    } catch (err) {
      expect((err as RecblocksError).issues[0]!.code).toBe("data_bad_config");
      expect((err as RecblocksError).issues[0]!.message).toContain("needs a timestamp column");
    }
  });
});

describe("leave-last-out", () => {
  it("holds out the last item: train is every session of length >= 2 minus its last item, test the whole session", () => {
    const r = splitSessions(fiveSessions(), { type: "leave-last-out" });
    // s3 (one item) has nothing to hold out and nothing to train on
    expect(ids(r.train)).toEqual(["s1", "s2", "s4", "s5"]);
    expect(rawSessions(r.train)).toEqual([["1", "2"], ["4"], ["7", "8", "9"], ["11"]]);
    expect(ids(r.test)).toEqual(["s1", "s2", "s4", "s5"]);
    expect(rawSessions(r.test!)).toEqual([["1", "2", "3"], ["4", "5"], ["7", "8", "9", "10"], ["11", "12"]]);
    expect(r.valid).toBeUndefined();
    // timestamps follow their items
    expect(Array.from(r.train.timestamps!)).toEqual([0, 0.5, 4, 7, 8, 9, 8].map((d) => d * DAY));
  });

  it("with validFraction > 0 also holds out the second-to-last item for validation", () => {
    const r = splitSessions(fiveSessions(), { type: "leave-last-out", validFraction: 0.1 });
    // train: sessions longer than 2, minus 2 items; valid: length >= 3 minus 1; test: length >= 2 whole
    expect(rawSessions(r.train)).toEqual([["1"], ["7", "8"]]);
    expect(ids(r.valid)).toEqual(["s1", "s4"]);
    expect(rawSessions(r.valid!)).toEqual([["1", "2"], ["7", "8", "9"]]);
    expect(ids(r.test)).toEqual(["s1", "s2", "s4", "s5"]);
  });
});

describe("random split", () => {
  const ten = () => codedFromLists(Array.from({ length: 10 }, (_, k) => [k + 1, k + 101]));
  const cfg: SplitConfig = { type: "random", testFraction: 0.2, validFraction: 0.1, seed: 5 };

  it("sizes round(fraction * S), disjoint, covering every session, each in original order", () => {
    const r = splitSessions(ten(), cfg);
    expect([r.train.ids.length, r.valid!.ids.length, r.test!.ids.length]).toEqual([7, 1, 2]);
    const all = [...r.train.ids, ...r.valid!.ids, ...r.test!.ids];
    expect(new Set(all).size).toBe(10);
    expect([...all].sort()).toEqual(ten().ids.slice().sort());
    const order = (xs: string[]) => xs.map((x) => Number(x.slice(1)));
    for (const part of [r.train, r.valid!, r.test!]) {
      const o = order(part.ids);
      expect(o).toEqual([...o].sort((a, b) => a - b));
      // items stay with their session: session sK holds K and K+100
      part.ids.forEach((id, s) => expect(rawSessions(part)[s]).toEqual([String(Number(id.slice(1))), String(Number(id.slice(1)) + 100)]));
    }
  });

  it("is reproducible with a seed; another seed gives another split", () => {
    const a = splitSessions(ten(), cfg);
    const b = splitSessions(ten(), cfg);
    expect([a.train.ids, a.valid!.ids, a.test!.ids]).toEqual([b.train.ids, b.valid!.ids, b.test!.ids]);
    const others = [6, 7, 8].map((seed) => splitSessions(ten(), { ...cfg, seed }));
    expect(others.some((o) => JSON.stringify([o.valid!.ids, o.test!.ids]) !== JSON.stringify([a.valid!.ids, a.test!.ids]))).toBe(true);
    // the default seed is 42
    const d = splitSessions(ten(), { type: "random", testFraction: 0.2 });
    const e = splitSessions(ten(), { type: "random", testFraction: 0.2, seed: 42 });
    expect(d.test!.ids).toEqual(e.test!.ids);
  });

  it("checks the fractions", () => {
    const codeOf = (c: SplitConfig) => {
      try {
        splitSessions(ten(), c);
        return "none";
      } catch (err) {
        return (err as RecblocksError).issues[0]!.code;
      }
    };
    expect(codeOf({ type: "random", testFraction: 1 })).toBe("data_bad_config");
    expect(codeOf({ type: "random", testFraction: 0.5, validFraction: 0.5 })).toBe("data_bad_config");
    expect(codeOf({ type: "nope" } as unknown as SplitConfig)).toBe("data_bad_config");
    expect(splitSessions(ten(), { type: "none" }).train.ids.length).toBe(10);
  });
});
