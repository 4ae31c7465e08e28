/**
 * A trained ALS model: user and item factors, the id vocabularies, and the training interactions
 * (needed to filter already-liked items, recalculate users and explain). Scores are raw dot
 * products x_u . y_i.
 */
import * as tf from "@tensorflow/tfjs";
import { RecblocksError } from "../../src/errors/issue.js";
import { solveHalf, rowSystems } from "./als-trainer.js";
import type { AlsConfig } from "./config.js";
import { type Csr, csrReplaceRows, csrTranspose } from "./csr.js";
import { SolverScratch, buildRowSystem, choleskyInPlace, choleskySolve, gramTyped, type RowSystems } from "./linalg.js";
import { topKRow } from "./topk.js";

export type RawId = string | number;

/** One past interaction: a raw item id (or a raw user id for item histories) and its value (default 1). */
export type HistoryEntry = RawId | { id: RawId; value?: number };

/** A user's (or item's) history as the solver takes it. */
interface DenseHistory {
  indices: Int32Array;
  values: Float32Array;
  unknown: string[];
}

export interface RecommendOptions {
  /** Number of items to return (default 10). */
  k?: number;
  /** Leave out the items the user interacted with in training (or in `history`) (default true). */
  filterAlreadyLiked?: boolean;
  /** Allow-list: rank only these items (raw ids). */
  items?: RawId[];
  /** Deny-list: never return these items (raw ids). */
  filterItems?: RawId[];
  /** A per-item eligibility mask over dense item ids (1 = may be recommended); combined with the lists. */
  itemMask?: Uint8Array;
  /**
   * The user's history; with `recalculate: true` (the default when given) the user's factors are
   * recomputed from it (exact solve against the item factors) instead of using the stored ones, so
   * new users can be served without retraining.
   */
  history?: HistoryEntry[];
  recalculate?: boolean;
}

export interface Recommendation {
  user: string;
  items: string[];
  scores: number[];
}

export interface SimilarOptions {
  k?: number;
  items?: RawId[];
  filterItems?: RawId[];
}

export interface Similar {
  ids: string[];
  scores: number[];
}

export interface Explanation {
  /** x_u . y_i with x_u recomputed exactly from the history (equals the sum of the contributions). */
  score: number;
  /** The top contributions of the user's past items, largest first. */
  contributions: { item: string; contribution: number }[];
}

/** Raw id <-> dense index. */
export class IdMap {
  readonly ids: string[];
  private readonly index: Map<string, number>;
  constructor(ids: string[]) {
    this.ids = ids.slice();
    this.index = new Map(ids.map((id, i) => [id, i]));
    if (this.index.size !== ids.length) throw new Error("IdMap: duplicate ids");
  }
  get size(): number {
    return this.ids.length;
  }
  get(raw: RawId): number | undefined {
    return this.index.get(String(raw));
  }
  add(raw: RawId): number {
    const key = String(raw);
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(key);
      this.index.set(key, i);
    }
    return i;
  }
}

function unknownId(kind: "user" | "item", raw: RawId, hint?: string): RecblocksError {
  return new RecblocksError(`${kind} ${JSON.stringify(raw)}`, [{
    code: kind === "user" ? "unknown_user" : "unknown_item", path: "",
    message: `Unknown ${kind} id ${JSON.stringify(raw)}: it was not in the training data.`, received: raw,
    hint: hint ?? (kind === "user" ? "Pass the user's history to recommend it anyway (recalculate), or partialFitUsers to add the user." : undefined),
  }]);
}

export class AlsModel {
  readonly config: AlsConfig;
  users: IdMap;
  items: IdMap;
  userFactors: Float32Array; // [users x factors]
  itemFactors: Float32Array; // [items x factors]
  /** Training interactions, users x items, raw values. */
  userItems: Csr;
  metrics: Record<string, unknown>;
  private itemNorms: Float32Array | null = null;
  private userNorms: Float32Array | null = null;
  private gramCache: Float64Array | null = null;
  private itemTensor: tf.Tensor2D | null = null;

  constructor(init: {
    config: AlsConfig; users: string[]; items: string[]; userFactors: Float32Array; itemFactors: Float32Array;
    userItems: Csr; metrics?: Record<string, unknown>;
  }) {
    this.config = init.config;
    this.users = new IdMap(init.users);
    this.items = new IdMap(init.items);
    const f = init.config.factors;
    if (init.userFactors.length !== this.users.size * f || init.itemFactors.length !== this.items.size * f) {
      throw new Error(`AlsModel: factor sizes do not match (${this.users.size} users, ${this.items.size} items, ${f} factors)`);
    }
    this.userFactors = init.userFactors;
    this.itemFactors = init.itemFactors;
    this.userItems = init.userItems;
    this.metrics = init.metrics ?? {};
  }

  get factors(): number {
    return this.config.factors;
  }

  /** Frees the cached TF.js tensor of the item factors. */
  dispose(): void {
    this.itemTensor?.dispose();
    this.itemTensor = null;
  }

  private invalidate(): void {
    this.itemNorms = null;
    this.userNorms = null;
    this.gramCache = null;
    this.dispose();
  }

  userIndex(raw: RawId): number {
    const u = this.users.get(raw);
    if (u === undefined) throw unknownId("user", raw);
    return u;
  }

  itemIndex(raw: RawId): number {
    const i = this.items.get(raw);
    if (i === undefined) throw unknownId("item", raw);
    return i;
  }

  /** The user's factors (a view). */
  userVector(raw: RawId): Float32Array {
    const u = this.userIndex(raw);
    return this.userFactors.subarray(u * this.factors, (u + 1) * this.factors);
  }

  itemVector(raw: RawId): Float32Array {
    const i = this.itemIndex(raw);
    return this.itemFactors.subarray(i * this.factors, (i + 1) * this.factors);
  }

  /** x_u . y_i */
  score(user: RawId, item: RawId): number {
    const x = this.userVector(user);
    const y = this.itemVector(item);
    let s = 0;
    for (let a = 0; a < x.length; a++) s += x[a]! * y[a]!;
    return s;
  }

  // ------------------------------------------------------------------ histories and fold-in

  private denseHistory(history: HistoryEntry[], of: IdMap, kind: "item" | "user"): DenseHistory {
    const idx: number[] = [];
    const val: number[] = [];
    const unknown: string[] = [];
    history.forEach((h, j) => {
      const raw = typeof h === "object" ? h.id : h;
      const v = typeof h === "object" && h.value !== undefined ? h.value : 1;
      if (!Number.isFinite(v)) {
        throw new RecblocksError("history", [{ code: "invalid_number", path: `/${j}/value`, message: `The value of ${kind} ${JSON.stringify(raw)} is not a finite number.`, received: v }]);
      }
      const i = of.get(raw);
      if (i === undefined) unknown.push(String(raw));
      else {
        idx.push(i);
        val.push(v);
      }
    });
    // sort + merge repeats (sum), as training does
    const order = idx.map((_, j) => j).sort((a, b) => idx[a]! - idx[b]! || a - b);
    const oi: number[] = [];
    const ov: number[] = [];
    for (const j of order) {
      if (oi.length && oi[oi.length - 1] === idx[j]) ov[ov.length - 1]! += this.config.values === "binary" ? 0 : val[j]!;
      else {
        oi.push(idx[j]!);
        ov.push(this.config.values === "binary" ? 1 : val[j]!);
      }
    }
    return { indices: Int32Array.from(oi), values: Float32Array.from(ov), unknown };
  }

  private gram(): Float64Array {
    this.gramCache ??= gramTyped(Float64Array.from(this.itemFactors), this.items.size, this.factors);
    return this.gramCache;
  }

  /** The one-row system of a history against fixed factors F (items for a user, users for an item). */
  private oneRowSystem(h: DenseHistory): RowSystems {
    const m: Csr = { rows: 1, cols: 0, indptr: Int32Array.from([0, h.indices.length]), indices: h.indices, values: h.values };
    return rowSystems(m, this.config);
  }

  private solveOne(h: DenseHistory, F: Float64Array, G: Float64Array | null, side: "user" | "item"): Float64Array {
    const f = this.factors;
    const sys = this.oneRowSystem(h);
    const sc = new SolverScratch(f);
    buildRowSystem(sys, 0, F, G, f, sc);
    if (!choleskyInPlace(sc.A, f)) {
      throw new RecblocksError(`${side} fold-in`, [{ code: "als_not_positive_definite", path: "/model/regularization",
        message: `The normal equations of this ${side} are not positive definite.`, hint: "Increase model.regularization." }]);
    }
    return choleskySolve(sc.A, sc.b, f, new Float64Array(f));
  }

  /**
   * A user's factors computed from their history by the exact least-squares solve against the
   * fixed item factors (implicit's recalculate_user). Not stored. Unknown items are ignored.
   */
  recalculateUser(history: HistoryEntry[]): Float32Array {
    const h = this.denseHistory(history, this.items, "item");
    const G = this.config.feedback === "implicit" ? this.gram() : null;
    return Float32Array.from(this.solveOne(h, Float64Array.from(this.itemFactors), G, "user"));
  }

  /** An item's factors from its users (exact solve against the fixed user factors). Not stored. */
  recalculateItem(history: HistoryEntry[]): Float32Array {
    const h = this.denseHistory(history, this.users, "user");
    const X = Float64Array.from(this.userFactors);
    const G = this.config.feedback === "implicit" ? gramTyped(X, this.users.size, this.factors) : null;
    return Float32Array.from(this.solveOne(h, X, G, "item"));
  }

  /**
   * Recomputes and stores the factors of the given users from their FULL histories (exact solve
   * against the fixed item factors), adding users not seen before; their stored interactions are
   * replaced by these histories. Unknown items in a history are ignored and returned.
   */
  partialFitUsers(users: RawId[], histories: HistoryEntry[][]): { added: string[]; unknownItems: string[] } {
    if (users.length !== histories.length) throw new Error("partialFitUsers: one history per user");
    const f = this.factors;
    const Y = Float64Array.from(this.itemFactors);
    const G = this.config.feedback === "implicit" ? this.gram() : null;
    const added: string[] = [];
    const unknown = new Set<string>();
    const solved: { row: number; x: Float64Array; h: DenseHistory }[] = [];
    for (let j = 0; j < users.length; j++) {
      const h = this.denseHistory(histories[j]!, this.items, "item");
      h.unknown.forEach((x) => unknown.add(x));
      solved.push({ row: -1, x: this.solveOne(h, Y, G, "user"), h });
    }
    for (let j = 0; j < users.length; j++) {
      const before = this.users.size;
      const row = this.users.add(users[j]!);
      if (row >= before) added.push(String(users[j]!));
      solved[j]!.row = row;
    }
    if (this.users.size * f > this.userFactors.length) {
      const grown = new Float32Array(this.users.size * f);
      grown.set(this.userFactors);
      this.userFactors = grown;
    }
    const rep = new Map<number, { indices: Int32Array; values: Float32Array }>();
    for (const s of solved) {
      this.userFactors.set(s.x, s.row * f);
      rep.set(s.row, { indices: s.h.indices, values: s.h.values });
    }
    this.userItems = csrReplaceRows(this.userItems, rep, this.users.size, this.items.size);
    this.userNorms = null;
    return { added, unknownItems: [...unknown] };
  }

  /**
   * Recomputes and stores the factors of the given items from their FULL user histories (exact
   * solve against the fixed user factors), adding new items; the stored interactions of these
   * items are replaced. Unknown users are ignored and returned.
   */
  partialFitItems(items: RawId[], histories: HistoryEntry[][]): { added: string[]; unknownUsers: string[] } {
    if (items.length !== histories.length) throw new Error("partialFitItems: one history per item");
    const f = this.factors;
    const X = Float64Array.from(this.userFactors);
    const G = this.config.feedback === "implicit" ? gramTyped(X, this.users.size, f) : null;
    const unknown = new Set<string>();
    const solved: { x: Float64Array; h: DenseHistory }[] = [];
    for (let j = 0; j < items.length; j++) {
      const h = this.denseHistory(histories[j]!, this.users, "user");
      h.unknown.forEach((x) => unknown.add(x));
      solved.push({ x: this.solveOne(h, X, G, "item"), h });
    }
    const added: string[] = [];
    const rows = items.map((raw) => {
      const before = this.items.size;
      const r = this.items.add(raw);
      if (r >= before) added.push(String(raw));
      return r;
    });
    if (this.items.size * f > this.itemFactors.length) {
      const grown = new Float32Array(this.items.size * f);
      grown.set(this.itemFactors);
      this.itemFactors = grown;
    }
    const itemUsers = csrTranspose({ ...this.userItems, cols: this.items.size });
    const rep = new Map<number, { indices: Int32Array; values: Float32Array }>();
    rows.forEach((r, j) => {
      this.itemFactors.set(solved[j]!.x, r * f);
      rep.set(r, { indices: solved[j]!.h.indices, values: solved[j]!.h.values });
    });
    this.userItems = csrTranspose(csrReplaceRows(itemUsers, rep, this.items.size, this.users.size));
    this.invalidate();
    return { added, unknownUsers: [...unknown] };
  }

  /**
   * Continues training from the current factors for `iterations` sweeps on the stored interactions
   * (warm start).
   */
  refit(iterations: number): void {
    const f = this.factors;
    const usys = rowSystems(this.userItems, this.config);
    const isys = rowSystems(csrTranspose(this.userItems), this.config);
    const X = Float64Array.from(this.userFactors);
    const Y = Float64Array.from(this.itemFactors);
    for (let it = 0; it < iterations; it++) {
      solveHalf(usys, X, Y, this.items.size, f, this.config, "typed", "user");
      solveHalf(isys, Y, X, this.users.size, f, this.config, "typed", "item");
    }
    this.userFactors = Float32Array.from(X);
    this.itemFactors = Float32Array.from(Y);
    this.invalidate();
  }

  // ------------------------------------------------------------------ recommendations

  private itemsTensor(): tf.Tensor2D {
    this.itemTensor ??= tf.keep(tf.tensor2d(this.itemFactors, [this.items.size, this.factors]));
    return this.itemTensor;
  }

  /**
   * Scores of users' vectors [B x f] against every item, [B x nItems]: one TF.js matMul on a
   * compiled backend (native "tensorflow", "wasm", GPUs); typed-array loops on TF.js's pure-JS
   * "cpu" backend, where bench/als.ts measured them ~7x faster than its matMul (115 ms vs 807 ms
   * for 512 users x 1,682 items x 64 factors).
   */
  scoreVectors(vectors: Float32Array, B: number, engine: "auto" | "typed" | "tfjs" = "auto"): Float32Array {
    const useTf = engine === "tfjs" || (engine === "auto" && tf.getBackend() !== "cpu");
    if (useTf) {
      // read back outside tidy: tidy walks a returned typed array element by element looking for
      // tensors (~350 ms for 512 x 1,682 scores), the read itself takes ~2 ms
      const t = tf.tidy(() => tf.matMul(tf.tensor2d(vectors, [B, this.factors]), this.itemsTensor(), false, true));
      try {
        return t.dataSync() as Float32Array;
      } finally {
        t.dispose();
      }
    }
    const f = this.factors;
    const n = this.items.size;
    const Y = this.itemFactors;
    const out = new Float32Array(B * n);
    for (let b = 0; b < B; b++) {
      const xo = b * f;
      for (let i = 0; i < n; i++) {
        const yo = i * f;
        let s0 = 0;
        let s1 = 0;
        let a = 0;
        for (; a + 1 < f; a += 2) {
          s0 += vectors[xo + a]! * Y[yo + a]!;
          s1 += vectors[xo + a + 1]! * Y[yo + a + 1]!;
        }
        if (a < f) s0 += vectors[xo + a]! * Y[yo + a]!;
        out[b * n + i] = s0 + s1;
      }
    }
    return out;
  }

  /** Dense eligibility from the allow/deny lists and mask (null = everything eligible). */
  private eligibility(o: { items?: RawId[]; filterItems?: RawId[]; itemMask?: Uint8Array }): Uint8Array | null {
    if (!o.items && !o.filterItems && !o.itemMask) return null;
    const n = this.items.size;
    const ok = new Uint8Array(n);
    if (o.items) {
      for (const raw of o.items) {
        const i = this.items.get(raw);
        if (i !== undefined) ok[i] = 1; // unknown allow-listed ids cannot be scored: skipped
      }
    } else ok.fill(1);
    if (o.itemMask) {
      if (o.itemMask.length !== n) throw new Error(`itemMask has length ${o.itemMask.length}; expected ${n} (one per item)`);
      for (let i = 0; i < n; i++) if (!o.itemMask[i]) ok[i] = 0;
    }
    for (const raw of o.filterItems ?? []) {
      const i = this.items.get(raw);
      if (i !== undefined) ok[i] = 0;
    }
    return ok;
  }

  /** Top-k items for one user. */
  recommend(user: RawId, o: RecommendOptions = {}): Recommendation {
    return this.recommendBatch([user], o)[0]!;
  }

  /**
   * Top-k items for several users at once (one matMul per call). With `history`, every user of
   * the batch is scored from that one history (use it for a single user).
   */
  recommendBatch(users: RawId[], o: RecommendOptions = {}): Recommendation[] {
    const k = o.k ?? 10;
    const f = this.factors;
    const n = this.items.size;
    const B = users.length;
    const vectors = new Float32Array(B * f);
    const seenLists: Int32Array[] = [];
    let hist: DenseHistory | null = null;
    if (o.history) hist = this.denseHistory(o.history, this.items, "item");
    const recalc = o.history !== undefined && o.recalculate !== false;
    const recalced = recalc ? this.recalculateUser(o.history!) : null;
    for (let b = 0; b < B; b++) {
      let u: number | undefined = this.users.get(users[b]!);
      if (recalced) vectors.set(recalced, b * f);
      else {
        if (u === undefined) throw unknownId("user", users[b]!);
        vectors.set(this.userFactors.subarray(u * f, (u + 1) * f), b * f);
      }
      if (hist) seenLists.push(hist.indices);
      else if (u !== undefined && u < this.userItems.rows) seenLists.push(this.userItems.indices.subarray(this.userItems.indptr[u]!, this.userItems.indptr[u + 1]!));
      else seenLists.push(new Int32Array(0));
    }
    const scores = B > 0 ? this.scoreVectors(vectors, B) : new Float32Array(0);
    const ok = this.eligibility(o);
    const filterSeen = o.filterAlreadyLiked ?? true;
    const seen = new Uint8Array(n);
    const idx = new Int32Array(k);
    const sc = new Float32Array(k);
    const out: Recommendation[] = [];
    for (let b = 0; b < B; b++) {
      const list = seenLists[b]!;
      if (filterSeen) for (const i of list) seen[i] = 1;
      const excluded = filterSeen ? (ok ? (i: number) => seen[i] === 1 || ok[i] === 0 : (i: number) => seen[i] === 1)
        : ok ? (i: number) => ok[i] === 0 : null;
      const got = topKRow(scores, b * n, n, k, excluded, idx, sc);
      if (filterSeen) for (const i of list) seen[i] = 0;
      out.push({ user: String(users[b]!), items: Array.from(idx.subarray(0, got), (i) => this.items.ids[i]!), scores: Array.from(sc.subarray(0, got)) });
    }
    return out;
  }

  /**
   * Top-k for every user, in batches of `batchSize` users; `onBatch` receives each batch's results
   * (and the count done so far) so that callers can stream them instead of holding all in memory.
   */
  recommendAll(
    o: Omit<RecommendOptions, "history" | "recalculate"> & { batchSize?: number } = {},
    onBatch?: (recs: Recommendation[], done: number, total: number) => void,
  ): Recommendation[] {
    const bs = o.batchSize ?? 512;
    const all: Recommendation[] = [];
    const total = this.users.size;
    for (let s = 0; s < total; s += bs) {
      const ids = this.users.ids.slice(s, Math.min(total, s + bs));
      const recs = this.recommendBatch(ids, o);
      if (onBatch) onBatch(recs, s + ids.length, total);
      else all.push(...recs);
    }
    return all;
  }

  private similar(F: Float32Array, rows: number, ids: string[], q: number, normsOf: "item" | "user", o: SimilarOptions, ok: Uint8Array | null): Similar {
    const f = this.factors;
    let norms = normsOf === "item" ? this.itemNorms : this.userNorms;
    if (!norms) {
      norms = new Float32Array(rows);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        for (let a = 0; a < f; a++) s += F[i * f + a]! ** 2;
        norms[i] = Math.sqrt(s) || 1e-10;
      }
      if (normsOf === "item") this.itemNorms = norms;
      else this.userNorms = norms;
    }
    const scores = new Float32Array(rows);
    const qo = q * f;
    for (let i = 0; i < rows; i++) {
      let s = 0;
      const io = i * f;
      for (let a = 0; a < f; a++) s += F[qo + a]! * F[io + a]!;
      scores[i] = s / (norms[i]! * norms[q]!);
    }
    const k = o.k ?? 10;
    const idx = new Int32Array(k);
    const sc = new Float32Array(k);
    const got = topKRow(scores, 0, rows, k, ok ? (i) => ok[i] === 0 : null, idx, sc);
    return { ids: Array.from(idx.subarray(0, got), (i) => ids[i]!), scores: Array.from(sc.subarray(0, got)) };
  }

  /** The k items most similar to `item` by cosine of their factors (the item itself included, as implicit). */
  similarItems(item: RawId, o: SimilarOptions = {}): Similar {
    const q = this.itemIndex(item);
    return this.similar(this.itemFactors, this.items.size, this.items.ids, q, "item", o, this.eligibility(o));
  }

  /** The k users most similar to `user` by cosine (the user itself included). `items`/`filterItems` are ignored. */
  similarUsers(user: RawId, o: { k?: number } = {}): Similar {
    const q = this.userIndex(user);
    return this.similar(this.userFactors, this.users.size, this.users.ids, q, "user", o, null);
  }

  /**
   * Why `item` is recommended to `user` (Hu, Koren, Volinsky 2008, §5; implicit's explain): with
   * W = (Y^T C_u Y + lambda I)^-1, the score y_i . x_u = sum_j (y_i^T W y_j) c_uj p_uj over the
   * user's past items j. Returns the total and the top-k contributions. `history` defaults to the
   * user's training interactions.
   */
  explain(user: RawId, item: RawId, o: { k?: number; history?: HistoryEntry[] } = {}): Explanation {
    const f = this.factors;
    const i = this.itemIndex(item);
    let h: DenseHistory;
    if (o.history) h = this.denseHistory(o.history, this.items, "item");
    else {
      const u = this.userIndex(user);
      const s = this.userItems.indptr[u]!;
      const e = this.userItems.indptr[u + 1]!;
      h = { indices: this.userItems.indices.slice(s, e), values: this.userItems.values.slice(s, e), unknown: [] };
    }
    const Y = Float64Array.from(this.itemFactors);
    const G = this.config.feedback === "implicit" ? this.gram() : null;
    const sys = this.oneRowSystem(h);
    const sc = new SolverScratch(f);
    buildRowSystem(sys, 0, Y, G, f, sc);
    if (!choleskyInPlace(sc.A, f)) {
      throw new RecblocksError("explain", [{ code: "als_not_positive_definite", path: "/model/regularization",
        message: "The user's normal equations are not positive definite.", hint: "Increase model.regularization." }]);
    }
    const wy = choleskySolve(sc.A, Y.subarray(i * f, (i + 1) * f), f, new Float64Array(f)); // W y_i
    const contribs: { item: string; contribution: number }[] = [];
    let total = 0;
    for (let j = 0; j < h.indices.length; j++) {
      const t = sys.target[j]!;
      const yo = h.indices[j]! * f;
      let d = 0;
      for (let a = 0; a < f; a++) d += wy[a]! * Y[yo + a]!;
      const c = d * t;
      total += c;
      contribs.push({ item: this.items.ids[h.indices[j]!]!, contribution: c });
    }
    contribs.sort((a, b) => b.contribution - a.contribution);
    return { score: total, contributions: contribs.slice(0, o.k ?? 10) };
  }
}
