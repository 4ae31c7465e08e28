import type { RandomSource } from "../masking/index.js";

/**
 * The training loop's random source (masking, dropout seeds): mulberry32, the same stream as
 * `mulberry32(seed)` from src/masking, with its 32-bit state readable and settable so that a
 * checkpoint can resume the exact sequence.
 */
export class TrainRng implements RandomSource {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  get state(): number {
    return this.a;
  }
  set state(s: number) {
    this.a = s >>> 0;
  }
}
