/**
 * Model directories for the server reliability tests (serve-fuzz, serve-soak) and bench/soak.ts:
 * a tiny next-item model trained on built-in synthetic sessions (a few seconds), a second one that is
 * a copy with other weights and another recipe name (as a retrained model would be, at no training
 * cost), and an item metadata file for attribute rules.
 */
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { trainRecipe } from "../../src/run/train.js";

export interface ServeModels {
  dirA: string;
  dirB: string;
  itemData: string;
  /** Raw item ids of the catalogue ("1".."items"). */
  items: string[];
  k: number;
}

export const servedRecipe = (name: string, o: { sessions?: number; items?: number; dModel?: number; seed?: number } = {}) => `version: 1
name: ${name}
features: builtin:synthetic
data:
  train: builtin:synthetic?sessions=${o.sessions ?? 200}&items=${o.items ?? 50}&seed=5
  sessions:
    maxSequenceLength: 8
  split:
    type: random
    validFraction: 0.1
    testFraction: 0.1
model:
  inputs:
    type: tabular-sequence-features
    excludeFeatures: [user_id, category, price, timestamp]
    embeddingDims: {item_id: ${o.dModel ?? 16}}
    embeddingInitStd: 0.05
    masking: {type: causal}
  body:
    - type: transformer
      architecture: gpt2
      dModel: ${o.dModel ?? 16}
      numHeads: 2
      numLayers: 1
      maxSequenceLength: 8
      dropout: 0.1
      initializerRange: 0.05
  head:
    type: next-item-prediction
    weightTying: true
train:
  epochs: 1
  batchSize: 32
  optimizer: {type: adam, learningRate: 0.01}
  seed: ${o.seed ?? 42}
evaluate:
  protocol: last-item
  metrics: [ndcg, recall]
  ks: [5]
`;

/** Trains model A into `tmp`, derives model B from it, writes items.csv. */
export async function makeServeModels(tmp: string, o: { sessions?: number; items?: number; dModel?: number; backend?: "auto" | "tensorflow" | "cpu" | "wasm" } = {}): Promise<ServeModels> {
  const nItems = o.items ?? 50;
  writeFileSync(join(tmp, "soak-a.yaml"), servedRecipe("soak-a", o));
  const dirA = (await trainRecipe(join(tmp, "soak-a.yaml"), { out: join(tmp, "soak-a"), stream: null, ...(o.backend ? { backend: o.backend } : {}) })).modelDir;
  const dirB = join(tmp, "soak-b", "model");
  cpSync(dirA, dirB, { recursive: true });
  const w = readFileSync(join(dirB, "weights.bin"));
  const f = new Float32Array(w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength));
  for (let i = 0; i < f.length; i++) f[i] = f[i]! * (1 + 0.5 * Math.sin(i));
  writeFileSync(join(dirB, "weights.bin"), new Uint8Array(f.buffer));
  const rj = JSON.parse(readFileSync(join(dirB, "recipe.json"), "utf8")) as { name: string };
  writeFileSync(join(dirB, "recipe.json"), JSON.stringify({ ...rj, name: "soak-b" }));
  const items = Array.from({ length: nItems }, (_, i) => String(i + 1));
  const itemData = join(tmp, "items.csv");
  writeFileSync(itemData, "item_id,category,price\n" + items.map((id) => `${id},${Number(id) % 3},${id}`).join("\n") + "\n");
  return { dirA, dirB, itemData, items, k: 5 };
}
