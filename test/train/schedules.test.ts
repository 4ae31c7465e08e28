import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { createSchedule, scheduleFactor } from "../../src/train/schedules.js";

const at = (f: (s: number) => number, steps: number[]) => steps.map(f);

describe("learning-rate schedules (base 1, 10 steps, 2 warm-up steps)", () => {
  it("constant with warm-up", () => {
    expect(at(createSchedule({ type: "constant", warmupSteps: 2 }, { learningRate: 1, totalSteps: 10 }), [0, 1, 2, 9, 50])).toEqual([0.5, 1, 1, 1, 1]);
    expect(at(createSchedule({ type: "constant" }, { learningRate: 0.003 }), [0, 100])).toEqual([0.003, 0.003]);
  });
  it("linear warm-up then linear decay to 0", () => {
    const f = createSchedule({ type: "linear", warmupSteps: 2 }, { learningRate: 2, totalSteps: 10 });
    expect(at(f, [0, 1, 2, 3, 9, 10, 11])).toEqual([1, 2, 2, 2 * 7 / 8, 2 / 8, 0, 0]);
  });
  it("cosine with warm-up: half a cycle by default, numCycles as T4R sets it", () => {
    const f = (s: number) => scheduleFactor({ type: "cosine", warmupSteps: 2 }, s, 10);
    expect(f(0)).toBe(0.5);
    expect(f(2)).toBe(1);
    expect(f(4)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 12); // progress 1/4: cos(π/4)
    expect(f(6)).toBeCloseTo(0.5, 12); // progress 1/2: cos(π/2)
    expect(f(10)).toBeCloseTo(0, 12);
    const g = (s: number) => scheduleFactor({ type: "cosine", warmupSteps: 2, numCycles: 1 }, s, 10);
    expect(g(6)).toBeCloseTo(0, 12); // cos(π)
    expect(g(10)).toBeCloseTo(1, 12); // cos(2π): back up
  });
  it("warmupRatio rounds up", () => {
    const f = createSchedule({ type: "linear", warmupRatio: 0.25 }, { learningRate: 1, totalSteps: 10 }); // 3 warm-up steps
    expect(f(0)).toBeCloseTo(1 / 3, 12);
    expect(f(2)).toBe(1);
    expect(f(3)).toBe(1);
  });
  it("bad configs are located errors", () => {
    expect(() => createSchedule({ type: "linear" }, { learningRate: 1 })).toThrow(RecblocksError);
    try {
      createSchedule({ type: "cosine", warmupSteps: -1, numCycles: 0 }, { learningRate: 1, totalSteps: 5 });
      expect.unreachable();
    } catch (e) {
      expect((e as RecblocksError).issues.map((i) => i.path)).toEqual(["/warmupSteps", "/numCycles"]);
    }
    expect(() => createSchedule({ type: "exponential" } as never, { learningRate: 1, totalSteps: 5 })).toThrow(RecblocksError);
  });
});

describe("schedule keys in recipes", () => {
  it("warmupRatio and numCycles are recipe keys (validated by the recipe schema) and reach the schedule", async () => {
    const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { checkRecipeFile, loadRecipe } = await import("../../src/recipe/load.js");
    const dir = mkdtempSync(join(tmpdir(), "rb-schedule-"));
    try {
      const base = readFileSync(join(process.cwd(), "recipes", "gpt2-clm.yaml"), "utf8");
      const file = join(dir, "r.yaml");
      writeFileSync(file, base.replace(/\ntrain:\n/, "\ntrain:\n  schedule: {type: cosine, warmupRatio: 0.1, numCycles: 1.25}\n"));
      const { recipe, issues } = loadRecipe(file);
      expect(issues).toEqual([]);
      const sched = recipe.train!.schedule as { type: "cosine"; warmupRatio: number; numCycles: number };
      expect(sched).toEqual({ type: "cosine", warmupRatio: 0.1, numCycles: 1.25 });
      // 100 steps: 10 of warm-up, then 1.25 cycles over 90: at step 10 + 36 (progress 0.4) the factor is 0.5 (1 + cos(pi))= 0
      const f = createSchedule(sched, { learningRate: 1, totalSteps: 100 });
      expect(f(9)).toBeCloseTo(1, 12);
      expect(f(46)).toBeCloseTo(0, 12);
      writeFileSync(file, base.replace(/\ntrain:\n/, "\ntrain:\n  schedule: {type: cosine, warmupRatio: 2}\n"));
      expect(checkRecipeFile(file).issues.map((i) => i.path)).toEqual(["/train/schedule/warmupRatio"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
