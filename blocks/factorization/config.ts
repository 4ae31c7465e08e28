/**
 * The als model config (schemas/models/als.schema.json is the source of truth: the defaults and
 * the checks below are read from it).
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { schemaPath } from "../../src/paths.js";
import { RecblocksError, type Issue } from "../../src/errors/issue.js";

/** Fully defaulted config of an `als` model (mirrors schemas/models/als.schema.json). */
export interface AlsConfig {
  type: "als";
  name: string;
  feedback: "implicit" | "explicit";
  factors: number;
  regularization: number;
  regularizationScaling: "fixed" | "interactions";
  alpha: number;
  confidence: "one-plus-alpha" | "alpha";
  values: "binary" | "value";
  iterations: number;
  solver: "cg" | "cholesky";
  cgSteps: number;
  initialization: "uniform" | "normal";
  initScale: number;
  seed: number;
  computeLoss: boolean;
  threads: number;
}

interface JsonSchemaObject {
  properties: Record<string, { default?: unknown }>;
}

let schemaCache: JsonSchemaObject | undefined;
let validator: ReturnType<Ajv["compile"]> | undefined;

/** The parsed schemas/models/als.schema.json. */
export function alsSchema(): JsonSchemaObject {
  schemaCache ??= JSON.parse(readFileSync(schemaPath("models", "als.schema.json"), "utf8")) as JsonSchemaObject;
  return schemaCache;
}

/** The defaults of every property, from the schema. */
export function alsDefaults(): AlsConfig {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(alsSchema().properties)) if (p.default !== undefined) out[k] = p.default;
  return out as unknown as AlsConfig;
}

function issueFromAjv(e: ErrorObject, pointer: string): Issue {
  const path = pointer + e.instancePath;
  switch (e.keyword) {
    case "additionalProperties": {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(alsSchema().properties);
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase())
        ?? known.find((k) => k.toLowerCase().startsWith(key.toLowerCase().slice(0, 4)));
      return {
        code: "unknown_key", path: `${path}/${key}`, message: `Unknown key "${key}" in an als model config.`,
        received: key, expected: known, hint: near ? `Did you mean "${near}"?` : `Known keys: ${known.join(", ")}.`,
      };
    }
    case "enum":
      return { code: "invalid_enum", path, message: `Expected one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}.`,
        expected: (e.params as { allowedValues: unknown[] }).allowedValues };
    case "const":
      return { code: "invalid_value", path, message: `Expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}.` };
    case "type":
      return { code: "invalid_type", path, message: `Expected ${(e.params as { type: string }).type}.`, expected: (e.params as { type: string }).type };
    case "minimum": case "maximum": case "exclusiveMinimum": case "exclusiveMaximum":
      return { code: "out_of_range", path, message: `Expected a number ${(e.params as { comparison: string }).comparison} ${(e.params as { limit: number }).limit}.` };
    default:
      return { code: "invalid_value", path, message: `Invalid value (${e.keyword}).` };
  }
}

/**
 * Checks a (partial) als config against the schema and fills its defaults. Throws a RecblocksError
 * whose issues point into the recipe at `pointer` (e.g. "/model").
 */
export function resolveAlsConfig(partial: unknown, pointer = "/model", subject = "als model config"): AlsConfig {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(alsSchema());
  if (partial === null || typeof partial !== "object" || Array.isArray(partial)) {
    throw new RecblocksError(subject, [{ code: "invalid_type", path: pointer, message: "Expected an object with type: als." }]);
  }
  const cfg = { ...alsDefaults(), ...(partial as Record<string, unknown>) };
  if (!validator(cfg)) {
    const issues = (validator.errors ?? []).map((e) => {
      const i = issueFromAjv(e, pointer);
      const key = e.instancePath.split("/")[1];
      if (key !== undefined && e.keyword !== "additionalProperties") i.received = (cfg as Record<string, unknown>)[key];
      return i;
    });
    throw new RecblocksError(subject, issues);
  }
  return Object.freeze(cfg) as AlsConfig;
}
