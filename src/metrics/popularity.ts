/**
 * Most-popular baseline helpers: count item occurrences in training sequences, then recommend the
 * same top-k list (count descending, smaller id first among equal counts) to everyone.
 */

/** Occurrences of each item id in `sequences` (each an array of ids; 0 = padding, not counted). */
export function popularityCounts(sequences: Iterable<ArrayLike<number>>, numItems: number): Float64Array {
  const counts = new Float64Array(numItems);
  for (const seq of sequences) {
    for (let i = 0; i < seq.length; i++) {
      const id = seq[i]!;
      if (id > 0 && id < numItems) counts[id]!++;
      else if (id !== 0) throw new Error(`popularityCounts: item id ${id} is outside 0..${numItems - 1}`);
    }
  }
  return counts;
}

/**
 * The k most frequent items by `trainCounts[id]` (count descending, then id ascending); id 0 (padding)
 * and the ids in `exclude` are never returned. Returns fewer than k ids only if fewer items exist.
 */
export function popularityTopK(trainCounts: ArrayLike<number>, k: number, exclude: Iterable<number> = []): Int32Array {
  if (!Number.isInteger(k) || k < 1) throw new Error(`popularityTopK: k must be an integer >= 1, got ${k}`);
  const skip = new Set<number>([0, ...exclude]);
  const ids: number[] = [];
  for (let id = 0; id < trainCounts.length; id++) if (!skip.has(id)) ids.push(id);
  ids.sort((a, b) => trainCounts[b]! - trainCounts[a]! || a - b);
  return Int32Array.from(ids.slice(0, k));
}
