/**
 * Embedding extraction for approximate-nearest-neighbour search (`recblocks export`):
 * - items: the rows of the input block's item-id embedding table, keyed by raw item id (padding and OOV
 *   rows left out, or kept and flagged);
 * - sessions: for every session of a data spec, the vector the head scores at the session's last position
 *   (Model.sessionEmbeddings), keyed by session id. For tied heads, session · itemᵀ is the model's logit,
 *   so a dot-product search over the item vectors gives `recblocks recommend`'s ranking.
 * Files are written with writeFileAtomic (a temporary sibling renamed into place).
 */
import { basename, dirname, join, resolve } from "node:path";
import { fullSequenceExamples, batches, type Session } from "../data/batches.js";
import { loadRecipeData, type DataConfig } from "../data/load.js";
import { initEngine } from "../engine/index.js";
import { RecblocksError } from "../errors/issue.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadModelDir, modelDirFormat, NEXT_ITEM_FORMAT, type ModelDirContents } from "../io/model-dir.js";
import { encodeNpy } from "./npy.js";

export type ExportFormat = "npy" | "jsonl" | "csv";
export type ExportWhat = "items" | "sessions";

/** Embeddings as rows: `values` is [ids.length, dim] row-major. */
export interface EmbeddingRows {
  what: ExportWhat;
  ids: string[];
  dim: number;
  values: Float32Array;
  /** Per row: "padding" / "oov" for reserved item rows (only when they are included), else null. */
  reserved?: (null | "padding" | "oov" | "unused")[];
  /** Dense item ids of the rows (items). */
  denseIds?: Int32Array;
  /** sessions: true when the vectors are the head's query rows (dot product with the item table = logits). */
  scoresWithItemTable?: boolean;
}

/**
 * Item vectors of a loaded model directory, in dense-id order, keyed by raw item id. Row 0 (padding),
 * the OOV row and rows without a raw id are left out unless `includeReserved` (then flagged).
 */
export function itemEmbeddingRows(c: ModelDirContents, opts: { includeReserved?: boolean } = {}): EmbeddingRows {
  const vocab = c.vocabularies[c.itemColumn];
  if (!vocab) throw new RecblocksError("model directory", [{ code: "invalid_model_dir", path: `/vocabularies/${c.itemColumn}`, message: `The model directory has no vocabulary for the item column "${c.itemColumn}".` }], { kind: "ModelError" });
  const t = c.model.itemEmbeddings();
  const keep: number[] = [];
  const ids: string[] = [];
  const reserved: (null | "padding" | "oov" | "unused")[] = [];
  for (let id = 0; id < t.rows; id++) {
    const raw = vocab.raw(id);
    const flag = id === 0 ? "padding" : id === vocab.oovId ? "oov" : raw === undefined ? "unused" : null;
    if (flag && !opts.includeReserved) continue;
    keep.push(id);
    ids.push(raw === undefined ? "" : String(raw));
    reserved.push(flag);
  }
  const values = new Float32Array(keep.length * t.dim);
  keep.forEach((id, r) => values.set(t.values.subarray(id * t.dim, (id + 1) * t.dim), r * t.dim));
  return { what: "items", ids, dim: t.dim, values, denseIds: Int32Array.from(keep), ...(opts.includeReserved ? { reserved } : {}) };
}

/** A session without its OOV steps (what `recblocks recommend` does with unknown ids). */
function withoutOov(s: Session, oov: number): Session {
  if (oov < 0 || !s.items.includes(oov)) return s;
  const keep: number[] = [];
  for (let i = 0; i < s.items.length; i++) if (s.items[i] !== oov) keep.push(i);
  const pick = <T extends Int32Array | Float32Array | Float64Array>(a: T): T => (a.constructor as unknown as { from(x: number[]): T }).from(keep.map((i) => a[i]!));
  const out: Session = {
    id: s.id,
    items: pick(s.items),
    categorical: Object.fromEntries(Object.entries(s.categorical).map(([k, v]) => [k, pick(v)])),
    continuous: Object.fromEntries(Object.entries(s.continuous).map(([k, v]) => [k, pick(v)])),
    context: s.context,
  };
  if (s.timestamps) out.timestamps = pick(s.timestamps);
  return out;
}

/**
 * Session vectors of a loaded model for `sessions` (dense ids, e.g. from loadRecipeData with the model's
 * vocabularies): the most recent maxSequenceLength items of each, OOV steps dropped; sessions left empty
 * are skipped (their ids in `skipped`).
 */
export function sessionEmbeddingRows(c: ModelDirContents, sessions: Session[], opts: { batchSize?: number; vector?: "query" | "hidden"; context?: Record<string, "categorical" | "continuous"> } = {}): EmbeddingRows & { skipped: string[] } {
  const oov = c.vocabularies[c.itemColumn]?.oovId ?? -1;
  const clean = sessions.map((s) => withoutOov(s, oov));
  const ex = fullSequenceExamples(clean, 1);
  const skipped = clean.filter((s) => s.items.length === 0).map((s) => s.id);
  const ids: string[] = [];
  const parts: Float32Array[] = [];
  let dim = 0;
  let scores = true;
  for (const b of batches(ex, { batchSize: opts.batchSize ?? 256, maxSequenceLength: c.maxSequenceLength, context: opts.context })) {
    const e = c.model.sessionEmbeddings(b, { vector: opts.vector });
    dim = e.dim;
    scores &&= e.scoresWithItemTable;
    parts.push(e.values);
  }
  for (let k = 0; k < ex.session.length; k++) ids.push(clean[ex.session[k]!]!.id);
  const values = new Float32Array(ids.length * dim);
  let at = 0;
  for (const p of parts) {
    values.set(p, at);
    at += p.length;
  }
  return { what: "sessions", ids, dim, values, scoresWithItemTable: ids.length > 0 && scores, skipped };
}

/** Loads the sessions of a data spec (a path or builtin:...) with the model's vocabularies and feature schema. */
export async function loadSessionsForModel(c: ModelDirContents, data: string | undefined, log: (m: string) => void = () => {}): Promise<{ sessions: Session[]; context: Record<string, "categorical" | "continuous">; source: string }> {
  const recipe = c.recipe as { data?: DataConfig };
  if (!recipe.data && !data) throw new RecblocksError("export", [{ code: "data_bad_config", path: "/data", message: "The model's recipe has no data section; give --data." }]);
  const cfg: DataConfig = { ...(recipe.data ?? { train: data! }) };
  if (data) cfg.train = data.startsWith("builtin:") ? data : resolve(data);
  delete cfg.valid;
  delete cfg.test;
  cfg.split = { type: "none" };
  // every session of the data, even one-item ones (they have a vector); no item is dropped for rarity
  cfg.sessions = { ...(cfg.sessions ?? {}), minSessionLength: 1, minItemSupport: 1 };
  const d = await loadRecipeData(cfg, c.featureSchema as never, { baseDir: process.cwd(), vocabularies: c.vocabularies, onLog: log });
  return { sessions: d.train, context: d.features.context, source: cfg.train };
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The files of an export: `out` itself, and for npy a `<out without .npy>.ids.json` sidecar with the row ids. */
export function exportFiles(out: string, format: ExportFormat): string[] {
  if (format !== "npy") return [out];
  const base = basename(out).replace(/\.npy$/i, "");
  return [out, join(dirname(out), `${base}.ids.json`)];
}

/**
 * Writes rows atomically (each file through a temporary sibling renamed into place):
 * - npy: the [N, dim] float32 matrix in `out`, and `<name>.ids.json` = {what, dim, rows, ids, reserved?, ...};
 * - jsonl: one `{"id": ..., "vector": [...]}` per line (`"reserved": "padding"|"oov"` on reserved rows);
 * - csv: a header `id,e0,...,e{dim-1}` (plus `reserved` when reserved rows are included), one row per vector.
 * Returns the files written.
 */
export function writeEmbeddings(rows: EmbeddingRows, out: string, format: ExportFormat, meta: Record<string, unknown> = {}): string[] {
  const files = exportFiles(out, format);
  const { ids, dim, values, reserved } = rows;
  const vec = (r: number) => Array.from(values.subarray(r * dim, (r + 1) * dim));
  if (format === "npy") {
    writeFileAtomic(files[0]!, encodeNpy(values, [ids.length, dim]));
    const side = { what: rows.what, rows: ids.length, dim, ids, ...(reserved ? { reserved } : {}), ...(rows.denseIds ? { denseIds: Array.from(rows.denseIds) } : {}), ...(rows.scoresWithItemTable !== undefined ? { scoresWithItemTable: rows.scoresWithItemTable } : {}), ...meta };
    writeFileAtomic(files[1]!, JSON.stringify(side) + "\n");
  } else if (format === "jsonl") {
    const lines: string[] = [];
    for (let r = 0; r < ids.length; r++) lines.push(JSON.stringify({ id: ids[r], ...(reserved?.[r] ? { reserved: reserved[r] } : {}), vector: vec(r) }) + "\n");
    writeFileAtomic(out, lines.join(""));
  } else if (format === "csv") {
    const head = ["id", ...Array.from({ length: dim }, (_, j) => `e${j}`), ...(reserved ? ["reserved"] : [])].join(",") + "\n";
    const lines = [head];
    for (let r = 0; r < ids.length; r++) lines.push([csvField(ids[r]!), ...vec(r).map(String), ...(reserved ? [reserved[r] ?? ""] : [])].join(",") + "\n");
    writeFileAtomic(out, lines.join(""));
  } else {
    throw new RecblocksError("export", [{ code: "invalid_value", path: "/format", message: `Unknown export format ${JSON.stringify(format)}; expected npy, jsonl or csv.`, received: format, expected: ["npy", "jsonl", "csv"] }]);
  }
  return files;
}

export interface ExportOptions {
  what: ExportWhat;
  /** sessions: the data to embed (a path or builtin:...); default the model's recipe data.train (all of it, unsplit). */
  data?: string;
  format?: ExportFormat;
  /** Output file; default `<what>-embeddings.<format>` in the current folder. */
  out?: string;
  /** items: keep the padding / OOV rows, flagged. */
  includeReserved?: boolean;
  /** sessions: "query" (default; the vector the head scores) or "hidden" (the body's output). */
  vector?: "query" | "hidden";
  batchSize?: number;
  backend?: string;
  stream?: { write(s: string): unknown } | null;
}

export interface ExportResult {
  what: ExportWhat;
  files: string[];
  rows: number;
  dim: number;
  format: ExportFormat;
  skipped?: number;
  scoresWithItemTable?: boolean;
}

/** `recblocks export`: loads a next-item model directory and writes its item or session embeddings. */
export async function exportEmbeddings(dir: string, o: ExportOptions): Promise<ExportResult> {
  const stream = o.stream === undefined ? process.stderr : o.stream;
  const log = (m: string) => stream?.write(m + "\n");
  const format = o.format ?? "npy";
  if (!["npy", "jsonl", "csv"].includes(format)) throw new RecblocksError("export", [{ code: "invalid_value", path: "/format", message: `Unknown export format ${JSON.stringify(format)}; expected npy, jsonl or csv.`, received: format, expected: ["npy", "jsonl", "csv"] }]);
  if (o.what !== "items" && o.what !== "sessions") throw new RecblocksError("export", [{ code: "invalid_value", path: "/what", message: `--what must be items or sessions, got ${JSON.stringify(o.what)}.`, received: o.what, expected: ["items", "sessions"] }]);
  const fmt = modelDirFormat(dir);
  if (fmt !== NEXT_ITEM_FORMAT) throw new RecblocksError(dir, [{ code: "invalid_model_dir", path: "", message: `${dir} holds a "${fmt}" model; export reads next-item models.`, hint: "ALS models keep their factors in their own files (docs/als.md)." }], { kind: "ModelError" });
  await initEngine({ backend: o.backend as never, quiet: true });
  const { registerBuiltinBlocks } = await import("../run/train.js");
  await registerBuiltinBlocks();
  const c = loadModelDir(dir);
  try {
    const out = resolve(o.out ?? `${o.what}-embeddings.${format}`);
    let rows: EmbeddingRows;
    let skipped: number | undefined;
    if (o.what === "items") {
      rows = itemEmbeddingRows(c, { includeReserved: o.includeReserved });
    } else {
      const d = await loadSessionsForModel(c, o.data, log);
      const r = sessionEmbeddingRows(c, d.sessions, { batchSize: o.batchSize, vector: o.vector, context: d.context });
      rows = r;
      skipped = r.skipped.length;
      if (skipped) log(`${skipped} session(s) have no item known to the model and get no vector: ${r.skipped.slice(0, 5).join(", ")}${skipped > 5 ? ", ..." : ""}`);
      if (!r.scoresWithItemTable) log("note: the head does not score by a dot product with the item table (untied weights, an output bias, or --vector hidden): session · item is not the model's logit");
    }
    const files = writeEmbeddings(rows, out, format, { model: resolve(dir), itemColumn: c.itemColumn });
    log(`wrote ${rows.ids.length} ${o.what === "items" ? "item" : "session"} vectors of dimension ${rows.dim} to ${files.join(" and ")}`);
    return { what: o.what, files, rows: rows.ids.length, dim: rows.dim, format, ...(skipped !== undefined ? { skipped } : {}), ...(rows.scoresWithItemTable !== undefined ? { scoresWithItemTable: rows.scoresWithItemTable } : {}) };
  } finally {
    c.model.dispose();
  }
}
