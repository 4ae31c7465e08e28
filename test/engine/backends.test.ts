/**
 * Every op recblocks relies on in training, run on every backend present (native tensorflow when
 * tfjs-node is built, wasm, cpu), compared with hand-computed values and with each other to 1e-5.
 * The test names carry the backend, so the output shows which backends ran.
 */
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initEngine, Rng, sparseSoftmaxCrossEntropy } from "../../src/engine/index.js";

type Out = { values: Float32Array | Int32Array | Uint8Array; shape: number[] };

const backends: string[] = [];
const startBackend = async (): Promise<void> => {
  const info = await initEngine({ backend: "auto", quiet: true });
  if (info.backend === "tensorflow") backends.push("tensorflow");
  await initEngine({ backend: "wasm", quiet: true });
  backends.push("wasm");
  await initEngine({ backend: "cpu", quiet: true });
  backends.push("cpu");
};

beforeAll(async () => {
  await startBackend();
  process.stdout.write(`engine backends under test: ${backends.join(", ")}${backends.includes("tensorflow") ? "" : " (native tensorflow NOT available here)"}\n`);
});
afterAll(async () => {
  await tf.setBackend("cpu");
});

/** Runs `f` on backend `b` with fresh tensors, returns host copies of its outputs; checks no tensor leaks. */
async function on(b: string, f: () => tf.Tensor | tf.Tensor[]): Promise<Out[]> {
  await tf.setBackend(b);
  const before = tf.memory().numTensors;
  const outs = tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => ({ values: t.dataSync().slice(), shape: t.shape.slice() }));
  });
  expect(tf.memory().numTensors).toBe(before);
  return outs as Out[];
}

/** |a - b| <= tol * max(1, max |b|) elementwise: float32 noise of sums scales with the tensor's magnitude. */
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / scale;
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  if (!(worst <= tol)) expect.fail(`max relative difference ${worst} at ${at}: ${a[at]} vs ${b[at]}`);
}

/** Checks `f` on every backend against the first backend's result (and against `expected` when given). */
async function allAgree(f: () => tf.Tensor | tf.Tensor[], expected?: number[][], tol = 1e-5): Promise<void> {
  let ref: Out[] | undefined;
  for (const b of backends) {
    const outs = await on(b, f);
    if (expected) expected.forEach((e, i) => close(outs[i]!.values, e, tol));
    if (!ref) ref = outs;
    else
      outs.forEach((o, i) => {
        expect(o.shape).toEqual(ref![i]!.shape);
        close(o.values, ref![i]!.values, tol);
      });
  }
}

const rnd = (seed: number, n: number, scale = 1): Float32Array => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale);
};
const ints = (seed: number, n: number, max: number): Int32Array => {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(max));
};

describe("engine ops on every backend", () => {
  it("lists the backends that ran (RECBLOCKS_EXPECT_NATIVE=1 makes a missing native backend a failure, as in CI)", () => {
    expect(backends).toContain("wasm");
    expect(backends).toContain("cpu");
    if (process.env.RECBLOCKS_EXPECT_NATIVE === "1") expect(backends).toContain("tensorflow");
  });

  it("gather of embedding rows and its gradient (UnsortedSegmentSum) match hand-computed values", async () => {
    // E = [[0,1],[2,3],[4,5]], ids [2,0,2] -> rows; d(sum(rows * w))/dE adds w's rows into E rows.
    const E = [0, 1, 2, 3, 4, 5];
    const w = [1, 2, 3, 4, 5, 6];
    await allAgree(
      () => {
        const e = tf.tensor2d(E, [3, 2]);
        const ids = tf.tensor1d([2, 0, 2], "int32");
        const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, ids), tf.tensor2d(w, [3, 2]))))(e);
        return [tf.gather(e, ids), g];
      },
      [
        [4, 5, 0, 1, 4, 5],
        [3, 4, 0, 0, 6, 8],
      ],
    );
  });

  it("gather gradient on a larger table (3-D ids, padding id 0)", async () => {
    const V = 500;
    const D = 16;
    const ev = rnd(1, V * D);
    const idv = ints(2, 8 * 20, V);
    const wv = rnd(3, 8 * 20 * D);
    await allAgree(() => {
      const e = tf.tensor2d(ev, [V, D]);
      const ids = tf.tensor2d(idv, [8, 20], "int32");
      return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, ids), tf.tensor3d(wv, [8, 20, D]))))(e);
    });
  });

  it("unsortedSegmentSum with 2-D data", async () => {
    await allAgree(
      () => tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]), tf.tensor1d([1, 0, 1, 3], "int32"), 4),
      [[3, 4, 6, 8, 0, 0, 7, 8]],
    );
  });

  it("matMul in all four transpose combinations (hand-checked 2x2)", async () => {
    // a = [[1,2],[3,4]], b = [[5,6],[7,8]]
    await allAgree(
      () => {
        const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);
        const b = tf.tensor2d([5, 6, 7, 8], [2, 2]);
        return [tf.matMul(a, b), tf.matMul(a, b, true, false), tf.matMul(a, b, false, true), tf.matMul(a, b, true, true)];
      },
      [
        [19, 22, 43, 50],
        [26, 30, 38, 44],
        [17, 23, 39, 53],
        [23, 31, 34, 46],
      ],
    );
  });

  it("matMul h·Eᵀ (scores against a catalogue) and its gradients", async () => {
    const hv = rnd(4, 32 * 24);
    const ev = rnd(5, 300 * 24);
    const wv = rnd(55, 32 * 300);
    await allAgree(() => {
      const h = tf.tensor2d(hv, [32, 24]);
      const e = tf.tensor2d(ev, [300, 24]);
      const w = tf.tensor2d(wv, [32, 300]);
      const [gh, ge] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, b, false, true), w)))([h, e]);
      return [tf.matMul(h, e, false, true), gh!, ge!];
    });
  });

  it("batched matMul (3-D, transposed, broadcast) and fused matMul with bias", async () => {
    const av = rnd(6, 4 * 5 * 8);
    const bv = rnd(7, 4 * 6 * 8);
    const cv = rnd(8, 8 * 3);
    await allAgree(() => {
      const a = tf.tensor3d(av, [4, 5, 8]);
      const b = tf.tensor3d(bv, [4, 6, 8]);
      const attn = tf.matMul(a, b, false, true); // [4,5,6]
      const back = tf.matMul(attn, b); // [4,5,8]
      const tA = tf.matMul(a, tf.tensor3d(av, [4, 5, 8]), true, false); // [4,8,8]
      const fused = tf.fused.matMul({ a: tf.reshape(a, [20, 8]), b: tf.tensor2d(cv, [8, 3]), bias: tf.tensor1d([1, -1, 0.5]), activation: "relu" });
      const fusedT = tf.fused.matMul({ a: tf.reshape(a, [20, 8]), b: tf.transpose(tf.tensor2d(cv, [8, 3])), transposeB: true });
      return [attn, back, tA, fused, fusedT];
    });
  });

  it("sparse softmax cross-entropy: loss and gradient equal the hand-computed values", async () => {
    // Row 0: logits [0, ln 2, ln 3] -> softmax [1/6, 2/6, 3/6]; label 2 -> loss ln 2; grad [1/6, 1/3, -1/2].
    // Row 1: logits [1, 1, 1]; label 0 -> loss ln 3; grad [-2/3, 1/3, 1/3].
    const logits = [0, Math.log(2), Math.log(3), 1, 1, 1];
    const expectLoss = [Math.log(2), Math.log(3)];
    const expectGrad = [1 / 6, 1 / 3, -1 / 2, -2 / 3, 1 / 3, 1 / 3];
    for (const impl of ["auto", "composite"] as const) {
      await allAgree(
        () => {
          const x = tf.tensor2d(logits, [2, 3]);
          const y = tf.tensor1d([2, 0], "int32");
          const g = tf.grad((l: tf.Tensor) => tf.sum(sparseSoftmaxCrossEntropy(l as tf.Tensor2D, y, { impl })))(x);
          return [sparseSoftmaxCrossEntropy(x, y, { impl }), g];
        },
        [expectLoss, expectGrad],
      );
    }
  });

  it("sparse softmax cross-entropy: fused (native) and composite agree to 1e-5 on 32 x 2000 logits, with a weighted upstream gradient", async () => {
    const B = 32;
    const C = 2000;
    const xv = rnd(9, B * C, 4);
    const yv = ints(10, B, C);
    const wv = rnd(11, B);
    const run = (impl: "auto" | "composite") => () => {
      const x = tf.tensor2d(xv, [B, C]);
      const y = tf.tensor1d(yv, "int32");
      const w = tf.tensor1d(wv);
      const g = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(sparseSoftmaxCrossEntropy(l as tf.Tensor2D, y, { impl }), w)))(x);
      return [sparseSoftmaxCrossEntropy(x, y, { impl }), g];
    };
    await allAgree(run("auto"));
    // On each backend, auto (fused where native) == composite.
    for (const b of backends) {
      const [fl, fg] = await on(b, run("auto"));
      const [cl, cg] = await on(b, run("composite"));
      close(fl!.values, cl!.values);
      close(fg!.values, cg!.values);
    }
  });

  it("sparse softmax cross-entropy equals tf.losses.softmaxCrossEntropy with one-hot labels", async () => {
    const xv = rnd(12, 6 * 11, 3);
    const yv = ints(13, 6, 11);
    for (const b of backends) {
      const [ours] = await on(b, () => sparseSoftmaxCrossEntropy(tf.tensor2d(xv, [6, 11]), tf.tensor1d(yv, "int32")));
      const [ref] = await on(b, () =>
        tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(yv, "int32"), 11), tf.tensor2d(xv, [6, 11]), undefined, 0, tf.Reduction.NONE),
      );
      close(ours!.values, ref!.values);
    }
  });

  it("softmax and logSoftmax", async () => {
    await allAgree(
      () => {
        const x = tf.tensor2d([0, Math.log(2), Math.log(3), 5, 5, 5], [2, 3]);
        return [tf.softmax(x), tf.logSoftmax(x)];
      },
      [
        [1 / 6, 2 / 6, 3 / 6, 1 / 3, 1 / 3, 1 / 3],
        [Math.log(1 / 6), Math.log(2 / 6), Math.log(3 / 6), Math.log(1 / 3), Math.log(1 / 3), Math.log(1 / 3)],
      ],
    );
  });

  it("topk: values and indices (hand-checked) and on 16 x 3000 scores", async () => {
    await allAgree(
      () => {
        const { values, indices } = tf.topk(tf.tensor2d([0.1, 0.9, 0.3, 0.7, 5, 4, 3, 6], [2, 4]), 2);
        return [values, indices];
      },
      [
        [0.9, 0.7, 6, 5],
        [1, 3, 3, 0],
      ],
    );
    const sv = rnd(14, 16 * 3000);
    await allAgree(() => {
      const { values, indices } = tf.topk(tf.tensor2d(sv, [16, 3000]), 20);
      return [values, indices];
    });
  });

  it("scatterND and the masked-position gather used by masking heads", async () => {
    await allAgree(
      () => [
        tf.scatterND(tf.tensor2d([0, 3, 1, 1], [2, 2], "int32"), tf.tensor1d([5, 7]), [2, 4]),
        tf.gatherND(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), tf.tensor2d([1, 2, 0, 0], [2, 2], "int32")),
      ],
      [
        [0, 0, 0, 5, 0, 7, 0, 0],
        [6, 1],
      ],
    );
  });

  it("an Adam step on embeddings through gather, matmul and the sparse loss gives the same weights", async () => {
    const ev = rnd(15, 50 * 8, 0.1);
    const idv = ints(16, 12, 50);
    const yv = ints(17, 12, 50);
    await allAgree(() => {
      const e = tf.variable(tf.tensor2d(ev, [50, 8]), true, `emb_${Math.random()}`);
      const opt = tf.train.adam(0.01);
      const ids = tf.tensor1d(idv, "int32");
      const y = tf.tensor1d(yv, "int32");
      for (let s = 0; s < 3; s++) {
        opt.minimize(() => tf.mean(sparseSoftmaxCrossEntropy(tf.matMul(tf.gather(e, ids), e, false, true) as tf.Tensor2D, y)) as tf.Scalar);
      }
      const out = tf.clone(e);
      opt.dispose();
      e.dispose();
      return out;
    });
  });
});
