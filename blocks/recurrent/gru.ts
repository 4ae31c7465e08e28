import type { GruConfig } from "../../src/generated/blocks/gru.js";
import { RecurrentBlock } from "./recurrent-block.js";

export type GRUConfig = GruConfig;

/**
 * A stack of GRU layers, [B, L, d] -> [B, L, units] (GRU4Rec's session encoder). Cell as Keras GRU
 * with reset_after (PyTorch nn.GRU): z = σ(x Wz + bz + h Uz + cz), r = σ(x Wr + br + h Ur + cr),
 * n = tanh(x Wn + bn + r ⊙ (h Un + cn)), h' = (1 − z) ⊙ n + z ⊙ h; kernel columns z | r | n.
 * Padding steps carry the state and output zeros (maths in recurrent-layers.ts).
 */
export class GRUBlock extends RecurrentBlock<GRUConfig> {
  protected readonly cell = "gru" as const;

  constructor(config: GRUConfig | Omit<GRUConfig, "type"> = {}) {
    super({ ...config, type: "gru" } as GRUConfig);
  }
}
