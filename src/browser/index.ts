/**
 * recblocks in a browser: load a model directory written by `recblocks train` (saveModelDir) over
 * HTTP and answer next-item requests, with the same blocks, the same loader (`modelDirFromFiles`)
 * and the same recommender (`NextItemRecommender`) as Node, so the answers are the same.
 *
 *   import { loadModel } from "./dist/recblocks.js";
 *   const rec = await loadModel("./model/");               // wasm backend, cpu as the fallback
 *   rec.recommend({ items: ["12", "7", "33"], k: 10, excludeSeen: true });
 *   // -> { items: ["5", ...], scores: [7.31, ...], unknownItems: [] }
 *
 * Bundled by scripts/build-browser.mjs (`npm run build:browser`) into examples/browser/dist/, with
 * the wasm binaries next to the bundle. See docs/browser.md.
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import "../../blocks/index.js";
import { Vocabulary } from "../data/vocabulary.js";
import { registerWasmKernels } from "../engine/wasm-kernels.js";
import { RecblocksError } from "../errors/issue.js";
import { modelDirFromFiles, NEXT_ITEM_FORMAT, type ModelDirContents, type ModelJson } from "../io/model-dir.js";
import type { ItemFilters } from "../recommend/filters.js";
import { ITEM_FEATURES_FILE } from "../io/item-features.js";
import { NextItemRecommender, type NextItemAnswer, type SessionInput, type SideFeatureValues } from "../recommend/next-item.js";

export { NextItemRecommender, type NextItemAnswer, type NextItemRequest, type SessionInput, type SideFeatureValues } from "../recommend/next-item.js";
export type { ModelDirContents } from "../io/model-dir.js";
export { RecblocksError } from "../errors/issue.js";
export { tf };

export type BrowserBackend = "wasm" | "webgl" | "cpu";

export interface BackendOptions {
  /**
   * "auto" (default): wasm, else cpu. "webgl" only on request and only in a bundle built with
   * --with-webgl (GPU float precision may differ from Node's).
   */
  backend?: "auto" | BrowserBackend;
  /**
   * Where the wasm binaries (tfjs-backend-wasm*.wasm) are: a folder URL ending in "/" or a map of
   * file name to URL. Default: the folder of the bundle (the build copies them there).
   */
  wasmPaths?: string | Record<string, string>;
}

export interface BackendInfo {
  backend: BrowserBackend;
  /** Why this backend (e.g. "requested", "auto: wasm", "wasm unavailable: ...; cpu"). */
  reason: string;
  /** wasm only: whether the SIMD / multi-threaded binary could be used. */
  simd?: boolean;
  multithread?: boolean;
}

export interface LoadOptions extends BackendOptions {
  /** fetch to use (default globalThis.fetch); e.g. one that adds credentials. */
  fetch?: typeof fetch;
}

/** A request of the browser recommender: as NextItemRequest, with the filters that need no item metadata. */
export interface BrowserRequest {
  /** Raw ids of the session's items, oldest first. */
  items: (string | number)[];
  /** Number of items (default 20). */
  k?: number;
  /** Never recommend an item already in the session. */
  excludeSeen?: boolean;
  /** Allow-list / deny-list of raw item ids (attribute rules need item metadata, which the browser entry does not load). */
  filters?: Pick<ItemFilters, "allow" | "deny">;
  /** Explicit per-step side features aligned with `items` (as NextItemRequest.features); the item-feature table fills the rest. */
  features?: SideFeatureValues;
}

let current: BackendInfo | undefined;

function bundleDir(): string | undefined {
  try {
    return new URL("./", import.meta.url).href;
  } catch {
    return undefined;
  }
}

async function wasmFlags(): Promise<{ simd?: boolean; multithread?: boolean }> {
  try {
    return {
      simd: Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")),
      multithread: Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")),
    };
  } catch {
    return {};
  }
}

async function tryBackend(name: BrowserBackend, opts: BackendOptions): Promise<string | undefined> {
  if (!tf.findBackendFactory(name)) return `the ${name} backend is not in this bundle${name === "webgl" ? " (build it with `node scripts/build-browser.mjs --with-webgl`)" : ""}`;
  try {
    if (name === "wasm") {
      const paths = opts.wasmPaths ?? bundleDir();
      if (paths !== undefined) setWasmPaths(paths as string);
      registerWasmKernels(); // the kernels Node's wasm engine adds (src/engine/wasm-kernels.ts)
    }
    const ok = await tf.setBackend(name);
    if (!ok) return `the ${name} backend failed to start`;
    await tf.ready();
    return undefined;
  } catch (e) {
    return String((e as Error)?.message ?? e).split("\n")[0];
  }
}

/**
 * Starts a TF.js backend (once; later calls return the running one unless another is requested).
 * auto: wasm, falling back to cpu when wasm cannot start (no WebAssembly, .wasm files not found).
 */
export async function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  const want = opts.backend ?? "auto";
  if (current && (want === "auto" || want === current.backend)) return current;
  let info: BackendInfo;
  if (want === "auto") {
    const err = await tryBackend("wasm", opts);
    if (err === undefined) info = { backend: "wasm", reason: "auto: wasm", ...(await wasmFlags()) };
    else {
      const err2 = await tryBackend("cpu", opts);
      if (err2 !== undefined) throw new Error(`recblocks: no TF.js backend starts here (wasm: ${err}; cpu: ${err2})`);
      info = { backend: "cpu", reason: `wasm unavailable (${err}); cpu` };
    }
  } else {
    const err = await tryBackend(want, opts);
    if (err !== undefined) throw new Error(`recblocks: the ${want} backend was requested but cannot start: ${err}`);
    info = { backend: want, reason: "requested", ...(want === "wasm" ? await wasmFlags() : {}) };
  }
  current = info;
  return info;
}

/** The backend initBackend started, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

function badDir(url: string, message: string, hint?: string): RecblocksError {
  return new RecblocksError(url, [{ code: "invalid_model_dir", path: "", message, hint }], { kind: "ModelError" });
}

/** The folder URL of a model directory, absolute (relative URLs are resolved against the page). */
export function modelDirUrl(url: string): string {
  const base = (globalThis as { document?: { baseURI?: string } }).document?.baseURI ?? (globalThis as { location?: { href?: string } }).location?.href;
  const abs = base ? new URL(url, base) : new URL(url);
  if (!abs.pathname.endsWith("/")) abs.pathname += "/";
  return abs.href;
}

async function get(f: typeof fetch, dir: string, rel: string, kind: "json" | "bytes", optional = false): Promise<unknown> {
  const url = new URL(rel, dir).href;
  let res: Response;
  try {
    res = await f(url);
  } catch (e) {
    throw badDir(dir, `Cannot fetch ${url}: ${(e as Error).message}.`, "Is the model directory served over HTTP from this origin (or with CORS headers)?");
  }
  if (!res.ok) {
    if (optional) return undefined;
    throw badDir(dir, `${rel} is missing from the model directory ${dir} (HTTP ${res.status}).`, "Give the URL of the folder that `recblocks train` wrote (it holds model.json).");
  }
  if (kind === "bytes") return new Uint8Array(await res.arrayBuffer());
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badDir(dir, `${rel} in ${dir} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The files of a model directory fetched over HTTP: model.json, weights, recipe, schema, metrics, the item
 * vocabulary and, when the directory has one, the item-feature table (item-features.json) with the
 * vocabularies of its categorical features (to map explicit raw values of a request).
 */
export async function fetchModelDir(url: string, opts: { fetch?: typeof fetch } = {}): Promise<ModelDirContents> {
  const f = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const dir = modelDirUrl(url);
  const modelJson = (await get(f, dir, "model.json", "json")) as ModelJson;
  if (typeof modelJson?.format !== "string") throw badDir(dir, `${dir}model.json has no "format"; it was not written by recblocks.`);
  if (modelJson.format !== NEXT_ITEM_FORMAT) throw badDir(dir, `${dir} holds a "${modelJson.format}" model, not a next-item model; the browser entry serves next-item models.`);
  const itemColumn = modelJson.modelTopology?.itemColumn;
  const weightPaths = (modelJson.weightsManifest ?? []).flatMap((g) => g.paths);
  // Only the item column's vocabulary: it is all a next-item model needs to map raw ids (the directory
  // cannot be listed over HTTP, and the others, e.g. user ids, can be large).
  const [featureSchema, recipe, metrics, vocabDoc, itemFeatures, ...weightParts] = await Promise.all([
    get(f, dir, "feature-schema.json", "json"),
    get(f, dir, "recipe.json", "json"),
    get(f, dir, "metrics.json", "json", true),
    get(f, dir, `vocabularies/${encodeURIComponent(itemColumn)}.json`, "json"),
    // only when model.json names it (directories of item-only models and older ones have none)
    modelJson.itemFeatures === ITEM_FEATURES_FILE ? get(f, dir, ITEM_FEATURES_FILE, "json") : undefined,
    ...weightPaths.map((p) => get(f, dir, p, "bytes")),
  ]);
  // the vocabularies of the table's categorical features (small: categories, brands, ...)
  const tableFeatures = (itemFeatures as { features?: Record<string, { kind?: unknown }> } | undefined)?.features ?? {};
  const catNames = Object.keys(tableFeatures).filter((n) => tableFeatures[n]?.kind === "categorical" && n !== itemColumn);
  const catDocs = await Promise.all(catNames.map((n) => get(f, dir, `vocabularies/${encodeURIComponent(n)}.json`, "json", true)));
  const parts = weightParts as Uint8Array[];
  const weights = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    weights.set(p, at);
    at += p.byteLength;
  }
  const vocabularies = { [itemColumn]: Vocabulary.fromJSON(vocabDoc, `${dir}vocabularies/${itemColumn}.json`) };
  catNames.forEach((n, i) => {
    if (catDocs[i] !== undefined) vocabularies[n] = Vocabulary.fromJSON(catDocs[i], `${dir}vocabularies/${n}.json`);
  });
  return modelDirFromFiles(dir, { modelJson, featureSchema, recipe, metrics: metrics ?? {}, vocabularies, weights, ...(itemFeatures !== undefined ? { itemFeatures } : {}) });
}

/** A next-item model loaded in the browser: NextItemRecommender plus what the page may want to show. */
export class BrowserRecommender {
  readonly url: string;
  readonly backend: BackendInfo;
  /** The shared recommender (the same class `recblocks recommend` and the HTTP server use). */
  readonly recommender: NextItemRecommender;

  constructor(url: string, backend: BackendInfo, recommender: NextItemRecommender) {
    this.url = url;
    this.backend = backend;
    this.recommender = recommender;
  }

  get contents(): ModelDirContents {
    return this.recommender.contents;
  }
  /** Number of item ids of the model (including padding and OOV). */
  get numItems(): number {
    return this.recommender.numItems;
  }
  get itemColumn(): string {
    return this.contents.itemColumn;
  }
  get maxSequenceLength(): number {
    return this.contents.maxSequenceLength;
  }
  get parameters(): number {
    return this.contents.model.countParams();
  }
  /** The recipe's name, when it has one. */
  get name(): string | undefined {
    const n = this.contents.recipe.name;
    return typeof n === "string" ? n : undefined;
  }

  /** The `n` most frequent raw item ids of the training data (e.g. to suggest a session). */
  popularItems(n = 10): string[] {
    const v = this.recommender.vocab;
    return Array.from(v.idsByFrequency().subarray(0, n), (id) => String(v.raw(id)));
  }

  /** Top-k raw item ids and scores for a session: exactly NextItemRecommender.recommend. */
  recommend(req: BrowserRequest): NextItemAnswer {
    return this.recommender.recommend(req);
  }

  /** Top-k for several sessions (raw item ids, or {items, features}) that share k, excludeSeen and filters (one forward pass). */
  recommendBatch(sessions: ((string | number)[] | SessionInput)[], o: Omit<BrowserRequest, "items" | "features"> = {}): NextItemAnswer[] {
    return this.recommender.recommendBatch(sessions, o);
  }

  dispose(): void {
    this.recommender.dispose();
  }
}

/**
 * Loads the model directory at `url` (a folder URL, relative to the page or absolute): starts the
 * backend (initBackend), fetches the files and rebuilds the model with its trained weights.
 */
export async function loadModel(url: string, opts: LoadOptions = {}): Promise<BrowserRecommender> {
  const backend = await initBackend(opts);
  const contents = await fetchModelDir(url, opts);
  const dir = modelDirUrl(url);
  return new BrowserRecommender(dir, backend, NextItemRecommender.fromContents(dir, contents));
}
