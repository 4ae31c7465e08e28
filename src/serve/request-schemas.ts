/**
 * Validation of HTTP request bodies against schemas/serve/*.schema.json (the single source of truth;
 * the TypeScript types are generated from the same files into src/generated/serve/). Ajv errors are
 * translated into issues by src/errors/ajv.ts, as for recipes: raw Ajv text never reaches a client.
 */
import { readdirSync, readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { translateAjvErrors, type SchemaContext } from "../errors/ajv.js";
import type { Issue } from "../errors/issue.js";
import { schemaPath } from "../paths.js";
import { SCHEMA_BASE } from "../recipe/schema-set.js";

/** The request schemas by file stem: "recommend-request", "recommend-batch-request", "reload-request". */
export type RequestSchemaName = "recommend-request" | "recommend-batch-request" | "reload-request";

type Json = Record<string, unknown>;

/** Most schema issues reported for one request body. */
export const MAX_REQUEST_ISSUES = 100;

/** Issues from the request body, without source locations (a body has no file:line). */
export type RequestIssue = Omit<Issue, "source">;

class RequestSchemas {
  private readonly ajv = new Ajv({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly context: SchemaContext;

  constructor(dir = schemaPath("serve")) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".schema.json")).sort()) {
      this.ajv.addSchema(JSON.parse(readFileSync(`${dir}/${f}`, "utf8")) as Json, `${SCHEMA_BASE}serve/${f}`);
    }
    const inline = new WeakMap<object, ValidateFunction>();
    this.context = {
      blockIds: [],
      modelIds: [],
      branchTarget: (branch) => branch,
      validateBranch: (branch, _branches, data): ErrorObject[] => {
        let v = inline.get(branch);
        if (!v) {
          v = this.ajv.compile(branch);
          inline.set(branch, v);
        }
        return v(data) ? [] : [...(v.errors ?? [])];
      },
    };
  }

  validate(name: RequestSchemaName, body: unknown): RequestIssue[] {
    let v = this.validators.get(name);
    if (!v) {
      v = this.ajv.getSchema(`${SCHEMA_BASE}serve/${name}.schema.json`);
      if (!v) throw new Error(`recblocks serve: schemas/serve/${name}.schema.json is missing`);
      this.validators.set(name, v);
    }
    if (v(body)) return [];
    // MAX_REQUEST_ISSUES at most, the shallowest first (a wrong `k` is not hidden behind 10,000 wrong items), in
    // body order: a 1 MiB body of 300,000 wrong list items made as many issues, took seconds of the server's
    // thread to translate and a 56 MB answer
    const issues = translateAjvErrors(shallowest(v.errors ?? [], MAX_REQUEST_ISSUES), body, () => ({ file: "request body" }), this.context);
    return issues.map(({ source: _source, ...rest }) => rest);
  }
}

/** The `max` errors of least depth (instance path segments), in their order. */
function shallowest(errors: ErrorObject[], max: number): ErrorObject[] {
  if (errors.length <= max) return errors;
  const depth = (e: ErrorObject) => {
    let d = 0;
    for (let i = 0; i < e.instancePath.length; i++) if (e.instancePath.charCodeAt(i) === 47) d++;
    return d;
  };
  const depths = errors.map(depth);
  const counts: number[] = [];
  for (const d of depths) counts[d] = (counts[d] ?? 0) + 1;
  // the deepest level kept, and how many of its errors fit
  let cut = 0;
  let room = max;
  while ((counts[cut] ?? 0) < room) room -= counts[cut++] ?? 0;
  return errors.filter((_, i) => depths[i]! < cut || (depths[i] === cut && room-- > 0));
}

let shared: RequestSchemas | undefined;

/** Issues of a request body against schemas/serve/<name>.schema.json ([] when it is valid). */
export function validateRequest(name: RequestSchemaName, body: unknown): RequestIssue[] {
  shared ??= new RequestSchemas();
  return shared.validate(name, body);
}
