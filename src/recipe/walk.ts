import { escapeSegment } from "../errors/pointer.js";
import type { SchemaSet } from "./schema-set.js";

type Json = Record<string, unknown>;

/** Called for every (schema, value) pair met while walking a value along its schema. */
export type Visitor = (schema: Json, value: unknown, pointer: string, uri: string) => void;

const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Walk a value along its schema, following $ref, allOf, properties, additionalProperties, items and the
 * oneOf branch meant for the value (by the `type` discriminator, else by JSON type and shared keys).
 * With `fillDefaults`, a missing property that has a `default` gets a copy of it first (the value
 * must be a private copy: it is changed in place).
 */
export function walkSchema(set: SchemaSet, schema: Json, uri: string, value: unknown, visit: Visitor | undefined, opts: { fillDefaults?: boolean } = {}, pointer = "", depth = 0): void {
  if (depth > 200) return;
  if (typeof schema.$ref === "string") {
    const r = set.resolveRef(schema.$ref, uri);
    if (r) walkSchema(set, r.schema, r.uri, value, visit, opts, pointer, depth + 1);
    return;
  }
  visit?.(schema, value, pointer, uri);
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf as Json[]) walkSchema(set, s, uri, value, visit, opts, pointer, depth + 1);
  for (const key of ["oneOf", "anyOf"] as const) {
    const alts = schema[key];
    if (Array.isArray(alts)) {
      const chosen = pickBranch(set, alts as Json[], uri, value);
      if (chosen) walkSchema(set, chosen, uri, value, visit, opts, pointer, depth + 1);
    }
  }
  if (isObject(value)) {
    const props = (schema.properties as Record<string, Json> | undefined) ?? {};
    if (opts.fillDefaults) {
      for (const [k, s] of Object.entries(props)) {
        if (Object.prototype.hasOwnProperty.call(value, k) || !s) continue;
        let d: Json | undefined = s;
        let u = uri;
        for (let hops = 0; d && !("default" in d) && typeof d.$ref === "string" && hops < 10; hops++) {
          const r = set.resolveRef(d.$ref, u);
          d = r?.schema;
          if (r) u = r.uri;
        }
        if (d && "default" in d) {
          Object.defineProperty(value, k, { value: structuredClone(d.default), enumerable: true, writable: true, configurable: true });
        }
      }
    }
    for (const k of Object.keys(value)) {
      const sub = Object.prototype.hasOwnProperty.call(props, k) ? props[k] : isObject(schema.additionalProperties) ? (schema.additionalProperties as Json) : undefined;
      if (sub) walkSchema(set, sub, uri, value[k], visit, opts, `${pointer}/${escapeSegment(k)}`, depth + 1);
    }
  } else if (Array.isArray(value) && isObject(schema.items)) {
    value.forEach((v, i) => walkSchema(set, schema.items as Json, uri, v, visit, opts, `${pointer}/${i}`, depth + 1));
  }
}

function target(set: SchemaSet, s: Json, uri: string): { schema: Json; uri: string } {
  if (typeof s.$ref === "string") return set.resolveRef(s.$ref, uri) ?? { schema: s, uri };
  return { schema: s, uri };
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** The branch of a oneOf/anyOf meant for this value. */
export function pickBranch(set: SchemaSet, alts: Json[], uri: string, value: unknown): Json | undefined {
  let best: Json | undefined;
  let bestScore = -Infinity;
  for (const a of alts) {
    const t = target(set, a, uri).schema;
    const typeConst = (t.properties as Record<string, Json> | undefined)?.type?.const;
    if (isObject(value) && typeConst !== undefined) {
      if (value.type === typeConst) return a;
      continue;
    }
    const types = typeof t.type === "string" ? [t.type] : Array.isArray(t.type) ? (t.type as string[]) : undefined;
    const jt = jsonType(value);
    let score = !types || types.includes(jt) || (jt === "integer" && types.includes("number")) ? 0 : -1000;
    if (isObject(value) && isObject(t.properties)) for (const k of Object.keys(value)) if (Object.prototype.hasOwnProperty.call(t.properties, k)) score++;
    if (score > bestScore) {
      bestScore = score;
      best = a;
    }
  }
  return best;
}
