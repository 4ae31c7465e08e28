/**
 * The item-feature table of a model directory (`item-features.json`): for every per-step side feature
 * that the model's input block uses (e.g. the `category` and `price` of each click), one value per item
 * id, so that a session given as raw item ids only can be turned into the batch the model was trained on.
 *
 *   categorical feature: the item's most frequent value in the training sessions (a dense id of the
 *                        feature's vocabulary; ties go to the smaller id, i.e. the more frequent value overall)
 *   continuous feature:  the item's mean value in the training sessions (non-finite values skipped)
 *
 * Ids that never occur in the training sessions (padding 0, OOV 1) hold the feature's `default`: the
 * feature vocabulary's OOV id (1), or 0 when it has none, for categorical features; 0 for continuous ones.
 *
 * File (one line of JSON): {"format": "recblocks-item-features", "formatVersion": 1, "itemColumn",
 * "numItems", "features": {name: {"kind", "statistic", "default", "values": [numItems numbers]}}}.
 */
import type { Session } from "../data/batches.js";
import type { Vocabulary } from "../data/vocabulary.js";
import { RecblocksError } from "../errors/issue.js";

export const ITEM_FEATURES_FILE = "item-features.json";
export const ITEM_FEATURES_FORMAT = "recblocks-item-features";
export const ITEM_FEATURES_FORMAT_VERSION = 1;

export type ItemFeatureColumn =
  | { kind: "categorical"; statistic: "most-frequent"; default: number; values: Int32Array }
  | { kind: "continuous"; statistic: "mean"; default: number; values: Float32Array };

export interface ItemFeatureTable {
  itemColumn: string;
  /** Length of every `values` array: the number of item ids of the model (padding and OOV included). */
  numItems: number;
  features: Record<string, ItemFeatureColumn>;
}

/** A per-step side feature of a model's input block. */
export interface SideFeature {
  name: string;
  kind: "categorical" | "continuous";
  /** Multi-hot features (several values per step) cannot be filled from the table. */
  multiHot: boolean;
}

interface PlanLike {
  name: string;
  kind: "categorical" | "continuous";
  sequential?: boolean;
  multiHot?: unknown;
}

/**
 * The per-step side features of a built model's input block (its plan), the item column left out.
 * Input blocks that do not expose a plan (`features`) have none.
 */
export function sideFeaturesOf(model: { inputs: unknown }): SideFeature[] {
  const inputs = model.inputs as { features?: readonly PlanLike[]; itemIdColumn?: string };
  const plan = inputs.features;
  if (!Array.isArray(plan)) return [];
  return plan
    .filter((f) => f.sequential === true && f.name !== inputs.itemIdColumn)
    .map((f) => ({ name: f.name, kind: f.kind, multiHot: f.multiHot !== undefined }));
}

/** The table's default for a feature: the OOV id (or 0) of a categorical feature's vocabulary, 0 for continuous ones. */
export function featureDefault(kind: "categorical" | "continuous", vocab: Vocabulary | undefined): number {
  return kind === "categorical" && vocab?.withOov ? vocab.oovId : 0;
}

/**
 * The table of `features` over the training sessions (see the file comment). `numItems` is the size of the
 * item vocabulary (ids 0..numItems-1); `vocabularies` give the categorical features' defaults.
 */
export function buildItemFeatureTable(
  sessions: readonly Session[],
  features: readonly SideFeature[],
  o: { itemColumn: string; numItems: number; vocabularies?: Record<string, Vocabulary> },
): ItemFeatureTable {
  const N = o.numItems;
  const out: ItemFeatureTable = { itemColumn: o.itemColumn, numItems: N, features: {} };
  for (const f of features) {
    if (f.multiHot) continue;
    const dflt = featureDefault(f.kind, o.vocabularies?.[f.name]);
    if (f.kind === "continuous") {
      const sum = new Float64Array(N);
      const count = new Float64Array(N);
      for (const s of sessions) {
        const v = s.continuous[f.name];
        if (!v) continue;
        for (let t = 0; t < s.items.length; t++) {
          const id = s.items[t]!;
          const x = v[t]!;
          if (id > 0 && id < N && Number.isFinite(x)) {
            sum[id] += x;
            count[id]++;
          }
        }
      }
      const values = new Float32Array(N).fill(dflt);
      for (let i = 0; i < N; i++) if (count[i]! > 0) values[i] = sum[i]! / count[i]!;
      out.features[f.name] = { kind: "continuous", statistic: "mean", default: dflt, values };
    } else {
      // counts per (item, value), in a map per item: the values of one item are few
      const counts: (Map<number, number> | undefined)[] = new Array(N);
      for (const s of sessions) {
        const v = s.categorical[f.name];
        if (!v) continue;
        for (let t = 0; t < s.items.length; t++) {
          const id = s.items[t]!;
          if (id <= 0 || id >= N) continue;
          const m = (counts[id] ??= new Map());
          m.set(v[t]!, (m.get(v[t]!) ?? 0) + 1);
        }
      }
      const values = new Int32Array(N).fill(dflt);
      for (let i = 0; i < N; i++) {
        const m = counts[i];
        if (!m) continue;
        let best = -1;
        let bestCount = 0;
        for (const [value, c] of m) if (c > bestCount || (c === bestCount && value < best)) [best, bestCount] = [value, c];
        values[i] = best;
      }
      out.features[f.name] = { kind: "categorical", statistic: "most-frequent", default: dflt, values };
    }
  }
  return out;
}

/** The JSON document of item-features.json. */
export function itemFeatureTableToJSON(t: ItemFeatureTable): Record<string, unknown> {
  const features: Record<string, unknown> = {};
  for (const [name, c] of Object.entries(t.features)) features[name] = { kind: c.kind, statistic: c.statistic, default: c.default, values: Array.from(c.values) };
  return { format: ITEM_FEATURES_FORMAT, formatVersion: ITEM_FEATURES_FORMAT_VERSION, itemColumn: t.itemColumn, numItems: t.numItems, features };
}

/** Parses item-features.json (already JSON-parsed); a bad document is an `invalid_model_dir` issue located at `file`. */
export function itemFeatureTableFromJSON(doc: unknown, file: string, numItems?: number): ItemFeatureTable {
  const bad = (message: string): RecblocksError =>
    new RecblocksError(file, [{ code: "invalid_model_dir", path: "", message: `${file}: ${message}`, source: { file }, hint: "Train the model again (`recblocks train`) to rewrite the item-feature table." }], { kind: "ModelError" });
  const d = doc as Partial<{ format: unknown; formatVersion: unknown; itemColumn: unknown; numItems: unknown; features: unknown }> | null;
  if (!d || typeof d !== "object" || d.format !== ITEM_FEATURES_FORMAT) throw bad(`not an item-feature table (format must be "${ITEM_FEATURES_FORMAT}").`);
  if (d.formatVersion !== ITEM_FEATURES_FORMAT_VERSION) throw bad(`format version ${String(d.formatVersion)}; this recblocks reads ${ITEM_FEATURES_FORMAT_VERSION}.`);
  const N = d.numItems;
  if (typeof N !== "number" || !Number.isInteger(N) || N < 0) throw bad(`"numItems" must be a non-negative integer.`);
  if (numItems !== undefined && N !== numItems) throw bad(`the table covers ${N} item ids but the model has ${numItems}.`);
  if (!d.features || typeof d.features !== "object" || Array.isArray(d.features)) throw bad(`"features" must be a mapping of feature name to column.`);
  const out: ItemFeatureTable = { itemColumn: typeof d.itemColumn === "string" ? d.itemColumn : "", numItems: N, features: {} };
  for (const [name, c] of Object.entries(d.features as Record<string, unknown>)) {
    const col = c as Partial<{ kind: unknown; default: unknown; values: unknown }> | null;
    if (!col || (col.kind !== "categorical" && col.kind !== "continuous")) throw bad(`feature "${name}" has no kind "categorical" or "continuous".`);
    if (!Array.isArray(col.values) || col.values.length !== N) throw bad(`feature "${name}" must have ${N} values.`);
    if (!col.values.every((x) => typeof x === "number" && Number.isFinite(x))) throw bad(`feature "${name}" holds a value that is not a finite number.`);
    if (col.kind === "categorical" && !col.values.every((x) => Number.isInteger(x) && (x as number) >= 0)) throw bad(`feature "${name}" holds a value that is not a dense id (an integer >= 0).`);
    const dflt = typeof col.default === "number" && Number.isFinite(col.default) ? col.default : 0;
    out.features[name] =
      col.kind === "categorical"
        ? { kind: "categorical", statistic: "most-frequent", default: dflt, values: Int32Array.from(col.values as number[]) }
        : { kind: "continuous", statistic: "mean", default: dflt, values: Float32Array.from(col.values as number[]) };
  }
  return out;
}
