/**
 * Recommendations from a saved next-item model directory: raw item ids of a session in, the top-k raw
 * item ids and scores out, with business-rule filters applied inside top-k. Used by
 * `recblocks recommend` and the HTTP server. Block types must be registered before `open`.
 */
import type { SequenceBatchLike } from "../core/index.js";
import type { Vocabulary } from "../data/vocabulary.js";
import { loadModelDir, type ModelDirContents } from "../io/model-dir.js";
import { eligibility, type ItemFilters, type ItemMetadata } from "./filters.js";

export interface NextItemRequest {
  /** Raw ids of the session's items, oldest first. */
  items: (string | number)[];
  k?: number;
  /** Never recommend an item already in the session. */
  excludeSeen?: boolean;
  filters?: ItemFilters;
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

  private constructor(dir: string, contents: ModelDirContents) {
    this.dir = dir;
    this.contents = contents;
    const v = contents.vocabularies[contents.itemColumn];
    if (!v) throw new Error(`model directory ${dir} has no vocabulary for the item column "${contents.itemColumn}"`);
    this.vocab = v;
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

  /** Top-k for several sessions that share k, excludeSeen and filters. */
  recommendBatch(sessions: (string | number)[][], o: Omit<NextItemRequest, "items"> = {}): NextItemAnswer[] {
    const k = o.k ?? 20;
    const L = this.contents.maxSequenceLength;
    const B = sessions.length;
    const { mask, eligible, unknown: unknownFilter } = this.mask(o.filters);
    const itemIds = new Int32Array(B * L);
    const lengths = new Int32Array(B);
    const unknown: string[][] = [];
    const seen: number[][] = [];
    for (let b = 0; b < B; b++) {
      const ids: number[] = [];
      const unk: string[] = [];
      for (const raw of sessions[b]!) {
        const id = this.lookup(raw);
        if (id === undefined) unk.push(String(raw));
        else ids.push(id);
      }
      unknown.push(unk);
      seen.push(ids);
      const tail = ids.slice(-L);
      itemIds.set(tail, b * L);
      lengths[b] = tail.length;
    }
    const answers: NextItemAnswer[] = sessions.map((_, b) => ({ items: [], scores: [], unknownItems: [...unknown[b]!, ...unknownFilter] }));
    // rows with no known item get no model answer (nothing to condition on)
    const rows = [...Array(B).keys()].filter((b) => lengths[b]! > 0);
    if (rows.length === 0 || eligible === 0) return answers;
    const sub: SequenceBatchLike = {
      batchSize: rows.length,
      seqLen: L,
      itemIds: new Int32Array(rows.length * L),
      categorical: {},
      continuous: {},
      context: {},
      lengths: Int32Array.from(rows, (b) => lengths[b]!),
    } as SequenceBatchLike;
    rows.forEach((b, r) => sub.itemIds.set(itemIds.subarray(b * L, (b + 1) * L), r * L));
    const kk = Math.min(k, eligible);
    const top = this.contents.model.topK(sub, kk, {
      eligible: mask,
      ...(o.excludeSeen ? { exclude: (r: number) => seen[rows[r]!]! } : {}),
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
    return this.recommendBatch([req.items], req)[0]!;
  }

  dispose(): void {
    this.contents.model.dispose();
  }
}
