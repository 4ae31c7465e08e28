import * as tf from "@tensorflow/tfjs";

/**
 * Gradient accumulation (Hugging Face `gradient_accumulation_steps`, which Transformers4Rec's trainer
 * inherits): the dense gradients of consecutive micro-batches are summed on the device, and `take()`
 * hands back their mean (sum · 1/k over the k micro-batches added: 1/N for a full group of N, and the
 * mean of a shorter group at the end of an epoch) for one optimizer update. Nothing is read back.
 */
export class GradientAccumulator {
  private sum: Record<string, tf.Tensor> | undefined;
  private n = 0;

  /** Micro-batches added since the last `take()`. */
  get count(): number {
    return this.n;
  }

  /** Adds one micro-batch's gradients (variable name -> dense gradient); they are disposed. */
  add(grads: Record<string, tf.Tensor>): void {
    if (!this.sum) this.sum = grads;
    else {
      const prev = this.sum;
      const next: Record<string, tf.Tensor> = {};
      for (const [k, g] of Object.entries(grads)) {
        const p = prev[k];
        next[k] = p ? tf.add(p, g) : g;
        if (p) g.dispose();
      }
      for (const [k, p] of Object.entries(prev)) {
        if (k in next) p.dispose();
        else next[k] = p;
      }
      this.sum = next;
    }
    this.n++;
  }

  /** The mean gradients of the group (new tensors the caller disposes); the accumulator is empty again. */
  take(): Record<string, tf.Tensor> {
    const sum = this.sum ?? {};
    const k = this.n;
    this.sum = undefined;
    this.n = 0;
    if (k <= 1) return sum;
    const out: Record<string, tf.Tensor> = {};
    for (const [name, g] of Object.entries(sum)) {
      out[name] = tf.mul(g, 1 / k);
      g.dispose();
    }
    return out;
  }

  dispose(): void {
    for (const g of Object.values(this.sum ?? {})) g.dispose();
    this.sum = undefined;
    this.n = 0;
  }
}
