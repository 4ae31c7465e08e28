/**
 * `recblocks summary`: the block graph of a model as a table (block, type, output shape, parameters)
 * with the total, like Keras's model.summary(). From a recipe (built, not trained: the data is read
 * for the vocabulary sizes unless `schemaOnly`), a model directory, or a run directory (its model/).
 * Next-item models (blocks) and ALS (user and item factors).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { RecblocksError } from "../errors/issue.js";
import type { Block, PortSpec, TensorSpec } from "../core/index.js";
import type { Model, ModelConfig } from "../model/model.js";

export interface SummaryWeight {
  name: string;
  shape: number[];
  size: number;
  trainable: boolean;
}

export interface SummaryRow {
  /** Recipe path of the block ("/model/body/0"), children below their parent. */
  path: string;
  name: string;
  type: string;
  outputShape: string;
  /** Parameters of the block, its children included. */
  params: number;
  /** 0 for top-level blocks, 1+ for children (not added to the total again). */
  depth: number;
  /** The block's own weights (its children's are listed under their rows). */
  weights: SummaryWeight[];
}

export interface ModelSummary {
  name: string;
  kind: "next-item" | "als";
  /** What was summarized: "recipe <file>", "model directory <dir>". */
  source: string;
  rows: SummaryRow[];
  total: number;
  trainable: number;
  nonTrainable: number;
  notes: string[];
}

/** "(None, None, 64)" as Keras writes shapes; named outputs as "name: (...)". */
export function formatShape(spec: PortSpec | undefined): string {
  if (!spec) return "?";
  const one = (s: TensorSpec) => `(${s.shape.map((d) => (d === null ? "None" : String(d))).join(", ")}${s.shape.length === 1 ? "," : ""})`;
  if (Array.isArray((spec as TensorSpec).shape)) return one(spec as TensorSpec);
  return Object.entries(spec as Record<string, TensorSpec>).map(([k, s]) => `${k}: ${one(s)}`).join("; ");
}

function blockRows(b: Block, path: string, prefix: string | undefined, depth: number): SummaryRow[] {
  const named = b.namedVariables(prefix);
  const weights: SummaryWeight[] = [...named].map(([name, v]) => ({ name, shape: [...v.shape], size: v.size, trainable: v.trainable }));
  const row: SummaryRow = { path, name: b.name, type: b.config.type, outputShape: formatShape(b.outputSpec), params: weights.reduce((a, w) => a + w.size, 0), depth, weights };
  const out = [row];
  const base = prefix ? `${prefix}/${b.name}` : b.name;
  // children of a block with a `blocks` list (sequential) sit at <path>/blocks/<i> in the recipe
  const inList = Array.isArray((b.config as { blocks?: unknown }).blocks);
  for (const [key, child] of b.children()) out.push(...blockRows(child, inList ? `${path}/blocks/${key}` : `${path}/${key}`, `${base}/${key}`, depth + 1));
  // a row lists its own weights; its children's appear under their rows (its count includes them)
  const inChildren = new Set(out.slice(1).flatMap((r) => r.weights.map((w) => w.name)));
  row.weights = weights.filter((w) => !inChildren.has(w.name));
  return out;
}

/** The summary of a built next-item model. Total = the sum of the sizes of `namedVariables()`. */
export function summarizeModel(m: Model, o: { name: string; source: string }): ModelSummary {
  const rows: SummaryRow[] = [
    ...blockRows(m.inputs, "/model/inputs", undefined, 0),
    ...m.blocks.flatMap((b, i) => blockRows(b, `/model/body/${i}`, `body/${i}`, 0)),
    ...blockRows(m.task, "/model/head", "head", 0),
  ];
  let total = 0;
  let trainable = 0;
  for (const v of m.namedVariables().values()) {
    total += v.size;
    if (v.trainable) trainable += v.size;
  }
  const notes: string[] = [];
  const head = m.task.config as { weightTying?: boolean };
  if (head.weightTying) notes.push("The head scores items with the input item-embedding table (weight tying): those parameters are counted once, under inputs.");
  return { name: o.name, kind: "next-item", source: o.source, rows, total, trainable, nonTrainable: total - trainable, notes };
}

/** The summary of an ALS model: user and item factor tables (users x f + items x f). */
export function summarizeAls(o: { name: string; source: string; blockName?: string; users: number; items: number; factors: number }): ModelSummary {
  const f = o.factors;
  const n = o.blockName ?? "als";
  const rows: SummaryRow[] = [
    { path: "/model", name: n, type: "als", outputShape: `(None, ${o.items})`, params: (o.users + o.items) * f, depth: 0,
      weights: [
        { name: `${n}/user_factors`, shape: [o.users, f], size: o.users * f, trainable: true },
        { name: `${n}/item_factors`, shape: [o.items, f], size: o.items * f, trainable: true },
      ] },
  ];
  const total = (o.users + o.items) * f;
  return { name: o.name, kind: "als", source: o.source, rows, total, trainable: total, nonTrainable: 0,
    notes: ["ALS learns one factor vector per user and per item; the training interactions saved with the model (for excluding seen items) are not parameters."] };
}

/** The summary as a text table. */
export function formatSummary(s: ModelSummary, opts: { weights?: boolean } = {}): string {
  const fmt = (n: number) => n.toLocaleString("en-US");
  const head = ["Block (path)", "Type", "Output shape", "Param #"];
  const body: string[][] = [];
  for (const r of s.rows) {
    body.push([`${"  ".repeat(r.depth)}${r.name} (${r.path})`, r.type, r.outputShape, fmt(r.params)]);
    if (opts.weights) for (const w of r.weights) body.push([`${"  ".repeat(r.depth + 1)}${w.name}${w.trainable ? "" : " (non-trainable)"}`, "", `(${w.shape.join(", ")}${w.shape.length === 1 ? "," : ""})`, fmt(w.size)]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("   ").trimEnd();
  const total = widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1);
  const out = [
    `Model: "${s.name}" (${s.kind}) from ${s.source}`,
    "=".repeat(total),
    line(head),
    "=".repeat(total),
    ...body.map(line),
    "=".repeat(total),
    `Total params: ${fmt(s.total)}`,
    `Trainable params: ${fmt(s.trainable)}`,
    `Non-trainable params: ${fmt(s.nonTrainable)}`,
    ...s.notes.map((n) => `Note: ${n}`),
  ];
  return out.join("\n") + "\n";
}

export interface SummaryOptions {
  /** Build from the feature schema's cardinalities without reading the recipe's data. */
  schemaOnly?: boolean;
  backend?: string;
  /** Log lines (data loading); default none. */
  log?: (msg: string) => void;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Summarizes a recipe file, a model directory or a run directory (its model/ folder). */
export async function summarize(target: string, opts: SummaryOptions = {}): Promise<ModelSummary> {
  if (!existsSync(target)) {
    throw new RecblocksError(target, [{ code: "file_not_found", path: "", message: `${target} does not exist.`, hint: "Give a recipe file, a model directory or a run directory.", source: { file: target } }]);
  }
  const { initEngine } = await import("../engine/index.js");
  if (statSync(target).isDirectory()) {
    const dir = existsSync(join(target, "model.json")) ? target : existsSync(join(target, "model", "model.json")) ? join(target, "model") : undefined;
    if (!dir) {
      throw new RecblocksError(target, [{ code: "invalid_model_dir", path: "", message: `${target} holds no model.json (nor model/model.json): it is not a model or run directory.`, source: { file: target }, hint: "Give the recipe file, or the folder `recblocks train` wrote." }], { kind: "ModelError" });
    }
    const { modelDirFormat, loadModelDir } = await import("../io/model-dir.js");
    const format = modelDirFormat(dir);
    const recipe = readJson(join(dir, "recipe.json"));
    const name = typeof recipe?.name === "string" ? recipe.name : dir;
    if (format === "recblocks-als") {
      const topo = (readJson(join(dir, "model.json"))?.modelTopology ?? {}) as { config?: { factors?: number; name?: string }; users?: number; items?: number };
      return summarizeAls({ name, source: `model directory ${dir}`, blockName: topo.config?.name, users: topo.users ?? 0, items: topo.items ?? 0, factors: topo.config?.factors ?? 0 });
    }
    await initEngine({ backend: (opts.backend ?? "cpu") as never, quiet: true });
    const { registerBuiltinBlocks } = await import("../run/train.js");
    await registerBuiltinBlocks();
    const c = loadModelDir(dir);
    try {
      return summarizeModel(c.model, { name, source: `model directory ${dir}` });
    } finally {
      c.model.dispose();
    }
  }
  const { loadRecipe } = await import("../recipe/load.js");
  const { recipe, featureSchema } = loadRecipe(target);
  const model = recipe.model as unknown as Record<string, unknown>;
  if (model.type === "als") {
    const { loadRecipeInteractions } = await import("../../blocks/factorization/recipe.js");
    const { resolveAlsConfig } = await import("../../blocks/factorization/config.js");
    const cfg = resolveAlsConfig(model, "/model", target);
    const data = loadRecipeInteractions(recipe as never, { recipeFile: target });
    return summarizeAls({ name: recipe.name, source: `recipe ${target}`, blockName: cfg.name, users: data.users.length, items: data.items.length, factors: cfg.factors });
  }
  await initEngine({ backend: (opts.backend ?? "cpu") as never, quiet: true });
  const { registerBuiltinBlocks } = await import("../run/train.js");
  await registerBuiltinBlocks();
  const { Model } = await import("../model/model.js");
  let schema: unknown = featureSchema.toJSON();
  const notes: string[] = [];
  if (opts.schemaOnly) notes.push("Built from the feature schema's cardinalities (--schema-only); a trained model's tables follow the vocabularies of the training data.");
  else {
    const { loadRecipeData } = await import("../data/load.js");
    const data = await loadRecipeData(recipe.data as never, schema as never, { baseDir: dirname(resolve(target)), onLog: opts.log });
    schema = data.featureSchema;
  }
  const m = Model.fromConfig(recipe.model as unknown as ModelConfig, schema as never);
  try {
    m.build({ seed: (recipe.train as { seed?: number } | undefined)?.seed ?? 42 });
    const s = summarizeModel(m, { name: recipe.name, source: `recipe ${target}` });
    s.notes.push(...notes);
    return s;
  } finally {
    m.dispose();
  }
}
