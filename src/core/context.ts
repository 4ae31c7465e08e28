import type * as tf from "@tensorflow/tfjs";
import type { FeatureSchemaLike } from "./feature-columns.js";

/** Uniform floats in [0, 1); src/engine's rng() and src/masking's mulberry32 satisfy it. */
export interface RandomSource {
  next(): number;
}

/**
 * What a block sees while it is shaped and built: the feature schema, its JSON Pointer in the
 * recipe, the seeded RNG for weight initialisation, and named things shared between blocks
 * ("masking", "item-embeddings", "item-id", ...), stated once and looked up by name.
 */
export class BlockContext {
  readonly schema: FeatureSchemaLike | undefined;
  readonly path: string;
  readonly rng: RandomSource;
  private readonly shared: Map<string, unknown>;

  constructor(opts: { schema?: FeatureSchemaLike; path?: string; rng: RandomSource; shared?: Map<string, unknown> }) {
    this.schema = opts.schema;
    this.path = opts.path ?? "";
    this.rng = opts.rng;
    this.shared = opts.shared ?? new Map();
  }

  /** The same context one level down: `ctx.child("body", 0).path === ctx.path + "/body/0"`. */
  child(...segments: (string | number)[]): BlockContext {
    const p = segments.map((s) => `/${String(s).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
    return new BlockContext({ schema: this.schema, path: this.path + p, rng: this.rng, shared: this.shared });
  }

  get<T = unknown>(key: string): T | undefined {
    return this.shared.get(key) as T | undefined;
  }

  set(key: string, value: unknown): void {
    this.shared.set(key, value);
  }

  has(key: string): boolean {
    return this.shared.has(key);
  }
}

export type CallMode = "train" | "eval" | "inference";

/**
 * What a block sees while it runs on one batch: the mode (train / eval / inference), a seeded RNG
 * (dropout seeds), and named per-batch values set by earlier blocks. Well-known keys:
 * - `"padding-mask"`: float32 [B, L], 1 where the position holds an item (real or [MASK]), 0 on
 *   padding; set by the input block, read by sequence bodies for their attention mask.
 * - `"mask"`: the host-side MaskResult of the batch (src/masking).
 * - `"item-ids"`: int32 [B, L] the ids fed to the model.
 */
export class CallContext {
  readonly mode: CallMode;
  readonly rng: RandomSource;
  private readonly values = new Map<string, unknown>();

  constructor(opts: { mode: CallMode; rng: RandomSource }) {
    this.mode = opts.mode;
    this.rng = opts.rng;
  }

  get training(): boolean {
    return this.mode === "train";
  }

  /** float32 [B, L] key padding mask (1 = attend), when the input block set one. */
  get paddingMask(): tf.Tensor2D | undefined {
    return this.values.get("padding-mask") as tf.Tensor2D | undefined;
  }

  get<T = unknown>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }

  set(key: string, value: unknown): void {
    this.values.set(key, value);
  }

  /** A 31-bit seed for a random op (dropout), drawn from the context's RNG. */
  seed(): number {
    return Math.floor(this.rng.next() * 2147483647);
  }
}
