/**
 * Top-k selection over a score row with an eligibility mask applied inside the selection, so k
 * results come back whenever k eligible items exist. Ties go to the smaller index.
 */

/**
 * Indices of the k largest scores[off .. off+n) among eligible positions (eligible(i) true, or
 * all when null), best first. Writes into outIdx/outScore and returns how many were found (<= k).
 */
export function topKRow(
  scores: ArrayLike<number>, off: number, n: number, k: number,
  excluded: ((i: number) => boolean) | null, outIdx: Int32Array, outScore: Float32Array | Float64Array,
): number {
  if (k <= 0) return 0;
  // min-heap of size <= k on (score, -index)
  const hi = new Int32Array(k);
  const hs = new Float64Array(k);
  let size = 0;
  const worse = (sa: number, ia: number, sb: number, ib: number): boolean => sa < sb || (sa === sb && ia > ib);
  for (let i = 0; i < n; i++) {
    const s = scores[off + i]!;
    if (s !== s) continue; // NaN never recommended
    if (excluded !== null && excluded(i)) continue;
    if (size < k) {
      let pos = size++;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(s, i, hs[parent]!, hi[parent]!)) break;
        hs[pos] = hs[parent]!;
        hi[pos] = hi[parent]!;
        pos = parent;
      }
      hs[pos] = s;
      hi[pos] = i;
    } else if (worse(hs[0]!, hi[0]!, s, i)) {
      let pos = 0;
      for (;;) {
        const l = 2 * pos + 1;
        if (l >= size) break;
        const r = l + 1;
        const c = r < size && worse(hs[r]!, hi[r]!, hs[l]!, hi[l]!) ? r : l;
        if (!worse(hs[c]!, hi[c]!, s, i)) break;
        hs[pos] = hs[c]!;
        hi[pos] = hi[c]!;
        pos = c;
      }
      hs[pos] = s;
      hi[pos] = i;
    }
  }
  const order = Array.from({ length: size }, (_, j) => j).sort((a, b) => hs[b]! - hs[a]! || hi[a]! - hi[b]!);
  for (let j = 0; j < size; j++) {
    outIdx[j] = hi[order[j]!]!;
    outScore[j] = hs[order[j]!]!;
  }
  return size;
}
