import type { LstmConfig } from "../../src/generated/blocks/lstm.js";
import { RecurrentBlock } from "./recurrent-block.js";

export type LSTMConfig = LstmConfig;

/**
 * A stack of LSTM layers, [B, L, d] -> [B, L, units]. Cell as Keras LSTM (PyTorch nn.LSTM with one
 * bias): gates i | f | g | o = σ, σ, tanh, σ of (x W + h U + b); c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c').
 * Padding steps carry the state and output zeros (maths in recurrent-layers.ts).
 */
export class LSTMBlock extends RecurrentBlock<LSTMConfig> {
  protected readonly cell = "lstm" as const;

  constructor(config: LSTMConfig | Omit<LSTMConfig, "type"> = {}) {
    super({ ...config, type: "lstm" } as LSTMConfig);
  }
}
