import { failData } from "./errors.js";
import { numSessions, subsetSessions, type CodedSessions } from "./coded.js";
import { mulberry32, shuffleInPlace } from "./rng.js";

export interface SplitConfig {
  /** none: everything is train; time: the latest sessions are test (and valid); leave-last-out: the last item of each session/user is held out; random: sessions drawn with a seed. */
  type: "none" | "time" | "leave-last-out" | "random";
  /** Share of sessions for validation (time, random); for leave-last-out any value > 0 also holds out the second-to-last item for validation. */
  validFraction?: number;
  /** Share of sessions for test (time without lastDays/timestamp, random). */
  testFraction?: number;
  /** time: sessions ending in the last N days (before the latest timestamp) are test. */
  lastDays?: number;
  /** time: sessions ending after this time (epoch seconds or ISO date) are test. */
  timestamp?: number | string;
  /** random: shuffle seed (default 42). */
  seed?: number;
}

export interface SplitResult {
  train: CodedSessions;
  valid?: CodedSessions;
  test?: CodedSessions;
}

const DAY = 86400;

function sessionEnd(cs: CodedSessions, s: number): number {
  return cs.timestamps![cs.offsets[s + 1]! - 1]!;
}

/** Splits coded sessions. Each split keeps the sessions' original order. */
export function splitSessions(cs: CodedSessions, cfg: SplitConfig, where = "data.split"): SplitResult {
  const S = numSessions(cs);
  const vf = cfg.validFraction ?? 0;
  const tf = cfg.testFraction ?? 0;
  for (const [k, v] of [["validFraction", vf], ["testFraction", tf]] as const)
    if (!(v >= 0 && v < 1)) failData("data_bad_config", { file: where, column: k }, `${where}.${k} must be in [0, 1), got ${v}.`);
  if (vf + tf >= 1) failData("data_bad_config", { file: where }, `${where}: validFraction + testFraction must be below 1 (got ${vf + tf}).`);
  const all = Int32Array.from({ length: S }, (_, i) => i);
  switch (cfg.type) {
    case "none":
      return { train: cs };
    case "random": {
      const order = shuffleInPlace(all.slice(), mulberry32(cfg.seed ?? 42));
      const nt = Math.round(tf * S);
      const nv = Math.round(vf * S);
      const test = order.subarray(0, nt).slice().sort();
      const valid = order.subarray(nt, nt + nv).slice().sort();
      const train = order.subarray(nt + nv).slice().sort();
      return { train: subsetSessions(cs, train), ...(nv ? { valid: subsetSessions(cs, valid) } : {}), ...(nt ? { test: subsetSessions(cs, test) } : {}) };
    }
    case "time": {
      if (!cs.timestamps)
        failData("data_bad_config", { file: where, column: "type" }, `A time split needs a timestamp column, and ${cs.file} has none.`, {
          hint: "Set data.columns.timestamp, tag a column `timestamp` in the feature schema, or use split type random / leave-last-out.",
        });
      const ends = Float64Array.from(all, (s) => sessionEnd(cs, s));
      const byTime = all.slice().sort((a, b) => ends[a]! - ends[b]! || a - b);
      let cutoff: number | undefined;
      if (cfg.timestamp !== undefined) {
        cutoff = typeof cfg.timestamp === "number" ? cfg.timestamp : Date.parse(cfg.timestamp) / 1000;
        if (!Number.isFinite(cutoff)) failData("data_bad_config", { file: where, column: "timestamp" }, `${where}.timestamp ${JSON.stringify(cfg.timestamp)} is not epoch seconds or an ISO date.`);
      } else if (cfg.lastDays !== undefined) {
        let max = -Infinity;
        for (let s = 0; s < S; s++) if (ends[s]! > max) max = ends[s]!;
        cutoff = max - cfg.lastDays * DAY;
      }
      let nTest: number;
      if (cutoff !== undefined) {
        nTest = 0;
        for (let s = 0; s < S; s++) if (ends[s]! > cutoff) nTest++;
      } else nTest = Math.round(tf * S);
      const rest = S - nTest;
      const nValid = Math.round(vf * rest);
      const train = byTime.subarray(0, rest - nValid).slice().sort();
      const valid = byTime.subarray(rest - nValid, rest).slice().sort();
      const test = byTime.subarray(rest).slice().sort();
      if (train.length === 0) failData("data_no_sessions", { file: where }, `The time split leaves no training sessions (cutoff ${cutoff !== undefined ? new Date(cutoff * 1000).toISOString() : "by fraction"}).`);
      return { train: subsetSessions(cs, train), ...(nValid ? { valid: subsetSessions(cs, valid) } : {}), ...(nTest ? { test: subsetSessions(cs, test) } : {}) };
    }
    case "leave-last-out": {
      const withValid = vf > 0;
      const lens = Int32Array.from(all, (s) => cs.offsets[s + 1]! - cs.offsets[s]!);
      const testIdx = all.filter((s) => lens[s]! >= 2);
      const validIdx = withValid ? all.filter((s) => lens[s]! >= 3) : new Int32Array(0);
      const hold = withValid ? 2 : 1;
      const trainIdx = all.filter((s) => lens[s]! > hold);
      const res: SplitResult = { train: subsetSessions(cs, trainIdx, hold), test: subsetSessions(cs, testIdx) };
      if (withValid) res.valid = subsetSessions(cs, validIdx, 1);
      return res;
    }
    default:
      return failData("data_bad_config", { file: where, column: "type" }, `Unknown split type ${JSON.stringify((cfg as { type: unknown }).type)}; expected none, time, leave-last-out or random.`);
  }
}
