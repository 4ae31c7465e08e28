/**
 * Incremental time-window training (src/run/windows.ts, `recblocks train-windows`):
 * - window lengths parse; sessions are cut at the right timestamps (hand-made starts: UTC days, weeks,
 *   N seconds from the first start, boundaries belonging to the later window, empty spans skipped);
 * - the average over windows is the plain mean of the per-window metrics;
 * - end to end on builtin:synthetic: windows.jsonl = the returned records, window bounds and session counts
 *   match an independent count by day, the training continues from the previous window (the first loss of
 *   window 2 is below window 1's first loss and below a from-scratch run's, the optimizer's step count
 *   carries on), and the CLI runs the protocol.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { averageMetrics, cutWindows, parseWindow, trainWindows, type WindowsRunResult } from "../../src/run/windows.js";
import { loadRecipeData } from "../../src/data/load.js";
import { syntheticFeatureSchema } from "../../src/data/synthetic.js";
import type { RecblocksError } from "../../src/errors/issue.js";
import { NextItemRecommender } from "../../src/recommend/next-item.js";
import "../../blocks/index.js";

const ROOT = packageRoot();
const CLI = join(ROOT, "bin", "recblocks.js");
const DATA = "builtin:synthetic?sessions=900&items=80&seed=5&days=3";
const T0 = Date.parse("2024-03-10T00:00:00Z") / 1000;
const H = 3600;
const D = 86400;

describe("parseWindow", () => {
  it("day, week, seconds with units; bad values are located errors", () => {
    expect(parseWindow("day")).toEqual({ kind: "day", seconds: D });
    expect(parseWindow("week")).toEqual({ kind: "week", seconds: 7 * D });
    expect(parseWindow("3600")).toEqual({ kind: "seconds", seconds: 3600 });
    expect(parseWindow("90s")).toEqual({ kind: "seconds", seconds: 90 });
    expect(parseWindow("12h")).toEqual({ kind: "seconds", seconds: 12 * H });
    expect(parseWindow("2d")).toEqual({ kind: "seconds", seconds: 2 * D });
    for (const bad of ["", "0", "-5", "fortnight", "12x"]) {
      let err: unknown;
      try {
        parseWindow(bad);
      } catch (e) {
        err = e;
      }
      const issue = (err as RecblocksError).issues?.[0];
      expect(issue?.code, bad).toBe("invalid_value");
      expect(issue?.message).toMatch(/--window must be day, week or a length/);
    }
  });
});

describe("cutWindows", () => {
  // starts of 7 sessions, out of order
  const starts = [
    T0 + 23 * H + 3599, // 0: last second of day 0
    T0 + D, //             1: first second of day 1 (boundary belongs to the later window)
    T0 + 5, //             2: day 0
    T0 + 2 * D + 12 * H, //3: day 2
    T0 + 4 * D + H, //     4: day 4 (day 3 is empty)
    T0 + 8 * D, //         5: day 8: second week
    T0 + 10, //            6: day 0
  ];

  it("day: UTC calendar days, sessions by start time, empty days skipped", () => {
    const w = cutWindows(starts, parseWindow("day"));
    expect(w.map((x) => x.index)).toEqual([0, 1, 2, 4, 8]);
    expect(w.map((x) => x.sessions)).toEqual([[2, 6, 0], [1], [3], [4], [5]]);
    expect(w.map((x) => [x.start - T0, x.end - T0])).toEqual([[0, D], [D, 2 * D], [2 * D, 3 * D], [4 * D, 5 * D], [8 * D, 9 * D]]);
  });

  it("day windows start at UTC midnight even when the first session starts later in the day", () => {
    const w = cutWindows([T0 + 20 * H, T0 + 28 * H], parseWindow("day"));
    expect(w.map((x) => [x.start - T0, x.sessions])).toEqual([[0, [0]], [D, [1]]]);
  });

  it("week: 7 days from the first day's midnight", () => {
    const w = cutWindows(starts, parseWindow("week"));
    expect(w.map((x) => x.sessions)).toEqual([[2, 6, 0, 1, 3, 4], [5]]);
    expect(w[1]!.start - T0).toBe(7 * D);
  });

  it("N seconds: spans from the first session's start", () => {
    const w = cutWindows([T0 + 100, T0 + 100 + 43199, T0 + 100 + 43200, T0 + 100 + 3 * 43200], parseWindow("43200s"));
    expect(w.map((x) => [x.index, x.start - T0, x.sessions])).toEqual([[0, 100, [0, 1]], [1, 100 + 43200, [2]], [3, 100 + 3 * 43200, [3]]]);
  });

  it("no session, no window", () => {
    expect(cutWindows([], parseWindow("day"))).toEqual([]);
  });
});

describe("averageMetrics", () => {
  it("is the unweighted mean over windows, skipping missing and non-finite values", () => {
    const avg = averageMetrics([
      { "ndcg@20": 0.2, "recall@20": 0.5, examples: 10 },
      { "ndcg@20": 0.4, "recall@20": 0.7, examples: 30 },
      { "ndcg@20": 0.6, "recall@20": NaN, examples: 20 },
    ]);
    expect(avg["ndcg@20"]).toBeCloseTo(0.4, 12);
    expect(avg["recall@20"]).toBeCloseTo(0.6, 12);
    expect(avg.examples).toBeCloseTo(20, 12);
  });
});

describe("trainWindows end to end (builtin:synthetic, 3 days)", () => {
  let tmp: string;
  let cont: WindowsRunResult;
  let scratch: WindowsRunResult;
  let recipeFile: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "recblocks-windows-"));
    const recipe = readFileSync(join(ROOT, "recipes", "gpt2-windows.yaml"), "utf8")
      .replace(/train: builtin:synthetic\?[^\n]*/, `train: ${DATA}`)
      .replace("embeddingDims: {item_id: 64}", "embeddingDims: {item_id: 16}")
      .replace("dModel: 64", "dModel: 16")
      .replace("numLayers: 2", "numLayers: 1")
      .replace("epochs: 3", "epochs: 2")
      .replace("batchSize: 128", "batchSize: 32")
      .replace("learningRate: 0.002", "learningRate: 0.005");
    recipeFile = join(tmp, "tiny-windows.yaml");
    writeFileSync(recipeFile, recipe);
    cont = await trainWindows(recipeFile, { window: "day", out: join(tmp, "cont"), stream: null });
    scratch = await trainWindows(recipeFile, { window: "day", out: join(tmp, "scratch"), stream: null, fromScratch: true });
  }, 60_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("one record per train→evaluate step, written to windows.jsonl; the average is their mean", () => {
    expect(cont.windows.length).toBe(2);
    const lines = readFileSync(join(cont.runDir, "windows.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toEqual(JSON.parse(JSON.stringify(cont.windows)));
    for (const k of ["ndcg@20", "recall@20", "mrr@20", "recall@40"]) {
      const [a, b] = cont.windows.map((w) => w.metrics[k]!);
      expect(a, k).toBeGreaterThan(0);
      expect(cont.average[k], k).toBeCloseTo((a! + b!) / 2, 12);
      expect(cont.averageMostPopular[k], k).toBeCloseTo((cont.windows[0]!.mostPopular[k]! + cont.windows[1]!.mostPopular[k]!) / 2, 12);
    }
    const summary = JSON.parse(readFileSync(join(cont.runDir, "summary.json"), "utf8"));
    expect(summary.average).toEqual(JSON.parse(JSON.stringify(cont.average)));
    expect(existsSync(join(cont.modelDir, "model.json"))).toBe(true);
  });

  it("windows are the UTC days of the sessions' start times, with the sessions an independent count finds", async () => {
    const data = await loadRecipeData({ train: DATA, split: { type: "none" }, sessions: { maxSequenceLength: 20 } }, syntheticFeatureSchema(DATA));
    const perDay = new Map<number, number>();
    for (const s of data.train) {
      const day = Math.floor(s.timestamps![0]! / D);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
    }
    const days = [...perDay.keys()].sort((a, b) => a - b);
    expect(days.length).toBe(3);
    cont.windows.forEach((w, t) => {
      expect(w.train.start).toBe(new Date(days[t]! * D * 1000).toISOString());
      expect(w.train.end).toBe(new Date((days[t]! + 1) * D * 1000).toISOString());
      expect(w.eval.start).toBe(new Date(days[t + 1]! * D * 1000).toISOString());
      expect(w.train.sessions).toBe(perDay.get(days[t]!));
      expect(w.eval.sessions).toBe(perDay.get(days[t + 1]!));
      // last-item protocol: one example per evaluation session (all have >= 2 items)
      expect(w.metrics.examples).toBe(perDay.get(days[t + 1]!));
    });
  });

  it("training continues from the previous window: weights and optimizer state are not re-initialised", () => {
    const [w1, w2] = cont.windows;
    const [s1, s2] = scratch.windows;
    // same start for both runs
    expect(s1!.loss.first).toBeCloseTo(w1!.loss.first, 5);
    // window 2 starts from trained weights: its first loss is below window 1's and below a fresh model's
    expect(w2!.loss.first).toBeLessThan(w1!.loss.first - 0.3);
    expect(w2!.loss.first).toBeLessThan(s2!.loss.first - 0.3);
    // a fresh model starts near ln(V) again
    expect(Math.abs(s2!.loss.first - w1!.loss.first)).toBeLessThan(0.2);
    // the optimizer's step count carries on across windows (Adam's moments and bias correction with it)
    const stepsW1 = w1!.optimizerSteps;
    expect(w2!.optimizerSteps).toBeGreaterThan(stepsW1);
    expect(s2!.optimizerSteps).toBe(w2!.optimizerSteps - stepsW1);
  });

  it("CLI: train-windows --windows 1 --json; bad --window is a located error, a missing one a usage error", () => {
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 60_000 });
    let r = run(["train-windows", recipeFile, "--window", "day", "--windows", "1", "--epochs", "1", "--out", "cli", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(j.windows.length).toBe(1);
    expect(j.windows[0].train.sessions).toBe(cont.windows[0]!.train.sessions);
    expect(j.average["recall@20"]).toBeCloseTo(j.windows[0].metrics["recall@20"], 12);
    expect(readFileSync(join(tmp, "cli", "windows.jsonl"), "utf8").trim().split("\n").length).toBe(1);
    r = run(["train-windows", recipeFile, "--window", "fortnight", "--json"]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!).error.issues[0].code).toBe("invalid_value");
    expect(run(["train-windows", recipeFile]).status).toBe(2);
  }, 60_000);
});

/** recipes/gpt2-windows.yaml made tiny (dModel 16, one layer, one epoch, batches of 32) on DATA. */
const tinyOneEpochRecipe = () =>
  readFileSync(join(ROOT, "recipes", "gpt2-windows.yaml"), "utf8")
    .replace(/train: builtin:synthetic\?[^\n]*/, `train: ${DATA}`)
    .replace("embeddingDims: {item_id: 64}", "embeddingDims: {item_id: 16}")
    .replace("dModel: 64", "dModel: 16")
    .replace("numLayers: 2", "numLayers: 1")
    .replace("epochs: 3", "epochs: 1")
    .replace("batchSize: 128", "batchSize: 32");

describe("trainWindows with a per-step side feature", () => {
  let tmp: string;
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("saves the item-feature table of the windows it trained on, so the model recommends from item ids", async () => {
    tmp = mkdtempSync(join(tmpdir(), "recblocks-windows-side-"));
    const recipe = tinyOneEpochRecipe()
      .replace("excludeFeatures: [user_id, category, price, timestamp]", "excludeFeatures: [user_id, price, timestamp]\n    dOutput: 16")
      .replace("embeddingDims: {item_id: 16}", "embeddingDims: {item_id: 16, category: 4}");
    const file = join(tmp, "side-windows.yaml");
    writeFileSync(file, recipe);
    const run = await trainWindows(file, { window: "day", out: join(tmp, "run"), stream: null, windows: 1 });
    expect(run.windows.length).toBe(1);
    const rec = NextItemRecommender.open(run.modelDir);
    try {
      expect(rec.sideFeatures.map((f) => f.name)).toEqual(["category"]);
      const table = rec.contents.itemFeatures!.features.category!;
      // by hand: the most frequent category (ties to the smaller id) of each item over window 1's sessions only
      const data = await loadRecipeData({ train: DATA, split: { type: "none" }, sessions: { maxSequenceLength: 20 } }, syntheticFeatureSchema(DATA));
      const day0 = Math.min(...data.train.map((s) => Math.floor(s.timestamps![0]! / D)));
      const counts = new Map<string, Map<string, number>>();
      for (const s of data.train) {
        if (Math.floor(s.timestamps![0]! / D) !== day0) continue;
        s.items.forEach((id, t) => {
          const item = String(data.vocabularies[data.itemColumn]!.raw(id));
          const cat = String(data.vocabularies.category!.raw(s.categorical.category![t]!));
          const m = counts.get(item) ?? new Map<string, number>();
          m.set(cat, (m.get(cat) ?? 0) + 1);
          counts.set(item, m);
        });
      }
      expect(counts.size).toBeGreaterThan(10);
      const catVocab = rec.contents.vocabularies.category!;
      for (const [item, m] of counts) {
        const best = Math.max(...m.values());
        const ids = [...m].filter(([, n]) => n === best).map(([c]) => catVocab.lookup(c)!);
        expect(table.values[rec.lookup(item)!], item).toBe(Math.min(...ids));
      }
      const answer = rec.recommend({ items: [...counts.keys()].slice(0, 3), k: 5 });
      expect(answer.items.length).toBe(5);
    } finally {
      rec.dispose();
    }
  }, 60_000);
});

describe("trainWindows with gradient accumulation", () => {
  let tmp: string;
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("train.gradientAccumulationSteps: 2 makes one update per two batches in each window (as fit)", async () => {
    tmp = mkdtempSync(join(tmpdir(), "recblocks-windows-acc-"));
    const base = tinyOneEpochRecipe();
    const steps = async (acc: number) => {
      const file = join(tmp, `acc${acc}.yaml`);
      writeFileSync(file, acc === 1 ? base : base.replace("  batchSize: 32", `  batchSize: 32\n  gradientAccumulationSteps: ${acc}`));
      const r = await trainWindows(file, { window: "day", out: join(tmp, `run${acc}`), stream: null, windows: 1 });
      return r.windows[0]!.optimizerSteps;
    };
    const one = await steps(1);
    expect(one).toBeGreaterThan(3);
    expect(await steps(2)).toBe(Math.ceil(one / 2));
    expect(await steps(3)).toBe(Math.ceil(one / 3));
  }, 90_000);
});
