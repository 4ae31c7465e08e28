import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { createOptimizer, type OptimizerConfig } from "../../src/train/optimizers.js";

let uid = 0;
const vname = (s: string) => `opt_test_${s}_${uid++}`;
const G1 = [0.5, -1.0];
const G2 = [0.1, 0.2];

/** Two steps from p0 = [1, -2] with gradients G1 then G2; returns p after each step. */
function twoSteps(cfg: OptimizerConfig, name = "w"): number[][] {
  const v = tf.variable(tf.tensor1d([1, -2]), true, vname(name));
  const opt = createOptimizer(cfg);
  const out: number[][] = [];
  for (const g of [G1, G2]) {
    const gt = tf.tensor1d(g);
    opt.applyGradients({ [v.name]: gt });
    gt.dispose();
    out.push(Array.from(v.dataSync()));
  }
  opt.dispose();
  v.dispose();
  return out;
}
const close = (a: number[][], b: number[][], digits = 6) =>
  a.forEach((row, i) => row.forEach((x, j) => expect(x, `step ${i + 1} [${j}]`).toBeCloseTo(b[i]![j]!, digits)));

describe("optimizers against hand-computed steps (p0 = [1, -2], g1 = [0.5, -1], g2 = [0.1, 0.2], lr 0.1)", () => {
  it("adam", () => {
    // step 1: m̂ = g, v̂ = g² -> p -= lr·sign(g); step 2: m = [0.055, -0.07], v = [0.00025975, 0.001039],
    // m̂ = m/0.19, v̂ = v/0.001999 -> p = [0.9 - 0.1·0.80304, -1.9 + 0.1·0.51103]
    close(twoSteps({ type: "adam", learningRate: 0.1 }), [[0.9, -1.9], [0.8196959064, -1.8488973940]]);
  });
  it("adamw (decoupled weight decay 0.1): p·(1 - lr·wd) then the Adam step", () => {
    close(twoSteps({ type: "adamw", learningRate: 0.1, weightDecay: 0.1 }), [[0.89, -1.88], [0.8007959064, -1.8100973940]]);
  });
  it("adam with L2 weight decay 0.1 (added to the gradient, as torch.optim.Adam)", () => {
    close(twoSteps({ type: "adam", learningRate: 0.1, weightDecay: 0.1 }), [[0.9, -1.9], [0.8136483454, -1.8336169077]]);
  });
  it("adamw with the variable excluded from weight decay equals adam", () => {
    close(twoSteps({ type: "adamw", learningRate: 0.1, weightDecay: 0.1, weightDecayExclude: ["bias"] }, "bias"), twoSteps({ type: "adam", learningRate: 0.1 }));
  });
  it("sgd, momentum, nesterov", () => {
    close(twoSteps({ type: "sgd", learningRate: 0.1 }), [[0.95, -1.9], [0.94, -1.92]]);
    // buf = [0.5, -1] then [0.55, -0.7]
    close(twoSteps({ type: "sgd", learningRate: 0.1, momentum: 0.9 }), [[0.95, -1.9], [0.895, -1.83]]);
    // d = g + 0.9·buf = [0.95, -1.9] then [0.595, -0.43]
    close(twoSteps({ type: "sgd", learningRate: 0.1, momentum: 0.9, nesterov: true }), [[0.905, -1.81], [0.8455, -1.767]]);
  });
  it("adagrad", () => {
    // acc = [0.25, 1] then [0.26, 1.04]
    close(twoSteps({ type: "adagrad", learningRate: 0.1 }), [[0.9, -1.9], [0.9 - 0.01 / Math.sqrt(0.26), -1.9 - 0.02 / Math.sqrt(1.04)]]);
  });
  it("a schedule sets the learning rate per step", () => {
    const v = tf.variable(tf.tensor1d([0]), true, vname("sched"));
    const opt = createOptimizer({ type: "sgd" }, { schedule: (s) => [0.5, 0.25][s]! });
    expect(opt.learningRate()).toBe(0.5);
    for (let i = 0; i < 2; i++) tf.tidy(() => opt.applyGradients(new Map([[v, tf.tensor1d([1])]])));
    expect(v.dataSync()[0]).toBeCloseTo(-0.75, 7);
    expect(opt.iterations).toBe(2);
    opt.dispose();
    v.dispose();
  });
});

describe("lazy (sparse) updates", () => {
  const init = [[1, 2, 3], [4, 5, 6], [-1, 0, 1], [0.5, 0.5, 0.5]];
  const steps = [
    { indices: [0, 1, 2, 3, 1, 0], values: [[0.1, 0.2, 0.3], [0.3, -0.2, 0.1], [1, 1, 1], [-0.5, 0, 0.5], [0.2, 0.2, 0.2], [0.1, -0.1, 0]] },
    { indices: [3, 2, 1, 0], values: [[0.3, 0.1, -0.2], [0.05, 0.05, 0.05], [-1, 0.5, 0], [0.2, 0.2, 0.2]] },
  ];
  for (const type of ["adam", "adamw", "sgd", "adagrad"] as const) {
    it(`${type}: lazy equals dense when every row is touched (duplicate indices summed)`, () => {
      const cfg = { type, learningRate: 0.05, momentum: type === "sgd" ? 0.9 : undefined, weightDecay: type === "adamw" ? 0.1 : undefined } as OptimizerConfig;
      const dense = tf.variable(tf.tensor2d(init), true, vname("dense"));
      const lazy = tf.variable(tf.tensor2d(init), true, vname("lazy"));
      const od = createOptimizer(cfg);
      const ol = createOptimizer({ ...cfg, lazy: true });
      for (const s of steps) {
        tf.tidy(() => {
          const g = { indices: tf.tensor1d(s.indices, "int32"), values: tf.tensor2d(s.values) };
          od.applyGradients(new Map([[dense, tf.scatterND(g.indices.expandDims(1), g.values, [4, 3])]]));
          ol.applyGradients(new Map([[lazy, g]]));
        });
      }
      const a = dense.arraySync();
      const b = lazy.arraySync();
      a.forEach((row, i) => row.forEach((x, j) => expect(b[i]![j]!).toBeCloseTo(x, 6)));
      // and something moved
      expect(a[0]![0]).not.toBeCloseTo(1, 3);
      od.dispose();
      ol.dispose();
      tf.dispose([dense, lazy]);
    });
  }

  it("adam: untouched rows keep their values and state (TF-Addons LazyAdam), dense Adam moves them by momentum", () => {
    const dense = tf.variable(tf.tensor2d(init), true, vname("dense2"));
    const lazy = tf.variable(tf.tensor2d(init), true, vname("lazy2"));
    const od = createOptimizer({ type: "adam", learningRate: 0.1 });
    const ol = createOptimizer({ type: "adam", learningRate: 0.1, lazy: true });
    // step 1 touches rows 0 and 1; step 2 touches row 1 only (Int32Array indices accepted)
    for (const [rows, vals] of [[[0, 1], [[0.5, 0.5, 0.5], [1, 1, 1]]], [[1], [[1, 1, 1]]]] as const) {
      tf.tidy(() => {
        const g = { indices: Int32Array.from(rows), values: tf.tensor2d(vals as unknown as number[][]) };
        ol.applyGradients(new Map([[lazy, g]]));
        od.applyGradients(new Map([[dense, g]])); // not lazy: made dense
      });
    }
    const l = lazy.arraySync();
    const d = dense.arraySync();
    // row 0 after step 1 (Adam's first step moves by lr·sign(g)): 1 - 0.1; lazy leaves it there at step 2
    expect(l[0]![0]).toBeCloseTo(0.9, 6);
    expect(d[0]![0]).toBeLessThan(0.9 - 0.05); // dense step 2 keeps moving row 0 (m ≠ 0, g = 0)
    expect(l[2]).toEqual(init[2]);
    expect(l[3]).toEqual(init[3]);
    expect(d[2]).toEqual(init[2]); // never touched: m = v = 0 -> no move
    const st = ol.getState();
    const m = st.find((x) => x.name === `${lazy.name}/m`)!.tensor.arraySync() as number[][];
    expect(m[0]![0]).toBeCloseTo(0.05, 7); // 0.1·0.5, not decayed at step 2
    expect(m[2]).toEqual([0, 0, 0]);
    tf.dispose(st.map((x) => x.tensor));
    od.dispose();
    ol.dispose();
    tf.dispose([dense, lazy]);
  });
});

describe("optimizer state and memory", () => {
  it("state round-trips through getState/setState (checkpoint resume gives the same next step)", () => {
    const a = tf.variable(tf.tensor1d([1, -2]), true, vname("a"));
    const oa = createOptimizer({ type: "adam", learningRate: 0.1 });
    tf.tidy(() => oa.applyGradients(new Map([[a, tf.tensor1d(G1)]])));
    const state = oa.getState();
    expect(state.map((s) => s.name)).toEqual(["iterations", `${a.name}/m`, `${a.name}/v`]);
    const saved = a.dataSync().slice();
    tf.tidy(() => oa.applyGradients(new Map([[a, tf.tensor1d(G2)]])));
    const expected = Array.from(a.dataSync());
    // resume: restore the weights and the optimizer state into a fresh optimizer
    a.assign(tf.tensor1d(saved));
    const ob = createOptimizer({ type: "adam", learningRate: 0.1 });
    ob.setState(state);
    expect(ob.iterations).toBe(1);
    tf.tidy(() => ob.applyGradients(new Map([[a, tf.tensor1d(G2)]])));
    Array.from(a.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 7));
    expect(() => createOptimizer({ type: "sgd", momentum: 0.9 }).setState(state)).toThrow(RecblocksError);
    tf.dispose(state.map((s) => s.tensor));
    oa.dispose();
    ob.dispose();
    a.dispose();
  });

  it("tf.memory().numTensors is flat across repeated dense and lazy steps", () => {
    const w = tf.variable(tf.randomNormal([20, 4]), true, vname("mem_w"));
    const e = tf.variable(tf.randomNormal([50, 4]), true, vname("mem_e"));
    for (const type of ["adam", "adamw", "sgd", "adagrad"] as const) {
      const opt = createOptimizer({ type, lazy: true, momentum: type === "sgd" ? 0.5 : 0, weightDecay: 0.01 });
      const step = () =>
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(() => w.square().sum() as tf.Scalar, [w]);
          opt.applyGradients({ ...grads, [e.name]: { indices: tf.tensor1d([1, 7, 7, 3], "int32"), values: tf.ones([4, 4]) } } as never);
          return value;
        }).dispose();
      step(); // creates the slots
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step();
      expect(tf.memory().numTensors, type).toBe(before);
      opt.dispose();
    }
    tf.dispose([w, e]);
  });

  it("minimize computes, applies and disposes the gradients", () => {
    const w = tf.variable(tf.tensor1d([3]), true, vname("min"));
    const opt = createOptimizer({ type: "sgd", learningRate: 0.25 });
    const before = tf.memory().numTensors;
    const loss = opt.minimize(() => w.square().sum() as tf.Scalar, true, [w])!;
    expect(loss.dataSync()[0]).toBe(9);
    loss.dispose();
    expect(w.dataSync()[0]).toBeCloseTo(3 - 0.25 * 6, 7);
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    w.dispose();
  });

  it("bad configs are reported with JSON Pointers", () => {
    try {
      createOptimizer({ type: "adam", beta1: 1.2, learningRate: -1, foo: 1 } as never);
      expect.unreachable();
    } catch (err) {
      expect((err as RecblocksError).issues.map((i) => i.path).sort()).toEqual(["/beta1", "/foo", "/learningRate"]);
    }
    expect(() => createOptimizer({ type: "adamax" } as never)).toThrow(RecblocksError);
  });
});

describe("optimizer and rebuilt variables", () => {
  it("a new variable under a known name reuses the state when the shape fits, else starts fresh", () => {
    const name = vname("rebuilt");
    let v = tf.variable(tf.tensor1d([1, -2]), true, name);
    const opt = createOptimizer({ type: "adam", learningRate: 0.1 });
    tf.tidy(() => opt.applyGradients({ [name]: tf.tensor1d(G1) }));
    v.dispose();
    v = tf.variable(tf.tensor1d([0.9, -1.9]), true, name); // same values as after step 1
    tf.tidy(() => opt.applyGradients({ [name]: tf.tensor1d(G2) }));
    Array.from(v.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([0.8196959064, -1.8488973940][i]!, 6));
    v.dispose();
    v = tf.variable(tf.zeros([3]), true, name);
    tf.tidy(() => opt.applyGradients({ [name]: tf.ones([3]) }));
    const st = opt.getState();
    expect(st.find((s) => s.name === `${name}/m`)!.tensor.shape).toEqual([3]);
    tf.dispose(st.map((s) => s.tensor));
    opt.dispose();
    v.dispose();
  });
});

describe("gradsWithSparseRows", () => {
  it("gives the table's gradient as IndexedSlices equal to the dense gradient, without leaks", async () => {
    const { gradsWithSparseRows } = await import("../../src/train/optimizers.js");
    const { disposeGradients } = await import("../../src/train/clipping.js");
    const E = tf.variable(tf.tensor2d([[1, 0, 2], [0.5, 1, -1], [2, 2, 2], [-1, 0, 1], [0, 0, 3], [1, 1, 1]]), true, vname("E"));
    const W = tf.variable(tf.tensor1d([0.5, -1, 2]), true, vname("W"));
    const ids = tf.tensor1d([1, 3, 3, 5], "int32");
    const loss = (rows: tf.Tensor) => rows.mul(W).sum(1).square().sum() as tf.Scalar;
    const ref = tf.variableGrads(() => loss(tf.gather(E, ids)), [E, W]);
    const before = tf.memory().numTensors;
    const { value, grads } = gradsWithSparseRows(([rows]) => loss(rows!), [{ variable: E, indices: ids }], [W]);
    expect(value.dataSync()[0]).toBeCloseTo(ref.value.dataSync()[0]!, 5);
    const sl = grads.get(E) as { indices: tf.Tensor1D; values: tf.Tensor };
    expect(sl.values.shape).toEqual([4, 3]);
    const dense = tf.tidy(() => tf.scatterND(sl.indices.expandDims(1), sl.values, [6, 3]));
    const a = dense.arraySync() as number[][];
    const b = ref.grads[E.name]!.arraySync() as number[][];
    a.forEach((row, i) => row.forEach((x, j) => expect(x).toBeCloseTo(b[i]![j]!, 5)));
    Array.from((grads.get(W) as tf.Tensor).dataSync()).forEach((x, i) => expect(x).toBeCloseTo(ref.grads[W.name]!.dataSync()[i]!, 4));
    dense.dispose();
    value.dispose();
    disposeGradients(grads, { keepIndices: true });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([E, W, ids, ref.value, ...Object.values(ref.grads)]);
  });
});
