import * as tf from "@tensorflow/tfjs";
import type { BlockContext, CallContext } from "./context.js";
import { deepFreeze, withSchemaDefaults } from "./defaults.js";
import { makeVariable, type Initializer } from "./init.js";
import type { PortSpec } from "./spec.js";

/** Every block config has a type id and an optional name. */
export interface BlockConfig {
  type: string;
  name?: string;
}

export type BlockInput = tf.Tensor | { [name: string]: tf.Tensor };
export type BlockOutput = tf.Tensor | { [name: string]: tf.Tensor };

/**
 * The block lifecycle (see docs/design and ../shared/DESIGN.md "The block"):
 * constructor(config) stores the frozen, fully defaulted config (no tensors);
 * computeOutputSpec(input, ctx) infers shapes only and throws BlockError at ctx.path;
 * build(input, ctx) creates the weights; call(input, ctx) computes (inside the caller's tidy);
 * getConfig() returns a config that rebuilds the same block.
 */
export abstract class Block<C extends BlockConfig = BlockConfig> {
  readonly config: Readonly<C>;
  readonly name: string;
  private readonly ownWeights = new Map<string, tf.Variable>();
  private _built = false;
  private _inputSpec: PortSpec | undefined;
  private _outputSpec: PortSpec | undefined;

  constructor(config: C) {
    const full = withSchemaDefaults(config);
    this.config = deepFreeze(full);
    this.name = full.name ?? full.type;
  }

  abstract computeOutputSpec(input: PortSpec, ctx: BlockContext): PortSpec;

  /** Creates the weights for `input`. Subclasses override `buildWeights`; building twice throws. */
  build(input: PortSpec, ctx: BlockContext): void {
    if (this._built) throw new Error(`block "${this.name}" (${this.config.type}) at ${ctx.path || "/"} is already built`);
    const out = this.computeOutputSpec(input, ctx);
    this.buildWeights(input, ctx);
    this._inputSpec = input;
    this._outputSpec = out;
    this._built = true;
  }

  /** Create weights with `addWeight`; the default has none. */
  protected buildWeights(_input: PortSpec, _ctx: BlockContext): void {}

  abstract call(input: BlockInput, ctx: CallContext): BlockOutput;

  get built(): boolean {
    return this._built;
  }
  get inputSpec(): PortSpec | undefined {
    return this._inputSpec;
  }
  get outputSpec(): PortSpec | undefined {
    return this._outputSpec;
  }

  /** A deep copy of the full config: `createBlock(b.getConfig())` builds the same block. */
  getConfig(): C {
    return structuredClone(this.config) as C;
  }

  /** Child blocks by a key unique within this block (weights are named `<name>/<key>/...`). */
  children(): [string, Block][] {
    return [];
  }

  /** Creates and records a weight under `<block name>/<localName>`. */
  protected addWeight(localName: string, shape: number[], init: Initializer, ctx: BlockContext, trainable = true): tf.Variable {
    if (this.ownWeights.has(localName)) throw new Error(`block "${this.name}": weight "${localName}" created twice`);
    const v = makeVariable(shape, init, ctx.rng, trainable);
    this.ownWeights.set(localName, v);
    return v;
  }

  /** Every weight of this block and its children, by its full name ("inputs/embeddings/item_id"). */
  namedVariables(prefix = ""): Map<string, tf.Variable> {
    const base = prefix ? `${prefix}/${this.name}` : this.name;
    const out = new Map<string, tf.Variable>();
    for (const [k, v] of this.ownWeights) out.set(`${base}/${k}`, v);
    for (const [key, child] of this.children()) {
      for (const [k, v] of child.namedVariables(`${base}/${key}`)) {
        if (out.has(k)) throw new Error(`duplicate weight name "${k}"`);
        out.set(k, v);
      }
    }
    return out;
  }

  variables(): tf.Variable[] {
    return [...this.namedVariables().values()];
  }

  trainableVariables(): tf.Variable[] {
    return this.variables().filter((v) => v.trainable);
  }

  /** Number of scalar parameters (trainable and not). */
  countParams(): number {
    let n = 0;
    for (const v of this.variables()) n += v.size;
    return n;
  }

  /** Frees the weights. */
  dispose(): void {
    for (const v of this.ownWeights.values()) v.dispose();
    this.ownWeights.clear();
    for (const [, c] of this.children()) c.dispose();
  }
}
