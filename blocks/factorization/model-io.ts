/**
 * Save / load an ALS model directory, written atomically (a temporary sibling folder renamed into
 * place). Layout:
 *   model.json          TF.js weights format: {format: "recblocks-als", formatVersion, modelTopology:
 *                       {className: "AlsModel", config}, weightsManifest: [{paths: ["weights.bin"], weights: [...]}]}
 *   weights.bin         little-endian, in manifest order: <name>/user_factors float32 [users, factors],
 *                       <name>/item_factors float32 [items, factors], and the training interactions as CSR:
 *                       <name>/user_items/indptr int32 [users+1], .../indices int32 [nnz], .../values float32 [nnz]
 *   vocabularies/users.json, vocabularies/items.json   {"version": 1, "kind": "als-ids", "ids": [raw ids, dense order]}
 *   recipe.json         the resolved recipe (when known)
 *   metrics.json        evaluation metrics and training history
 * tf.io.loadWeights(manifest, dirUrl) reads the factors in a browser.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RecblocksError } from "../../src/errors/issue.js";
import { writeDirAtomic } from "../../src/io/atomic.js";

export { writeDirAtomic };
import { AlsModel } from "./als-model.js";
import { resolveAlsConfig } from "./config.js";

export const ALS_FORMAT = "recblocks-als";
export const ALS_FORMAT_VERSION = 1;

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
}

function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function saveAlsModel(model: AlsModel, dir: string, extra: { recipe?: unknown; metrics?: Record<string, unknown> } = {}): void {
  const f = model.factors;
  const name = model.config.name;
  const ui = model.userItems;
  const nnz = ui.indptr[ui.rows]!;
  const specs: WeightSpec[] = [
    { name: `${name}/user_factors`, shape: [model.users.size, f], dtype: "float32" },
    { name: `${name}/item_factors`, shape: [model.items.size, f], dtype: "float32" },
    { name: `${name}/user_items/indptr`, shape: [ui.rows + 1], dtype: "int32" },
    { name: `${name}/user_items/indices`, shape: [nnz], dtype: "int32" },
    { name: `${name}/user_items/values`, shape: [nnz], dtype: "float32" },
  ];
  const modelJson = {
    format: ALS_FORMAT,
    formatVersion: ALS_FORMAT_VERSION,
    generatedBy: "recblocks",
    convertedBy: null,
    modelTopology: { className: "AlsModel", config: model.config, users: model.users.size, items: model.items.size, interactions: nnz },
    weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
  };
  const vocab = (ids: string[]): string => JSON.stringify({ version: 1, kind: "als-ids", ids });
  const files: Record<string, string | Uint8Array | Uint8Array[]> = {
    "model.json": JSON.stringify(modelJson, null, 2) + "\n",
    "weights.bin": [
      bytesOf(model.userFactors.subarray(0, model.users.size * f)),
      bytesOf(model.itemFactors.subarray(0, model.items.size * f)),
      bytesOf(ui.indptr),
      bytesOf(ui.indices.subarray(0, nnz)),
      bytesOf(ui.values.subarray(0, nnz)),
    ],
    "vocabularies/users.json": vocab(model.users.ids),
    "vocabularies/items.json": vocab(model.items.ids),
    "metrics.json": JSON.stringify(extra.metrics ?? model.metrics ?? {}, null, 2) + "\n",
  };
  if (extra.recipe !== undefined) files["recipe.json"] = JSON.stringify(extra.recipe, null, 2) + "\n";
  writeDirAtomic(dir, files);
}

function bad(dir: string, message: string, hint?: string): RecblocksError {
  return new RecblocksError(dir, [{ code: "invalid_model_dir", path: "", message, source: { file: dir }, hint }]);
}

function readJson(dir: string, rel: string): unknown {
  const p = join(dir, rel);
  let text: string;
  try {
    text = readFileSync(p, "utf8");
  } catch {
    throw bad(dir, `${rel} is missing from the model directory ${dir}.`, "Give the folder that `recblocks train` wrote (it holds model.json).");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw bad(dir, `${rel} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Loads a model directory written by saveAlsModel. */
export function loadAlsModel(dir: string): AlsModel {
  const mj = readJson(dir, "model.json") as {
    format?: string; formatVersion?: number; modelTopology?: { config?: unknown };
    weightsManifest?: { paths: string[]; weights: WeightSpec[] }[];
  };
  if (mj.format !== ALS_FORMAT) throw bad(dir, `model.json is not an ALS model (format ${JSON.stringify(mj.format)}; expected "${ALS_FORMAT}").`);
  if (mj.formatVersion !== ALS_FORMAT_VERSION) throw bad(dir, `Unsupported ALS model format version ${mj.formatVersion}.`);
  const config = resolveAlsConfig(mj.modelTopology?.config, "/modelTopology/config", `${dir}/model.json`);
  const group = mj.weightsManifest?.[0];
  if (!group || group.weights.length !== 5 || group.paths.length !== 1) throw bad(dir, "model.json has an unexpected weightsManifest.");
  let buf: Buffer;
  try {
    buf = readFileSync(join(dir, group.paths[0]!));
  } catch {
    throw bad(dir, `${group.paths[0]} is missing from the model directory.`);
  }
  const expected = group.weights.reduce((s, w) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  if (buf.byteLength !== expected) throw bad(dir, `${group.paths[0]} has ${buf.byteLength} bytes; model.json describes ${expected}.`);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  let at = 0;
  const arrays = group.weights.map((w) => {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const a = w.dtype === "int32" ? new Int32Array(ab, at, n) : new Float32Array(ab, at, n);
    at += 4 * n;
    return a;
  });
  const users = (readJson(dir, "vocabularies/users.json") as { ids?: string[] }).ids;
  const items = (readJson(dir, "vocabularies/items.json") as { ids?: string[] }).ids;
  if (!Array.isArray(users) || !Array.isArray(items)) throw bad(dir, "A vocabulary file has no ids array.");
  const [uf, itf, indptr, indices, values] = arrays as [Float32Array, Float32Array, Int32Array, Int32Array, Float32Array];
  if (users.length + 1 !== indptr.length) throw bad(dir, "vocabularies/users.json does not match the interactions in weights.bin.");
  let metrics: Record<string, unknown> = {};
  if (existsSync(join(dir, "metrics.json"))) metrics = readJson(dir, "metrics.json") as Record<string, unknown>;
  return new AlsModel({
    config, users, items, userFactors: uf, itemFactors: itf,
    userItems: { rows: users.length, cols: items.length, indptr, indices, values }, metrics,
  });
}

/** The resolved recipe saved with the model, if any. */
export function loadAlsRecipe(dir: string): unknown {
  return existsSync(join(dir, "recipe.json")) ? readJson(dir, "recipe.json") : undefined;
}
