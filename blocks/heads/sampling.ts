/**
 * Negative sampling for next-item training (Transformers4Rec LogUniformSampler, with its truncation
 * bias fixed): ids 1..V-1 are assumed sorted by decreasing frequency (recblocks' vocabularies are,
 * by default: src/data/vocabulary.ts, order "frequency"), and id j is drawn with the log-uniform (Zipf)
 * probability
 *
 *   P(j) = (log(j + 1) - log(j)) / log(V),   j = 1..V-1     (Σ_j P(j) = 1)
 *
 * which is T4R's (log(c+2) - log(c+1)) / log(max_id + 1) with c = j - 1 counted from min_id = 1 and
 * max_id = V - 1 items. With `minId` > 1 (a vocabulary whose id 1 is the OOV id: the most frequent real
 * item is id 2) the same law runs over ids minId..V-1: P(j) = log((c+2)/(c+1)) / log(V - minId + 1),
 * c = j - minId. Unique sampling draws with replacement until `n` distinct ids are found (as
 * TensorFlow's log_uniform_candidate_sampler with unique=True); the number of draws it took, `tries`,
 * gives each id's probability of being in the sample, q(j) = 1 - (1 - P(j))^tries, the logQ correction.
 */
import type { RandomSource } from "../../src/core/index.js";

export interface NegativeSample {
  /** The distinct sampled ids, in the order they were first drawn. */
  ids: Int32Array;
  /** Draws (with replacement) it took to find them. */
  tries: number;
}

export class LogUniformSampler {
  /** Item-id cardinality V (0 = padding, items 1..V-1). */
  readonly numItems: number;
  /** The smallest id drawn (1, or 2 when id 1 is the OOV id). */
  readonly minId: number;
  /** log(R + 1), R = number of ids drawn (minId..V-1). */
  private readonly logV: number;

  constructor(numItems: number, minId = 1) {
    if (!Number.isInteger(minId) || minId < 1) throw new RangeError(`LogUniformSampler: minId must be an integer >= 1, got ${minId}`);
    if (!Number.isInteger(numItems) || numItems < minId + 1) throw new RangeError(`LogUniformSampler: needs at least one item (V >= ${minId + 1}), got V = ${numItems}`);
    this.numItems = numItems;
    this.minId = minId;
    this.logV = Math.log(numItems - minId + 1);
  }

  /** P(j) of one draw; 0 outside minId..V-1. */
  probability(id: number): number {
    if (!(id >= this.minId && id < this.numItems)) return 0;
    return Math.log1p(1 / (id - this.minId + 1)) / this.logV;
  }

  /** Probability that `id` is among the distinct ids of `tries` draws: 1 - (1 - P)^tries. */
  inclusionProbability(id: number, tries: number): number {
    const p = this.probability(id);
    if (p >= 1) return 1;
    return -Math.expm1(tries * Math.log1p(-p));
  }

  /** One draw: inverse CDF, j = minId - 1 + floor((R+1)^u) has P(j) (clamped to minId..V-1 against rounding). */
  draw(rng: RandomSource): number {
    const j = this.minId - 1 + Math.floor(Math.exp(rng.next() * this.logV));
    return Math.min(this.numItems - 1, Math.max(this.minId, j));
  }

  /**
   * `n` distinct ids (all V-1 items when n >= V-1) drawn with replacement until that many distinct ones
   * were seen, and the number of draws. `maxTries` bounds the loop (a very large n against a steep
   * distribution); the ids found by then are returned and `tries` is what was drawn.
   */
  sample(n: number, rng: RandomSource, maxTries = Math.max(1000, 100 * n)): NegativeSample {
    const items = this.numItems - this.minId;
    if (n >= items) return { ids: Int32Array.from({ length: items }, (_, i) => i + this.minId), tries: Infinity };
    const seen = new Set<number>();
    const ids: number[] = [];
    let tries = 0;
    while (ids.length < n && tries < maxTries) {
      const j = this.draw(rng);
      tries++;
      if (!seen.has(j)) {
        seen.add(j);
        ids.push(j);
      }
    }
    return { ids: Int32Array.from(ids), tries };
  }

  /** log q(j) of each id for a sample of `tries` draws (0 = log 1 when every item is in the sample). */
  logInclusion(ids: ArrayLike<number>, tries: number): Float32Array {
    const out = new Float32Array(ids.length);
    if (tries === Infinity) return out;
    for (let i = 0; i < ids.length; i++) out[i] = Math.log(this.inclusionProbability(ids[i]!, tries));
    return out;
  }
}
