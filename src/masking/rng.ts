/**
 * The random source masking (and other host-side sampling) draws from: anything with
 * `next()` returning a uniform float in [0, 1). src/engine's seeded `rng()` satisfies it;
 * `mulberry32(seed)` below is a small local one for tests and standalone use.
 */
export interface RandomSource {
  next(): number;
}

/** mulberry32: a tiny, fast, seedable 32-bit PRNG (uniform floats in [0, 1)). */
export function mulberry32(seed: number): RandomSource {
  let a = seed >>> 0;
  return {
    next(): number {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** A uniform integer in [0, n) drawn from `rng`. */
export function randomInt(rng: RandomSource, n: number): number {
  const r = Math.floor(rng.next() * n);
  return r >= n ? n - 1 : r;
}

/** Accepts a RandomSource or a bare `() => number` (uniform in [0, 1)) and returns a RandomSource. */
export function toRandomSource(r: RandomSource | (() => number)): RandomSource {
  return typeof r === "function" ? { next: r } : r;
}
