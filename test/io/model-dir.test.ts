import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { loadModelDir, saveModelDir, type ModelDirContents } from "../../src/io/model-dir.js";
import { Model } from "../../src/model/model.js";
import { evaluateModelDir } from "../../src/run/evaluate.js";
import type { TrainRunResult } from "../../src/run/train.js";
import { trainSmallModelDir } from "../helpers/small-model.js";

// A small GPT-2 next-item model (test/helpers/small-model.ts) trained for one epoch on 200 synthetic sessions, once for the file.
let tmp: string;
let run: TrainRunResult;
/** A fresh copy of the trained model directory. */
const copy = (name: string): string => {
  const d = join(tmp, "copies", name);
  mkdirSync(join(tmp, "copies"), { recursive: true });
  cpSync(run.modelDir, d, { recursive: true });
  return d;
};
/** The RecblocksError `f` throws. */
const thrown = (f: () => unknown): RecblocksError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RecblocksError);
    return e as RecblocksError;
  }
  throw new Error("expected a RecblocksError");
};
const snapshot = (dir: string) => Object.fromEntries(readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => {
  const p = join(e.parentPath, e.name);
  return [p.slice(dir.length), readFileSync(p).toString("base64")];
}));
const contentsOf = (c: ModelDirContents) => ({ ...c });

beforeAll(async () => {
  await tf.setBackend("cpu");
  tmp = mkdtempSync(join(tmpdir(), "recblocks-model-dir-"));
  run = await trainSmallModelDir(tmp, { metrics: ["ndcg", "recall", "mrr"] });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("model directory: save and load", () => {
  it("holds the documented files", () => {
    expect(run.kind).toBe("next-item");
    expect(run.modelDir).toBe(join(tmp, "run", "model"));
    expect(readdirSync(run.modelDir).sort()).toEqual(["feature-schema.json", "metrics.json", "model.json", "recipe.json", "vocabularies", "weights.bin"]);
    const mj = JSON.parse(readFileSync(join(run.modelDir, "model.json"), "utf8"));
    expect(mj.format).toBe("recblocks-next-item");
    expect(mj.weightsManifest[0].paths).toEqual(["weights.bin"]);
    // weights.bin holds exactly the manifest's float32 values
    const n = (mj.weightsManifest[0].weights as { shape: number[] }[]).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
    expect(readFileSync(join(run.modelDir, "weights.bin")).byteLength).toBe(4 * n);
    expect(n).toBe(mj.modelTopology.parameters);
  });

  it("the loaded model scores the test split exactly as the trained one did", async () => {
    const ev = await evaluateModelDir(run.modelDir, { stream: null, backend: "cpu" });
    expect(ev.source).toBe("the recipe's test data");
    expect(run.metrics.examples).toBeGreaterThan(0);
    for (const k of ["recall@5", "recall@20", "ndcg@20", "mrr@20", "examples"]) expect(ev.metrics[k], k).toBe(run.metrics[k]);
    // the loss is a continuous function of every weight: a weight off by a little shows here
    expect(Math.abs(ev.metrics.loss! - run.metrics.loss!)).toBeLessThan(1e-6);
    // and what metrics.json recorded
    const saved = JSON.parse(readFileSync(join(run.modelDir, "metrics.json"), "utf8"));
    expect(saved.metrics["recall@20"]).toBe(run.metrics["recall@20"]);
  });

  it("restores the trained weights (not a fresh build), the config and the vocabularies", () => {
    const c = loadModelDir(run.modelDir);
    const mj = JSON.parse(readFileSync(join(run.modelDir, "model.json"), "utf8"));
    expect(c.model.toRecipe()).toEqual(mj.modelTopology.config);
    expect(c.itemColumn).toBe("item_id");
    expect(c.maxSequenceLength).toBe(8);
    expect(c.vocabularies.item_id!.size).toBe(c.model.numItems);
    // same build seed as training: equal weights would mean the training or the load did nothing
    const fresh = Model.fromConfig(c.model.toRecipe(), c.featureSchema).build({ seed: 42 });
    const table = (m: Model) => Array.from(m.namedVariables().get("inputs/embeddings/item_id")!.dataSync());
    const bytes = readFileSync(join(run.modelDir, "weights.bin"));
    const first = mj.weightsManifest[0].weights[0] as { name: string; shape: number[] };
    const n = first.shape.reduce((a, b) => a * b, 1);
    const stored = Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 4 * n)));
    const loadedFirst = Array.from(c.model.namedVariables().get(first.name)!.dataSync());
    expect(loadedFirst).toEqual(stored);
    expect(table(c.model)).not.toEqual(table(fresh));
    // two loads predict the same
    const d = loadModelDir(run.modelDir);
    const batch = { batchSize: 2, seqLen: 8, itemIds: Int32Array.from([2, 3, 4, 0, 0, 0, 0, 0, 5, 6, 7, 8, 9, 10, 11, 12]), categorical: {}, continuous: {}, context: {}, lengths: Int32Array.from([3, 8]) };
    const a = c.model.topK(batch, 10), b = d.model.topK(batch, 10);
    expect(Array.from(b.itemIds)).toEqual(Array.from(a.itemIds));
    expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
    for (const m of [c.model, d.model, fresh]) m.dispose();
  });
});

describe("model directory: damaged or foreign directories", () => {
  const expectInvalid = (dir: string, message: RegExp) => {
    const e = thrown(() => loadModelDir(dir));
    expect(e.issues[0]!.code).toBe("invalid_model_dir");
    expect(e.kind).toBe("ModelError");
    expect(e.issues[0]!.message).toMatch(message);
    return e;
  };

  it("a truncated weights.bin", () => {
    const d = copy("truncated");
    const w = join(d, "weights.bin");
    truncateSync(w, readFileSync(w).byteLength - 4);
    expectInvalid(d, /shorter than model\.json says/);
  });

  it("a weights.bin with extra bytes, or none", () => {
    const d = copy("longer");
    writeFileSync(join(d, "weights.bin"), Buffer.concat([readFileSync(join(d, "weights.bin")), Buffer.alloc(8)]));
    expectInvalid(d, /longer than model\.json says/);
    const m = copy("no-weights");
    rmSync(join(m, "weights.bin"));
    expectInvalid(m, /weights\.bin is missing/);
  });

  it("a missing model.json, or one that is not JSON", () => {
    const d = copy("no-model-json");
    rmSync(join(d, "model.json"));
    const e = expectInvalid(d, /model\.json is missing/);
    expect(e.issues[0]!.hint).toMatch(/recblocks train/);
    const j = copy("bad-json");
    writeFileSync(join(j, "model.json"), "{ not json");
    expectInvalid(j, /not valid JSON/);
  });

  it("a wrong format, or a format version this build does not read", () => {
    const d = copy("wrong-format");
    const mj = JSON.parse(readFileSync(join(d, "model.json"), "utf8"));
    writeFileSync(join(d, "model.json"), JSON.stringify({ ...mj, format: "keras-layers" }));
    expectInvalid(d, /"keras-layers" model, not a next-item model/);
    writeFileSync(join(d, "model.json"), JSON.stringify({ ...mj, format: undefined }));
    expectInvalid(d, /has no "format"/);
    writeFileSync(join(d, "model.json"), JSON.stringify({ ...mj, formatVersion: 99 }));
    expectInvalid(d, /format version 99/);
  });

  it("a directory that does not exist", () => {
    expectInvalid(join(tmp, "nowhere"), /does not exist/);
  });
});

describe("model directory: atomic writes", () => {
  it("writing over an existing model directory replaces it and leaves no temporary folder", () => {
    const parent = join(tmp, "overwrite");
    mkdirSync(parent);
    const dir = join(parent, "model");
    cpSync(run.modelDir, dir, { recursive: true });
    const c = loadModelDir(dir);
    // change one weight so that the new directory is visibly the new one
    const v = c.model.namedVariables().get("inputs/embeddings/item_id")!;
    tf.tidy(() => v.assign(tf.mul(v, 2)));
    saveModelDir(dir, contentsOf(c));
    expect(readdirSync(parent)).toEqual(["model"]);
    const d = loadModelDir(dir);
    expect(Array.from(d.model.namedVariables().get("inputs/embeddings/item_id")!.dataSync())).toEqual(Array.from(v.dataSync()));
    saveModelDir(dir, contentsOf(d));
    expect(readdirSync(parent)).toEqual(["model"]);
    c.model.dispose();
    d.model.dispose();
  });

  it("a model with a NaN weight is refused (non_finite_weights) and the previous directory is intact", () => {
    const parent = join(tmp, "nan");
    mkdirSync(parent);
    const dir = join(parent, "model");
    cpSync(run.modelDir, dir, { recursive: true });
    const before = snapshot(dir);
    const c = loadModelDir(dir);
    const name = "body/0/transformer/layer_0/attention/qkv/kernel";
    const v = c.model.namedVariables().get(name);
    expect(v, [...c.model.namedVariables().keys()].join(", ")).toBeDefined();
    const vals = v!.dataSync().slice();
    vals[3] = NaN;
    tf.tidy(() => v!.assign(tf.tensor(vals, v!.shape)));
    const e = thrown(() => saveModelDir(dir, contentsOf(c)));
    expect(e.issues[0]!.code).toBe("non_finite_weights");
    expect(e.issues[0]!.message).toContain(name);
    expect(e.issues[0]!.message).toMatch(/NaN at index 3/);
    expect(readdirSync(parent)).toEqual(["model"]);
    expect(snapshot(dir)).toEqual(before);
    // Infinity too, into a folder that does not exist yet: nothing is created
    vals[3] = Infinity;
    tf.tidy(() => v!.assign(tf.tensor(vals, v!.shape)));
    expect(thrown(() => saveModelDir(join(parent, "new"), contentsOf(c))).issues[0]!.code).toBe("non_finite_weights");
    expect(existsSync(join(parent, "new"))).toBe(false);
    expect(readdirSync(parent)).toEqual(["model"]);
    c.model.dispose();
  });
});
