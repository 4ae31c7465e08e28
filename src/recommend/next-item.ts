/**
 * Recommendations from a saved next-item model directory: raw item ids of a session in, the top-k raw
 * item ids and scores out, with business-rule filters applied inside top-k. Used by
 * `recblocks recommend` and the HTTP server. Block types must be registered before `open`.
 *
 * Models whose input block uses per-step side features (e.g. the `category` of each click) get them from
 * the model directory's item-feature table (item-features.json: each item's most frequent category, mean
 * price, ...; src/io/item-features.ts), unless the request gives them (`features`, aligned with `items`).
 */
import type { SequenceBatchLike } from "../core/index.js";
import type { Vocabulary } from "../data/vocabulary.js";
import { RecblocksError, type Issue } from "../errors/issue.js";
import { ITEM_FEATURES_FILE, featureDefault, sideFeaturesOf, type SideFeature } from "../io/item-features.js";
import { loadModelDir, type ModelDirContents } from "../io/model-dir.js";
import { eligibility, type ItemFilters, type ItemMetadata } from "./filters.js";

/**
 * Explicit per-step side features of a session, by feature name, aligned with `items` (one value per
 * item, unknown items included): raw values of a categorical feature (as in the training data; values
 * its vocabulary does not know become the OOV id, or 0 without OOV), numbers of a continuous one. `null`
 * takes the value of the item-feature table.
 */
export type SideFeatureValues = Record<string, (string | number | null)[]>;

/** A session: its raw item ids (oldest first) and, optionally, explicit side features. */
export interface SessionInput {
  items: (string | number)[];
  features?: SideFeatureValues;
}

/** A session mapped to the model: the known items' dense ids and their side features (aligned), unknown raw ids apart. */
export interface ResolvedSession {
  ids: number[];
  unknown: string[];
  categorical: Record<string, number[]>;
  continuous: Record<string, number[]>;
}

/** Most issues reported for the values of one feature. */
const MAX_VALUE_ISSUES = 10;

export interface NextItemRequest {
  /** Raw ids of the session's items, oldest first. */
  items: (string | number)[];
  k?: number;
  /** Never recommend an item already in the session. */
  excludeSeen?: boolean;
  filters?: ItemFilters;
  /** Explicit per-step side features (SideFeatureValues), which win over the item-feature table. */
  features?: SideFeatureValues;
}

export interface NextItemAnswer {
  items: string[];
  scores: number[];
  /** Raw ids of the request (session or filter lists) that the model does not know; skipped. */
  unknownItems: string[];
}

export class NextItemRecommender {
  readonly dir: string;
  readonly contents: ModelDirContents;
  readonly vocab: Vocabulary;
  metadata: ItemMetadata | undefined;
  /** The per-step side features of the model's input block (item column left out), in the block's order. */
  readonly sideFeatures: readonly SideFeature[];

  private constructor(dir: string, contents: ModelDirContents) {
    this.dir = dir;
    this.contents = contents;
    const v = contents.vocabularies[contents.itemColumn];
    if (!v) throw new Error(`model directory ${dir} has no vocabulary for the item column "${contents.itemColumn}"`);
    this.vocab = v;
    this.sideFeatures = sideFeaturesOf(contents.model);
  }

  static open(dir: string, opts: { metadata?: ItemMetadata } = {}): NextItemRecommender {
    return NextItemRecommender.fromContents(dir, loadModelDir(dir), opts);
  }

  /** A recommender over a model already loaded (e.g. by `modelDirFromFiles` in the browser); `dir` names it. */
  static fromContents(dir: string, contents: ModelDirContents, opts: { metadata?: ItemMetadata } = {}): NextItemRecommender {
    const r = new NextItemRecommender(dir, contents);
    r.metadata = opts.metadata;
    return r;
  }

  get numItems(): number {
    return this.contents.model.numItems;
  }

  /** Known dense id of a raw item id (OOV and unknown ids give undefined). */
  lookup(raw: string | number): number | undefined {
    if (!this.vocab.has(raw as string)) return undefined;
    const id = this.vocab.lookup(raw as string);
    return id >= this.vocab.firstId ? id : undefined;
  }

  private reserved(): number[] {
    const r = [0];
    if (this.vocab.withOov) r.push(this.vocab.oovId);
    return r;
  }

  /** Eligibility of a request's filters (shared by every row of a batch with the same filters). */
  mask(filters: ItemFilters | undefined): { mask: Uint8Array; eligible: number; unknown: string[] } {
    return eligibility(filters ?? {}, {
      size: this.numItems,
      lookup: (raw) => this.lookup(raw),
      rawOf: (id) => (id >= this.vocab.firstId ? String(this.vocab.raw(id)) : undefined),
      reserved: this.reserved(),
      metadata: this.metadata,
    });
  }

  /**
   * Issues of a session's side features: explicit features the model does not use, of the wrong length
   * or type, and side features that neither the item-feature table nor the request give (a model
   * directory written before item-features.json existed: `missing_item_features`, located at the file).
   * `at` prefixes the paths (JSON Pointers into the request).
   */
  featureIssues(items: readonly unknown[], features: unknown, at = ""): Issue[] {
    const issues: Issue[] = [];
    const byName = new Map(this.sideFeatures.map((f) => [f.name, f]));
    const names = [...byName.keys()];
    let given: Record<string, unknown> = {};
    if (features !== undefined) {
      if (features === null || typeof features !== "object" || Array.isArray(features)) {
        issues.push({ code: "wrong_type", path: `${at}/features`, message: `"features" must be a mapping of side-feature name to a list of values aligned with "items".`, received: features === null ? "null" : Array.isArray(features) ? "array" : typeof features, expected: "object" });
        return issues;
      }
      given = features as Record<string, unknown>;
    }
    for (const [name, values] of Object.entries(given)) {
      const path = `${at}/features/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`;
      const f = byName.get(name);
      if (!f) {
        issues.push({
          code: "unknown_feature", path,
          message: names.length ? `The model uses no per-step side feature "${name}".` : `The model uses no per-step side features, so "features" has nothing to set ("${name}").`,
          received: name, expected: names,
        });
        continue;
      }
      if (!Array.isArray(values)) {
        issues.push({ code: "wrong_type", path, message: `features.${name} must be a list of values aligned with "items".`, received: values === null ? "null" : typeof values, expected: "array" });
        continue;
      }
      if (values.length !== items.length) {
        issues.push({ code: "invalid_length", path, message: `features.${name} has ${values.length} values but "items" has ${items.length}: give one value per item (null takes the item-feature table's).`, received: values.length, expected: items.length });
        continue;
      }
      if (f.multiHot) {
        issues.push({ code: "incompatible_feature", path, message: `"${name}" is a multi-hot feature (several values per step); requests cannot give it.` });
        continue;
      }
      let bad = 0;
      values.forEach((x, j) => {
        const ok = x === null || (f.kind === "continuous" ? typeof x === "number" && Number.isFinite(x) : (typeof x === "string" && x !== "") || (typeof x === "number" && Number.isFinite(x)));
        if (!ok && bad++ < MAX_VALUE_ISSUES) {
          issues.push({
            code: "wrong_type", path: `${path}/${j}`,
            message: f.kind === "continuous" ? `features.${name}[${j}] must be a finite number (or null for the item-feature table's value).` : `features.${name}[${j}] must be a raw value of "${name}" (a non-empty string or a number), or null for the item-feature table's value.`,
            received: x, expected: f.kind === "continuous" ? "number" : "string or number",
          });
        }
      });
      if (f.kind === "categorical" && !this.contents.vocabularies[name] && values.some((x) => x !== null)) {
        issues.push({ code: "invalid_model_dir", path, message: `The model directory ${this.dir} has no vocabulary for "${name}" (vocabularies/${name}.json), so its raw values cannot be mapped.`, source: { file: this.dir } });
      }
    }
    // side features that only the table could give
    const table = this.contents.itemFeatures?.features ?? {};
    for (const f of this.sideFeatures) {
      if (table[f.name]) continue;
      // needed for every known item that the request gives no value (a session of unknown items needs none)
      const v = given[f.name];
      const explicit = Array.isArray(v) && v.length === items.length ? v : undefined;
      if (items.every((raw, j) => this.lookup(raw as string) === undefined || (explicit?.[j] !== null && explicit?.[j] !== undefined))) continue;
      const file = `${this.dir.replace(/\/$/, "")}/${ITEM_FEATURES_FILE}`;
      issues.push({
        code: "missing_item_features",
        path: `${at}/features/${f.name}`,
        message: this.contents.itemFeatures
          ? `The model uses the per-step side feature "${f.name}", which its item-feature table (${ITEM_FEATURES_FILE}) does not hold${f.multiHot ? " (a multi-hot feature)" : ""}; the request does not give it for every item either.`
          : `The model uses the per-step side feature "${f.name}", and its directory has no item-feature table (${ITEM_FEATURES_FILE}; model directories written before it existed lack it), so "${f.name}" cannot be filled from item ids alone.`,
        hint: `Train the model again with this recblocks (\`recblocks train\` writes ${ITEM_FEATURES_FILE}), or give the feature for every item of the session: "features": {"${f.name}": [...]} aligned with "items".`,
        source: { file },
      });
    }
    return issues;
  }

  /**
   * Maps a session to the model: known items' dense ids (unknown raw ids apart) and each side feature per
   * known item, from the request's explicit values when given (non-null), else the item-feature table.
   * Throws a RecblocksError with featureIssues when the features cannot be made.
   */
  resolve(s: SessionInput | (string | number)[], at = ""): ResolvedSession {
    const { items, features } = Array.isArray(s) ? { items: s, features: undefined } : s;
    if (this.sideFeatures.length || features !== undefined) {
      const issues = this.featureIssues(items, features, at);
      if (issues.length) throw new RecblocksError(this.dir, issues, { kind: "RecommendError" });
    }
    const out: ResolvedSession = { ids: [], unknown: [], categorical: {}, continuous: {} };
    const keep: number[] = [];
    items.forEach((raw, j) => {
      const id = this.lookup(raw);
      if (id === undefined) out.unknown.push(String(raw));
      else {
        out.ids.push(id);
        keep.push(j);
      }
    });
    const table = this.contents.itemFeatures?.features ?? {};
    for (const f of this.sideFeatures) {
      const col = table[f.name];
      const explicit = features?.[f.name];
      const vocab = this.contents.vocabularies[f.name];
      const dflt = col?.default ?? featureDefault(f.kind, vocab);
      const values = keep.map((j, t) => {
        const x = explicit?.[j];
        if (x !== undefined && x !== null) return f.kind === "continuous" ? (x as number) : Math.max(vocab!.lookup(x), 0);
        const id = out.ids[t]!;
        return col && id < col.values.length ? col.values[id]! : dflt;
      });
      (f.kind === "categorical" ? out.categorical : out.continuous)[f.name] = values;
    }
    return out;
  }

  /** The padded batch of resolved sessions (right padding; the most recent maxSequenceLength steps of each). */
  batch(rows: readonly ResolvedSession[]): SequenceBatchLike {
    const L = this.contents.maxSequenceLength;
    const B = rows.length;
    const batch = {
      batchSize: B, seqLen: L, itemIds: new Int32Array(B * L), categorical: {}, continuous: {}, context: {}, lengths: new Int32Array(B),
    } as SequenceBatchLike;
    const cat = batch.categorical as Record<string, Int32Array>;
    const cont = batch.continuous as Record<string, Float32Array>;
    for (const f of this.sideFeatures) {
      if (f.kind === "categorical") cat[f.name] = new Int32Array(B * L);
      else cont[f.name] = new Float32Array(B * L);
    }
    rows.forEach((r, b) => {
      const from = Math.max(0, r.ids.length - L);
      batch.itemIds.set(r.ids.slice(from), b * L);
      batch.lengths[b] = r.ids.length - from;
      for (const [n, v] of Object.entries(r.categorical)) cat[n]?.set(v.slice(from), b * L);
      for (const [n, v] of Object.entries(r.continuous)) cont[n]?.set(v.slice(from), b * L);
    });
    return batch;
  }

  /**
   * Top-k for several sessions that share k, excludeSeen and filters. A session is its raw item ids, or
   * {items, features} with explicit side features.
   */
  recommendBatch(sessions: ((string | number)[] | SessionInput)[], o: Omit<NextItemRequest, "items" | "features"> = {}): NextItemAnswer[] {
    const k = o.k ?? 20;
    const { mask, eligible, unknown: unknownFilter } = this.mask(o.filters);
    const resolved = sessions.map((s, b) => this.resolve(s, sessions.length > 1 ? `/${b}` : ""));
    const answers: NextItemAnswer[] = resolved.map((r) => ({ items: [], scores: [], unknownItems: [...r.unknown, ...unknownFilter] }));
    // rows with no known item get no model answer (nothing to condition on)
    const rows = [...resolved.keys()].filter((b) => resolved[b]!.ids.length > 0);
    if (rows.length === 0 || eligible === 0) return answers;
    const sub = this.batch(rows.map((b) => resolved[b]!));
    const kk = Math.min(k, eligible);
    const top = this.contents.model.topK(sub, kk, {
      eligible: mask,
      ...(o.excludeSeen ? { exclude: (r: number) => resolved[rows[r]!]!.ids } : {}),
    });
    rows.forEach((b, r) => {
      const a = answers[b]!;
      for (let j = 0; j < top.k; j++) {
        const s = top.scores[r * top.k + j]!;
        if (s < -1e8) break; // only ineligible items are left
        a.items.push(String(this.vocab.raw(top.itemIds[r * top.k + j]!)));
        a.scores.push(s);
      }
    });
    return answers;
  }

  recommend(req: NextItemRequest): NextItemAnswer {
    const { items, features, ...o } = req;
    return this.recommendBatch([features === undefined ? items : { items, features }], o)[0]!;
  }

  dispose(): void {
    this.contents.model.dispose();
  }
}
