import * as tf from "@tensorflow/tfjs";
import type { RandomSource } from "./context.js";

/** How a weight is initialised, from the seeded host RNG (so a seed gives the same model on every backend). */
export type Initializer =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "normal"; std: number; mean?: number; zeroRow0?: boolean }
  | { kind: "uniform"; limit: number }
  | { kind: "truncated-normal"; std: number };

export function initialValues(shape: number[], init: Initializer, rng: RandomSource): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (init.kind) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "uniform":
      for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * init.limit;
      break;
    case "normal":
    case "truncated-normal": {
      const mean = init.kind === "normal" ? (init.mean ?? 0) : 0;
      for (let i = 0; i < n; i++) {
        let z = gauss(rng);
        if (init.kind === "truncated-normal") while (Math.abs(z) > 2) z = gauss(rng);
        out[i] = mean + z * init.std;
      }
      if (init.kind === "normal" && init.zeroRow0 && shape.length === 2) out.fill(0, 0, shape[1]!);
      break;
    }
  }
  return out;
}

function gauss(rng: RandomSource): number {
  let u = rng.next();
  while (u <= 1e-12) u = rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function makeVariable(shape: number[], init: Initializer, rng: RandomSource, trainable = true): tf.Variable {
  const t = tf.tensor(initialValues(shape, init, rng), shape, "float32");
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}
