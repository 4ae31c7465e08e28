import * as tf from "@tensorflow/tfjs";
import { sparseSoftmaxCrossEntropy } from "../engine/index.js";

export type ActivationName = "relu" | "gelu" | "tanh" | "sigmoid" | "swish" | "elu" | "leaky-relu" | "linear";

/** Applies a named activation (gelu is the tanh approximation, as GPT-2 / BERT use). */
export function activation(x: tf.Tensor, name: ActivationName): tf.Tensor {
  switch (name) {
    case "relu":
      return tf.relu(x);
    case "gelu": {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    case "tanh":
      return tf.tanh(x);
    case "sigmoid":
      return tf.sigmoid(x);
    case "swish":
      return tf.mul(x, tf.sigmoid(x));
    case "elu":
      return tf.elu(x);
    case "leaky-relu":
      return tf.leakyRelu(x, 0.01);
    case "linear":
      return x;
  }
}

/** Inverted dropout with a seed; identity when rate is 0 or not training. */
export function dropout(x: tf.Tensor, rate: number, training: boolean, seed: number): tf.Tensor {
  if (!training || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, seed);
}

/** Layer normalisation over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * Per-row softmax cross-entropy with integer labels: logsumexp(logits) - logits[label]
 * (src/engine's sparseSoftmaxCrossEntropy: the fused TF kernel on the native backend).
 */
export function crossEntropyPerRow(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return sparseSoftmaxCrossEntropy(logits, labels);
}

/** logits[r, labels[r]] for every row r: [N]. */
export function pickPerRow(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const [n, v] = logits.shape;
    const flatIdx = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(v, "int32")), labels.toInt());
    return tf.gather(tf.reshape(logits, [-1]), flatIdx) as tf.Tensor1D;
  });
}
