/**
 * A model directory opened for serving: next-item models (blocks, through NextItemRecommender) and
 * ALS models (through AlsModel), behind one interface that checks and answers parsed request bodies.
 * Block types are registered and the engine started before a next-item model is opened.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { RecblocksError } from "../errors/issue.js";
import type { RecommendRequest } from "../generated/serve/recommend-request.js";
import { ITEM_FEATURES_FILE } from "../io/item-features.js";
import { modelDirFormat, NEXT_ITEM_FORMAT } from "../io/model-dir.js";
import { eligibility, parseRule, readItemMetadata, type ItemFilters, type ItemMetadata } from "../recommend/filters.js";
import type { NextItemRecommender, ResolvedSession } from "../recommend/next-item.js";
import type { RequestIssue } from "./request-schemas.js";
import type { AlsModel } from "../../blocks/factorization/als-model.js";

export type ModelKind = "next-item" | "als";

/** One answer of POST /recommend (without the model's name and version, which the server adds). */
export interface Answer {
  items: string[];
  scores: number[];
  unknownItems: string[];
}

export interface ServedModel {
  readonly kind: ModelKind;
  /** Absolute path of the model directory. */
  readonly dir: string;
  readonly format: string;
  /** The recipe's name (else the directory's). */
  readonly name: string;
  /** Content hash of model.json and weights.bin (12 hex digits): the same files give the same version. */
  readonly version: string;
  /** ISO time the directory was loaded. */
  readonly loadedAt: string;
  /** Default k when a request gives none (next-item 20, ALS 10, as `recblocks recommend`). */
  readonly defaultK: number;
  /** The request's issues that depend on the model (which keys its kind takes, unknown user, filter rules); `at` prefixes paths. */
  check(req: RecommendRequest, at: string): RequestIssue[];
  /** Answers checked requests, in order. */
  recommend(reqs: RecommendRequest[]): Answer[];
  /** What GET /model shows. */
  describe(): Record<string, unknown>;
  dispose(): void;
}

export interface OpenOptions {
  /** Item metadata (CSV/TSV/JSONL) for attribute rules. */
  itemData?: string;
  /** Engine backend ("auto" by default). */
  backend?: "auto" | "tensorflow" | "wasm" | "cpu";
  threads?: number;
}

function readJsonIfAny(file: string): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** 12 hex digits of sha256 over model.json, every weights file it lists and the item-feature table when there is one. */
function contentVersion(dir: string): string {
  const h = createHash("sha256");
  const mj = readFileSync(join(dir, "model.json"));
  h.update(mj);
  try {
    const paths = ((JSON.parse(mj.toString("utf8")) as { weightsManifest?: { paths?: string[] }[] }).weightsManifest ?? []).flatMap((g) => g.paths ?? []);
    for (const p of paths) if (existsSync(join(dir, p))) h.update(readFileSync(join(dir, p)));
  } catch {
    /* the loader reports a bad model.json */
  }
  if (existsSync(join(dir, ITEM_FEATURES_FILE))) h.update(readFileSync(join(dir, ITEM_FEATURES_FILE)));
  return h.digest("hex").slice(0, 12);
}

/** Issues of a request's filter rules (parse errors, rules without metadata, unknown attributes), all at once. */
export function filterIssues(filters: ItemFilters | undefined, metadata: ItemMetadata | undefined, at: string): RequestIssue[] {
  const issues: RequestIssue[] = [];
  const rules = filters?.rules ?? [];
  rules.forEach((text, i) => {
    const path = `${at}/filters/rules/${i}`;
    try {
      const r = parseRule(text, path);
      if (metadata && !metadata.columns.includes(r.attribute)) {
        issues.push({ code: "unknown_attribute", path, message: `The item metadata has no attribute "${r.attribute}".`, received: r.attribute, expected: metadata.columns.slice(0, 20) });
      }
    } catch (e) {
      if (!(e instanceof RecblocksError)) throw e;
      issues.push(...e.issues.map(({ source: _s, ...rest }) => rest));
    }
  });
  if (rules.length && !metadata) {
    issues.push({ code: "missing_item_metadata", path: `${at}/filters/rules`, message: "Attribute rules need item metadata, and this server was started without it.", hint: "Start the server with --item-data items.csv (the item id and its attributes), or leave out filters.rules." });
  }
  return issues;
}

class NextItemServed implements ServedModel {
  readonly kind = "next-item" as const;
  readonly format = NEXT_ITEM_FORMAT;
  readonly defaultK = 20;
  constructor(
    readonly dir: string,
    readonly name: string,
    readonly version: string,
    readonly loadedAt: string,
    private readonly rec: NextItemRecommender,
    private readonly metadata: ItemMetadata | undefined,
  ) {}

  check(req: RecommendRequest, at: string): RequestIssue[] {
    const issues: RequestIssue[] = [];
    if (req.items === undefined) {
      issues.push({ code: "missing_key", path: `${at}/items`, message: `This server holds a next-item model ("${this.name}"): give the session's raw item ids in "items", oldest first.`, expected: "items", hint: 'e.g. {"items": ["12", "7", "31"], "k": 10}' });
    }
    for (const key of ["user", "userItems"] as const) {
      if (req[key] !== undefined) {
        issues.push({ code: "wrong_model_kind", path: `${at}/${key}`, message: `"${key}" is for ALS models; this server holds a next-item model ("${this.name}"), which recommends from the session in "items".`, received: key, expected: ["items"] });
      }
    }
    // side features: explicit ones (features) checked against the model, and the ones no item-feature table gives
    if (req.items !== undefined) issues.push(...this.rec.featureIssues(req.items, req.features, at).map(({ source: _s, ...rest }) => rest));
    issues.push(...filterIssues(req.filters, this.metadata, at));
    return issues;
  }

  /**
   * One forward pass for every request, whatever their k, excludeSeen and filters: top-k runs over the
   * union of the requests' eligible items, and each row excludes what its own filters (and excludeSeen)
   * leave out, so each answer is the one the request would get alone. When the per-row exclusions
   * would be very large (big catalogues with allow-lists), requests are grouped by filters instead.
   */
  recommend(reqs: RecommendRequest[]): Answer[] {
    const rec = this.rec;
    const model = rec.contents.model;
    const N = rec.numItems;
    const masks = new Map<string, { mask: Uint8Array; eligible: number; unknown: string[] }>();
    const out: Answer[] = [];
    const rows: { i: number; ids: number[]; session: ResolvedSession; el: { mask: Uint8Array; eligible: number }; k: number; excludeSeen: boolean }[] = [];
    reqs.forEach((r, i) => {
      const key = JSON.stringify(r.filters ?? null);
      let el = masks.get(key);
      if (!el) {
        el = rec.mask(r.filters);
        masks.set(key, el);
      }
      // known items' dense ids and their side features (explicit ones, else the item-feature table)
      const session = rec.resolve({ items: r.items ?? [], ...(r.features ? { features: r.features } : {}) });
      const ids = session.ids;
      out.push({ items: [], scores: [], unknownItems: [...session.unknown, ...el.unknown] });
      // nothing to condition on, or nothing eligible: no items
      if (ids.length && el.eligible) rows.push({ i, ids, session, el, k: Math.min(r.k ?? this.defaultK, el.eligible), excludeSeen: r.excludeSeen === true });
    });
    if (!rows.length) return out;
    const distinct = [...new Set(rows.map((r) => r.el))];
    let union = distinct[0]!.mask;
    let unionEligible = distinct[0]!.eligible;
    if (distinct.length > 1) {
      union = new Uint8Array(N);
      for (const d of distinct) for (let j = 0; j < N; j++) union[j] |= d.mask[j]!;
      unionEligible = union.reduce((a, b) => a + b, 0);
      const cost = rows.reduce((a, r) => a + (unionEligible - r.el.eligible), 0);
      if (cost > 2_000_000) return this.byFilters(reqs, out);
    }
    const excludes = rows.map((r) => {
      const ex: number[] = r.excludeSeen ? [...r.ids] : [];
      if (r.el.mask !== union) for (let j = 0; j < N; j++) if (union[j] && !r.el.mask[j]) ex.push(j);
      return ex;
    });
    const batch = rec.batch(rows.map((r) => r.session));
    const top = model.topK(batch, Math.max(...rows.map((r) => r.k)), {
      eligible: union,
      ...(excludes.some((e) => e.length) ? { exclude: (b: number) => excludes[b]! } : {}),
    });
    rows.forEach((r, b) => {
      const a = out[r.i]!;
      for (let j = 0; j < Math.min(r.k, top.k); j++) {
        const s = top.scores[b * top.k + j]!;
        if (s < -1e8) break; // only ineligible items are left
        a.items.push(String(rec.vocab.raw(top.itemIds[b * top.k + j]!)));
        a.scores.push(s);
      }
    });
    return out;
  }

  /** The fallback: one pass per distinct (k, excludeSeen, filters). */
  private byFilters(reqs: RecommendRequest[], out: Answer[]): Answer[] {
    const groups = new Map<string, number[]>();
    reqs.forEach((r, i) => {
      const key = JSON.stringify([r.k ?? this.defaultK, r.excludeSeen === true, r.filters ?? null]);
      const g = groups.get(key);
      if (g) g.push(i);
      else groups.set(key, [i]);
    });
    for (const idx of groups.values()) {
      const first = reqs[idx[0]!]!;
      const answers = this.rec.recommendBatch(idx.map((i) => ({ items: reqs[i]!.items ?? [], ...(reqs[i]!.features ? { features: reqs[i]!.features } : {}) })), {
        k: first.k ?? this.defaultK,
        excludeSeen: first.excludeSeen === true,
        ...(first.filters ? { filters: first.filters } : {}),
      });
      idx.forEach((i, j) => (out[i] = answers[j]!));
    }
    return out;
  }

  describe(): Record<string, unknown> {
    const c = this.rec.contents;
    return {
      kind: this.kind,
      format: this.format,
      name: this.name,
      version: this.version,
      loadedAt: this.loadedAt,
      dir: this.dir,
      vocabularySize: this.rec.vocab.size,
      numItems: this.rec.numItems,
      maxSequenceLength: c.maxSequenceLength,
      parameters: c.model.countParams(),
      itemColumn: c.itemColumn,
      itemData: this.metadata ? { file: this.metadata.file, items: this.metadata.rows.size, columns: this.metadata.columns } : null,
      recipe: c.recipe,
      schema: c.featureSchema,
      metrics: c.metrics,
    };
  }

  dispose(): void {
    this.rec.dispose();
  }
}

class AlsServed implements ServedModel {
  readonly kind = "als" as const;
  readonly defaultK = 10;
  constructor(
    readonly dir: string,
    readonly format: string,
    readonly name: string,
    readonly version: string,
    readonly loadedAt: string,
    private readonly model: AlsModel,
    private readonly recipe: unknown,
    private readonly metadata: ItemMetadata | undefined,
  ) {}

  check(req: RecommendRequest, at: string): RequestIssue[] {
    const issues: RequestIssue[] = [];
    if (req.items !== undefined) {
      issues.push({ code: "wrong_model_kind", path: `${at}/items`, message: `This server holds an ALS model ("${this.name}"): give the user in "user" and/or the user's items in "userItems", not "items".`, received: "items", expected: ["user", "userItems"] });
    } else if (req.user === undefined && req.userItems === undefined) {
      issues.push({ code: "missing_key", path: at, message: `This server holds an ALS model ("${this.name}"): give "user" (a raw user id) and/or "userItems" (the user's raw item ids).`, expected: ["user", "userItems"], hint: 'e.g. {"user": "42", "k": 10} or {"userItems": ["12", "7"]}' });
    }
    if (req.features !== undefined) {
      issues.push({ code: "wrong_model_kind", path: `${at}/features`, message: `"features" (per-step side features of a session) is for next-item models; this server holds an ALS model ("${this.name}").`, received: "features", expected: ["user", "userItems"] });
    }
    if (req.user !== undefined && req.userItems === undefined && req.items === undefined && this.model.users.get(req.user) === undefined) {
      issues.push({ code: "unknown_user", path: `${at}/user`, message: `User ${JSON.stringify(req.user)} is not in the model.`, received: req.user, hint: "Give the user's items in \"userItems\" to fold a new user in without retraining." });
    }
    issues.push(...filterIssues(req.filters, this.metadata, at));
    return issues;
  }

  private one(req: RecommendRequest): Answer {
    const m = this.model;
    const el = this.eligible(req.filters);
    const given = req.userItems?.map(String);
    const known = given?.filter((i) => m.items.get(i) !== undefined) ?? [];
    const unknownItems = [...(given ?? []).filter((i) => m.items.get(i) === undefined), ...el.unknown];
    const k = req.k ?? this.defaultK;
    const storedUser = req.user !== undefined && m.users.get(req.user) !== undefined;
    const fold = known.length > 0;
    // nothing to score from: a new user whose items are all unknown
    if (!fold && !storedUser) return { items: [], scores: [], unknownItems };
    if (el.eligible === 0) return { items: [], scores: [], unknownItems };
    const r = m.recommend(fold ? String(req.user ?? "") : req.user!, {
      k,
      itemMask: el.mask,
      filterAlreadyLiked: req.excludeSeen ?? true,
      ...(fold ? { history: known, recalculate: true } : {}),
    });
    return { items: r.items, scores: r.scores, unknownItems };
  }

  /** Known users without userItems that share k, excludeSeen and filters are scored together (one matrix product); the rest one by one. */
  recommend(reqs: RecommendRequest[]): Answer[] {
    const m = this.model;
    const out: Answer[] = new Array(reqs.length);
    const groups = new Map<string, number[]>();
    reqs.forEach((r, i) => {
      if (r.userItems === undefined && r.user !== undefined && m.users.get(r.user) !== undefined) {
        const key = JSON.stringify([r.k ?? this.defaultK, r.excludeSeen ?? true, r.filters ?? null]);
        const g = groups.get(key);
        if (g) g.push(i);
        else groups.set(key, [i]);
      } else out[i] = this.one(r);
    });
    for (const idx of groups.values()) {
      const first = reqs[idx[0]!]!;
      if (idx.length === 1) {
        out[idx[0]!] = this.one(first);
        continue;
      }
      const el = this.eligible(first.filters);
      if (el.eligible === 0) {
        for (const i of idx) out[i] = { items: [], scores: [], unknownItems: [...el.unknown] };
        continue;
      }
      const recs = m.recommendBatch(idx.map((i) => reqs[i]!.user!), { k: first.k ?? this.defaultK, itemMask: el.mask, filterAlreadyLiked: first.excludeSeen ?? true });
      idx.forEach((i, j) => (out[i] = { items: recs[j]!.items, scores: recs[j]!.scores, unknownItems: [...el.unknown] }));
    }
    return out;
  }

  private eligible(filters: ItemFilters | undefined) {
    const m = this.model;
    return eligibility(filters ?? {}, {
      size: m.items.size,
      lookup: (raw) => m.items.get(raw),
      rawOf: (id) => m.items.ids[id],
      ...(this.metadata ? { metadata: this.metadata } : {}),
    });
  }

  describe(): Record<string, unknown> {
    const m = this.model;
    return {
      kind: this.kind,
      format: this.format,
      name: this.name,
      version: this.version,
      loadedAt: this.loadedAt,
      dir: this.dir,
      vocabularySize: m.items.size,
      numItems: m.items.size,
      users: m.users.size,
      factors: m.factors,
      itemData: this.metadata ? { file: this.metadata.file, items: this.metadata.rows.size, columns: this.metadata.columns } : null,
      recipe: this.recipe ?? null,
      schema: null,
      config: m.config,
      metrics: m.metrics,
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}

let engineReady: Promise<unknown> | null = null;

/** Opens a model directory (next-item or ALS) for serving; a bad directory is a RecblocksError. */
export async function openServedModel(dirArg: string, opts: OpenOptions = {}): Promise<ServedModel> {
  const dir = resolve(dirArg);
  const format = modelDirFormat(dir);
  const { initEngine } = await import("../engine/index.js");
  engineReady ??= initEngine({ quiet: true, ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.threads ? { threads: opts.threads } : {}) });
  try {
    await engineReady;
  } catch (e) {
    engineReady = null;
    throw e;
  }
  const metadata = opts.itemData ? readItemMetadata(opts.itemData) : undefined;
  const version = contentVersion(dir);
  const loadedAt = new Date().toISOString();
  const recipe = readJsonIfAny(join(dir, "recipe.json")) as { name?: unknown } | undefined;
  const recipeName = typeof recipe?.name === "string" ? recipe.name : undefined;
  if (format === NEXT_ITEM_FORMAT) {
    const { registerBuiltinBlocks } = await import("../run/train.js");
    const { NextItemRecommender } = await import("../recommend/next-item.js");
    await registerBuiltinBlocks();
    const rec = NextItemRecommender.open(dir, metadata ? { metadata } : {});
    return new NextItemServed(dir, recipeName ?? basename(dir), version, loadedAt, rec, metadata);
  }
  const { ALS_FORMAT, loadAlsModel } = await import("../../blocks/factorization/model-io.js");
  if (format !== ALS_FORMAT) {
    throw new RecblocksError(dir, [{ code: "invalid_model_dir", path: "", message: `${dir} holds a "${format}" model; recblocks serve serves "${NEXT_ITEM_FORMAT}" and "${ALS_FORMAT}" models.`, source: { file: dir } }], { kind: "ModelError" });
  }
  const model = loadAlsModel(dir);
  return new AlsServed(dir, format, recipeName ?? model.config.name ?? basename(dir), version, loadedAt, model, recipe, metadata);
}
