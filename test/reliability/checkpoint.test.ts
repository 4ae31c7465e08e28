/** Checkpoint files (src/train/checkpoint.ts): round trip, refusals, damaged files. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initEngine } from "../../src/engine/index.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { disposeCheckpoint, fingerprintOf, loadCheckpoint, saveCheckpoint, type TrainingPosition } from "../../src/train/checkpoint.js";

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "rb-ckpt-"));
  await initEngine({ backend: "tensorflow", quiet: true });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const position: TrainingPosition = { epoch: 2, stepInEpoch: 3, steps: 23, rngState: 123456789, partial: { lossSum: 1.5, lossN: 3, examples: 96, seconds: 0.25 }, history: [{ epoch: 1, loss: 4.2 }], stoppedEarly: false, early: { best: 0.5, bestEpoch: 1, wait: 0, stopped: false } };

function contents(scale = 1) {
  return {
    weights: new Map<string, tf.Tensor>([["inputs/embeddings/item_id", tf.tensor([[0, 1], [2, 3], [4, 5]].map((r) => r.map((x) => x * scale)))], ["head/bias", tf.tensor([0.5, -0.5])]]),
    optimizer: [{ name: "inputs/embeddings/item_id/m", tensor: tf.ones([3, 2]) }, { name: "head/bias/m", tensor: tf.zeros([2]) }],
    best: new Map<string, tf.Tensor>([["head/bias", tf.tensor([1, 1])]]),
  };
}

function thrown(f: () => unknown): RecblocksError {
  try {
    f();
  } catch (e) {
    if (e instanceof RecblocksError) return e;
    throw e;
  }
  throw new Error("expected a RecblocksError");
}

describe("checkpoint files", () => {
  it("round trip: position, weights, optimizer slots and best weights come back exactly", () => {
    const dir = join(tmp, "a", "checkpoint");
    const c = contents();
    saveCheckpoint(dir, { fingerprint: "f1", position, ...c });
    expect(readdirSync(dir).sort()).toEqual(["best.bin", "checkpoint.json", "optimizer.bin", "weights.bin"]);
    const back = loadCheckpoint(dir, "f1")!;
    expect(back.meta).toMatchObject(position);
    expect(Array.from(back.weights.get("inputs/embeddings/item_id")!.dataSync())).toEqual([0, 1, 2, 3, 4, 5]);
    expect(back.weights.get("inputs/embeddings/item_id")!.shape).toEqual([3, 2]);
    expect(Array.from(back.optimizer.get("inputs/embeddings/item_id/m")!.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(back.best!.get("head/bias")!.dataSync())).toEqual([1, 1]);
    disposeCheckpoint(back);
    expect(loadCheckpoint(join(tmp, "nowhere"))).toBeUndefined();
  });

  it("another fingerprint is checkpoint_mismatch; fingerprints ignore key order", () => {
    const dir = join(tmp, "a", "checkpoint");
    expect(thrown(() => loadCheckpoint(dir, "f2")).issues[0]!.code).toBe("checkpoint_mismatch");
    expect(fingerprintOf({ a: 1, b: { c: [1, 2], d: null } })).toBe(fingerprintOf({ b: { d: null, c: [1, 2] }, a: 1 }));
    expect(fingerprintOf({ a: 1 })).not.toBe(fingerprintOf({ a: 2 }));
  });

  it("a NaN weight is refused (non_finite_weights) and the previous checkpoint is kept byte for byte", () => {
    const dir = join(tmp, "b", "checkpoint");
    saveCheckpoint(dir, { fingerprint: "f", position, ...contents() });
    const before = readFileSync(join(dir, "weights.bin"));
    const c = contents(NaN);
    const e = thrown(() => saveCheckpoint(dir, { fingerprint: "f", position: { ...position, epoch: 3 }, ...c }));
    expect(e.issues[0]!.code).toBe("non_finite_weights");
    expect(readFileSync(join(dir, "weights.bin")).equals(before)).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, "checkpoint.json"), "utf8")).epoch).toBe(2);
    expect(readdirSync(join(tmp, "b"))).toEqual(["checkpoint"]);
  });

  it("damaged checkpoints are invalid_checkpoint, never a crash", () => {
    const dir = join(tmp, "c", "checkpoint");
    saveCheckpoint(dir, { fingerprint: "f", position, ...contents() });
    truncateSync(join(dir, "weights.bin"), 10);
    expect(thrown(() => loadCheckpoint(dir, "f")).issues[0]).toMatchObject({ code: "invalid_checkpoint", message: expect.stringContaining("shorter") });
    writeFileSync(join(dir, "checkpoint.json"), "{not json");
    expect(thrown(() => loadCheckpoint(dir, "f")).issues[0]!.code).toBe("invalid_checkpoint");
    writeFileSync(join(dir, "checkpoint.json"), JSON.stringify({ format: "something-else" }));
    expect(thrown(() => loadCheckpoint(dir, "f")).issues[0]!.message).toContain("not a recblocks checkpoint");
  });
});
