/**
 * Resource limits: an estimate of the memory a model needs to train, made from its (unbuilt) blocks'
 * configs and the feature schema before any weight is allocated, and a check against the machine's
 * memory (`os.totalmem()`, the cgroup limit when lower, or RECBLOCKS_MEMORY_LIMIT). A model that
 * cannot fit is refused with `model_too_large`, located at the key that makes it big.
 *
 * What is counted: embedding tables (rows = vocabulary size incl. padding/OOV, × dim), transformer /
 * recurrent / MLP / attention layers from their sizes, the output layer when it is not tied, each
 * parameter × (weight + optimizer slots + gradient + a host copy while saving), and the logits of one
 * training batch (batch × positions × catalogue, × 3 for softmax and its gradient). Unknown block
 * types count as 0, so the estimate is a lower bound.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { RecblocksError } from "../errors/issue.js";
import { BlockContext, type FeatureSchemaLike } from "../core/index.js";
import { mulberry32 } from "../masking/index.js";
import type { Model } from "../model/index.js";

export interface MemoryPart {
  /** JSON Pointer of the recipe key that sizes this part. */
  path: string;
  what: string;
  parameters: number;
  /** Bytes this part needs in training (parameters × factor × 4, or activations). */
  bytes: number;
}

export interface MemoryEstimate {
  parameters: number;
  /** Float32 copies held per parameter while training (weight, optimizer slots, gradient, host copy). */
  copiesPerParameter: number;
  bytes: number;
  parts: MemoryPart[];
}

interface PlanLike {
  name: string;
  kind: string;
  cardinality?: number;
  dim: number;
}

type Cfg = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

export function formatBytes(b: number): string {
  const u = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b >= 100 || i === 0 ? b.toFixed(0) : b.toFixed(1)} ${u[i]}`;
}

/** Optimizer slots per parameter. */
function slots(opt: Cfg | undefined): number {
  const type = (opt?.type as string | undefined) ?? "adam";
  if (type === "adam" || type === "adamw") return 2;
  if (type === "adagrad") return 1;
  return (num(opt?.momentum) ?? 0) > 0 ? 1 : 0;
}

/**
 * Estimates the training memory of a model created by `Model.fromConfig` (not built yet).
 * `train`: the recipe's train section (optimizer, batchSize, earlyStopping); `maxSequenceLength`: of the data.
 */
export function estimateTrainingMemory(model: Model, schema: FeatureSchemaLike, train: Cfg = {}, maxSequenceLength = 20): MemoryEstimate {
  const copies = 1 + slots(train.optimizer as Cfg | undefined) + 1 + 1 + (train.earlyStopping ? 1 : 0);
  const parts: MemoryPart[] = [];
  const add = (path: string, what: string, parameters: number) => {
    if (parameters > 0) parts.push({ path, what, parameters, bytes: parameters * copies * 4 });
  };
  // inputs: the embedding tables, from the block's own feature plan
  const inputs = model.inputs as unknown as { config?: Cfg; planFeatures?: (ctx: BlockContext) => PlanLike[] };
  const icfg = inputs.config ?? {};
  let d = 0;
  let plan: PlanLike[] = [];
  try {
    plan = inputs.planFeatures?.(new BlockContext({ schema, path: "/model/inputs", rng: mulberry32(0) })) ?? [];
  } catch {
    plan = []; // the build reports a bad plan with its own located issue
  }
  const dims = (icfg.embeddingDims ?? {}) as Record<string, number>;
  for (const f of plan) {
    if (f.kind === "categorical" && f.cardinality) {
      const path = f.name in dims ? `/model/inputs/embeddingDims/${f.name}` : icfg.inferEmbeddingSizes ? "/model/inputs/inferEmbeddingSizesMultiplier" : "/model/inputs/embeddingDimDefault";
      const rows = f.cardinality;
      // the table's rows come from the data (vocabulary size); a huge dim is the recipe's
      add(rows > f.dim * 1000 ? "/data/train" : path, `embedding table of "${f.name}" (${rows.toLocaleString("en-US")} rows × ${f.dim.toLocaleString("en-US")})`, rows * f.dim);
    }
  }
  const agg = icfg.aggregation === "element-wise-sum" ? Math.max(0, ...plan.map((f) => f.dim)) : plan.reduce((s, f) => s + f.dim, 0);
  d = num(icfg.dOutput) ?? agg;
  if (num(icfg.dOutput)) add("/model/inputs/dOutput", "input projection", agg * d);
  // body blocks
  model.blocks.forEach((b, i) => {
    d = bodyBlock((b as unknown as { config?: Cfg }).config ?? {}, `/model/body/${i}`, d, maxSequenceLength, add);
  });
  // head
  const task = (model.hasNextItem ? model.task : {}) as unknown as { config?: Cfg }; // per-session heads have no output layer over the items
  const cols = ((schema as unknown as { columns?: { name: string; tags?: string[]; cardinality?: number }[] }).columns ?? []);
  const itemCol = cols.find((c) => c.tags?.includes("item-id"));
  const numItems = plan.find((f) => f.name === itemCol?.name)?.cardinality ?? num(itemCol?.cardinality) ?? 0;
  if (task.config && !task.config.weightTying && numItems > 0) add(numItems > d * 1000 ? "/data/train" : "/model/head", `output layer (${numItems.toLocaleString("en-US")} items × ${d.toLocaleString("en-US")})`, numItems * (d + 1));
  const parameters = parts.reduce((s, p) => s + p.parameters, 0);
  // logits of one batch over the whole catalogue (forward, softmax, gradient)
  const B = num(train.batchSize) ?? 128;
  if (numItems > 0) {
    // one prediction per row for pooled models / prefix examples, one per position otherwise
    let pooled = train.examples === "prefixes";
    try {
      pooled ||= train.examples !== "sequences" && model.pooled;
    } catch {
      // not known before build: a session-encoding body (stamp-attention) pools
      const last = model.blocks.at(-1) as unknown as { config?: Cfg } | undefined;
      pooled ||= train.examples !== "sequences" && String(last?.config?.type ?? "").startsWith("stamp");
    }
    const L = pooled ? 1 : maxSequenceLength;
    parts.push({ path: "/train/batchSize", what: `logits of a batch (${B} × ${L} positions × ${numItems.toLocaleString("en-US")} items, × 3)`, parameters: 0, bytes: B * L * numItems * 4 * 3 });
  }
  return { parameters, copiesPerParameter: copies, bytes: parts.reduce((s, p) => s + p.bytes, 0), parts };
}

/** Sizes of one body block (recursing into `sequential`); returns its output width. */
function bodyBlock(c: Cfg, path: string, dIn: number, L: number, add: (path: string, what: string, n: number) => void): number {
  const type = String(c.type ?? "");
  const layers = num(c.numLayers) ?? 1;
  if (type === "sequential" && Array.isArray(c.blocks)) {
    let d = dIn;
    (c.blocks as Cfg[]).forEach((b, i) => (d = bodyBlock(b, `${path}/blocks/${i}`, d, L, add)));
    return d;
  }
  if (type === "transformer") {
    const d = num(c.dModel) ?? dIn;
    const ff = num(c.feedForwardSize) ?? 4 * d;
    const key = num(c.dModel) !== undefined ? `${path}/dModel` : path;
    add(key, `transformer (${layers} layers, dModel ${d.toLocaleString("en-US")}, feed-forward ${ff.toLocaleString("en-US")})`, layers * (4 * d * d + 2 * d * ff + 9 * d) + (num(c.maxSequenceLength) ?? L) * d + (dIn !== d ? dIn * d : 0));
    return d;
  }
  if (type === "gru" || type === "lstm") {
    const h = num(c.units) ?? dIn;
    const gates = type === "gru" ? 3 : 4;
    add(`${path}/units`, `${type} (${layers} layers × ${h.toLocaleString("en-US")} units)`, gates * ((dIn + h) * h + h) + (layers - 1) * gates * (2 * h * h + h));
    return h;
  }
  if (type === "mlp" && Array.isArray(c.units)) {
    let d = dIn;
    let n = 0;
    for (const u of c.units as number[]) {
      n += d * u + u;
      d = u;
    }
    add(`${path}/units`, `mlp (${(c.units as number[]).join(" → ")})`, n);
    return d;
  }
  const d = num(c.dModel) ?? num(c.units) ?? dIn;
  if (num(c.dModel) !== undefined || type.includes("attention")) add(num(c.dModel) !== undefined ? `${path}/dModel` : path, `${type} (d ${d.toLocaleString("en-US")})`, 4 * d * Math.max(d, dIn));
  return d;
}

/** The memory training may use: RECBLOCKS_MEMORY_LIMIT (bytes, or e.g. "8GB"), else the lower of os.totalmem() and the cgroup limit. */
export function memoryLimit(): { bytes: number; source: string } {
  const env = process.env.RECBLOCKS_MEMORY_LIMIT;
  if (env) {
    const m = /^\s*([\d.]+)\s*([KMGT]?)B?\s*$/i.exec(env);
    if (m) {
      const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G" | "T"];
      return { bytes: Number(m[1]) * mult, source: "RECBLOCKS_MEMORY_LIMIT" };
    }
  }
  let bytes = totalmem();
  let source = "this machine's memory";
  for (const f of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const v = Number(readFileSync(f, "utf8").trim());
      if (Number.isFinite(v) && v > 0 && v < bytes) {
        bytes = v;
        source = "the container's memory limit";
      }
    } catch {
      /* no cgroup limit */
    }
  }
  return { bytes, source };
}

/** Throws `model_too_large` when the estimate exceeds the limit, located at the biggest part. */
export function checkTrainingMemory(est: MemoryEstimate, limit = memoryLimit()): void {
  if (est.bytes <= limit.bytes) return;
  const biggest = [...est.parts].sort((a, b) => b.bytes - a.bytes)[0]!;
  const top = [...est.parts].sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((p) => `${p.what}: ${formatBytes(p.bytes)}`).join("; ");
  throw new RecblocksError("model", [
    {
      code: "model_too_large",
      path: biggest.path,
      message: `Training this model needs about ${formatBytes(est.bytes)} (${est.parameters.toLocaleString("en-US")} parameters × ${est.copiesPerParameter} float32 copies for weights, optimizer state, gradients and saving, plus activations), more than ${limit.source} (${formatBytes(limit.bytes)}). Largest: ${top}.`,
      received: formatBytes(est.bytes),
      expected: `at most ${formatBytes(limit.bytes)}`,
      hint: "Lower the embedding / model dimensions or the batch size, cap the vocabulary (data.sessions filters), or use weightTying; RECBLOCKS_MEMORY_LIMIT overrides the limit.",
    },
  ]);
}
