/** Small helpers shared by the data tests (not a test file itself). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { groupSessions, numSessions, type CodedSessions, type RawTable, type Session } from "../../src/data/index.js";

/** The small hand-made fixtures of the data tests. */
export const FIX = join(import.meta.dirname, "../fixtures/data");

/** The real datasets (../shared/data next to the project); may be absent. */
export const SHARED = join(process.cwd(), "..", "shared", "data");

/** A fresh temporary folder and a function that removes it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "recblocks-data-test-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The raw item ids of every coded session (interner keys), oldest first. */
export function rawSessions(cs: CodedSessions): string[][] {
  const keys = cs.interners[cs.itemColumn]!.keys;
  const out: string[][] = [];
  for (let s = 0; s < numSessions(cs); s++) out.push(Array.from(cs.item.subarray(cs.offsets[s]!, cs.offsets[s + 1]!), (c) => keys[c]!));
  return out;
}

/** Coded sessions made from lists of raw item ids (session ids "s1", "s2", ...), through groupSessions. */
export function codedFromLists(lists: (string | number)[][]): CodedSessions {
  const session_id: string[] = [];
  const item_id: (string | number)[] = [];
  lists.forEach((l, k) => {
    for (const it of l) {
      session_id.push(`s${k + 1}`);
      item_id.push(it);
    }
  });
  const table: RawTable = { file: "in-memory", format: "csv", columns: ["session_id", "item_id"], data: { session_id, item_id }, rows: item_id.length, skipped: 0 };
  return groupSessions(table, { item: "item_id", session: "session_id" });
}

/** A Session with the given dense item ids (and optional side features). */
export function session(id: string, items: number[], extra: Partial<Pick<Session, "categorical" | "continuous" | "context">> = {}): Session {
  return { id, items: Int32Array.from(items), categorical: extra.categorical ?? {}, continuous: extra.continuous ?? {}, context: extra.context ?? {} };
}
