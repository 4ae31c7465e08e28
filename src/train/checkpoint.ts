/**
 * Training checkpoints: everything needed to continue a run exactly where it stopped, written
 * atomically (src/io/atomic.ts) as a directory, usually `<runDir>/checkpoint/`:
 *
 *   checkpoint.json   {format: "recblocks-checkpoint", formatVersion, fingerprint, epoch, stepInEpoch,
 *                      steps, rngState, partial?, history, stoppedEarly, early?, weights/optimizer/best specs}
 *   weights.bin       the model's variables (float32 LE, in `weights` order, by model variable name)
 *   optimizer.bin     the optimizer slots ("<model variable name>/<slot>", float32 LE)
 *   best.bin          early stopping's best-epoch weights, when it holds some
 *
 * The weights are checked finite before anything is written: a diverged model never replaces a good
 * checkpoint.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { RecblocksError, type Issue } from "../errors/issue.js";
import { recoverDirAtomic, writeDirAtomic } from "../io/atomic.js";
import type { EarlyStoppingState } from "./early-stopping.js";
import type { NamedTensor } from "./optimizers.js";

export const CHECKPOINT_FORMAT = "recblocks-checkpoint";
export const CHECKPOINT_FORMAT_VERSION = 1;

export interface TensorEntry {
  name: string;
  shape: number[];
}

/** Where training stands. `epoch` epochs are complete, and `stepInEpoch` batches of the next one. */
export interface TrainingPosition {
  epoch: number;
  stepInEpoch: number;
  /** Optimizer steps taken (global step). */
  steps: number;
  /** State of the training random source (masking, dropout). */
  rngState: number;
  /** Running sums of the epoch under way (mid-epoch checkpoints). */
  partial?: { lossSum: number; lossN: number; examples: number; seconds: number };
  /** Epoch records so far (what metrics.jsonl holds). */
  history: unknown[];
  stoppedEarly: boolean;
  early?: EarlyStoppingState;
}

export interface CheckpointJson extends TrainingPosition {
  format: string;
  formatVersion: number;
  /** Hash of what must not change between a run and its resumption (model, data, training settings but epochs). */
  fingerprint: string;
  savedAt: string;
  weights: TensorEntry[];
  optimizer: TensorEntry[];
  best?: TensorEntry[];
}

export interface LoadedCheckpoint {
  meta: CheckpointJson;
  weights: Map<string, tf.Tensor>;
  optimizer: Map<string, tf.Tensor>;
  best?: Map<string, tf.Tensor>;
}

/** A stable hash of a JSON-like value (object keys sorted). */
export function fingerprintOf(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === "object") return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, norm((v as Record<string, unknown>)[k])]));
    return v;
  };
  return createHash("sha256").update(JSON.stringify(norm(value)) ?? "null").digest("hex").slice(0, 32);
}

function pack(tensors: [string, tf.Tensor][]): { specs: TensorEntry[]; chunks: Uint8Array[] } {
  const specs: TensorEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const [name, t] of tensors) {
    const data = t.dtype === "float32" ? (t.dataSync() as Float32Array) : Float32Array.from(t.dataSync() as ArrayLike<number>);
    specs.push({ name, shape: [...t.shape] });
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return { specs, chunks };
}

/**
 * Writes a checkpoint directory atomically. `weights` and `best` are keyed by model variable name,
 * `optimizer` by "<model variable name>/<slot>". Refuses (non_finite_weights) a NaN/Inf weight.
 */
export function saveCheckpoint(
  dir: string,
  c: { fingerprint: string; position: TrainingPosition; weights: Map<string, tf.Tensor>; optimizer: NamedTensor[]; best?: ReadonlyMap<string, tf.Tensor> },
): void {
  const w = pack([...c.weights]);
  for (let i = 0; i < w.specs.length; i++) {
    const f = new Float32Array(w.chunks[i]!.buffer, w.chunks[i]!.byteOffset, w.chunks[i]!.byteLength / 4);
    for (let j = 0; j < f.length; j++) {
      if (!Number.isFinite(f[j]!)) {
        throw new RecblocksError("training", [{ code: "non_finite_weights", path: "/train", message: `Weight "${w.specs[i]!.name}" holds ${f[j]} at index ${j}; the checkpoint is not written (the previous one is kept).`, hint: "Training diverged: lower the learning rate or clip gradients." }]);
      }
    }
  }
  const o = pack(c.optimizer.map((n) => [n.name, n.tensor]));
  const b = c.best && c.best.size ? pack([...c.best]) : undefined;
  const meta: CheckpointJson = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    fingerprint: c.fingerprint,
    savedAt: new Date().toISOString(),
    ...c.position,
    weights: w.specs,
    optimizer: o.specs,
    ...(b ? { best: b.specs } : {}),
  };
  const files: Record<string, string | Uint8Array[]> = {
    "checkpoint.json": JSON.stringify(meta, null, 1) + "\n",
    "weights.bin": w.chunks,
    "optimizer.bin": o.chunks,
  };
  if (b) files["best.bin"] = b.chunks;
  writeDirAtomic(dir, files);
}

function bad(dir: string, message: string, code = "invalid_checkpoint", extra: Partial<Issue> = {}): RecblocksError {
  return new RecblocksError(dir, [{ code, path: "", message, source: { file: dir }, ...extra }], { kind: "CheckpointError" });
}

function unpack(dir: string, file: string, specs: TensorEntry[]): Map<string, tf.Tensor> {
  let buf: Buffer;
  try {
    buf = readFileSync(join(dir, file));
  } catch {
    throw bad(dir, `${file} is missing from the checkpoint ${dir}.`);
  }
  const out = new Map<string, tf.Tensor>();
  let at = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, x) => a * x, 1);
    if (at + n * 4 > buf.byteLength) {
      tf.dispose([...out.values()]);
      throw bad(dir, `${file} is shorter than checkpoint.json says.`);
    }
    out.set(s.name, tf.tensor(new Float32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + n * 4)), s.shape, "float32"));
    at += n * 4;
  }
  if (at !== buf.byteLength) {
    tf.dispose([...out.values()]);
    throw bad(dir, `${file} is longer than checkpoint.json says.`);
  }
  return out;
}

/**
 * Reads a checkpoint directory (after recovering it if a save was killed mid-swap); undefined when
 * there is none. A different `fingerprint` (another model, data or training settings) is
 * `checkpoint_mismatch`.
 */
export function loadCheckpoint(dir: string, fingerprint?: string): LoadedCheckpoint | undefined {
  recoverDirAtomic(dir);
  const f = join(dir, "checkpoint.json");
  if (!existsSync(f)) return undefined;
  let meta: CheckpointJson;
  try {
    meta = JSON.parse(readFileSync(f, "utf8")) as CheckpointJson;
  } catch (e) {
    throw bad(dir, `checkpoint.json is not valid JSON: ${(e as Error).message}`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT) throw bad(dir, `${f} is not a recblocks checkpoint.`);
  if (meta.formatVersion !== CHECKPOINT_FORMAT_VERSION) throw bad(dir, `${f} has format version ${meta.formatVersion}; this recblocks reads ${CHECKPOINT_FORMAT_VERSION}.`);
  if (fingerprint !== undefined && meta.fingerprint !== fingerprint) {
    throw bad(dir, `The checkpoint in ${dir} was written by a run with a different model, data or training settings; it cannot be resumed with this recipe.`, "checkpoint_mismatch", {
      hint: "Resume with the recipe that started the run (only train.epochs may change), or train into a new --out directory, or delete the checkpoint folder to start over.",
    });
  }
  const weights = unpack(dir, "weights.bin", meta.weights ?? []);
  const optimizer = unpack(dir, "optimizer.bin", meta.optimizer ?? []);
  const best = meta.best ? unpack(dir, "best.bin", meta.best) : undefined;
  return { meta, weights, optimizer, best };
}

/** Disposes the tensors of a loaded checkpoint. */
export function disposeCheckpoint(c: LoadedCheckpoint): void {
  tf.dispose([...c.weights.values(), ...c.optimizer.values(), ...(c.best ? [...c.best.values()] : [])]);
}
