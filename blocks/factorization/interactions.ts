/**
 * User-item interaction logs for ALS: a small delimited-file reader (ml-100k's u.data: user, item,
 * rating, timestamp, tab-separated, no header), a seeded synthetic generator, and the
 * leave-last-out split. Local to blocks/factorization (src/data's readers can feed `Interactions`
 * just as well).
 */
import { readFileSync, statSync } from "node:fs";
import { RecblocksError, type Issue } from "../../src/errors/issue.js";
import { mulberry32 } from "./als-trainer.js";
import { type Csr, csrFromTriplets } from "./csr.js";

/** An interaction log with ids mapped to dense indices (0-based, first-appearance order). */
export interface Interactions {
  source: string;
  users: string[]; // raw id of each dense user index
  items: string[]; // raw id of each dense item index
  user: Int32Array; // per row (file order)
  item: Int32Array;
  value: Float32Array;
  timestamp: Float64Array | null;
}

export interface ColumnsSpec {
  user?: number | string;
  item?: number | string;
  value?: number | string | null;
  timestamp?: number | string | null;
}

export interface ReadOptions {
  /** Field delimiter; default: tab if the first line has one, else comma if it has one, else whitespace. */
  delimiter?: string;
  /** Whether the first line names the columns; default: true when a column is given by name. */
  header?: boolean;
  /** Column positions (0-based) or names. Default user 0, item 1, value 2, timestamp 3 (when present). */
  columns?: ColumnsSpec;
}

class IdIndex {
  readonly ids: string[] = [];
  readonly map = new Map<string, number>();
  get(raw: string): number {
    let i = this.map.get(raw);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(raw);
      this.map.set(raw, i);
    }
    return i;
  }
}

/** Reads a delimited interaction file; every bad row is reported with file:line:col (up to 20 issues). */
export function readInteractionsFile(file: string, opts: ReadOptions = {}): Interactions {
  let text: string;
  try {
    if (statSync(file).isDirectory()) throw new Error("is a directory");
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new RecblocksError(file, [{
      code: "data_not_found", path: "", message: `Cannot read interaction file ${file}: ${(e as Error).message}.`,
      source: { file },
      hint: "Give a path relative to the recipe file or the current folder, or builtin:synthetic.",
    }]);
  }
  const lines = text.split(/\r?\n/);
  const first = lines.find((l) => l.trim() !== "") ?? "";
  const delim = opts.delimiter ?? (first.includes("\t") ? "\t" : first.includes(",") ? "," : " ");
  const split = (l: string): string[] => (delim === " " ? l.trim().split(/\s+/) : l.split(delim));
  const cols = opts.columns ?? {};
  const byName = [cols.user, cols.item, cols.value, cols.timestamp].some((c) => typeof c === "string");
  const header = opts.header ?? byName;
  const issues: Issue[] = [];
  let start = 0;
  let names: string[] = [];
  if (header) {
    while (start < lines.length && lines[start]!.trim() === "") start++;
    names = split(lines[start] ?? "").map((s) => s.trim());
    start++;
  }
  const width = split(first).length;
  const resolve = (c: number | string | null | undefined, dflt: number | null, what: string): number | null => {
    if (c === null) return null;
    if (c === undefined) return dflt !== null && dflt < width ? dflt : null;
    if (typeof c === "number") return c;
    const at = names.indexOf(c);
    if (at < 0) {
      issues.push({ code: "missing_column", path: `/columns/${what}`, message: `Column "${c}" (${what}) is not in the header of ${file}.`,
        expected: c, received: names, source: { file, line: 1, column: 1 } });
      return -1;
    }
    return at;
  };
  const cu = resolve(cols.user, 0, "user")!;
  const ci = resolve(cols.item, 1, "item")!;
  const cv = resolve(cols.value, 2, "value");
  const ct = resolve(cols.timestamp, 3, "timestamp");
  if (issues.length) throw new RecblocksError(file, issues);
  const users = new IdIndex();
  const items = new IdIndex();
  const U: number[] = [];
  const I: number[] = [];
  const V: number[] = [];
  const T: number[] = [];
  const need = Math.max(cu, ci, cv ?? 0, ct ?? 0) + 1;
  const colOf = (line: string, idx: number): number => {
    // 1-based column of field idx
    if (delim === " ") {
      const m = [...line.matchAll(/\S+/g)][idx];
      return (m?.index ?? 0) + 1;
    }
    let pos = 0;
    for (let k = 0; k < idx; k++) pos = line.indexOf(delim, pos) + 1;
    return pos + 1;
  };
  for (let ln = start; ln < lines.length; ln++) {
    const line = lines[ln]!;
    if (line.trim() === "") continue;
    const f = split(line);
    if (f.length < need) {
      issues.push({ code: "ragged_row", path: `/rows/${ln + 1}`, message: `Line ${ln + 1} has ${f.length} fields; expected at least ${need}.`,
        received: line.slice(0, 80), source: { file, line: ln + 1, column: 1 } });
    } else {
      const num = (idx: number, what: string): number => {
        const s = f[idx]!.trim();
        const x = Number(s);
        if (s === "" || !Number.isFinite(x)) {
          issues.push({ code: "invalid_number", path: `/rows/${ln + 1}/${what}`,
            message: `The ${what} on line ${ln + 1} is not a finite number.`, received: s.slice(0, 40),
            source: { file, line: ln + 1, column: colOf(line, idx) } });
          return NaN;
        }
        return x;
      };
      const v = cv === null ? 1 : num(cv, "value");
      const t = ct === null ? 0 : num(ct, "timestamp");
      if (!Number.isNaN(v) && !Number.isNaN(t)) {
        U.push(users.get(f[cu]!.trim()));
        I.push(items.get(f[ci]!.trim()));
        V.push(v);
        T.push(t);
      }
    }
    if (issues.length >= 20) break;
  }
  if (issues.length) throw new RecblocksError(file, issues);
  if (U.length === 0) {
    throw new RecblocksError(file, [{ code: "empty_data", path: "", message: `${file} holds no interactions.`, source: { file } }]);
  }
  return {
    source: file, users: users.ids, items: items.ids, user: Int32Array.from(U), item: Int32Array.from(I),
    value: Float32Array.from(V), timestamp: ct === null ? null : Float64Array.from(T),
  };
}

export interface SyntheticOptions {
  users?: number;
  items?: number;
  seed?: number;
  /** Mean interactions per user. */
  perUser?: number;
  /** Number of latent tastes. */
  groups?: number;
}

/**
 * A seeded synthetic implicit-feedback log: items have Zipf popularity and belong to one of
 * `groups` tastes; each user has a taste and picks 75% of their items within it (by popularity),
 * the rest from the whole catalogue. Raw ids are "1".."N" for items and users. Values are 1..5
 * "ratings"; timestamps increase per user.
 */
export function syntheticInteractions(o: SyntheticOptions = {}): Interactions {
  const nu = o.users ?? 1000;
  const ni = o.items ?? 500;
  const groups = o.groups ?? 10;
  const per = o.perUser ?? 20;
  const rand = mulberry32(o.seed ?? 7);
  const itemGroup = new Int32Array(ni);
  for (let i = 0; i < ni; i++) itemGroup[i] = Math.floor(rand() * groups);
  const pop = new Float64Array(ni);
  for (let i = 0; i < ni; i++) pop[i] = 1 / Math.pow(i + 1, 0.8);
  const cum = (filter: (i: number) => boolean): Float64Array => {
    const c = new Float64Array(ni);
    let s = 0;
    for (let i = 0; i < ni; i++) {
      if (filter(i)) s += pop[i]!;
      c[i] = s;
    }
    return c;
  };
  const all = cum(() => true);
  const byGroup = Array.from({ length: groups }, (_, g) => cum((i) => itemGroup[i] === g));
  const draw = (c: Float64Array): number => {
    const x = rand() * c[ni - 1]!;
    let lo = 0;
    let hi = ni - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const U: number[] = [];
  const I: number[] = [];
  const V: number[] = [];
  const T: number[] = [];
  const userIds = new IdIndex();
  const itemIds = new IdIndex();
  for (let u = 0; u < nu; u++) {
    const g = Math.floor(rand() * groups);
    const n = Math.max(3, Math.round(per * (0.5 + rand())));
    const seen = new Set<number>();
    for (let k = 0; k < n * 3 && seen.size < n; k++) {
      const i = rand() < 0.75 && byGroup[g]![ni - 1]! > 0 ? draw(byGroup[g]!) : draw(all);
      if (seen.has(i)) continue;
      seen.add(i);
      U.push(userIds.get(String(u + 1)));
      I.push(itemIds.get(String(i + 1)));
      V.push(itemGroup[i] === g ? 4 + Math.floor(rand() * 2) : 1 + Math.floor(rand() * 3));
      T.push(1_700_000_000 + u * 1000 + seen.size);
    }
  }
  return {
    source: `builtin:synthetic?users=${nu}&items=${ni}&seed=${o.seed ?? 7}`, users: userIds.ids, items: itemIds.ids,
    user: Int32Array.from(U), item: Int32Array.from(I), value: Float32Array.from(V), timestamp: Float64Array.from(T),
  };
}

/** Parses "builtin:synthetic?users=..&items=..&seed=..&perUser=..&groups=.." (`sessions` = `users`). */
export function parseSyntheticSpec(spec: string): SyntheticOptions | null {
  if (!spec.startsWith("builtin:synthetic")) return null;
  const rest = spec.slice("builtin:synthetic".length);
  const out: SyntheticOptions = {};
  if (rest === "") return out;
  const issues: Issue[] = [];
  if (!rest.startsWith("?")) {
    throw new RecblocksError(spec, [{ code: "invalid_data_spec", path: "", message: `Expected builtin:synthetic or builtin:synthetic?key=value&...`, received: spec }]);
  }
  for (const kv of rest.slice(1).split("&")) {
    const [k, v] = kv.split("=");
    const n = Number(v);
    const key = k === "sessions" ? "users" : k;
    if (!["users", "items", "seed", "perUser", "groups"].includes(key ?? "") || !Number.isInteger(n) || n < 1) {
      issues.push({ code: "invalid_data_spec", path: `/${k}`, message: `Unknown or invalid synthetic option "${kv}".`,
        expected: "users|items|seed|perUser|groups = positive integer" });
      continue;
    }
    (out as Record<string, number>)[key!] = n;
  }
  if (issues.length) throw new RecblocksError(spec, issues);
  return out;
}

/** The interactions as a users x items CSR of raw values (repeated pairs summed). */
export function toCsr(d: Interactions, rows?: ArrayLike<number>): Csr {
  if (!rows) return csrFromTriplets(d.users.length, d.items.length, d.user, d.item, d.value, "sum");
  const r = new Int32Array(rows.length);
  const c = new Int32Array(rows.length);
  const v = new Float32Array(rows.length);
  for (let k = 0; k < rows.length; k++) {
    const j = rows[k]!;
    r[k] = d.user[j]!;
    c[k] = d.item[j]!;
    v[k] = d.value[j]!;
  }
  return csrFromTriplets(d.users.length, d.items.length, r, c, v, "sum");
}

export interface LeaveLastOut {
  train: Csr; // users x items, every user and item of the log (some rows may be empty)
  trainRows: Int32Array; // which log rows are in train
  testUsers: Int32Array; // dense user ids with a held-out item
  testItems: Int32Array; // their held-out item
}

/**
 * Holds out each user's last interaction (by timestamp, ties broken by file order; file order alone
 * when there are no timestamps), for users with at least two. Every user and item stays in the
 * vocabulary (the held-out item of a user may have no training interactions).
 */
export function leaveLastOut(d: Interactions): LeaveLastOut {
  const n = d.user.length;
  const nu = d.users.length;
  const last = new Int32Array(nu).fill(-1);
  const count = new Int32Array(nu);
  for (let k = 0; k < n; k++) {
    const u = d.user[k]!;
    count[u]!++;
    const cur = last[u]!;
    if (cur < 0 || !d.timestamp || d.timestamp[k]! >= d.timestamp[cur]!) last[u] = k;
  }
  const testUsers: number[] = [];
  const testItems: number[] = [];
  const held = new Uint8Array(n);
  for (let u = 0; u < nu; u++) {
    if (count[u]! >= 2) {
      held[last[u]!] = 1;
      testUsers.push(u);
      testItems.push(d.item[last[u]!]!);
    }
  }
  const trainRows: number[] = [];
  for (let k = 0; k < n; k++) if (!held[k]) trainRows.push(k);
  const tr = Int32Array.from(trainRows);
  return { train: toCsr(d, tr), trainRows: tr, testUsers: Int32Array.from(testUsers), testItems: Int32Array.from(testItems) };
}
