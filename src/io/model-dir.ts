/**
 * Save / load the model directory of a next-item model (blocks), written atomically (a temporary
 * sibling folder renamed into place; the previous directory stays whole until the rename):
 *
 *   model.json            TF.js weights format: {format: "recblocks-next-item", formatVersion,
 *                         modelTopology: {className: "Model", config: <recipe model section>, ...},
 *                         weightsManifest: [{paths: ["weights.bin"], weights: [{name, shape, dtype}]}]}
 *   weights.bin           float32 little-endian, in manifest order
 *   recipe.json           the resolved recipe
 *   feature-schema.json   the feature schema the model was built from (cardinalities = vocabulary sizes)
 *   vocabularies/<column>.json   raw id -> dense id, one per categorical column
 *   metrics.json          final metrics and the per-epoch history
 *   item-features.json    per-item values of the per-step side features the input block uses (most frequent
 *                         category, mean price, ...; src/io/item-features.ts), so that recommendations can be
 *                         asked from raw item ids alone. Only for models with such features (model.json
 *                         then says "itemFeatures": "item-features.json"); directories written before it
 *                         existed load without it.
 *
 * `tf.io.loadWeights(manifest, dirUrl)` reads the weights in a browser; block types must be
 * registered (import blocks/index.js) before `loadModelDir` rebuilds the graph.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { RecblocksError } from "../errors/issue.js";
import { Vocabulary } from "../data/vocabulary.js";
import type { FeatureSchemaLike } from "../core/index.js";
import { Model, type ModelConfig } from "../model/model.js";
import { recoverDirAtomic, writeDirAtomic } from "./atomic.js";
import { ITEM_FEATURES_FILE, itemFeatureTableFromJSON, itemFeatureTableToJSON, type ItemFeatureTable } from "./item-features.js";

export const NEXT_ITEM_FORMAT = "recblocks-next-item";
export const NEXT_ITEM_FORMAT_VERSION = 1;

export interface ModelDirContents {
  model: Model;
  /** The resolved recipe the model was trained from. */
  recipe: Record<string, unknown>;
  featureSchema: FeatureSchemaLike & Record<string, unknown>;
  vocabularies: Record<string, Vocabulary>;
  /** Name of the item-id column (its vocabulary maps raw item ids). */
  itemColumn: string;
  maxSequenceLength: number;
  metrics: Record<string, unknown>;
  /**
   * The item-feature table (item-features.json): the per-step side features of the input block, one value
   * per item id. Absent for item-only models and for directories written before the table existed.
   */
  itemFeatures?: ItemFeatureTable;
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32";
}

/** What `model.json` says (the fields recblocks reads). */
export interface ModelJson {
  format: string;
  formatVersion: number;
  modelTopology: { className: string; config: ModelConfig; itemColumn: string; maxSequenceLength: number; parameters: number };
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  /** "item-features.json" when the directory holds an item-feature table (so that a loader over HTTP fetches it only then). */
  itemFeatures?: string;
}

function badDir(dir: string, message: string, hint?: string): RecblocksError {
  return new RecblocksError(dir, [{ code: "invalid_model_dir", path: "", message, source: { file: dir }, hint }], { kind: "ModelError" });
}

/** Writes a trained next-item model and everything needed to use it elsewhere. Refuses a model with a NaN/Inf weight. */
export function saveModelDir(dir: string, c: Omit<ModelDirContents, "model"> & { model: Model }): void {
  const vars = c.model.namedVariables();
  const specs: WeightSpec[] = [];
  const chunks: Uint8Array[] = [];
  for (const [name, v] of vars) {
    const data = v.dataSync() as Float32Array;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) {
        throw new RecblocksError(dir, [{ code: "non_finite_weights", path: "", message: `Weight "${name}" holds ${data[i]} at index ${i}; the model is not saved.`, hint: "Training diverged: lower the learning rate or clip gradients." }], { kind: "ModelError" });
      }
    }
    specs.push({ name, shape: [...v.shape], dtype: "float32" });
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  const withTable = c.itemFeatures !== undefined && Object.keys(c.itemFeatures.features).length > 0;
  const modelJson: ModelJson & Record<string, unknown> = {
    format: NEXT_ITEM_FORMAT,
    formatVersion: NEXT_ITEM_FORMAT_VERSION,
    generatedBy: "recblocks",
    convertedBy: null,
    modelTopology: { className: "Model", config: c.model.toRecipe(), itemColumn: c.itemColumn, maxSequenceLength: c.maxSequenceLength, parameters: c.model.countParams() },
    weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
    ...(withTable ? { itemFeatures: ITEM_FEATURES_FILE } : {}),
  };
  const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  const files: Record<string, string | Uint8Array | Uint8Array[]> = {
    "model.json": json(modelJson),
    "weights.bin": chunks,
    "recipe.json": json(c.recipe),
    "feature-schema.json": json(c.featureSchema),
    "metrics.json": json(c.metrics),
  };
  for (const [col, v] of Object.entries(c.vocabularies)) files[`vocabularies/${col}.json`] = JSON.stringify(v.toJSON()) + "\n";
  if (withTable) files[ITEM_FEATURES_FILE] = JSON.stringify(itemFeatureTableToJSON(c.itemFeatures!)) + "\n";
  writeDirAtomic(dir, files);
}

function readJson(dir: string, rel: string): unknown {
  const p = join(dir, rel);
  let text: string;
  try {
    text = readFileSync(p, "utf8");
  } catch {
    throw badDir(dir, `${rel} is missing from the model directory ${dir}.`, "Give the folder that `recblocks train` wrote (it holds model.json).");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badDir(dir, `${rel} in ${dir} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The `format` of a model directory ("recblocks-next-item", "recblocks-als"), or a clear error. First
 * makes the directory whole if a save was killed between its two renames (recoverDirAtomic).
 */
export function modelDirFormat(dir: string): string {
  recoverDirAtomic(dir);
  if (!existsSync(dir)) throw badDir(dir, `The model directory ${dir} does not exist.`, "Train one with `recblocks train <recipe> --out <dir>`.");
  const m = readJson(dir, "model.json") as { format?: unknown };
  if (typeof m?.format !== "string") throw badDir(dir, `${dir}/model.json has no "format"; it was not written by recblocks.`);
  return m.format;
}

/**
 * What a model directory holds, however it was read (node:fs in `loadModelDir`, fetch in the browser
 * entry src/browser): the parsed JSON files, the vocabularies and the bytes of weights.bin.
 */
export interface ModelDirFiles {
  /** Parsed model.json. */
  modelJson: unknown;
  /** Parsed feature-schema.json. */
  featureSchema: unknown;
  /** Parsed recipe.json. */
  recipe: unknown;
  /** Parsed metrics.json ({} when absent). */
  metrics?: unknown;
  /** Vocabularies by column (at least the item column's). */
  vocabularies: Record<string, Vocabulary>;
  /** The bytes of weights.bin (float32 little-endian, in manifest order). */
  weights: Uint8Array | ArrayBuffer;
  /** Parsed item-features.json, when the directory has one. */
  itemFeatures?: unknown;
}

/**
 * Rebuilds a next-item model from the contents of a model directory (no file access: Node and the
 * browser share it). `where` names the directory or URL in error messages.
 */
export function modelDirFromFiles(where: string, files: ModelDirFiles): ModelDirContents {
  const dir = where;
  const mj = files.modelJson as ModelJson;
  if (typeof (mj as { format?: unknown })?.format !== "string") throw badDir(dir, `${dir}/model.json has no "format"; it was not written by recblocks.`);
  if (mj.format !== NEXT_ITEM_FORMAT) throw badDir(dir, `${dir} holds a "${mj.format}" model, not a next-item model.`);
  if (mj.formatVersion !== NEXT_ITEM_FORMAT_VERSION) throw badDir(dir, `${dir}/model.json has format version ${mj.formatVersion}; this recblocks reads ${NEXT_ITEM_FORMAT_VERSION}.`);
  const featureSchema = files.featureSchema as ModelDirContents["featureSchema"];
  const recipe = files.recipe as Record<string, unknown>;
  const metrics = (files.metrics ?? {}) as Record<string, unknown>;
  const vocabularies = files.vocabularies;
  const bytes = files.weights instanceof Uint8Array ? files.weights : new Uint8Array(files.weights);
  const model = Model.fromConfig(mj.modelTopology.config, featureSchema).build();
  const vars = model.namedVariables();
  const specs = mj.weightsManifest[0]?.weights ?? [];
  let at = 0;
  const seen = new Set<string>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = vars.get(s.name);
    if (!v || v.shape.join(",") !== s.shape.join(",") || at + n * 4 > bytes.byteLength) {
      model.dispose();
      throw badDir(dir, !v ? `weights.bin holds "${s.name}", which the rebuilt model does not have.` : at + n * 4 > bytes.byteLength ? "weights.bin is shorter than model.json says (a torn or truncated file)." : `Weight "${s.name}" has shape [${s.shape}] in model.json but [${v.shape}] in the rebuilt model.`);
    }
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + n * 4));
    tf.tidy(() => v.assign(tf.tensor(values, s.shape, "float32")));
    at += n * 4;
    seen.add(s.name);
  }
  const missing = [...vars.keys()].filter((k) => !seen.has(k));
  if (missing.length || at !== bytes.byteLength) {
    model.dispose();
    throw badDir(dir, missing.length ? `weights.bin has no values for ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", ..." : ""}.` : "weights.bin is longer than model.json says.");
  }
  let itemFeatures: ItemFeatureTable | undefined;
  if (files.itemFeatures !== undefined) {
    try {
      itemFeatures = itemFeatureTableFromJSON(files.itemFeatures, `${dir}${dir.endsWith("/") ? "" : "/"}${ITEM_FEATURES_FILE}`, model.numItems);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return { model, recipe, featureSchema, vocabularies, itemColumn: mj.modelTopology.itemColumn, maxSequenceLength: mj.modelTopology.maxSequenceLength, metrics, ...(itemFeatures ? { itemFeatures } : {}) };
}

/**
 * Loads a directory written by saveModelDir: rebuilds the blocks from the saved config and sets every weight.
 * The files are read again if a save swapped the directory while they were being read (see
 * readModelDirFiles), so that model.json, vocabularies and weights.bin always come from one version.
 */
export function loadModelDir(dir: string): ModelDirContents {
  return modelDirFromFiles(dir, readModelDirFiles(dir));
}

/**
 * Reads the files of a next-item model directory (after recovering it if a save was killed mid-swap),
 * all from one version: read again when a save swapped the directory in the meantime.
 */
export function readModelDirFiles(dir: string): ModelDirFiles {
  for (let attempt = 1; ; attempt++) {
    const before = dirIdentity(dir);
    let files: ModelDirFiles;
    try {
      files = readModelDirFilesOnce(dir);
    } catch (e) {
      // a file vanished because a save swapped the directory while we read: read again
      // (a RecblocksError from a file's check, or the file system's own ENOENT / ENOTDIR from a listing)
      const vanished = e instanceof RecblocksError || ["ENOENT", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? "");
      if (attempt < 10 && vanished && dirIdentity(dir) !== before) continue;
      throw e;
    }
    if (attempt < 10 && dirIdentity(dir) !== before) continue;
    return files;
  }
}

/**
 * Identity of the directory at `dir`: a save that swaps a new directory in changes it. Inode numbers
 * are reused (the directory of two saves ago may come back under the same number), so the change and
 * birth times, in nanoseconds, are part of it.
 */
function dirIdentity(dir: string): string {
  try {
    const st = statSync(dir, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}:${st.birthtimeNs}`;
  } catch {
    return "";
  }
}

function readModelDirFilesOnce(dir: string): ModelDirFiles {
  const format = modelDirFormat(dir);
  if (format !== NEXT_ITEM_FORMAT) throw badDir(dir, `${dir} holds a "${format}" model, not a next-item model.`);
  const modelJson = readJson(dir, "model.json") as ModelJson;
  if (modelJson.formatVersion !== NEXT_ITEM_FORMAT_VERSION) throw badDir(dir, `${dir}/model.json has format version ${modelJson.formatVersion}; this recblocks reads ${NEXT_ITEM_FORMAT_VERSION}.`);
  const featureSchema = readJson(dir, "feature-schema.json");
  const recipe = readJson(dir, "recipe.json");
  const metrics = existsSync(join(dir, "metrics.json")) ? readJson(dir, "metrics.json") : {};
  const vocabularies: Record<string, Vocabulary> = {};
  const vdir = join(dir, "vocabularies");
  if (existsSync(vdir)) {
    for (const f of readdirSync(vdir).filter((x) => x.endsWith(".json")).sort()) {
      vocabularies[f.slice(0, -5)] = Vocabulary.load(join(vdir, f));
    }
  }
  let weights: Buffer;
  try {
    weights = readFileSync(join(dir, "weights.bin"));
  } catch {
    throw badDir(dir, `weights.bin is missing from the model directory ${dir}.`);
  }
  const itemFeatures = existsSync(join(dir, ITEM_FEATURES_FILE)) ? readJson(dir, ITEM_FEATURES_FILE) : undefined;
  return { modelJson, featureSchema, recipe, metrics, vocabularies, weights, ...(itemFeatures !== undefined ? { itemFeatures } : {}) };
}
