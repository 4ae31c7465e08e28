import { RecblocksError, type Issue } from "../errors/issue.js";
import type { LearningRateFn } from "./optimizers.js";

/**
 * Learning-rate schedules (Hugging Face's, which Transformers4Rec's Trainer uses):
 * - "constant": the base rate (after an optional warm-up);
 * - "linear": warm-up, then linear decay to 0 at `totalSteps`;
 * - "cosine": warm-up, then 0.5·(1 + cos(π · 2·numCycles · progress)), floored at 0; numCycles 0.5
 *   (default) is one half cosine down to 0; Transformers4Rec passes 1.25 × epochs
 *   (`learning_rate_num_cosine_cycles_by_epoch`).
 */
export interface ScheduleConfig {
  type: "constant" | "linear" | "cosine";
  /** Warm-up length in optimizer steps. Default 0. Mutually exclusive with warmupRatio. */
  warmupSteps?: number;
  /** Warm-up length as a fraction of totalSteps (rounded up). */
  warmupRatio?: number;
  /** Cosine cycles over the decay phase. Default 0.5. */
  numCycles?: number;
}

/**
 * The multiplier of the base learning rate for 0-based optimizer step `step` (the step about to be taken).
 * Warm-up: (step + 1) / warmupSteps, so the first step already moves and the full rate is reached at
 * step warmupSteps − 1 (Hugging Face uses step / warmupSteps, which makes the first step a no-op).
 * After warm-up the formulas equal Hugging Face's.
 */
export function scheduleFactor(cfg: ScheduleConfig, step: number, totalSteps: number): number {
  const w = warmupSteps(cfg, totalSteps);
  if (step < w) return (step + 1) / w;
  switch (cfg.type) {
    case "constant":
      return 1;
    case "linear":
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - w));
    case "cosine": {
      const progress = (step - w) / Math.max(1, totalSteps - w);
      const cycles = cfg.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * cycles * progress)));
    }
  }
}

function warmupSteps(cfg: ScheduleConfig, totalSteps: number): number {
  if (cfg.warmupRatio !== undefined) return Math.ceil(cfg.warmupRatio * totalSteps);
  return cfg.warmupSteps ?? 0;
}

/** Validates a schedule config (issues under `path`). `totalSteps` is needed by linear and cosine. */
export function checkScheduleConfig(cfg: ScheduleConfig, totalSteps: number | undefined, path = ""): void {
  const issues: Issue[] = [];
  const raw = cfg as unknown as Record<string, unknown>;
  const types = ["constant", "linear", "cosine"];
  if (!types.includes(raw.type as string)) {
    issues.push({ code: "unknown_schedule", path: `${path}/type`, message: `Unknown learning-rate schedule ${JSON.stringify(raw.type)}. Expected one of ${types.join(", ")}.`, received: raw.type, expected: types });
  }
  for (const k of Object.keys(raw)) {
    if (!["type", "warmupSteps", "warmupRatio", "numCycles"].includes(k)) {
      issues.push({ code: "unknown_key", path: `${path}/${k}`, message: `Unknown schedule option "${k}".`, received: k, expected: ["warmupSteps", "warmupRatio", "numCycles"] });
    }
  }
  if (cfg.warmupSteps !== undefined && (!Number.isInteger(cfg.warmupSteps) || cfg.warmupSteps < 0)) {
    issues.push({ code: "invalid_value", path: `${path}/warmupSteps`, message: "Expected an integer >= 0.", received: cfg.warmupSteps });
  }
  if (cfg.warmupRatio !== undefined && !(typeof cfg.warmupRatio === "number" && cfg.warmupRatio >= 0 && cfg.warmupRatio <= 1)) {
    issues.push({ code: "invalid_value", path: `${path}/warmupRatio`, message: "Expected a number between 0 and 1.", received: cfg.warmupRatio });
  }
  if (cfg.warmupSteps !== undefined && cfg.warmupRatio !== undefined) {
    issues.push({ code: "invalid_value", path: `${path}/warmupRatio`, message: "Give warmupSteps or warmupRatio, not both." });
  }
  if (cfg.numCycles !== undefined && !(typeof cfg.numCycles === "number" && cfg.numCycles > 0 && Number.isFinite(cfg.numCycles))) {
    issues.push({ code: "invalid_value", path: `${path}/numCycles`, message: "Expected a number > 0.", received: cfg.numCycles });
  }
  const needsTotal = cfg.type !== "constant" || cfg.warmupRatio !== undefined;
  if (needsTotal && !(Number.isInteger(totalSteps) && totalSteps! >= 1)) {
    issues.push({ code: "invalid_value", path, message: `A "${cfg.type}" schedule needs the total number of training steps (got ${totalSteps}).` });
  }
  if (issues.length) throw new RecblocksError("learning-rate schedule", issues);
}

/** A learning-rate function for `createOptimizer(cfg, {schedule})`: base rate × scheduleFactor. */
export function createSchedule(cfg: ScheduleConfig, opts: { learningRate: number; totalSteps?: number }): LearningRateFn {
  checkScheduleConfig(cfg, opts.totalSteps);
  const total = opts.totalSteps ?? 1;
  const base = opts.learningRate;
  const frozen = { ...cfg };
  return (step: number) => base * scheduleFactor(frozen, step, total);
}
