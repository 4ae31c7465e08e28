/**
 * A small next-item recipe on built-in synthetic sessions, and a model directory trained from it
 * (one epoch of a one-layer GPT-2 on 200 sessions of 50 items takes a few seconds), for the tests that
 * need a real trained model: model directories, serving, the browser example, reports, summaries.
 *
 * The defaults are the GPT-2 model these tests share; each option changes one line of the recipe, and
 * `null` leaves a line out (the recipe's own default then applies).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { trainRecipe, type TrainRunResult } from "../../src/run/train.js";

export interface SmallRecipeOptions {
  /** Recipe name (default "tiny-gpt2"). */
  name?: string;
  /** A `description:` line (double-quoted), none by default. */
  description?: string;
  /** builtin:synthetic parameters: sessions (200), items (50), seed (5). */
  sessions?: number;
  items?: number;
  dataSeed?: number;
  /** data.sessions.maxSequenceLength and the transformer's (8). */
  maxSequenceLength?: number;
  /** Random split fractions (0.1 each). */
  validFraction?: number;
  testFraction?: number;
  /** item_id embedding size (16). */
  embeddingDim?: number;
  /** embeddingInitStd of the inputs and initializerRange of the transformer (0.05); null: neither line. */
  initStd?: number | null;
  /** Transformer dropout (0.1). */
  dropout?: number;
  /** The items of model.body, indented by 4 spaces, each line ending in "\n"; default: the GPT-2 transformer (dModel 16, 2 heads, 1 layer). */
  body?: string;
  /** Head weightTying (true), and an `outputBias: true` line when set. */
  weightTying?: boolean;
  outputBias?: boolean;
  epochs?: number;
  batchSize?: number;
  /** Optimizer type ("adam") with learningRate (0.01); null: no optimizer line. */
  optimizer?: string | null;
  learningRate?: number;
  /** Training seed (42); null: no seed line. */
  seed?: number | null;
  /** More lines of the train section, indented by 2 spaces, each ending in "\n". */
  extraTrain?: string;
  /** Evaluation protocol ("last-item"); null: no protocol line. */
  protocol?: string | null;
  metrics?: string[];
  ks?: number[];
}

/** The recipe text (YAML) of a small next-item model. */
export function smallRecipe(o: SmallRecipeOptions = {}): string {
  const L = o.maxSequenceLength ?? 8;
  const init = o.initStd === undefined ? 0.05 : o.initStd;
  const line = (text: string | false) => (text === false ? "" : `${text}\n`);
  const body =
    o.body ??
    `    - type: transformer
      architecture: gpt2
      dModel: 16
      numHeads: 2
      numLayers: 1
      maxSequenceLength: ${L}
      dropout: ${o.dropout ?? 0.1}
${line(init !== null && `      initializerRange: ${init}`)}`;
  const optimizer = o.optimizer === undefined ? "adam" : o.optimizer;
  const seed = o.seed === undefined ? 42 : o.seed;
  const protocol = o.protocol === undefined ? "last-item" : o.protocol;
  return `version: 1
name: ${o.name ?? "tiny-gpt2"}
${line(o.description !== undefined && `description: "${o.description}"`)}features: builtin:synthetic
data:
  train: builtin:synthetic?sessions=${o.sessions ?? 200}&items=${o.items ?? 50}&seed=${o.dataSeed ?? 5}
  sessions:
    maxSequenceLength: ${L}
  split:
    type: random
    validFraction: ${o.validFraction ?? 0.1}
    testFraction: ${o.testFraction ?? 0.1}
model:
  inputs:
    type: tabular-sequence-features
    excludeFeatures: [user_id, category, price, timestamp]
    embeddingDims: {item_id: ${o.embeddingDim ?? 16}}
${line(init !== null && `    embeddingInitStd: ${init}`)}    masking: {type: causal}
  body:
${body}  head:
    type: next-item-prediction
    weightTying: ${o.weightTying ?? true}
${line(o.outputBias === true && "    outputBias: true")}train:
  epochs: ${o.epochs ?? 1}
  batchSize: ${o.batchSize ?? 32}
${line(optimizer !== null && `  optimizer: {type: ${optimizer}, learningRate: ${o.learningRate ?? 0.01}}`)}${line(seed !== null && `  seed: ${seed}`)}${o.extraTrain ?? ""}evaluate:
${line(protocol !== null && `  protocol: ${protocol}`)}  metrics: [${(o.metrics ?? ["ndcg", "recall"]).join(", ")}]
  ks: [${(o.ks ?? [5, 20]).join(", ")}]
`;
}

export interface SmallModelDirOptions extends SmallRecipeOptions {
  /** The recipe's file name in `dir` (default "tiny.yaml"). */
  recipeFile?: string;
  /** The run directory under `dir` (default "run"); the model directory is `<dir>/<out>/model`. */
  out?: string;
}

/**
 * Writes `smallRecipe(o)` to `<dir>/<recipeFile>` and trains it (CPU, no progress output) into
 * `<dir>/<out>`; the trained model directory is the result's `modelDir`.
 */
export async function trainSmallModelDir(dir: string, o: SmallModelDirOptions = {}): Promise<TrainRunResult> {
  const { recipeFile = "tiny.yaml", out = "run", ...recipe } = o;
  writeFileSync(join(dir, recipeFile), smallRecipe(recipe));
  return trainRecipe(join(dir, recipeFile), { out: join(dir, out), stream: null, backend: "cpu" });
}
