import type { Session } from "./batches.js";
import { filterSteps, numSessions, type CodedSessions } from "./coded.js";
import type { FormatOption } from "./detect.js";
import { failData, type BadRowPolicy } from "./errors.js";
import type { Interner } from "./interner.js";
import type { FeatureSchemaDocLike } from "./schema-doc.js";
import { BAG_PAD, filterSessions, type SessionFilterOptions } from "./sessions.js";
import { openDataSource, readCodedSessions, type ColumnsConfig, type CsvOptions } from "./source.js";
import { splitSessions, type SplitConfig } from "./split.js";
import { isBuiltin, syntheticFeatureSchema } from "./synthetic.js";
import { Vocabulary, type VocabularyOrder } from "./vocabulary.js";

/** The recipe's `data` section (schemas/recipe.schema.json). */
export interface DataConfig {
  format?: FormatOption;
  /** A path (relative to the recipe file) or builtin:synthetic?... */
  train: string;
  valid?: string;
  test?: string;
  csv?: CsvOptions;
  columns?: ColumnsConfig;
  sessions?: SessionFilterOptions & { maxSequenceLength?: number };
  split?: SplitConfig;
  badRows?: BadRowPolicy;
}

export interface LoadOptions {
  /** Folder of the recipe file: relative data paths are resolved against it. */
  baseDir?: string;
  /** Reserve id 1 for unknown values (default true). */
  withOov?: boolean;
  /** Id order of new vocabularies (default frequency). */
  vocabularyOrder?: VocabularyOrder;
  /** Vocabularies to reuse (e.g. those saved with a model, for evaluation); others are built from train. */
  vocabularies?: Record<string, Vocabulary>;
  /** One line per step ("read train: 12,391 rows ..."). */
  onLog?: (msg: string) => void;
}

export interface RecipeData {
  train: Session[];
  valid?: Session[];
  test?: Session[];
  /** By column: the item column and every categorical feature (context ones included). */
  vocabularies: Record<string, Vocabulary>;
  itemColumn: string;
  /**
   * Side features carried by the sessions: `bags` are the multi-hot categorical ones with their bag size,
   * `targets` the context columns tagged `target` (read by the tasks, not model inputs).
   */
  features: { categorical: string[]; continuous: string[]; context: Record<string, "categorical" | "continuous">; bags?: Record<string, number>; targets?: string[] };
  /** The feature schema with `cardinality` of vocabulary columns set to the vocabulary size (embedding table size). */
  featureSchema: FeatureSchemaDocLike;
  maxSequenceLength: number;
  /** Counts after filtering and splitting. */
  stats: { rows: number; train: number; valid: number; test: number; items: number; oovSteps: number };
}

/** Maps the codes of an interner to the dense ids of a vocabulary (-1 for unknown values without OOV). */
export function codeToIds(vocab: Vocabulary, interner: Interner): Int32Array {
  const out = new Int32Array(interner.size);
  const keys = interner.keys;
  for (let c = 0; c < keys.length; c++) out[c] = vocab.lookup(keys[c]!);
  return out;
}

/**
 * Turns coded sessions into Sessions with dense ids. Items unknown to a vocabulary without OOV are dropped
 * (sessions left empty too); missing categorical values become OOV (or 0). Sessions share flat buffers (subarray views).
 */
export function toSessions(cs: CodedSessions, vocabs: Record<string, Vocabulary>, contextKinds: Record<string, "categorical" | "continuous"> = {}): { sessions: Session[]; oovSteps: number } {
  const itemVocab = vocabs[cs.itemColumn]!;
  const itemMap = codeToIds(itemVocab, cs.interners[cs.itemColumn]!);
  let cur = cs;
  if (!itemVocab.withOov) {
    const keep = new Uint8Array(cs.item.length);
    let drop = 0;
    for (let i = 0; i < cs.item.length; i++) {
      keep[i] = itemMap[cs.item[i]!]! >= 0 ? 1 : 0;
      drop += 1 - keep[i]!;
    }
    if (drop) cur = filterSteps(cs, keep);
  }
  const T = cur.item.length;
  const items = new Int32Array(T);
  let oovSteps = 0;
  for (let i = 0; i < T; i++) {
    const id = itemMap[cur.item[i]!]!;
    items[i] = id;
    if (id === 1 && itemVocab.withOov) oovSteps++;
  }
  const cats: Record<string, Int32Array> = {};
  for (const [name, codes] of Object.entries(cur.categorical)) {
    const v = vocabs[name]!;
    const map = codeToIds(v, cur.interners[name]!);
    const miss = v.withOov ? 1 : 0;
    const out = new Int32Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      out[i] = c === BAG_PAD ? 0 : c < 0 ? miss : Math.max(map[c]!, 0);
    }
    cats[name] = out;
  }
  const ctxCat: Record<string, Int32Array> = {};
  for (const [name, codes] of Object.entries(cur.contextCategorical)) {
    const v = vocabs[name]!;
    const map = codeToIds(v, cur.interners[name]!);
    const miss = v.withOov ? 1 : 0;
    ctxCat[name] = Int32Array.from(codes, (c) => (c < 0 ? miss : Math.max(map[c]!, 0)));
  }
  const S = numSessions(cur);
  const sessions: Session[] = new Array(S);
  for (let s = 0; s < S; s++) {
    const a = cur.offsets[s]!;
    const b = cur.offsets[s + 1]!;
    const categorical: Record<string, Int32Array> = {};
    for (const n in cats) {
      const K = cur.bags?.[n] ?? 1;
      categorical[n] = cats[n]!.subarray(a * K, b * K);
    }
    const continuous: Record<string, Float32Array> = {};
    for (const n in cur.continuous) continuous[n] = cur.continuous[n]!.subarray(a, b);
    const context: Record<string, number> = {};
    for (const n in ctxCat) context[n] = ctxCat[n]![s]!;
    for (const n in cur.contextContinuous) context[n] = cur.contextContinuous[n]![s]!;
    const sess: Session = { id: cur.ids[s]!, items: items.subarray(a, b), categorical, continuous, context };
    if (cur.bags) sess.bags = cur.bags;
    if (cur.timestamps) sess.timestamps = cur.timestamps.subarray(a, b);
    sessions[s] = sess;
  }
  return { sessions, oovSteps };
}

/** The per-session target columns of a feature schema (tagged target, not list). */
function targetColumns(schema: FeatureSchemaDocLike | undefined): string[] {
  return (schema?.columns ?? []).filter((c) => (c.tags ?? []).includes("target") && !(c.tags ?? []).includes("list")).map((c) => c.name);
}

function countCodes(cs: CodedSessions, codes: Int32Array, name: string): number[] {
  const counts = new Array<number>(cs.interners[name]!.size).fill(0);
  for (let i = 0; i < codes.length; i++) if (codes[i]! >= 0) counts[codes[i]!]!++;
  return counts;
}

/**
 * The loader the trainer calls: reads train (and valid/test files or a split of train), groups, orders,
 * filters, builds vocabularies from the training sessions and maps everything to dense ids.
 */
export async function loadRecipeData(cfg: DataConfig, featureSchemaDoc: FeatureSchemaDocLike | undefined | null, opts: LoadOptions = {}): Promise<RecipeData> {
  if (!cfg || typeof cfg.train !== "string" || cfg.train === "")
    failData("data_bad_config", { file: "data", column: "train" }, `data.train must be a data path or builtin:synthetic?..., got ${JSON.stringify(cfg?.train)}.`);
  const log = opts.onLog ?? (() => {});
  const schema = featureSchemaDoc ?? (isBuiltin(cfg.train) ? syntheticFeatureSchema(cfg.train) : undefined);
  const interners: Record<string, Interner> = {};
  const srcOpts = { format: cfg.format, csv: cfg.csv, badRows: cfg.badRows, baseDir: opts.baseDir, onWarning: log };
  const read = async (spec: string, role: string) => {
    const t0 = Date.now();
    const src = openDataSource(spec, srcOpts);
    const cs = await readCodedSessions(src, { ...srcOpts, columns: cfg.columns, schema: schema ?? undefined, interners });
    log(`read ${role} ${src.path} (${src.format}${src.sniffed ? `, ${src.sniffed.reason}` : ""}): ${cs.rows} rows, ${numSessions(cs)} sessions in ${Date.now() - t0} ms`);
    return cs;
  };
  const sc = cfg.sessions ?? {};
  const filt: SessionFilterOptions = { dropConsecutiveRepeats: sc.dropConsecutiveRepeats, minSessionLength: sc.minSessionLength ?? 2, minItemSupport: sc.minItemSupport, iterateFilters: sc.iterateFilters };
  const all = await read(cfg.train, "train");
  let train = filterSessions(all, filt);
  if (numSessions(train) === 0) failData("data_no_sessions", { file: all.file }, `No training sessions left after the filters (minSessionLength ${filt.minSessionLength}, minItemSupport ${filt.minItemSupport ?? 1}).`);
  if (numSessions(train) !== numSessions(all)) log(`filters kept ${numSessions(train)} of ${numSessions(all)} sessions, ${train.item.length} of ${all.item.length} interactions`);
  let valid: CodedSessions | undefined;
  let test: CodedSessions | undefined;
  const split = cfg.split ?? { type: "none" };
  if (split.type !== "none") {
    const r = splitSessions(train, split);
    train = r.train;
    valid = r.valid;
    test = r.test;
  }
  const evalFilt: SessionFilterOptions = { dropConsecutiveRepeats: sc.dropConsecutiveRepeats, minSessionLength: filt.minSessionLength };
  if (cfg.valid) valid = filterSessions(await read(cfg.valid, "valid"), evalFilt);
  if (cfg.test) test = filterSessions(await read(cfg.test, "test"), evalFilt);

  // vocabularies from train
  const withOov = opts.withOov ?? true;
  const vocabs: Record<string, Vocabulary> = { ...(opts.vocabularies ?? {}) };
  const build = (name: string, codes: Int32Array) => {
    if (vocabs[name]) return;
    const it = train.interners[name]!;
    vocabs[name] = Vocabulary.fromCounts(it.keys, countCodes(train, codes, name), it.numeric, { name, withOov, order: opts.vocabularyOrder }).vocab;
  };
  build(train.itemColumn, train.item);
  for (const [n, codes] of Object.entries(train.categorical)) build(n, codes);
  for (const [n, codes] of Object.entries(train.contextCategorical)) build(n, codes);
  const contextKinds: Record<string, "categorical" | "continuous"> = {};
  for (const n of Object.keys(train.contextCategorical)) contextKinds[n] = "categorical";
  for (const n of Object.keys(train.contextContinuous)) contextKinds[n] = "continuous";

  const targets = targetColumns(schema);
  const tr = toSessions(train, vocabs, contextKinds);
  const va = valid ? toSessions(valid, vocabs, contextKinds) : undefined;
  const te = test ? toSessions(test, vocabs, contextKinds) : undefined;
  const oovSteps = (va?.oovSteps ?? 0) + (te?.oovSteps ?? 0);
  if (oovSteps) log(`${oovSteps} valid/test interactions have items unseen in train (mapped to OOV id 1)`);

  const baseSchema: FeatureSchemaDocLike = schema ?? { version: 1, columns: [{ name: train.itemColumn, dtype: "string", tags: ["item-id", "categorical", "list"] }] };
  const featureSchema: FeatureSchemaDocLike = {
    ...baseSchema,
    columns: baseSchema.columns.map((c) => (vocabs[c.name] ? { ...c, cardinality: vocabs[c.name]!.size, properties: { ...(c.properties ?? {}), vocabulary: { withOov: vocabs[c.name]!.withOov, numValues: vocabs[c.name]!.numValues } } } : { ...c })),
  };
  return {
    train: tr.sessions,
    ...(va ? { valid: va.sessions } : {}),
    ...(te ? { test: te.sessions } : {}),
    vocabularies: vocabs,
    itemColumn: train.itemColumn,
    features: {
      categorical: Object.keys(train.categorical),
      continuous: Object.keys(train.continuous),
      context: contextKinds,
      ...(train.bags ? { bags: { ...train.bags } } : {}),
      ...(targets.length ? { targets } : {}),
    },
    featureSchema,
    maxSequenceLength: sc.maxSequenceLength ?? 20,
    stats: { rows: all.rows, train: tr.sessions.length, valid: va?.sessions.length ?? 0, test: te?.sessions.length ?? 0, items: vocabs[train.itemColumn]!.numValues, oovSteps },
  };
}
