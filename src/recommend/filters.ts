/**
 * Business rules at recommendation time: which items may be recommended, as one eligibility mask over
 * the dense item ids (1 = may be recommended). Every model applies it inside its top-k (next-item
 * models add -1e9 to the logits of ineligible items before tf.topk; ALS ranks only eligible items),
 * so k results come back whenever k eligible items exist, and nothing is retrained.
 *
 * Rules: an allow-list and/or a deny-list of raw item ids, and attribute rules over item metadata
 * (a CSV/TSV/JSONL file with the item id and its attributes), e.g. `category in [3, 7]`,
 * `price <= 20`, `brand != acme`, `stock > 0`, `region not in [eu]`.
 */
import { readFileSync } from "node:fs";
import { RecblocksError, type Issue } from "../errors/issue.js";

export interface ItemFilters {
  /** Only these raw item ids may be recommended. */
  allow?: (string | number)[];
  /** These raw item ids are never recommended. */
  deny?: (string | number)[];
  /** Attribute rules, all of which an item must pass (needs item metadata). */
  rules?: string[];
}

export type RuleOp = "in" | "not in" | "==" | "!=" | "<" | "<=" | ">" | ">=";

export interface Rule {
  attribute: string;
  op: RuleOp;
  value: string | number | (string | number)[];
  text: string;
}

/** Item attributes by raw item id. */
export interface ItemMetadata {
  file: string;
  idColumn: string;
  columns: string[];
  rows: Map<string, Record<string, string>>;
}

function fail(subject: string, issues: Issue[]): never {
  throw new RecblocksError(subject, issues, { kind: "FilterError" });
}

const scalar = (s: string): string | number => {
  const t = s.trim().replace(/^["']|["']$/g, "");
  return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t) ? Number(t) : t;
};

/** Parses `attribute op value`; `path` is where the rule sits (JSON Pointer or flag name) for the error. */
export function parseRule(text: string, path = "/filters/rules"): Rule {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(not\s+in|in|==|!=|<=|>=|<|>|=)(?![=<>!])\s*(\S.*?)\s*$/.exec(text);
  if (!m) {
    fail("filters", [{ code: "invalid_rule", path, message: `Cannot read the rule "${text.slice(0, 80)}".`, expected: "attribute op value", hint: 'Write e.g. "category in [3, 7]", "price <= 20" or "brand != acme" (ops: in, not in, ==, !=, <, <=, >, >=).' }]);
  }
  const op = (m[2]!.replace(/\s+/g, " ") === "=" ? "==" : m[2]!.replace(/\s+/g, " ")) as RuleOp;
  const raw = m[3]!;
  let value: Rule["value"];
  if (op === "in" || op === "not in") {
    const list = /^\[(.*)\]$/.exec(raw);
    if (!list) fail("filters", [{ code: "invalid_rule", path, message: `"${op}" needs a list in brackets, got "${raw.slice(0, 40)}".`, hint: `Write e.g. "${m[1]} ${op} [a, b]".` }]);
    value = list[1]!.trim() === "" ? [] : list[1]!.split(",").map(scalar);
  } else {
    value = scalar(raw);
    if ((op === "<" || op === "<=" || op === ">" || op === ">=") && typeof value !== "number") {
      fail("filters", [{ code: "invalid_rule", path, message: `"${op}" compares numbers, got "${raw.slice(0, 40)}".` }]);
    }
  }
  return { attribute: m[1]!, op, value, text };
}

function passes(rule: Rule, v: string | undefined): boolean {
  if (v === undefined || v === "") return rule.op === "not in" || rule.op === "!=";
  const num = Number(v);
  const eq = (x: string | number) => (typeof x === "number" ? Number.isFinite(num) && num === x : v === x);
  switch (rule.op) {
    case "in":
      return (rule.value as (string | number)[]).some(eq);
    case "not in":
      return !(rule.value as (string | number)[]).some(eq);
    case "==":
      return eq(rule.value as string | number);
    case "!=":
      return !eq(rule.value as string | number);
    default: {
      if (!Number.isFinite(num)) return false;
      const x = rule.value as number;
      return rule.op === "<" ? num < x : rule.op === "<=" ? num <= x : rule.op === ">" ? num > x : num >= x;
    }
  }
}

/**
 * Reads item metadata: CSV/TSV with a header (delimiter sniffed from the header: tab, ';' or ','), or
 * JSONL objects. The id column is `idColumn`, else the first of item_id / itemId / id / item.
 */
export function readItemMetadata(file: string, idColumn?: string): ItemMetadata {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    fail(file, [{ code: "data_file_not_found", path: "", message: `Cannot read the item metadata file: ${(e as Error).message}`, source: { file } }]);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (!lines.length) fail(file, [{ code: "data_file_empty", path: "", message: "The item metadata file is empty.", source: { file } }]);
  const rows = new Map<string, Record<string, string>>();
  let columns: string[];
  if (lines[0]!.trimStart().startsWith("{")) {
    const set = new Set<string>();
    const objs = lines.map((l, i) => {
      try {
        const o = JSON.parse(l) as Record<string, unknown>;
        for (const k of Object.keys(o)) set.add(k);
        return o;
      } catch {
        return fail(file, [{ code: "data_bad_json", path: "", message: `Line ${i + 1} is not a JSON object.`, source: { file, line: i + 1, column: 1 } }]);
      }
    });
    columns = [...set];
    const id = pickId(columns, idColumn, file);
    for (const o of objs) rows.set(String(o[id]), Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === null || v === undefined ? "" : String(v)])));
    return { file, idColumn: id, columns, rows };
  }
  const head = lines[0]!;
  const delim = head.includes("\t") ? "\t" : head.includes(";") ? ";" : ",";
  columns = head.split(delim).map((c) => c.trim());
  const id = pickId(columns, idColumn, file);
  for (let i = 1; i < lines.length; i++) {
    const cells = lines[i]!.split(delim);
    if (cells.length !== columns.length) {
      fail(file, [{ code: "data_ragged_row", path: "", message: `Row ${i + 1} has ${cells.length} fields; the header has ${columns.length}.`, source: { file, line: i + 1, column: 1 } }]);
    }
    const rec: Record<string, string> = {};
    columns.forEach((c, j) => (rec[c] = cells[j]!.trim()));
    rows.set(rec[id]!, rec);
  }
  return { file, idColumn: id, columns, rows };
}

function pickId(columns: string[], wanted: string | undefined, file: string): string {
  const id = wanted ?? ["item_id", "itemId", "id", "item"].find((c) => columns.includes(c));
  if (!id || !columns.includes(id)) {
    fail(file, [{ code: "data_missing_column", path: "", message: `The item metadata has no item id column${wanted ? ` "${wanted}"` : " (item_id, itemId, id or item)"}. Columns: ${columns.slice(0, 12).join(", ")}.`, source: { file } }]);
  }
  return id;
}

/** A raw-id file of an allow/deny list: one id per line (or comma-separated); '#' starts a comment. */
export function readIdList(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    fail(file, [{ code: "data_file_not_found", path: "", message: `Cannot read the item list: ${(e as Error).message}`, source: { file } }]);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, ""))
    .flatMap((l) => l.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
}

export interface EligibilityOptions {
  /** Number of dense item ids (including the ids that are never items: padding, OOV). */
  size: number;
  /** Dense id of a raw id, or undefined when unknown. */
  lookup: (raw: string) => number | undefined;
  /** Raw id of a dense id (for attribute rules), or undefined for padding/OOV. */
  rawOf: (id: number) => string | undefined;
  /** Dense ids that are never recommended whatever the filters (padding, OOV). */
  reserved?: number[];
  metadata?: ItemMetadata;
}

export interface Eligibility {
  /** [size] 1 = may be recommended. */
  mask: Uint8Array;
  /** Number of eligible ids. */
  eligible: number;
  /** Raw ids of the lists that the model does not know (reported, never an error). */
  unknown: string[];
}

/** The eligibility mask of a set of filters. Rules without metadata are an error with a hint. */
export function eligibility(f: ItemFilters, o: EligibilityOptions): Eligibility {
  const mask = new Uint8Array(o.size);
  const unknown: string[] = [];
  if (f.allow) {
    for (const r of f.allow) {
      const id = o.lookup(String(r));
      if (id === undefined) unknown.push(String(r));
      else mask[id] = 1;
    }
  } else mask.fill(1);
  for (const id of o.reserved ?? []) mask[id] = 0;
  for (const r of f.deny ?? []) {
    const id = o.lookup(String(r));
    if (id === undefined) unknown.push(String(r));
    else mask[id] = 0;
  }
  const rules = (f.rules ?? []).map((t, i) => parseRule(t, `/filters/rules/${i}`));
  if (rules.length) {
    if (!o.metadata) {
      fail("filters", [{ code: "missing_item_metadata", path: "/filters/rules", message: `Attribute rules (${rules.map((r) => r.text).join("; ").slice(0, 80)}) need item metadata.`, hint: "Give an item metadata file (--item-data items.csv, or serve --item-data) with the item id and its attributes." }]);
    }
    rules.forEach((r, i) => {
      if (!o.metadata!.columns.includes(r.attribute)) {
        fail("filters", [{ code: "unknown_attribute", path: `/filters/rules/${i}`, message: `The item metadata has no attribute "${r.attribute}".`, expected: o.metadata!.columns.slice(0, 20) }]);
      }
    });
    for (let id = 0; id < o.size; id++) {
      if (!mask[id]) continue;
      const raw = o.rawOf(id);
      const row = raw === undefined ? undefined : o.metadata.rows.get(raw);
      if (!row || !rules.every((r) => passes(r, row[r.attribute]))) mask[id] = 0;
    }
  }
  let eligible = 0;
  for (let i = 0; i < o.size; i++) eligible += mask[i]!;
  return { mask, eligible, unknown };
}
