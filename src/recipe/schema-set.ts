import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { SchemaContext } from "../errors/ajv.js";
import { schemaPath } from "../paths.js";
import { buildIndexSchema, checkMemberSchema, type IndexKind } from "./block-index.js";

/** Base URI under which every schema is registered with Ajv (never fetched). */
export const SCHEMA_BASE = "https://recblocks.local/schemas/";
export const RECIPE_URI = `${SCHEMA_BASE}recipe.schema.json`;
export const FEATURE_SCHEMA_URI = `${SCHEMA_BASE}feature-schema.schema.json`;
export const BLOCK_INDEX_URI = `${SCHEMA_BASE}blocks/index.schema.json`;
export const MODEL_INDEX_URI = `${SCHEMA_BASE}models/index.schema.json`;

/** Where the schemas come from; tests point blocksDir/modelsDir at fixture folders. */
export interface SchemaSetOptions {
  /** Folder holding recipe.schema.json and feature-schema.schema.json (default: the package's schemas/). */
  schemasDir?: string;
  /** Folder of block schemas (default: <schemasDir>/blocks). */
  blocksDir?: string;
  /** Folder of prebuilt model schemas (default: <schemasDir>/models). */
  modelsDir?: string;
}

type Json = Record<string, unknown>;

/** List `<id>.schema.json` files of a folder (not index.schema.json), sorted by id. */
export function listMemberSchemas(dir: string): { id: string; file: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".schema.json") && f !== "index.schema.json")
    .sort()
    .map((f) => ({ id: f.slice(0, -".schema.json".length), file: join(dir, f) }));
}

/**
 * Every JSON Schema of recblocks loaded into one Ajv instance (allErrors, strict, discriminator),
 * with the block and model index schemas built from the folders.
 */
export class SchemaSet {
  readonly ajv: Ajv;
  readonly blockIds: string[];
  readonly modelIds: string[];
  /** Raw schema objects by absolute URI (as given to Ajv). */
  readonly byUri = new Map<string, Json>();
  readonly validateRecipe: ValidateFunction;
  readonly validateFeatureSchema: ValidateFunction;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly altBase = new WeakMap<object, string>();
  private readonly inline = new WeakMap<object, ValidateFunction>();

  constructor(opts: SchemaSetOptions = {}) {
    const dir = opts.schemasDir ?? schemaPath();
    const blocks = listMemberSchemas(opts.blocksDir ?? join(dir, "blocks"));
    const models = listMemberSchemas(opts.modelsDir ?? join(dir, "models"));
    this.ajv = new Ajv({ allErrors: true, strict: true, discriminator: true, verbose: true, allowUnionTypes: true });
    this.ajv.addFormat("feature-name", true);
    this.ajv.addKeyword({ keyword: "x-requires", schemaType: "array" });
    this.ajv.addKeyword({ keyword: "x-feature-tags", schemaType: "array" });
    const add = (uri: string, schema: Json) => {
      this.byUri.set(uri, schema);
      this.ajv.addSchema(schema, uri);
    };
    add(RECIPE_URI, readJson(join(dir, "recipe.schema.json")));
    add(FEATURE_SCHEMA_URI, readJson(join(dir, "feature-schema.schema.json")));
    const members = (kind: IndexKind, list: { id: string; file: string }[]) => {
      const ids: string[] = [];
      for (const { id, file } of list) {
        const schema = readJson(file);
        const problems = checkMemberSchema(id, schema, file);
        if (problems.length) throw new Error(`recblocks: bad ${kind} schema: ${problems.map((p) => `${p.file}: ${p.message}`).join("; ")}`);
        add(`${SCHEMA_BASE}${kind}/${id}.schema.json`, schema);
        ids.push(id);
      }
      add(kind === "blocks" ? BLOCK_INDEX_URI : MODEL_INDEX_URI, buildIndexSchema(kind, ids));
      return ids;
    };
    this.blockIds = members("blocks", blocks);
    this.modelIds = members("models", models);
    for (const [uri, schema] of this.byUri) this.indexAlternatives(schema, uri);
    this.validateRecipe = this.ajv.getSchema(RECIPE_URI)!;
    this.validateFeatureSchema = this.ajv.getSchema(FEATURE_SCHEMA_URI)!;
  }

  private indexAlternatives(node: unknown, uri: string): void {
    if (!node || typeof node !== "object") return;
    if (Array.isArray(node)) {
      for (const x of node) this.indexAlternatives(x, uri);
      return;
    }
    for (const [k, v] of Object.entries(node as Json)) {
      if ((k === "oneOf" || k === "anyOf") && Array.isArray(v)) this.altBase.set(v, uri);
      if (k !== "const" && k !== "enum" && k !== "default" && k !== "examples") this.indexAlternatives(v, uri);
    }
  }

  /** What src/errors/ajv.ts needs to re-validate a oneOf branch and to choose it. */
  context(): SchemaContext {
    return {
      blockIds: this.blockIds,
      modelIds: this.modelIds,
      branchTarget: (branch, branches) => {
        if (typeof branch.$ref !== "string") return branch;
        return this.resolveRef(branch.$ref, this.altBase.get(branches) ?? RECIPE_URI)?.schema;
      },
      validateBranch: (branch, branches, data): ErrorObject[] => {
        let v: ValidateFunction;
        if (typeof branch.$ref === "string") v = this.validatorFor(new URL(branch.$ref, this.altBase.get(branches) ?? RECIPE_URI).href);
        else {
          v = this.inline.get(branch) ?? this.ajv.compile(branch);
          this.inline.set(branch, v);
        }
        return v(data) ? [] : [...(v.errors ?? [])];
      },
    };
  }

  /** A validator for an absolute schema reference (URI with optional #fragment), compiled once. */
  validatorFor(ref: string): ValidateFunction {
    let v = this.compiled.get(ref);
    if (!v) {
      v = this.ajv.getSchema(ref) ?? this.ajv.compile({ $ref: ref });
      this.compiled.set(ref, v);
    }
    return v;
  }

  /** Resolve a $ref found in the schema at `baseUri`: the target schema object and its own base URI. */
  resolveRef(ref: string, baseUri: string): { schema: Json; uri: string } | undefined {
    const abs = new URL(ref, baseUri);
    const fragment = decodeURIComponent(abs.hash.replace(/^#/, ""));
    abs.hash = "";
    const root = this.byUri.get(abs.href);
    if (!root) return undefined;
    let node: unknown = root;
    for (const seg of fragment.split("/").filter((s) => s !== "")) {
      node = (node as Json | undefined)?.[seg.replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    return node && typeof node === "object" ? { schema: node as Json, uri: abs.href } : undefined;
  }
}

function readJson(file: string): Json {
  return JSON.parse(readFileSync(file, "utf8")) as Json;
}

let shared: SchemaSet | undefined;

/** The package's schemas (cached). */
export function defaultSchemaSet(): SchemaSet {
  shared ??= new SchemaSet();
  return shared;
}
