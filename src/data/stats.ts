import { numSessions, type CodedSessions } from "./coded.js";
import type { FeatureSchemaDocLike, FeatureColumnDoc } from "./schema-doc.js";
import { openDataSource, readCodedSessions, resolveRoles, type ColumnsConfig, type SourceOptions } from "./source.js";
import { parseNumber, parseTime } from "./sessions.js";
import type { RawTable } from "./table.js";

export interface DataStats {
  /** Interactions: data rows of a table, item occurrences of a sessions-text file. */
  rows: number;
  sessions: number;
  /** Distinct items. */
  items: number;
  /** Distinct users (missing values such as NA left out); null without a user column. */
  users: number | null;
  avgSessionLength: number;
  /** Examples of the prefix augmentation: sum over sessions of (length - 1). */
  prefixExamples: number;
  format: string;
  /** Columns used, by role. */
  columns: { item: string; session?: string; user?: string; timestamp?: string; order?: string };
  /** Rows dropped under badRows: skip. */
  skippedRows: number;
}

export interface StatsOptions extends SourceOptions {
  columns?: ColumnsConfig;
  schema?: FeatureSchemaDocLike;
}

export function statsOf(cs: CodedSessions, format: string, columns: DataStats["columns"], skippedRows = 0): DataStats {
  const S = numSessions(cs);
  const T = cs.item.length;
  let users: number | null = null;
  if (cs.distinctUsers !== undefined) users = cs.distinctUsers;
  else if (cs.users) {
    const seen = new Uint8Array(cs.interners[cs.userColumn!]?.size ?? 0);
    users = 0;
    for (let s = 0; s < S; s++) {
      const u = cs.users[s]!;
      if (u >= 0 && !seen[u]) {
        seen[u] = 1;
        users++;
      }
    }
  }
  return {
    rows: cs.rows,
    sessions: S,
    items: cs.interners[cs.itemColumn]!.size,
    users,
    avgSessionLength: S ? Math.round((T / S) * 1e4) / 1e4 : 0,
    prefixExamples: T - S,
    format,
    columns,
    skippedRows,
  };
}

/** Counts rows, sessions, items and users of a data file or built-in data set (no filters). */
export async function dataStats(spec: string, opts: StatsOptions = {}): Promise<DataStats> {
  let skipped = 0;
  const warn = opts.onWarning;
  const onWarning = (m: string) => {
    const k = /skipped (\d+) bad row/.exec(m);
    if (k) skipped += Number(k[1]);
    warn?.(m);
  };
  const src = openDataSource(spec, { ...opts, onWarning });
  const cs = await readCodedSessions(src, { ...opts, features: false, onWarning });
  let cols: DataStats["columns"];
  cols = { item: cs.itemColumn };
  if (cs.sessionColumn) cols.session = cs.sessionColumn;
  if (cs.userColumn) cols.user = cs.userColumn;
  if (cs.timestampColumn) cols.timestamp = cs.timestampColumn;
  if (cs.orderColumn) cols.order = cs.orderColumn;
  return statsOf(cs, src.format, cols, skipped);
}

// ---------------------------------------------------------------- schema inference

const MISSING = new Set(["", "NA", "N/A", "null", "NULL", "None", "nan", "NaN"]);

interface ColumnProfile {
  kind: "bool" | "int" | "float" | "string";
  list: boolean;
  min: number;
  max: number;
  distinct: Set<string>;
  listMin: number;
  listMax: number;
  present: number;
}

function profile(values: unknown[]): ColumnProfile {
  const p: ColumnProfile = { kind: "bool", list: false, min: Infinity, max: -Infinity, distinct: new Set(), listMin: Infinity, listMax: 0, present: 0 };
  let allBool = true;
  let allInt = true;
  let allNum = true;
  const see = (v: unknown) => {
    if (v === null || v === undefined || (typeof v === "string" && MISSING.has(v.trim()))) return;
    p.present++;
    if (p.distinct.size <= 1_000_000) p.distinct.add(typeof v === "string" ? v : String(v));
    if (typeof v === "boolean" || v === "true" || v === "false") {
      allInt = allNum = false;
      return;
    }
    allBool = false;
    const n = parseNumber(v);
    if (!Number.isFinite(n)) {
      allInt = allNum = false;
      return;
    }
    if (!Number.isInteger(n)) allInt = false;
    if (n < p.min) p.min = n;
    if (n > p.max) p.max = n;
  };
  for (const v of values) {
    if (Array.isArray(v)) {
      p.list = true;
      if (v.length < p.listMin) p.listMin = v.length;
      if (v.length > p.listMax) p.listMax = v.length;
      for (const x of v) see(x);
    } else see(v);
  }
  p.kind = p.present === 0 ? "string" : allBool ? "bool" : allInt ? "int" : allNum ? "float" : "string";
  return p;
}

export interface InferOptions extends StatsOptions {}

/**
 * Proposes a feature schema (ours, contracts.md) for a data source: id columns by name or config,
 * timestamps, categorical vs continuous, cardinalities (domain max + 1 for integer ids, distinct + 1 for strings),
 * and for interaction logs the per-step columns as `list` with the session lengths as valueCount, the
 * columns constant within every session as `context`, and categorical columns holding a list per interaction
 * (JSONL/Parquet arrays) as multi-hot bags (`properties.multiHot.maxValues` = the longest list).
 */
export async function inferSchema(spec: string, opts: InferOptions = {}): Promise<FeatureSchemaDocLike> {
  const src = openDataSource(spec, opts);
  if (src.format === "sessions-text") {
    const cs = await readCodedSessions(src, opts);
    const it = cs.interners[cs.itemColumn]!;
    let min = Infinity;
    let max = 0;
    let numeric = true;
    for (const k of it.keys) {
      const n = Number(k);
      if (!Number.isInteger(n)) numeric = false;
      else {
        min = Math.min(min, n);
        max = Math.max(max, n);
      }
    }
    let lmin = Infinity;
    let lmax = 0;
    for (let s = 0; s < numSessions(cs); s++) {
      const l = cs.offsets[s + 1]! - cs.offsets[s]!;
      lmin = Math.min(lmin, l);
      lmax = Math.max(lmax, l);
    }
    return {
      version: 1,
      columns: [
        {
          name: cs.itemColumn,
          dtype: numeric ? "int64" : "string",
          tags: ["item-id", "categorical", "list"],
          cardinality: numeric && min >= 0 ? max + 1 : it.size + 1,
          ...(numeric ? { min, max } : {}),
          valueCount: { min: lmin, max: lmax },
          properties: { distinct: it.size },
        },
      ],
    };
  }
  const table: RawTable = await src.readTable();
  const roles = resolveRoles(src.path, table.columns, opts.columns, opts.schema ?? src.featureSchema);
  const groupCol = roles.session ?? roles.user;
  // session lengths and per-session constancy (interaction logs only)
  let sessionOf: Int32Array | undefined;
  let lengths: { min: number; max: number } | undefined;
  const itemVals = roles.item ? table.data[roles.item] : undefined;
  const isLog = groupCol !== undefined && !(itemVals ?? []).some(Array.isArray);
  if (isLog) {
    const ids = new Map<string, number>();
    const g = table.data[groupCol]!;
    sessionOf = new Int32Array(table.rows);
    const counts: number[] = [];
    for (let r = 0; r < table.rows; r++) {
      const k = String(g[r]);
      let s = ids.get(k);
      if (s === undefined) {
        s = ids.size;
        ids.set(k, s);
        counts.push(0);
      }
      sessionOf[r] = s;
      counts[s]!++;
    }
    lengths = { min: Math.min(...counts), max: Math.max(...counts) };
  }
  const constantWithinSessions = (values: unknown[]): boolean => {
    if (!sessionOf) return false;
    const firstVal = new Map<number, string>();
    for (let r = 0; r < values.length; r++) {
      const k = String(values[r]);
      const prev = firstVal.get(sessionOf[r]!);
      if (prev === undefined) firstVal.set(sessionOf[r]!, k);
      else if (prev !== k) return false;
    }
    return true;
  };
  const columns: FeatureColumnDoc[] = [];
  for (const name of table.columns) {
    const values = table.data[name]!;
    const p = profile(values);
    const tags: string[] = [];
    const col: FeatureColumnDoc = { name, dtype: p.kind === "bool" ? "bool" : p.kind === "int" ? "int64" : p.kind === "float" ? "float64" : "string", tags };
    let categorical = false;
    if (name === roles.item) tags.push("item-id", "categorical"), (categorical = true);
    else if (name === roles.session) tags.push("session-id", "categorical"), (categorical = true);
    else if (name === roles.user) tags.push("user-id", "categorical"), (categorical = true);
    else if (name === roles.timestamp || name === roles.order) {
      tags.push("timestamp");
      if (p.kind === "string" && values.some((v) => Number.isFinite(parseTime(v)))) col.properties = { format: "iso-date" };
    } else if (p.kind === "string" || p.kind === "bool") tags.push("categorical"), (categorical = true);
    else if (p.kind === "int" && p.min >= 0 && (p.distinct.size <= 100 || /(^|_)(id|code|type|category|cat|genre|brand)$/i.test(name))) tags.push("categorical"), (categorical = true);
    else tags.push("continuous");
    if (p.kind === "bool") tags.push("binary");
    if (categorical) {
      if (p.kind === "int" && p.min >= 0) {
        col.cardinality = p.max + 1;
        col.min = p.min;
        col.max = p.max;
      } else col.cardinality = p.distinct.size + 1;
      col.properties = { ...(col.properties ?? {}), distinct: p.distinct.size };
    } else if (p.kind === "int" || p.kind === "float") {
      col.min = p.min;
      col.max = p.max;
    }
    if (p.list) {
      tags.push("list");
      col.valueCount = { min: p.listMin, max: p.listMax };
      // a list per interaction of an interaction log: a multi-hot bag (read ragged, padded to the longest)
      if (isLog && categorical && name !== roles.item && p.listMax > 0) col.properties = { ...(col.properties ?? {}), multiHot: { maxValues: p.listMax } };
    } else if (isLog && name !== roles.session) {
      if (name === roles.user || (name !== roles.item && name !== roles.timestamp && name !== roles.order && constantWithinSessions(values))) tags.push("context");
      else {
        tags.push("list");
        col.valueCount = { ...lengths! };
      }
    }
    columns.push(col);
  }
  return { version: 1, columns };
}
