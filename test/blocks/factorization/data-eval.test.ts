import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RecblocksError } from "../../../src/errors/issue.js";
import { sharedDataDir } from "../../../src/paths.js";
import { evaluateLeaveLastOut, rankingMetrics } from "../../../blocks/factorization/evaluate.js";
import { leaveLastOut, parseSyntheticSpec, readInteractionsFile, syntheticInteractions } from "../../../blocks/factorization/interactions.js";
import { topKRow } from "../../../blocks/factorization/topk.js";

const tmp = mkdtempSync(join(tmpdir(), "als-data-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("interactions and evaluation", () => {
  it("reads a u.data-style file and holds out the last interaction by time, ties by file order", () => {
    const file = join(tmp, "u.data");
    writeFileSync(file, ["10\t1\t5\t100", "10\t2\t3\t300", "20\t1\t4\t50", "10\t3\t4\t300", "20\t3\t1\t20", "30\t2\t2\t7", ""].join("\n"));
    const d = readInteractionsFile(file);
    expect(d.users).toEqual(["10", "20", "30"]);
    expect(d.items).toEqual(["1", "2", "3"]);
    expect(Array.from(d.value)).toEqual([5, 3, 4, 4, 1, 2]);
    const s = leaveLastOut(d);
    // user 10: items 2 and 3 tie at t=300 -> item 3 (later in the file); user 20: item 1 (t=50); user 30 has one row: kept in train
    expect(Array.from(s.testUsers)).toEqual([0, 1]);
    expect(Array.from(s.testItems)).toEqual([2, 0]);
    expect(Array.from(s.train.indptr)).toEqual([0, 2, 3, 4]);
    expect(Array.from(s.train.indices)).toEqual([0, 1, 2, 1]);
  });

  it("bad rows are reported with file:line:col", () => {
    const file = join(tmp, "bad.data");
    writeFileSync(file, "1\t2\t3\t4\n1\t2\tx\t5\n1\t2\n");
    try {
      readInteractionsFile(file);
      expect.unreachable();
    } catch (e) {
      const issues = (e as RecblocksError).issues;
      expect(issues.map((i) => [i.code, i.source?.line, i.source?.column])).toEqual([["invalid_number", 2, 5], ["ragged_row", 3, 1]]);
    }
    expect(() => readInteractionsFile(join(tmp, "nope"))).toThrowError(RecblocksError);
    expect(() => parseSyntheticSpec("builtin:synthetic?users=0")).toThrowError(RecblocksError);
    expect(parseSyntheticSpec("builtin:synthetic?sessions=30&items=9")).toEqual({ users: 30, items: 9 });
  });

  it("ranking metrics with one held-out item: hand-computed values", () => {
    // ranks 1, 3, miss, 10 at k=10; k=2 sees only rank 1
    const m = rankingMetrics(Int32Array.from([1, 3, 0, 10]), [2, 10], ["hitrate", "ndcg", "precision", "map"]);
    expect(m["hitrate@10"]).toBeCloseTo(3 / 4, 12);
    expect(m["ndcg@10"]).toBeCloseTo((1 + 1 / Math.log2(4) + 1 / Math.log2(11)) / 4, 12);
    expect(m["precision@10"]).toBeCloseTo(3 / 4 / 10, 12);
    expect(m["map@10"]).toBeCloseTo((1 + 1 / 3 + 1 / 10) / 4, 12);
    expect(m["hitrate@2"]).toBeCloseTo(1 / 4, 12);
  });

  it("top-k: exclusions inside the selection, ties to the smaller index, NaN never returned", () => {
    const scores = [0.5, 0.9, 0.9, NaN, 0.1, 0.7];
    const idx = new Int32Array(3);
    const sc = new Float64Array(3);
    expect(topKRow(scores, 0, 6, 3, null, idx, sc)).toBe(3);
    expect(Array.from(idx)).toEqual([1, 2, 5]);
    expect(topKRow(scores, 0, 6, 3, (i) => i === 1 || i === 5, idx, sc)).toBe(3);
    expect(Array.from(idx)).toEqual([2, 0, 4]);
    expect(topKRow(scores, 0, 6, 3, (i) => i !== 4, idx, sc)).toBe(1);
  });

  it("leave-last-out evaluation excludes seen items (a user who saw everything but the target hits at rank 1)", () => {
    const d = syntheticInteractions({ users: 5, items: 8, seed: 1, perUser: 4 });
    const s = leaveLastOut(d);
    const f = 1;
    const X = new Float32Array(d.users.length).fill(1);
    const Y = new Float32Array(d.items.length).map((_, i) => d.items.length - i); // item 0 best
    const m = evaluateLeaveLastOut(X, Y, f, d.items.length, s.train, s.testUsers, s.testItems, { ks: [8] });
    expect(m["hitrate@8"]).toBe(1); // every unseen item fits in the top 8
  });

  it.skipIf(!existsSync(join(sharedDataDir(), "ml-100k", "u.data")))("ml-100k: 100,000 rows, 943 users, 1,682 items; 943 held out", () => {
    const d = readInteractionsFile(join(sharedDataDir(), "ml-100k", "u.data"));
    expect([d.user.length, d.users.length, d.items.length]).toEqual([100000, 943, 1682]);
    const s = leaveLastOut(d);
    expect(s.testUsers.length).toBe(943);
    expect(s.train.indptr[s.train.rows]).toBe(99057);
  });
});
