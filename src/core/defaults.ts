import { existsSync, readFileSync } from "node:fs";
import { schemaPath } from "../paths.js";

interface JsonSchemaNode {
  type?: string | string[];
  default?: unknown;
  properties?: Record<string, JsonSchemaNode>;
}

const cache = new Map<string, JsonSchemaNode | null>();

/** The JSON Schema of a block type (schemas/blocks/<type>.schema.json), or undefined when there is none. */
export function blockSchema(type: string): JsonSchemaNode | undefined {
  if (!cache.has(type)) {
    const file = schemaPath("blocks", `${type.replace(/\//g, "__")}.schema.json`);
    cache.set(type, existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as JsonSchemaNode) : null);
  }
  return cache.get(type) ?? undefined;
}

/**
 * Fills in a config's defaults from its block schema (the single source of defaults), recursively
 * into nested objects that have `properties`. Returns a new object; the input is not changed.
 */
export function withSchemaDefaults<C extends { type: string }>(config: C): C {
  const schema = blockSchema(config.type);
  if (!schema) return structuredClone(config);
  return fill(schema, structuredClone(config)) as C;
}

function fill(node: JsonSchemaNode, value: unknown): unknown {
  if (!node.properties || value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const obj = value as Record<string, unknown>;
  for (const [k, sub] of Object.entries(node.properties)) {
    if (obj[k] === undefined && sub.default !== undefined) obj[k] = structuredClone(sub.default);
    if (obj[k] !== undefined) obj[k] = fill(sub, obj[k]);
  }
  return obj;
}

export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
