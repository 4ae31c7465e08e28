import type { Locate } from "../errors/ajv.js";
import type { Issue, SourceLocation } from "../errors/issue.js";
import type { Recipe } from "../generated/recipe.js";
import { canonicalMaskingType, maskingMismatch } from "../masking/architectures.js";

type Json = Record<string, unknown>;

const isMap = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

/** Task types that predict next items (the masking chooses their labels). */
const NEXT_ITEM_TASKS: ReadonlySet<string> = new Set(["next-item-prediction"]);

/** Whether a head (a task block or a multi-task head) predicts next items. */
export function headPredictsNextItems(head: unknown): boolean {
  if (!isMap(head)) return false;
  if (typeof head.type === "string" && NEXT_ITEM_TASKS.has(head.type)) return true;
  return head.type === "multi-task" && Array.isArray(head.tasks) && head.tasks.some((t) => isMap(t) && NEXT_ITEM_TASKS.has(String(t.type ?? "next-item-prediction")));
}

const where = (loc: SourceLocation): string => (loc.line === undefined ? loc.file : `line ${loc.line}`);

/**
 * The checks of a schema-valid, defaulted recipe that need no data and no model: what the blocks refuse
 * at build time, reported at the key to change (see docs/errors.md):
 * - the transformer architecture cannot train with the input block's masking (`incompatible_masking`;
 *   the rule is src/masking/architectures.ts, the one the transformer block enforces),
 * - a masking that corrupts the inputs (masked, permutation, rtd) but no next-item task reads its
 *   labels (`masking_without_next_item`),
 * - the input block's dOutput differs from the size the first transformer takes (`incompatible_input`).
 * Prebuilt models (type: als) have none of these.
 */
export function checkSemantics(recipe: Recipe, locate: Locate): Issue[] {
  const model = recipe.model as unknown;
  if (!isMap(model) || !isMap(model.inputs)) return [];
  const issues: Issue[] = [];
  const inputs = model.inputs;
  const body = Array.isArray(model.body) ? model.body : [];
  const masking = isMap(inputs.masking) ? inputs.masking : undefined;
  const maskingType = typeof masking?.type === "string" ? canonicalMaskingType(masking.type) : undefined;
  const maskingKey = "/model/inputs/masking/type";

  body.forEach((b, i) => {
    if (!isMap(b) || b.type !== "transformer" || typeof b.architecture !== "string") return;
    const m = maskingMismatch(b.architecture, maskingType);
    if (!m) return;
    const arch = `/model/body/${i}/architecture`;
    issues.push({
      code: "incompatible_masking",
      path: maskingKey,
      message: `The transformer at /model/body/${i} (${where(locate(arch))}): ${m.message}`,
      received: m.received,
      expected: m.expected,
      hint: m.hint,
      source: locate(maskingKey, { key: true }),
    });
  });

  if (maskingType !== undefined && maskingType !== "causal" && !headPredictsNextItems(model.head)) {
    const head = isMap(model.head) ? String(model.head.type) : "?";
    issues.push({
      code: "masking_without_next_item",
      path: maskingKey,
      message: `${maskingType} masking hides or replaces items to make next-item labels, but the head (${head}, ${where(locate("/model/head/type"))}) has no next-item-prediction task to read them: training would only see corrupted sessions.`,
      received: maskingType,
      expected: ["causal"],
      hint: "Remove masking (or use masking: {type: causal}) for per-session tasks, or add a next-item-prediction task to the head (type: multi-task).",
      source: locate(maskingKey, { key: true }),
    });
  }

  const first = body[0];
  const dOutput = inputs.dOutput;
  if (typeof dOutput === "number" && isMap(first) && first.type === "transformer" && typeof first.dModel === "number") {
    const factorised = (first.architecture === "albert" || first.architecture === "electra") && typeof first.embeddingSize === "number";
    const key = factorised ? "embeddingSize" : "dModel";
    const size = factorised ? (first.embeddingSize as number) : first.dModel;
    if (size !== dOutput) {
      const ptr = `/model/body/0/${key}`;
      issues.push({
        code: "incompatible_input",
        path: ptr,
        message: `The transformer takes inputs of size ${key} ${size}, but the input block projects to dOutput ${dOutput} (/model/inputs/dOutput, ${where(locate("/model/inputs/dOutput"))}).`,
        received: dOutput,
        expected: size,
        hint: `Set dOutput: ${size} on the inputs block (Transformers4Rec's d_output = d_model), or ${key}: ${dOutput} here.`,
        source: locate(ptr, { key: true }),
      });
    }
  }
  return issues;
}
