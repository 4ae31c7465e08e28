import * as tf from "@tensorflow/tfjs";
import { RecblocksError, type Issue } from "../errors/issue.js";
import { hasNativeAdam, NativeAdamSlots } from "../engine/ops.js";

/**
 * A gradient for some rows of a variable (TF's IndexedSlices): `values[i]` is the gradient of row
 * `indices[i]` (first axis). Indices may repeat; repeated rows are summed.
 */
export interface IndexedSlices {
  indices: tf.Tensor1D | Int32Array;
  values: tf.Tensor;
}

export type Gradient = tf.Tensor | IndexedSlices;
/** Gradients keyed by variable name (as `tf.variableGrads` returns) or by the variable itself. */
export type GradientMap = Record<string, Gradient> | Map<tf.Variable, Gradient>;

export function isIndexedSlices(g: unknown): g is IndexedSlices {
  return typeof g === "object" && g !== null && !(g instanceof tf.Tensor) && "indices" in g && "values" in g;
}

export type OptimizerType = "adam" | "adamw" | "sgd" | "adagrad";

export interface OptimizerConfig {
  type: OptimizerType;
  /** Base learning rate (a schedule, if any, replaces it step by step). Default 0.001. */
  learningRate?: number;
  /** Adam/AdamW. Defaults 0.9, 0.999. */
  beta1?: number;
  beta2?: number;
  /** Adam/AdamW default 1e-8; Adagrad default 1e-10 (PyTorch's defaults). */
  epsilon?: number;
  /** AdamW: decoupled decay (p -= lr·wd·p); others: L2 term wd·p added to the gradient. Default 0 (AdamW: 0.01). */
  weightDecay?: number;
  /** Variables whose name contains one of these strings get no weight decay (e.g. ["bias", "norm"]). Default []. */
  weightDecayExclude?: string[];
  /** SGD momentum (PyTorch form: buf = μ·buf + g). Default 0. */
  momentum?: number;
  /** SGD Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** Adagrad initial accumulator value. Default 0. */
  initialAccumulatorValue?: number;
  /**
   * Lazy (sparse) updates for variables given an IndexedSlices gradient, as TF-Addons' LazyAdam:
   * only the rows in the batch are updated (parameters and optimizer state). Default false: such
   * gradients are made dense and every row is updated, as PyTorch's Adam does.
   */
  lazy?: boolean;
}

export type ResolvedOptimizerConfig = Required<OptimizerConfig>;
/** Learning rate at a step (0-based number of optimizer steps already taken). */
export type LearningRateFn = (step: number) => number;
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const TYPES: OptimizerType[] = ["adam", "adamw", "sgd", "adagrad"];
const KEYS = ["learningRate", "beta1", "beta2", "epsilon", "weightDecay", "weightDecayExclude", "momentum", "nesterov", "initialAccumulatorValue", "lazy"];

/** Fills in defaults and validates; every problem is reported at once (JSON Pointers under `path`). */
export function resolveOptimizerConfig(cfg: OptimizerConfig, path = ""): ResolvedOptimizerConfig {
  const issues: Issue[] = [];
  const raw = cfg as unknown as Record<string, unknown>;
  if (!TYPES.includes(raw.type as OptimizerType)) {
    issues.push({
      code: "unknown_optimizer",
      path: `${path}/type`,
      message: `Unknown optimizer ${JSON.stringify(raw.type)}. Expected one of ${TYPES.join(", ")}.`,
      received: raw.type,
      expected: TYPES,
    });
    throw new RecblocksError("optimizer config", issues);
  }
  for (const k of Object.keys(raw)) {
    if (k !== "type" && !KEYS.includes(k)) {
      issues.push({ code: "unknown_key", path: `${path}/${k}`, message: `Unknown optimizer option "${k}".`, received: k, expected: KEYS });
    }
  }
  const type = cfg.type;
  const r: ResolvedOptimizerConfig = {
    type,
    learningRate: cfg.learningRate ?? 0.001,
    beta1: cfg.beta1 ?? 0.9,
    beta2: cfg.beta2 ?? 0.999,
    epsilon: cfg.epsilon ?? (type === "adagrad" ? 1e-10 : 1e-8),
    weightDecay: cfg.weightDecay ?? (type === "adamw" ? 0.01 : 0),
    weightDecayExclude: cfg.weightDecayExclude ?? [],
    momentum: cfg.momentum ?? 0,
    nesterov: cfg.nesterov ?? false,
    initialAccumulatorValue: cfg.initialAccumulatorValue ?? 0,
    lazy: cfg.lazy ?? false,
  };
  const num = (key: keyof ResolvedOptimizerConfig, ok: (v: number) => boolean, expected: string): void => {
    const v = r[key] as unknown;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      issues.push({ code: "invalid_value", path: `${path}/${key}`, message: `Expected ${expected}.`, expected, received: v });
    }
  };
  num("learningRate", (v) => v >= 0, "a number >= 0");
  num("beta1", (v) => v >= 0 && v < 1, "a number in [0, 1)");
  num("beta2", (v) => v >= 0 && v < 1, "a number in [0, 1)");
  num("epsilon", (v) => v >= 0, "a number >= 0");
  num("weightDecay", (v) => v >= 0, "a number >= 0");
  num("momentum", (v) => v >= 0, "a number >= 0");
  num("initialAccumulatorValue", (v) => v >= 0, "a number >= 0");
  for (const key of ["nesterov", "lazy"] as const) {
    if (typeof r[key] !== "boolean") issues.push({ code: "invalid_value", path: `${path}/${key}`, message: "Expected a boolean.", expected: "boolean", received: r[key] });
  }
  if (!Array.isArray(r.weightDecayExclude) || r.weightDecayExclude.some((s) => typeof s !== "string")) {
    issues.push({ code: "invalid_value", path: `${path}/weightDecayExclude`, message: "Expected a list of strings.", received: r.weightDecayExclude });
  }
  if (r.nesterov && r.momentum <= 0) {
    issues.push({ code: "invalid_value", path: `${path}/nesterov`, message: "Nesterov momentum needs momentum > 0.", received: r.momentum });
  }
  if (issues.length) throw new RecblocksError("optimizer config", issues);
  return r;
}

/** Creates an optimizer. `opts.schedule` gives the learning rate per step (see schedules.ts). */
export function createOptimizer(cfg: OptimizerConfig, opts: { schedule?: LearningRateFn } = {}): Optimizer {
  return new Optimizer(resolveOptimizerConfig(cfg), opts.schedule);
}

interface SlotEntry {
  variable: tf.Variable;
  slots: tf.Variable[];
  /** TensorFlow resource variables for the fused Adam kernel (native backend). */
  native?: NativeAdamSlots;
}

/**
 * Adam, AdamW, SGD (momentum, Nesterov) and Adagrad over tf.Variables, in PyTorch's formulation:
 *   Adam:    m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)
 *   AdamW:   p −= lr·wd·p, then the Adam step
 *   SGD:     buf = μ·buf + g;  p −= lr·(Nesterov ? g + μ·buf : buf)   (plain p −= lr·g when μ = 0)
 *   Adagrad: acc += g²;  p −= lr · g / (√acc + ε)
 * t counts optimizer steps (one per `applyGradients`, shared by all variables, as in TF). State
 * (slots) is created on a variable's first gradient and can be exported/imported for checkpoints.
 * Lazy updates apply the same rule to the touched rows only (TF-Addons' LazyAdam, which puts ε in the
 * "ε-hat" place, lr·√(1−β2^t)/(1−β1^t)·m/(√v+ε); here ε enters as in the dense rule, so lazy and dense
 * agree exactly when every row is touched).
 */
export class Optimizer {
  /** Run Adam as TensorFlow's fused ResourceApplyAdam on the native backend (tests switch it off to compare). */
  static nativeAdam = true;
  readonly config: Readonly<ResolvedOptimizerConfig>;
  private readonly entries = new Map<string, SlotEntry>();
  private step = 0;
  private schedule?: LearningRateFn;
  private disposed = false;

  constructor(config: ResolvedOptimizerConfig, schedule?: LearningRateFn) {
    this.config = Object.freeze({ ...config, weightDecayExclude: [...config.weightDecayExclude] });
    this.schedule = schedule;
  }

  /** Number of optimizer steps taken. */
  get iterations(): number {
    return this.step;
  }

  /** Replaces the learning-rate schedule (undefined = constant `config.learningRate`). */
  setSchedule(schedule?: LearningRateFn): void {
    this.schedule = schedule;
  }

  /** The learning rate used by the step after `step` steps (default: the next step). */
  learningRate(step = this.step): number {
    return this.schedule ? this.schedule(step) : this.config.learningRate;
  }

  /** Slot names of this optimizer's state per variable. */
  slotNames(): string[] {
    switch (this.config.type) {
      case "adam":
      case "adamw":
        return ["m", "v"];
      case "sgd":
        return this.config.momentum > 0 ? ["momentum"] : [];
      case "adagrad":
        return ["accumulator"];
    }
  }

  /**
   * One optimizer step. Gradients are not disposed (the caller owns them). A variable absent from
   * `grads` is left alone (its state too). IndexedSlices gradients get lazy row updates when
   * `config.lazy`, else are made dense.
   */
  applyGradients(grads: GradientMap): void {
    if (this.disposed) throw new Error("Optimizer: used after dispose()");
    const items: [tf.Variable, Gradient][] = [];
    if (grads instanceof Map) {
      for (const [v, g] of grads) items.push([v, g]);
    } else {
      const registered = tf.engine().registeredVariables;
      for (const [name, g] of Object.entries(grads)) {
        const v = registered[name];
        if (!v) throw new Error(`Optimizer: no variable named "${name}" is registered (gradients must be keyed by variable name)`);
        items.push([v, g]);
      }
    }
    const lr = this.learningRate(this.step);
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`Optimizer: the learning rate at step ${this.step} is ${lr}; expected a finite number >= 0`);
    this.step++;
    const t = this.step;
    for (const [v, g] of items) {
      if (g == null) continue;
      const entry = this.entry(v);
      if (isIndexedSlices(g)) {
        if (this.config.lazy) this.sparseUpdate(entry, g, lr, t);
        else {
          const dense = tf.tidy(() => densify(g, v));
          try {
            this.denseUpdate(entry, dense, lr, t);
          } finally {
            dense.dispose();
          }
        }
      } else {
        if (!sameShape(g.shape, v.shape)) {
          throw new Error(`Optimizer: gradient of "${v.name}" has shape [${g.shape}], the variable [${v.shape}]`);
        }
        this.denseUpdate(entry, g, lr, t);
      }
    }
  }

  /**
   * Computes the gradients of `f` (a scalar loss) with respect to `varList` (default: all trainable
   * variables), applies them, disposes them, and returns the loss (caller disposes) if `returnCost`.
   */
  minimize(f: () => tf.Scalar, returnCost = true, varList?: tf.Variable[]): tf.Scalar | null {
    const { value, grads } = tf.variableGrads(f, varList);
    try {
      this.applyGradients(grads);
    } finally {
      tf.dispose(Object.values(grads));
    }
    if (returnCost) return value;
    value.dispose();
    return null;
  }

  /**
   * The optimizer's state as named tensors (new tensors: the caller disposes them):
   * "iterations" (int32 scalar) and "<variable name>/<slot>" for every slot.
   */
  getState(): NamedTensor[] {
    const out: NamedTensor[] = [{ name: "iterations", tensor: tf.scalar(this.step, "int32") }];
    const names = this.slotNames();
    for (const [varName, e] of this.entries) {
      e.slots.forEach((s, i) => out.push({ name: `${varName}/${names[i]}`, tensor: tf.clone(s) }));
    }
    return out;
  }

  /**
   * The live slot variables as "<variable name>/<slot>" (no copies: for writing a checkpoint without
   * doubling the optimizer's memory; do not dispose or modify them). The step count is `iterations`.
   */
  slotTensors(): NamedTensor[] {
    const out: NamedTensor[] = [];
    const names = this.slotNames();
    for (const [varName, e] of this.entries) e.slots.forEach((s, i) => out.push({ name: `${varName}/${names[i]}`, tensor: s }));
    return out;
  }

  /** Restores state saved by `getState()` (variables are matched by name; shapes must agree). Does not dispose the inputs. */
  setState(state: NamedTensor[]): void {
    const issues: Issue[] = [];
    const names = this.slotNames();
    const registered = tf.engine().registeredVariables;
    const pending: [SlotEntry, number, tf.Tensor][] = [];
    let iterations: number | undefined;
    for (const { name, tensor } of state) {
      if (name === "iterations") {
        iterations = (tensor.dataSync() as ArrayLike<number>)[0]!;
        continue;
      }
      const cut = name.lastIndexOf("/");
      const varName = cut < 0 ? "" : name.slice(0, cut);
      const slot = cut < 0 ? name : name.slice(cut + 1);
      const si = names.indexOf(slot);
      const v = registered[varName];
      if (si < 0 || !v) {
        issues.push({
          code: "optimizer_state_mismatch",
          path: `/${name}`,
          message: si < 0
            ? `Optimizer state "${name}" has slot "${slot}", which a ${this.config.type} optimizer does not have (its slots: ${names.join(", ") || "none"}).`
            : `Optimizer state "${name}" is for variable "${varName}", which does not exist in this model.`,
        });
        continue;
      }
      if (!sameShape(tensor.shape, v.shape)) {
        issues.push({ code: "optimizer_state_mismatch", path: `/${name}`, message: `Optimizer state "${name}" has shape [${tensor.shape}], the variable [${v.shape}].` });
        continue;
      }
      pending.push([this.entry(v), si, tensor]);
    }
    if (issues.length) throw new RecblocksError("optimizer state", issues);
    for (const [e, si, tensor] of pending) e.slots[si]!.assign(tensor.toFloat());
    if (iterations !== undefined) this.step = iterations;
  }

  /** Disposes the optimizer's state. */
  dispose(): void {
    for (const e of this.entries.values()) {
      tf.dispose(e.slots);
      e.native?.destroy();
    }
    this.entries.clear();
    this.disposed = true;
  }

  // ------------------------------------------------------------------------------------- internals

  private entry(v: tf.Variable): SlotEntry {
    let e = this.entries.get(v.name);
    if (e && e.variable !== v) {
      // a new variable under a known name (model rebuilt, weights reloaded): keep the state if it fits
      if (sameShape(e.variable.shape, v.shape)) e.variable = v;
      else {
        tf.dispose(e.slots);
        e.native?.destroy();
        this.entries.delete(v.name);
        e = undefined;
      }
    }
    if (!e) {
      const init = this.config.type === "adagrad" ? this.config.initialAccumulatorValue : 0;
      const slots = this.slotNames().map(() => tf.tidy(() => tf.variable(tf.fill(v.shape, init, "float32"), false)));
      e = { variable: v, slots };
      this.entries.set(v.name, e);
    }
    return e;
  }

  private decays(v: tf.Variable): number {
    const wd = this.config.weightDecay;
    if (wd === 0) return 0;
    return this.config.weightDecayExclude.some((s) => v.name.includes(s)) ? 0 : wd;
  }

  /** The update rule on (rows of) a parameter: returns the new parameter and new slot values. */
  private rule(p: tf.Tensor, g: tf.Tensor, slots: tf.Tensor[], lr: number, t: number, wd: number): [tf.Tensor, tf.Tensor[]] {
    const c = this.config;
    switch (c.type) {
      case "adam":
      case "adamw": {
        if (c.type === "adam" && wd > 0) g = g.add(p.mul(wd));
        if (c.type === "adamw" && wd > 0) p = p.mul(1 - lr * wd);
        const m = slots[0]!.mul(c.beta1).add(g.mul(1 - c.beta1));
        const v = slots[1]!.mul(c.beta2).add(g.square().mul(1 - c.beta2));
        const stepSize = lr / (1 - Math.pow(c.beta1, t));
        const invBc2 = 1 / Math.sqrt(1 - Math.pow(c.beta2, t));
        const upd = m.div(v.sqrt().mul(invBc2).add(c.epsilon)).mul(stepSize);
        return [p.sub(upd), [m, v]];
      }
      case "sgd": {
        if (wd > 0) g = g.add(p.mul(wd));
        if (c.momentum > 0) {
          const buf = slots[0]!.mul(c.momentum).add(g);
          const d = c.nesterov ? g.add(buf.mul(c.momentum)) : buf;
          return [p.sub(d.mul(lr)), [buf]];
        }
        return [p.sub(g.mul(lr)), []];
      }
      case "adagrad": {
        if (wd > 0) g = g.add(p.mul(wd));
        const acc = slots[0]!.add(g.square());
        return [p.sub(g.mul(lr).div(acc.sqrt().add(c.epsilon))), [acc]];
      }
    }
  }

  private denseUpdate(e: SlotEntry, g: tf.Tensor, lr: number, t: number): void {
    const wd = this.decays(e.variable);
    const c = this.config;
    if (Optimizer.nativeAdam && (c.type === "adam" || c.type === "adamw") && wd === 0 && g.dtype === "float32" && hasNativeAdam()) {
      // one fused TensorFlow kernel per variable instead of ~13 element-wise ops (same maths; the slots stay
      // tf.Variables, so getState / setState / checkpoints are unchanged)
      e.native ??= new NativeAdamSlots(e.variable.shape);
      e.native.step(e.variable, e.slots[0]!, e.slots[1]!, g, lr, c.beta1, c.beta2, c.epsilon, t);
      return;
    }
    tf.tidy(() => {
      const [p, slots] = this.rule(e.variable, g.toFloat(), e.slots, lr, t, wd);
      e.variable.assign(p);
      slots.forEach((s, i) => e.slots[i]!.assign(s));
    });
  }

  private sparseUpdate(e: SlotEntry, g: IndexedSlices, lr: number, t: number): void {
    const v = e.variable;
    const wd = this.decays(v);
    tf.tidy(() => {
      const idx = g.indices instanceof tf.Tensor ? g.indices.toInt() : tf.tensor1d(g.indices, "int32");
      const n = idx.shape[0];
      if (g.values.shape[0] !== n || !sameShape(g.values.shape.slice(1), v.shape.slice(1))) {
        throw new Error(`Optimizer: IndexedSlices for "${v.name}" have values [${g.values.shape}] for ${n} indices; expected [${n}, ${v.shape.slice(1)}]`);
      }
      if (n === 0) return;
      // deduplicate rows: unique ids and the summed gradient of each (scatterND adds repeated indices)
      const { values: rows, indices: seg } = tf.unique(idx);
      const u = rows.shape[0];
      const gSum = tf.scatterND(seg.expandDims(1), g.values.toFloat(), [u, ...v.shape.slice(1)]);
      const at = rows.expandDims(1);
      const p0 = tf.gather(v, rows);
      const s0 = e.slots.map((s) => tf.gather(s, rows));
      const [p1, s1] = this.rule(p0, gSum, s0, lr, t, wd);
      v.assign(scatterRows(v, at, p1, p0));
      s1.forEach((s, i) => e.slots[i]!.assign(scatterRows(e.slots[i]!, at, s, s0[i]!)));
    });
  }
}

/** `base` with rows `at` replaced by `rowsNew` (tensorScatterUpdate where the backend has it). */
function scatterRows(base: tf.Tensor, at: tf.Tensor, rowsNew: tf.Tensor, rowsOld: tf.Tensor): tf.Tensor {
  if (tf.getKernel("TensorScatterUpdate", tf.getBackend()) !== undefined) {
    return tf.tensorScatterUpdate(base, at, rowsNew);
  }
  return base.add(tf.scatterND(at, rowsNew.sub(rowsOld), base.shape));
}

function densify(g: IndexedSlices, v: tf.Variable): tf.Tensor {
  const idx = g.indices instanceof tf.Tensor ? g.indices.toInt() : tf.tensor1d(g.indices, "int32");
  return tf.scatterND(idx.expandDims(1), g.values.toFloat(), v.shape);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Gradients with IndexedSlices for embedding tables, so that a `lazy` optimizer touches only the rows a
 * batch used. `f` gets, for each entry of `sparse`, the gathered rows `gather(table, indices)` (shape
 * [N, ...]) and must use them in place of gathering from the table itself. Returns the loss (caller
 * disposes) and a Map variable → gradient: dense tensors for `dense`, `{indices, values}` for each table
 * (its `indices` are the caller's tensor; dispose only `values`, e.g. `disposeGradients(g, {keepIndices: true})`).
 * A table whose full gradient is dense anyway (weight tying: logits = h·Eᵀ) should be in `dense`.
 */
export function gradsWithSparseRows(
  f: (rows: tf.Tensor[]) => tf.Scalar,
  sparse: { variable: tf.Variable; indices: tf.Tensor1D }[],
  dense: tf.Variable[] = [],
): { value: tf.Scalar; grads: Map<tf.Variable, Gradient> } {
  const rows = sparse.map((s) => tf.tidy(() => tf.variable(tf.gather(s.variable, s.indices.toInt()), true)));
  try {
    const { value, grads } = tf.variableGrads(() => f(rows), [...dense, ...rows]);
    const out = new Map<tf.Variable, Gradient>();
    for (const v of dense) if (grads[v.name]) out.set(v, grads[v.name]!);
    sparse.forEach((s, i) => {
      const g = grads[rows[i]!.name];
      if (g) out.set(s.variable, { indices: s.indices, values: g });
    });
    return { value, grads: out };
  } finally {
    tf.dispose(rows);
  }
}
