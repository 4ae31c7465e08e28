import type { Locate } from "../errors/ajv.js";
import { RecblocksError, type Issue } from "../errors/issue.js";
import { BlockContext, isTensorSpec, listBlockTypes, type FeatureSchemaLike } from "../core/index.js";
import { mulberry32 } from "../masking/rng.js";
import type { FeatureColumn } from "../generated/feature-schema.js";
import type { Recipe } from "../generated/recipe.js";
import { Model, type ModelConfig } from "../model/model.js";
import type { FeatureSchema } from "../schema/feature-schema.js";

/** Cardinality given to categorical columns whose number of ids only the data knows (e.g. builtin:sessions). */
const PLACEHOLDER_CARDINALITY = 3;
/** Larger cardinalities become CAP + their rank: tables stay small, their order (shared tables) is kept. */
const CAP = 1024;

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The feature schema the check builds with: columns without a cardinality get a placeholder, large ones
 * shrink (keeping their order), unless the recipe reads pre-trained tables (whose rows must match).
 * `guessed` lists the columns whose cardinality is a placeholder.
 */
function standInSchema(schema: FeatureSchema, keepSizes: boolean): { columns: FeatureColumn[]; guessed: Set<string> } {
  const guessed = new Set<string>();
  const cards = schema.columns.map((c) => (typeof c.cardinality === "number" ? c.cardinality : typeof c.max === "number" ? Math.floor(c.max) + 1 : undefined));
  const large = [...new Set(cards.filter((n): n is number => n !== undefined && n > CAP))].sort((a, b) => a - b);
  const columns = schema.columns.map((c, i) => {
    const col = structuredClone({ ...c, tags: [...(c.tags ?? [])] }) as FeatureColumn;
    const n = cards[i];
    const categorical = (col.tags ?? []).some((t) => t === "categorical" || t === "item-id") || col.dtype === "string";
    if (n === undefined) {
      if (categorical) {
        col.cardinality = PLACEHOLDER_CARDINALITY;
        guessed.add(col.name);
      }
    } else if (n > CAP && !keepSizes) {
      col.cardinality = CAP + large.indexOf(n) + 1;
      delete col.max;
    }
    return col;
  });
  return { columns, guessed };
}

/** What `checkModelBuild` is: the located issues of building a valid recipe's model. */
export type ModelBuildCheck = (recipe: Recipe, featureSchema: FeatureSchema, locate: Locate) => Issue[];

/**
 * Builds the model of a valid recipe once, the way `recblocks train` does (Model.fromConfig + build),
 * without data: every check the blocks make at build time (shapes, sizes, masking, options) becomes a
 * located issue. Then each body block's shape check runs again with the sequence length of
 * data.sessions.maxSequenceLength (a recipe leaves it open at build time; a too-short position table
 * would otherwise only fail on the first batch).
 * The block types must be registered (import blocks/index.js); prebuilt models (type: als) are skipped.
 */
export const checkModelBuild: ModelBuildCheck = (recipe, featureSchema, locate) => {
  const model = recipe.model as unknown;
  if (!isMap(model) || !isMap(model.inputs)) return [];
  if (listBlockTypes().length === 0) throw new Error("checkModelBuild: no block types are registered (import blocks/index.js first)");
  const keepSizes = JSON.stringify(model).includes("pretrained");
  const { columns, guessed } = standInSchema(featureSchema, keepSizes);
  const schema: FeatureSchemaLike = { columns } as FeatureSchemaLike;
  const locateIssues = (issues: readonly Issue[]): Issue[] =>
    issues
      // a pre-trained table checked against a cardinality that only the data knows: not decidable here
      .filter((i) => !(i.code === "bad_pretrained_embeddings" && guessed.size > 0))
      .map((i) => (i.source ? i : { ...i, source: locate(i.path, { key: true }) }));
  let m: Model | undefined;
  try {
    try {
      m = Model.fromConfig(model as unknown as ModelConfig, schema);
    } catch (err) {
      // the Model refuses a chain that does not start with an input block or a head that is no task
      if (err instanceof TypeError) return [{ code: "incompatible_config", path: "/model", message: err.message.replace(/^Model: /, ""), source: locate("/model", { key: true }) }];
      throw err;
    }
    m.build({ seed: 1 });
    const L = (recipe.data as { sessions?: { maxSequenceLength?: unknown } } | undefined)?.sessions?.maxSequenceLength;
    if (typeof L === "number") {
      const masking = (model.inputs as { masking?: unknown }).masking;
      const shared = new Map<string, unknown>(masking ? [["masking", masking]] : []);
      m.blocks.forEach((b, i) => {
        const spec = b.inputSpec;
        if (!isTensorSpec(spec) || spec.shape.length !== 3 || spec.shape[1] !== null) return;
        const ctx = new BlockContext({ schema, path: `/model/body/${i}`, rng: mulberry32(1), shared });
        b.computeOutputSpec({ ...spec, shape: [spec.shape[0] ?? null, L, spec.shape[2] ?? null] }, ctx);
      });
    }
    return [];
  } catch (err) {
    if (err instanceof RecblocksError) return locateIssues(err.issues);
    // anything else would be an internal error of `recblocks train` on this recipe: say so, located at the model
    const e = err as Error;
    return [{ code: "model_build_failed", path: "/model", message: `Building the model failed: ${e?.name ?? "Error"}: ${String(e?.message ?? err)}`, hint: "This is a bug of recblocks or of a block; please report it with the recipe.", source: locate("/model", { key: true }) }];
  } finally {
    m?.dispose();
  }
};
