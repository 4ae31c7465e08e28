import { RecblocksError } from "../../src/errors/issue.js";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { smallRecipe } from "../helpers/small-model.js";

export const ROOT = join(import.meta.dirname, "../..");
export const CLI = join(import.meta.dirname, "run-cli.ts");

export interface TinyOptions {
  epochs?: number;
  optimizer?: string;
  learningRate?: number;
  seed?: number;
  sessions?: number;
  items?: number;
  batchSize?: number;
  dropout?: number;
  extraTrain?: string;
  embeddingDim?: number;
}

/** A tiny GPT-2 next-item recipe on built-in synthetic sessions (a few seconds per epoch at most). */
export function tinyRecipe(o: TinyOptions = {}): string {
  return smallRecipe({
    name: "tiny",
    sessions: o.sessions ?? 300,
    items: o.items,
    dataSeed: 1,
    maxSequenceLength: 10,
    embeddingDim: o.embeddingDim,
    initStd: null,
    dropout: o.dropout,
    epochs: o.epochs,
    batchSize: o.batchSize,
    optimizer: o.optimizer ?? "adam",
    learningRate: o.learningRate,
    seed: o.seed ?? 42,
    extraTrain: o.extraTrain,
    ks: [10],
  });
}

export function writeRecipe(dir: string, name: string, text: string): string {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx <script> ...args` from the package root. */
export function runNode(script: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ChildResult> {
  return new Promise((resolveP, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolveP({ code, signal, stdout, stderr });
    });
  });
}

/** The RecblocksError a promise rejects with (any other error or a fulfilment fails the test). */
export async function thrown(p: Promise<unknown>): Promise<RecblocksError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RecblocksError) return e;
    throw e;
  }
  throw new Error("expected a RecblocksError");
}
