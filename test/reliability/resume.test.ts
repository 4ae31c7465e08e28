/**
 * Crash-safe training: `recblocks train` is SIGKILLed mid-run (after it wrote at least one checkpoint,
 * at a random moment), resumed with --resume, and must end with exactly the metrics of an
 * uninterrupted run with the same seed on the same backend (losses, validation metrics per epoch,
 * test metrics, weights).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../src/masking/index.js";
import { CLI, ROOT, runNode, tinyRecipe, writeRecipe } from "./helpers.js";

let tmp: string;
let recipe: string;
let reference: { summary: Summary; weights: Buffer };

interface Summary {
  metrics: Record<string, number>;
  history: { epoch: number; loss: number; learningRate: number; labels?: number; valid?: Record<string, number> }[];
}

const ENV = { RECBLOCKS_BACKEND: "tensorflow" };
const comparable = (s: Summary) => ({ metrics: s.metrics, history: s.history.map(({ epoch, loss, learningRate, labels, valid }) => ({ epoch, loss, learningRate, labels, valid })) });
const readRun = (out: string) => ({ summary: JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Summary, weights: readFileSync(join(out, "model", "weights.bin")) });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "rb-resume-"));
  // dropout on: the RNG state must be resumed too; a checkpoint every epoch and every 4 steps
  recipe = writeRecipe(tmp, "r.yaml", tinyRecipe({ epochs: 4, sessions: 400, dropout: 0.2, extraTrain: "  checkpointEvery: {epochs: 1, steps: 4}\n  earlyStopping: {metric: ndcg@10, patience: 10}\n" }));
  const r = await runNode(CLI, ["train", recipe, "--out", join(tmp, "reference"), "--backend", "tensorflow"], { env: ENV });
  expect(r.code, r.stderr).toBe(0);
  reference = readRun(join(tmp, "reference"));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Starts a training child, SIGKILLs it `delayMs` after its first checkpoint appeared; resolves with the exit signal. */
function trainAndKill(out: string, delayMs: number): Promise<string | null> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "train", recipe, "--out", out, "--backend", "tensorflow"], { cwd: ROOT, env: { ...process.env, ...ENV, TF_CPP_MIN_LOG_LEVEL: "3" }, stdio: "ignore" });
    const poll = setInterval(() => {
      if (existsSync(join(out, "checkpoint", "checkpoint.json"))) {
        clearInterval(poll);
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    }, 5);
    child.on("error", rej);
    child.on("close", (_code, signal) => {
      clearInterval(poll);
      res(signal);
    });
  });
}

describe("resume after SIGKILL", () => {
  const rng = mulberry32(7);
  // one kill soon after the first checkpoint (mid-epoch 1), one later (a later epoch)
  for (const run of [0, 1]) {
    it(`kill ${run + 1}: the resumed run ends with the metrics and weights of the uninterrupted one`, async () => {
      const out = join(tmp, `killed-${run}`);
      const delay = Math.floor(rng.next() * 300) + run * 900;
      const signal = await trainAndKill(out, delay);
      const ck = JSON.parse(readFileSync(join(out, "checkpoint", "checkpoint.json"), "utf8"));
      const r = await runNode(CLI, ["train", recipe, "--out", out, "--backend", "tensorflow", "--resume"], { env: ENV });
      expect(r.code, r.stderr).toBe(0);
      if (signal === "SIGKILL") expect(r.stderr).toContain(`resume: from ${join(out, "checkpoint")}, ${ck.epoch} epoch(s) and ${ck.stepInEpoch} step(s) done`);
      console.log(`resume ${run + 1}: killed ${delay} ms after the first checkpoint (${signal ?? "finished first"}), resumed at epoch ${ck.epoch} + ${ck.stepInEpoch} steps (global step ${ck.steps})`);
      const got = readRun(out);
      expect(comparable(got.summary)).toEqual(comparable(reference.summary));
      expect(got.weights.equals(reference.weights)).toBe(true);
      expect(readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").length).toBe(reference.summary.history.length);
    }, 120_000);
  }

  it("--resume with a changed recipe is refused (checkpoint_mismatch)", async () => {
    const other = writeRecipe(tmp, "other.yaml", tinyRecipe({ epochs: 4, sessions: 400, dropout: 0.3 }));
    const r = await runNode(CLI, ["train", other, "--out", join(tmp, "reference"), "--resume", "--json"], { env: ENV });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!).error.issues[0].code).toBe("checkpoint_mismatch");
  }, 60_000);
});
