import * as tf from "@tensorflow/tfjs";
import "./quiet.js";

/**
 * A seeded pseudo-random generator (mulberry32: 32-bit state, fast, good enough for initialisers,
 * shuffling, masking and dropout seeds). Everything random in recblocks draws from one, so that one
 * seed makes a run reproducible on a given backend.
 */
export class Rng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seedToState(seed);
  }

  /** A uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    const r = Math.floor(this.next() * n);
    return r >= n ? n - 1 : r;
  }

  /** A uniform float in [min, max). */
  uniform(min = 0, max = 1): number {
    return min + (max - min) * this.next();
  }

  /** A standard normal draw (Box–Muller, the second value of each pair kept for the next call). */
  normal(mean = 0, stddev = 1): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return mean + stddev * s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + stddev * r * Math.cos(2 * Math.PI * v);
  }

  /** A 31-bit integer, e.g. the `seed` argument of tf.dropout. */
  seed(): number {
    return Math.floor(this.next() * 0x7fffffff);
  }

  /** An independent generator seeded from this one (for a sub-task that must not shift the main stream). */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 4294967296));
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T, A extends { length: number; [i: number]: T }>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = array[i]!;
      array[i] = array[j]!;
      array[j] = t;
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

function seedToState(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  // Mix the seed so that nearby seeds (1, 2, 3) start far apart.
  let h = Math.floor(seed) ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

let globalSeed = 42;
let globalRng = new Rng(globalSeed);

/** Reseeds the process-wide generator returned by `rng()`. */
export function setSeed(seed: number): void {
  globalSeed = seed;
  globalRng = new Rng(seed);
}

/** The seed last given to `setSeed` (42 by default). */
export function getSeed(): number {
  return globalSeed;
}

/** The process-wide seeded generator (an object with `next()`; see `Rng`). */
export function rng(): Rng {
  return globalRng;
}

/** Float32 values drawn on the host, so that an initialiser gives the same numbers on every backend. */
export function normalValues(size: number, opts: { mean?: number; stddev?: number; truncated?: boolean; rng?: Rng } = {}): Float32Array {
  const r = opts.rng ?? globalRng;
  const mean = opts.mean ?? 0;
  const sd = opts.stddev ?? 1;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let z = r.normal();
    if (opts.truncated) while (Math.abs(z) > 2) z = r.normal();
    out[i] = mean + sd * z;
  }
  return out;
}

export function uniformValues(size: number, opts: { min?: number; max?: number; rng?: Rng } = {}): Float32Array {
  const r = opts.rng ?? globalRng;
  const min = opts.min ?? 0;
  const max = opts.max ?? 1;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = r.uniform(min, max);
  return out;
}

/** A normal-initialised tensor (host-generated: identical on every backend for a seed). */
export function randomNormal(shape: number[], opts: { mean?: number; stddev?: number; truncated?: boolean; rng?: Rng } = {}): tf.Tensor {
  return tf.tensor(normalValues(shape.reduce((a, b) => a * b, 1), opts), shape, "float32");
}

/** A uniform-initialised tensor in [min, max) (host-generated). */
export function randomUniform(shape: number[], opts: { min?: number; max?: number; rng?: Rng } = {}): tf.Tensor {
  return tf.tensor(uniformValues(shape.reduce((a, b) => a * b, 1), opts), shape, "float32");
}

/** Glorot (Xavier) uniform init for a [fanIn, fanOut] matrix (or the last two dims of a larger shape). */
export function glorotUniform(shape: number[], rngOpt?: Rng): tf.Tensor {
  const fanIn = shape.length >= 2 ? shape[shape.length - 2]! : shape[0]!;
  const fanOut = shape[shape.length - 1]!;
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return randomUniform(shape, { min: -limit, max: limit, rng: rngOpt });
}
