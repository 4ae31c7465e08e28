import { BadRows, dataIssue, failData, quoted, short, type BadRowPolicy } from "./errors.js";
import { filterSteps, numSessions, subsetSessions, type CodedSessions } from "./coded.js";
import { Interner } from "./interner.js";
import { missingColumn } from "./readers.js";
import { rowLocation, type RawTable } from "./table.js";

/** Which column plays which part. */
export interface ColumnRoles {
  item: string;
  session?: string;
  user?: string;
  timestamp?: string;
  /** Tie-breaker within equal timestamps (Diginetica's `timeframe`). */
  order?: string;
}

/** Side features to carry along, by kind. Per-step unless listed as context. */
export interface FeatureColumns {
  categorical?: string[];
  continuous?: string[];
  contextCategorical?: string[];
  contextContinuous?: string[];
  /** Categorical per-step columns that hold a bag (a ragged list of values) per interaction, with their bag size. */
  bags?: Record<string, BagSpec>;
  /** Columns (among the context ones) tagged `target`: read for the tasks, not model inputs. */
  targets?: string[];
}

/** A multi-hot bag column: up to `maxValues` values per interaction (more are cut), `separator` between values in text cells. */
export interface BagSpec {
  maxValues: number;
  separator: string;
}

/** Code of a padding slot in a bag (a bag shorter than its size); -1 is a missing value. */
export const BAG_PAD = -2;

/**
 * The values of one bag cell: a JSON/Parquet array as is; a text cell split on the separator (or parsed as
 * JSON when it looks like `[...]`); a scalar as a bag of one; empty or missing as an empty bag. Returns a
 * string saying what is wrong for a cell that is not a list of scalars.
 */
export function parseBag(v: unknown, separator: string): unknown[] | string {
  if (v === null || v === undefined) return [];
  let list: unknown[];
  if (Array.isArray(v)) list = v;
  else if (typeof v === "string") {
    const t = v.trim();
    if (t === "") return [];
    if (t.startsWith("[") && t.endsWith("]")) {
      try {
        const j: unknown = JSON.parse(t);
        if (!Array.isArray(j)) return "it is not a JSON array";
        list = j;
      } catch (err) {
        return `it starts with "[" but is not a JSON array (${(err as Error).message})`;
      }
    } else {
      list = t.split(separator).map((x) => x.trim());
      const empty = (list as string[]).findIndex((x) => x === "");
      if (empty >= 0) return `value ${empty + 1} between the separators ${JSON.stringify(separator)} is empty`;
      return list;
    }
  } else if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return [v];
  else return `it is ${typeof v === "object" ? "an object" : typeof v}, not a list`;
  for (let j = 0; j < list.length; j++) {
    const x = list[j];
    if (typeof x === "string" ? x.trim() === "" : !(typeof x === "number" || typeof x === "bigint" || typeof x === "boolean"))
      return `value ${j + 1} of the list is ${x === null ? "null" : typeof x === "string" ? "empty" : Array.isArray(x) ? "a list" : typeof x}`;
  }
  return list;
}

export interface GroupOptions {
  badRows?: BadRowPolicy;
  onWarning?: (msg: string) => void;
  /** Interners to share across files (train/valid/test): by column name. */
  interners?: Record<string, Interner>;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A timestamp cell to seconds (numbers as they are; ISO dates to epoch seconds), NaN when it is neither. */
export function parseTime(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string") {
    const t = v.trim();
    if (t === "") return NaN;
    const n = Number(t);
    if (Number.isFinite(n)) return n;
    if (ISO_DATE.test(t)) {
      const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(t) ? t : `${t.replace(" ", "T")}Z`);
      if (Number.isFinite(ms)) return ms / 1000;
    }
  }
  return NaN;
}

/** Numbers from a cell: numbers, numeric strings, booleans; NaN otherwise. */
export function parseNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string" && v.trim() !== "") return Number(v);
  return NaN;
}

const isMissing = (v: unknown) => v === null || v === undefined || v === "";
const MISSING_USER = new Set(["", "NA", "N/A", "null", "NULL", "None", "nan", "NaN"]);

function toKey(v: unknown): string | number {
  if (typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "true" : "false";
  return JSON.stringify(v);
}

/** Timestamps in ms or µs to seconds (by magnitude). */
function normalizeSeconds(ts: Float64Array): void {
  let max = 0;
  for (let i = 0; i < ts.length; i++) if (Math.abs(ts[i]!) > max) max = Math.abs(ts[i]!);
  const div = max > 1e14 ? 1e6 : max > 1e11 ? 1e3 : 1;
  if (div !== 1) for (let i = 0; i < ts.length; i++) ts[i] = ts[i]! / div;
}

function need(table: RawTable, name: string | undefined, role: string): unknown[] | undefined {
  if (name === undefined) return undefined;
  const col = table.data[name];
  if (!col) throw missingColumn(table.file, name, role, table.columns);
  return col;
}

/**
 * Groups a table into coded sessions. Two shapes are understood:
 * - an interaction log (one row per click): rows are grouped by the session column (else the user column)
 *   and ordered by timestamp, then the `order` column, then file order;
 * - a session table (one row per session), recognised by list values in the item column: list columns
 *   are per-step features, scalar columns are context.
 */
export function groupSessions(table: RawTable, roles: ColumnRoles, features: FeatureColumns = {}, opts: GroupOptions = {}): CodedSessions {
  const itemCol = need(table, roles.item, "item id")!;
  const first = itemCol.find((v) => !isMissing(v));
  if (Array.isArray(first)) return groupSessionTable(table, roles, features, opts);
  return groupInteractionLog(table, roles, features, opts);
}

/** The located error of a bag cell that is not a list of values. */
function bagIssue(where: string, loc: { file: string; row: number; line?: number }, name: string, v: unknown, why: string, spec: BagSpec) {
  return dataIssue("data_bad_list", { ...loc, column: name }, `${where}: multi-hot column "${name}" holds ${quoted(v)}, which is not a list of values: ${why}.`, {
    received: short(v),
    hint: `Write the values of one interaction separated by ${JSON.stringify(spec.separator)} (e.g. "3${spec.separator}17${spec.separator}42"), as a JSON array, or leave the cell empty for none.`,
  });
}

/** Interned codes of bags, K slots per step (step i is row rows[i]), cut to K, BAG_PAD after the last value. */
function codeBags(vals: unknown[][], rows: ArrayLike<number>, K: number, it: Interner): Int32Array {
  const out = new Int32Array(rows.length * K).fill(BAG_PAD);
  for (let i = 0; i < rows.length; i++) {
    const v = vals[rows[i]!]!;
    const m = Math.min(K, v.length);
    for (let j = 0; j < m; j++) out[i * K + j] = it.intern(toKey(v[j]));
  }
  return out;
}

function groupInteractionLog(table: RawTable, roles: ColumnRoles, f: FeatureColumns, opts: GroupOptions): CodedSessions {
  const file = table.file;
  const n = table.rows;
  const itemCol = need(table, roles.item, "item id")!;
  const sessCol = need(table, roles.session, "session id");
  const userCol = need(table, roles.user, "user id");
  if (!sessCol && !userCol)
    failData("data_missing_column", { file }, `Cannot group rows into sessions: no session id or user id column in ${file}. Columns: ${table.columns.map((c) => `"${c}"`).join(", ")}.`, {
      hint: "Set data.columns.session (or data.columns.user), or tag a column session-id / user-id in the feature schema.",
    });
  const groupCol = (sessCol ?? userCol)!;
  const timeCol = need(table, roles.timestamp, "timestamp");
  const orderCol = need(table, roles.order, "order (tie-breaker)");
  const catNames = f.categorical ?? [];
  const contNames = f.continuous ?? [];
  const ctxCatNames = f.contextCategorical ?? [];
  const ctxContNames = f.contextContinuous ?? [];
  const catCols = catNames.map((c) => need(table, c, "categorical feature")!);
  const contCols = contNames.map((c) => need(table, c, "continuous feature")!);
  const ctxCatCols = ctxCatNames.map((c) => need(table, c, "context feature")!);
  const ctxContCols = ctxContNames.map((c) => need(table, c, "context feature")!);
  const bagSpecs = f.bags ?? {};
  const bagNames = catNames.filter((c) => bagSpecs[c]);
  const bagCols = bagNames.map((c) => catCols[catNames.indexOf(c)]!);
  const bagVals = bagNames.map(() => new Array<unknown[]>(n));
  const bagCut = bagNames.map(() => 0);

  const bad = new BadRows(file, opts.badRows);
  const keep = new Uint8Array(n).fill(1);
  const time = timeCol ? new Float64Array(n) : undefined;
  const ord = orderCol ? new Float64Array(n) : undefined;
  const cont = contCols.map(() => new Float32Array(n));
  for (let r = 0; r < n; r++) {
    const loc = rowLocation(table, r);
    const where = loc.line !== undefined ? `Line ${loc.line}` : `Row ${r}`;
    if (isMissing(itemCol[r])) {
      bad.add(dataIssue("data_missing_value", { ...loc, column: roles.item }, `${where}: the item id column "${roles.item}" is empty.`));
      keep[r] = 0;
      continue;
    }
    if (isMissing(groupCol[r])) {
      const name = (sessCol ? roles.session : roles.user)!;
      bad.add(dataIssue("data_missing_value", { ...loc, column: name }, `${where}: the ${sessCol ? "session" : "user"} id column "${name}" is empty.`));
      keep[r] = 0;
      continue;
    }
    if (time) {
      const t = parseTime(timeCol![r]);
      if (!Number.isFinite(t)) {
        bad.add(
          dataIssue("data_bad_timestamp", { ...loc, column: roles.timestamp }, `${where}: timestamp column "${roles.timestamp}" holds ${quoted(timeCol![r])}, which is not a number or an ISO date (YYYY-MM-DD[THH:MM:SS]).`, {
            received: short(timeCol![r]),
            hint: "Timestamps are epoch seconds (or ms/µs), or ISO 8601 dates.",
          }),
        );
        keep[r] = 0;
        continue;
      }
      time[r] = t;
    }
    if (ord) {
      const o = parseNumber(orderCol![r]);
      if (!Number.isFinite(o)) {
        bad.add(dataIssue("data_bad_number", { ...loc, column: roles.order }, `${where}: order column "${roles.order}" holds ${quoted(orderCol![r])}, which is not a number.`, { received: short(orderCol![r]) }));
        keep[r] = 0;
        continue;
      }
      ord[r] = o;
    }
    let ok = true;
    for (let k = 0; k < contCols.length && ok; k++) {
      const v = parseNumber(contCols[k]![r]);
      if (!Number.isFinite(v)) {
        bad.add(dataIssue("data_bad_number", { ...loc, column: contNames[k] }, `${where}: continuous column "${contNames[k]}" holds ${quoted(contCols[k]![r])}, which is not a number.`, { received: short(contCols[k]![r]) }));
        ok = false;
      } else cont[k]![r] = v;
    }
    for (let k = 0; k < bagCols.length && ok; k++) {
      const name = bagNames[k]!;
      const vals = parseBag(bagCols[k]![r], bagSpecs[name]!.separator);
      if (typeof vals === "string") {
        bad.add(bagIssue(where, loc, name, bagCols[k]![r], vals, bagSpecs[name]!));
        ok = false;
      } else {
        bagVals[k]![r] = vals;
        if (vals.length > bagSpecs[name]!.maxValues) bagCut[k]!++;
      }
    }
    if (!ok) keep[r] = 0;
  }
  bad.finish();
  bagNames.forEach((name, k) => {
    if (bagCut[k]) opts.onWarning?.(`${bagCut[k]} interactions of the multi-hot column "${name}" hold more than ${bagSpecs[name]!.maxValues} values (properties.multiHot.maxValues); their first ${bagSpecs[name]!.maxValues} are kept.`);
  });
  const summary = bad.summary();
  if (summary) opts.onWarning?.(summary);

  // bucket rows by session (first-seen order), stable
  const sessIt = new Interner();
  const sess = new Int32Array(n).fill(-1);
  for (let r = 0; r < n; r++) if (keep[r]) sess[r] = sessIt.intern(toKey(groupCol[r]));
  const S = sessIt.size;
  if (S === 0) failData("data_no_sessions", { file }, `No rows left to make sessions from in ${file} (${bad.count} bad rows skipped).`);
  const offsets = new Int32Array(S + 1);
  for (let r = 0; r < n; r++) if (sess[r]! >= 0) offsets[sess[r]! + 1]!++;
  for (let s = 0; s < S; s++) offsets[s + 1] = offsets[s + 1]! + offsets[s]!;
  const total = offsets[S]!;
  const fill = offsets.slice(0, S);
  const idx = new Int32Array(total);
  for (let r = 0; r < n; r++) if (sess[r]! >= 0) idx[fill[sess[r]!]!++] = r;
  // order within each session by (time, order, row)
  if (time || ord) {
    const t = time ?? new Float64Array(n);
    const o = ord ?? new Float64Array(n);
    for (let s = 0; s < S; s++) {
      const a = offsets[s]!;
      const b = offsets[s + 1]!;
      for (let i = a + 1; i < b; i++) {
        const r = idx[i]!;
        let j = i - 1;
        while (j >= a) {
          const q = idx[j]!;
          if (t[q]! > t[r]! || (t[q] === t[r] && (o[q]! > o[r]! || (o[q] === o[r] && q > r)))) {
            idx[j + 1] = q;
            j--;
          } else break;
        }
        idx[j + 1] = r;
      }
    }
  }

  const interners = opts.interners ?? {};
  const intern = (name: string) => (interners[name] ??= new Interner());
  const itemIt = intern(roles.item);
  const item = new Int32Array(total);
  for (let i = 0; i < total; i++) item[i] = itemIt.intern(toKey(itemCol[idx[i]!]));
  const categorical: Record<string, Int32Array> = {};
  const bags: Record<string, number> = {};
  catNames.forEach((name, k) => {
    const it = intern(name);
    const b = bagNames.indexOf(name);
    if (b >= 0) {
      const K = (bags[name] = bagSpecs[name]!.maxValues);
      categorical[name] = codeBags(bagVals[b]!, idx, K, it);
      return;
    }
    const col = catCols[k]!;
    const out = new Int32Array(total);
    for (let i = 0; i < total; i++) {
      const v = col[idx[i]!];
      out[i] = isMissing(v) ? -1 : it.intern(toKey(v));
    }
    categorical[name] = out;
  });
  const continuous: Record<string, Float32Array> = {};
  contNames.forEach((name, k) => {
    const out = new Float32Array(total);
    const src = cont[k]!;
    for (let i = 0; i < total; i++) out[i] = src[idx[i]!]!;
    continuous[name] = out;
  });
  let timestamps: Float64Array | undefined;
  if (time) {
    timestamps = new Float64Array(total);
    for (let i = 0; i < total; i++) timestamps[i] = time[idx[i]!]!;
    normalizeSeconds(timestamps);
  }
  const firstRow = (s: number) => idx[offsets[s]!]!;
  const contextCategorical: Record<string, Int32Array> = {};
  ctxCatNames.forEach((name, k) => {
    const it = intern(name);
    const out = new Int32Array(S);
    for (let s = 0; s < S; s++) {
      const v = ctxCatCols[k]![firstRow(s)];
      out[s] = isMissing(v) ? -1 : it.intern(toKey(v));
    }
    contextCategorical[name] = out;
  });
  const contextContinuous: Record<string, Float64Array> = {};
  ctxContNames.forEach((name, k) => {
    const out = new Float64Array(S);
    for (let s = 0; s < S; s++) out[s] = parseNumber(ctxContCols[k]![firstRow(s)]);
    contextContinuous[name] = out;
  });
  let users: Int32Array | undefined;
  let distinctUsers: number | undefined;
  if (userCol) {
    const it = intern(roles.user!);
    users = new Int32Array(S).fill(-1);
    const seen = new Set<number>();
    for (let s = 0; s < S; s++) {
      for (let i = offsets[s]!; i < offsets[s + 1]!; i++) {
        const v = userCol[idx[i]!];
        if (isMissing(v) || (typeof v === "string" && MISSING_USER.has(v.trim()))) continue;
        const u = it.intern(toKey(v));
        seen.add(u);
        if (users[s] === -1) users[s] = u;
      }
    }
    distinctUsers = seen.size;
  }
  return {
    file,
    itemColumn: roles.item,
    ids: sessIt.keys.slice(),
    offsets,
    item,
    categorical,
    ...(bagNames.length ? { bags } : {}),
    continuous,
    timestamps,
    contextCategorical,
    contextContinuous,
    users,
    userColumn: roles.user,
    sessionColumn: roles.session,
    timestampColumn: roles.timestamp,
    orderColumn: roles.order,
    distinctUsers,
    interners,
    rows: table.rows,
  };
}

function groupSessionTable(table: RawTable, roles: ColumnRoles, f: FeatureColumns, opts: GroupOptions): CodedSessions {
  const file = table.file;
  const n = table.rows;
  const itemCol = need(table, roles.item, "item id")!;
  const sessCol = need(table, roles.session, "session id");
  const userCol = need(table, roles.user, "user id");
  const timeCol = need(table, roles.timestamp, "timestamp");
  const catNames = f.categorical ?? [];
  const contNames = f.continuous ?? [];
  const bagSpecs = f.bags ?? {};
  const bags: Record<string, number> = {};
  for (const c of catNames) if (bagSpecs[c]) bags[c] = bagSpecs[c]!.maxValues;
  const bad = new BadRows(file, opts.badRows);
  const keep = new Uint8Array(n);
  let total = 0;
  for (let r = 0; r < n; r++) {
    const loc = rowLocation(table, r);
    const where = loc.line !== undefined ? `Line ${loc.line}` : `Row ${r}`;
    const items = itemCol[r];
    if (!Array.isArray(items)) {
      bad.add(dataIssue("data_bad_list", { ...loc, column: roles.item }, `${where}: the item id column "${roles.item}" should hold a list (one session per row), got ${quoted(items)}.`));
      continue;
    }
    let ok = true;
    for (const name of [...catNames, ...contNames, ...(roles.timestamp ? [roles.timestamp] : [])]) {
      const v = table.data[name]?.[r];
      if (!Array.isArray(v) || v.length !== items.length) {
        bad.add(
          dataIssue("data_bad_list", { ...loc, column: name }, `${where}: list column "${name}" should have ${items.length} values like "${roles.item}", got ${Array.isArray(v) ? v.length : quoted(v)}.`, {
            hint: "Per-step columns of a session table are lists as long as the item list; per-session values go in context columns (scalars).",
          }),
        );
        ok = false;
        break;
      }
    }
    for (const name of Object.keys(bags)) {
      if (!ok) break;
      const cells = table.data[name]![r] as unknown[];
      for (let j = 0; j < cells.length && ok; j++) {
        const vals = parseBag(cells[j], bagSpecs[name]!.separator);
        if (typeof vals === "string") {
          bad.add(bagIssue(`${where}, step ${j + 1}`, loc, name, cells[j], vals, bagSpecs[name]!));
          ok = false;
        }
      }
    }
    if (!ok) continue;
    if (items.length === 0 || items.some(isMissing)) {
      if (items.length > 0) {
        bad.add(dataIssue("data_missing_value", { ...loc, column: roles.item }, `${where}: the item list holds an empty value.`));
        continue;
      }
    }
    keep[r] = 1;
    total += items.length;
  }
  bad.finish();
  const summary = bad.summary();
  if (summary) opts.onWarning?.(summary);
  const rowsKept: number[] = [];
  for (let r = 0; r < n; r++) if (keep[r] && (itemCol[r] as unknown[]).length > 0) rowsKept.push(r);
  const S = rowsKept.length;
  if (S === 0) failData("data_no_sessions", { file }, `No sessions in ${file}.`);
  const interners = opts.interners ?? {};
  const intern = (name: string) => (interners[name] ??= new Interner());
  const offsets = new Int32Array(S + 1);
  const item = new Int32Array(total);
  const categorical: Record<string, Int32Array> = Object.fromEntries(catNames.map((c) => [c, new Int32Array(total * (bags[c] ?? 1))]));
  const continuous: Record<string, Float32Array> = Object.fromEntries(contNames.map((c) => [c, new Float32Array(total)]));
  const timestamps = timeCol ? new Float64Array(total) : undefined;
  const itemIt = intern(roles.item);
  let pos = 0;
  for (let k = 0; k < S; k++) {
    const r = rowsKept[k]!;
    const items = itemCol[r] as unknown[];
    offsets[k] = pos;
    for (let j = 0; j < items.length; j++) item[pos + j] = itemIt.intern(toKey(items[j]));
    for (const c of catNames) {
      const it = intern(c);
      const v = table.data[c]![r] as unknown[];
      const K = bags[c];
      if (K !== undefined) {
        const cells = v.map((x) => parseBag(x, bagSpecs[c]!.separator) as unknown[]);
        categorical[c]!.set(codeBags(cells, Int32Array.from(cells, (_, j) => j), K, it), pos * K);
        continue;
      }
      for (let j = 0; j < v.length; j++) categorical[c]![pos + j] = isMissing(v[j]) ? -1 : it.intern(toKey(v[j]));
    }
    for (const c of contNames) {
      const v = table.data[c]![r] as unknown[];
      for (let j = 0; j < v.length; j++) continuous[c]![pos + j] = parseNumber(v[j]);
    }
    if (timestamps) {
      const v = timeCol![r] as unknown[];
      for (let j = 0; j < v.length; j++) timestamps[pos + j] = parseTime(v[j]);
    }
    pos += items.length;
  }
  offsets[S] = pos;
  if (timestamps) normalizeSeconds(timestamps);
  const contextCategorical: Record<string, Int32Array> = {};
  for (const c of f.contextCategorical ?? []) {
    const col = need(table, c, "context feature")!;
    const it = intern(c);
    contextCategorical[c] = Int32Array.from(rowsKept, (r) => (isMissing(col[r]) ? -1 : it.intern(toKey(col[r]))));
  }
  const contextContinuous: Record<string, Float64Array> = {};
  for (const c of f.contextContinuous ?? []) {
    const col = need(table, c, "context feature")!;
    contextContinuous[c] = Float64Array.from(rowsKept, (r) => parseNumber(col[r]));
  }
  let users: Int32Array | undefined;
  if (userCol) {
    const it = intern(roles.user!);
    users = Int32Array.from(rowsKept, (r) => (isMissing(userCol[r]) ? -1 : it.intern(toKey(userCol[r]))));
  }
  return {
    file,
    itemColumn: roles.item,
    ids: rowsKept.map((r) => (sessCol ? String(toKey(sessCol[r])) : String(r))),
    offsets,
    item,
    categorical,
    ...(Object.keys(bags).length ? { bags } : {}),
    continuous,
    timestamps,
    contextCategorical,
    contextContinuous,
    users,
    userColumn: roles.user,
    sessionColumn: roles.session,
    timestampColumn: roles.timestamp,
    interners,
    rows: total,
  };
}

export interface SessionFilterOptions {
  dropConsecutiveRepeats?: boolean;
  /** Sessions shorter than this are dropped (default 1: keep all). */
  minSessionLength?: number;
  /** Items seen fewer times than this are removed from sessions (default 1). */
  minItemSupport?: number;
  /** Repeat the two filters until nothing changes (default false: support once, then length once). */
  iterateFilters?: boolean;
}

/** Applies the session filters. Item support is counted over the sessions given. */
export function filterSessions(cs: CodedSessions, o: SessionFilterOptions): CodedSessions {
  let cur = cs;
  if (o.dropConsecutiveRepeats) {
    const keep = new Uint8Array(cur.item.length).fill(1);
    let any = false;
    for (let s = 0; s < numSessions(cur); s++)
      for (let i = cur.offsets[s]! + 1; i < cur.offsets[s + 1]!; i++)
        if (cur.item[i] === cur.item[i - 1]) {
          keep[i] = 0;
          any = true;
        }
    if (any) cur = filterSteps(cur, keep);
  }
  const minLen = o.minSessionLength ?? 1;
  const minSup = o.minItemSupport ?? 1;
  for (let round = 0; ; round++) {
    let changed = false;
    if (minSup > 1) {
      const size = cur.interners[cur.itemColumn]?.size ?? 0;
      const counts = new Int32Array(size);
      for (let i = 0; i < cur.item.length; i++) counts[cur.item[i]!]!++;
      const keep = new Uint8Array(cur.item.length);
      let dropped = 0;
      for (let i = 0; i < cur.item.length; i++) {
        keep[i] = counts[cur.item[i]!]! >= minSup ? 1 : 0;
        if (!keep[i]) dropped++;
      }
      if (dropped) {
        cur = filterSteps(cur, keep);
        changed = true;
      }
    }
    if (minLen > 1) {
      const kept: number[] = [];
      const S = numSessions(cur);
      for (let s = 0; s < S; s++) if (cur.offsets[s + 1]! - cur.offsets[s]! >= minLen) kept.push(s);
      if (kept.length !== S) {
        cur = subsetSessions(cur, kept);
        changed = true;
      }
    }
    if (!o.iterateFilters || !changed) break;
  }
  return cur;
}
