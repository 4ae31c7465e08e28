import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  dropout,
  formatSpec,
  isTensorSpec,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import { GATES, orthogonalRows, recurrentLayer, type CellType, type RecurrentParams } from "./recurrent-layers.js";

/** The options GRUBlock and LSTMBlock share (schemas/blocks/gru.schema.json, lstm.schema.json). */
export interface RecurrentConfig {
  type: string;
  name?: string;
  units?: number;
  numLayers?: number;
  dropout?: number;
  bidirectional?: boolean;
}

/**
 * What `gru` and `lstm` share: a stack of recurrent layers [B, L, d] -> [B, L, units] (2 · units
 * bidirectional), reading the padding mask from the CallContext ("padding-mask"). Weights per layer
 * k: `layer_k/kernel` [in, G·U], `layer_k/recurrent_kernel` [U, G·U], `layer_k/bias` [G·U] (and,
 * for the GRU, `layer_k/recurrent_bias`), the backward direction under `layer_k_backward/`.
 * Initialisation as Keras: Glorot-uniform kernels, orthogonal recurrent kernels, zero biases
 * (LSTM forget gate: 1).
 */
export abstract class RecurrentBlock<C extends RecurrentConfig> extends Block<C> {
  protected abstract readonly cell: CellType;
  private layers: { forward: RecurrentParams; backward?: RecurrentParams }[] = [];

  /** Output size per position. */
  get outputSize(): number {
    return this.config.units! * (this.config.bidirectional ? 2 : 1);
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const type = this.config.type;
    if (!isTensorSpec(input) || input.dtype !== "float32" || input.shape.length !== 3 || typeof input.shape[2] !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `${type} needs a float32 sequence [B, L, D] with a known D as input, got ${formatSpec(input)}.`, {
        hint: "Put a tabular-sequence-features block (with an aggregation) before it.",
      });
    }
    const masking = ctx.get<{ type: string }>("masking");
    if (this.config.bidirectional && masking?.type === "causal") {
      throw new BlockError(`${ctx.path}/bidirectional`, "incompatible_masking", `A bidirectional ${type} reads the items after each position, so with causal masking every position would see the item it must predict.`, {
        hint: "Remove bidirectional: true, or use masking: {type: masked}.",
      });
    }
    return { shape: [input.shape[0] ?? null, input.shape[1] ?? null, this.outputSize], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const U = this.config.units!;
    const G = GATES[this.cell];
    let inDim = (input as TensorSpec).shape[2] as number;
    const make = (prefix: string, d: number): RecurrentParams => {
      const limit = Math.sqrt(6 / (d + G * U));
      const kernel = this.addWeight(`${prefix}/kernel`, [d, G * U], { kind: "uniform", limit }, ctx);
      const recurrentKernel = this.addWeight(`${prefix}/recurrent_kernel`, [U, G * U], { kind: "zeros" }, ctx);
      tf.tidy(() => recurrentKernel.assign(tf.tensor2d(orthogonalRows(U, G * U, ctx.rng), [U, G * U])));
      const bias = this.addWeight(`${prefix}/bias`, [G * U], { kind: "zeros" }, ctx);
      if (this.cell === "lstm") {
        const b = new Float32Array(G * U);
        b.fill(1, U, 2 * U); // Keras unit_forget_bias
        tf.tidy(() => bias.assign(tf.tensor1d(b)));
        return { kernel, recurrentKernel, bias };
      }
      return { kernel, recurrentKernel, bias, recurrentBias: this.addWeight(`${prefix}/recurrent_bias`, [G * U], { kind: "zeros" }, ctx) };
    };
    this.layers = [];
    for (let k = 0; k < this.config.numLayers!; k++) {
      const layer: (typeof this.layers)[number] = { forward: make(`layer_${k}`, inDim) };
      if (this.config.bidirectional) layer.backward = make(`layer_${k}_backward`, inDim);
      this.layers.push(layer);
      inDim = this.outputSize;
    }
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor3D {
    if (!this.layers.length) throw new Error(`${this.config.type} "${this.name}" is not built`);
    const mask = ctx.paddingMask ?? null;
    let x = input as tf.Tensor3D;
    for (const layer of this.layers) {
      let y = recurrentLayer(this.cell, x, mask, layer.forward);
      if (layer.backward) y = tf.concat([y, recurrentLayer(this.cell, x, mask, layer.backward, true)], 2);
      x = dropout(y, this.config.dropout!, ctx.training, ctx.seed()) as tf.Tensor3D;
    }
    return x;
  }
}
