import { failData } from "./errors.js";
import { mulberry32 } from "./rng.js";
import type { FeatureSchemaDocLike } from "./schema-doc.js";
import type { RawTable } from "./table.js";

export interface SyntheticOptions {
  /** Number of sessions (default 5000). */
  sessions: number;
  /** Number of items; raw ids are "1".."items" (default 1000). */
  items: number;
  seed: number;
  /** Number of categories, which are also the latent intents (default items/40, between 2 and 50). */
  categories: number;
  /** Number of users (default sessions/4). */
  users: number;
  /** Days the timestamps span (default 14). */
  days: number;
  /** Longest session (default 20). */
  maxLength: number;
  /** Mean session length (default 6). */
  meanLength: number;
  /** Probability that the next click follows the current item's learnable successors (default 0.7). */
  transition: number;
}

const KEYS: (keyof SyntheticOptions)[] = ["sessions", "items", "seed", "categories", "users", "days", "maxLength", "meanLength", "transition"];
export const SYNTHETIC_START = 1704067200; // 2024-01-01T00:00:00Z

export function isBuiltin(spec: string): boolean {
  return spec.startsWith("builtin:");
}

/** Parses `builtin:synthetic?sessions=5000&items=1000&seed=7` into full options. */
export function parseBuiltinSpec(spec: string): SyntheticOptions {
  const m = /^builtin:([^?]*)(?:\?(.*))?$/.exec(spec);
  const name = m?.[1] ?? "";
  if (name !== "synthetic")
    failData("data_bad_builtin", { file: spec }, `Unknown built-in data set "${name}". The built-in data set is builtin:synthetic (options: ${KEYS.join(", ")}), e.g. builtin:synthetic?sessions=5000&items=1000&seed=7.`);
  const given: Partial<Record<keyof SyntheticOptions, number>> = {};
  for (const part of (m?.[2] ?? "").split("&").filter(Boolean)) {
    const [k, v] = part.split("=") as [string, string | undefined];
    if (!KEYS.includes(k as keyof SyntheticOptions)) failData("data_bad_builtin", { file: spec, column: k }, `Unknown option "${k}" for builtin:synthetic; known options: ${KEYS.join(", ")}.`);
    const n = Number(v);
    if (v === undefined || v === "" || !Number.isFinite(n)) failData("data_bad_builtin", { file: spec, column: k }, `Option "${k}" of builtin:synthetic needs a number, got ${JSON.stringify(v ?? "")}.`);
    given[k as keyof SyntheticOptions] = n;
  }
  const sessions = given.sessions ?? 5000;
  const items = given.items ?? 1000;
  const o: SyntheticOptions = {
    sessions,
    items,
    seed: given.seed ?? 7,
    categories: given.categories ?? Math.max(2, Math.min(50, Math.round(items / 40))),
    users: given.users ?? Math.max(1, Math.round(sessions / 4)),
    days: given.days ?? 14,
    maxLength: given.maxLength ?? 20,
    meanLength: given.meanLength ?? 6,
    transition: given.transition ?? 0.7,
  };
  const ints: (keyof SyntheticOptions)[] = ["sessions", "items", "categories", "users", "maxLength"];
  for (const k of ints)
    if (!Number.isInteger(o[k]) || o[k] < 1) failData("data_bad_builtin", { file: spec, column: k }, `Option "${k}" of builtin:synthetic must be an integer >= 1, got ${o[k]}.`);
  if (o.items < 10) failData("data_bad_builtin", { file: spec, column: "items" }, `builtin:synthetic needs items >= 10, got ${o.items}.`);
  if (o.maxLength < 2) failData("data_bad_builtin", { file: spec, column: "maxLength" }, `Option "maxLength" must be >= 2, got ${o.maxLength}.`);
  if (o.categories > o.items) failData("data_bad_builtin", { file: spec, column: "categories" }, `Option "categories" (${o.categories}) cannot exceed items (${o.items}).`);
  if (!(o.transition >= 0 && o.transition <= 1)) failData("data_bad_builtin", { file: spec, column: "transition" }, `Option "transition" must be in [0, 1], got ${o.transition}.`);
  if (!(o.days > 0)) failData("data_bad_builtin", { file: spec, column: "days" }, `Option "days" must be > 0, got ${o.days}.`);
  if (!(o.meanLength >= 2)) failData("data_bad_builtin", { file: spec, column: "meanLength" }, `Option "meanLength" must be >= 2, got ${o.meanLength}.`);
  return o;
}

/** Canonical spec string of options. */
export function syntheticSpec(o: Partial<SyntheticOptions> = {}): string {
  const q = KEYS.filter((k) => o[k] !== undefined).map((k) => `${k}=${o[k]}`);
  return `builtin:synthetic${q.length ? `?${q.join("&")}` : ""}`;
}

function cdfOf(weights: Float64Array): Float64Array {
  const c = new Float64Array(weights.length);
  let s = 0;
  for (let i = 0; i < weights.length; i++) c[i] = s += weights[i]!;
  for (let i = 0; i < c.length; i++) c[i] = c[i]! / s;
  return c;
}

function sampleCdf(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Generates a click log with: Zipf item popularity; latent intents (the categories) that keep a session
 * on one category; learnable transitions (each item has three successors in its category that the next
 * click follows with probability `transition`); a categorical `category` and a continuous `price` per
 * item; sessions spread over `days` days; clicks a minute or so apart. Same options, same data.
 * Columns: session_id, user_id, item_id ("1".."N"), category, price, timestamp (epoch seconds).
 */
export function generateSynthetic(o: SyntheticOptions): RawTable {
  const rand = mulberry32(o.seed * 2654435761 + 12345);
  const N = o.items;
  const C = o.categories;
  // item -> category, popularity (Zipf over a random ranking), price
  const cat = new Int32Array(N);
  for (let i = 0; i < N; i++) cat[i] = i < C ? i : Math.floor(rand() * C);
  const rank = Int32Array.from({ length: N }, (_, i) => i);
  for (let i = N - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = rank[i]!;
    rank[i] = rank[j]!;
    rank[j] = t;
  }
  const pop = new Float64Array(N);
  for (let i = 0; i < N; i++) pop[i] = 1 / Math.pow(rank[i]! + 1, 1.05);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const catBase = Float64Array.from({ length: C }, () => Math.exp(2.5 + 1.2 * gauss()));
  const price = Float64Array.from({ length: N }, (_, i) => Math.round(catBase[cat[i]!]! * Math.exp(0.3 * gauss()) * 100) / 100);
  const members: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < N; i++) members[cat[i]!]!.push(i);
  const catCdf = members.map((m) => cdfOf(Float64Array.from(m, (i) => pop[i]!)));
  const catWeight = Float64Array.from(members, (m) => m.reduce((s, i) => s + pop[i]!, 0));
  const intentCdf = cdfOf(catWeight);
  // three successors per item, drawn by popularity within its category (not itself when possible)
  const succ = new Int32Array(N * 3);
  for (let i = 0; i < N; i++) {
    const m = members[cat[i]!]!;
    for (let k = 0; k < 3; k++) {
      let j = i;
      for (let tries = 0; tries < 10 && j === i; tries++) j = m[sampleCdf(catCdf[cat[i]!]!, rand())]!;
      if (j === i && m.length > 1) j = m[(m.indexOf(i) + 1) % m.length]!;
      succ[i * 3 + k] = j;
    }
  }
  const sessionId: number[] = [];
  const userId: number[] = [];
  const itemId: string[] = [];
  const category: number[] = [];
  const priceCol: number[] = [];
  const time: number[] = [];
  const pLen = 1 / (o.meanLength - 1); // geometric extra clicks beyond the first
  for (let s = 0; s < o.sessions; s++) {
    let len = 2;
    while (len < o.maxLength && rand() > pLen) len++;
    const user = 1 + Math.floor(rand() * o.users);
    let t = SYNTHETIC_START + Math.floor(rand() * o.days * 86400);
    let c = sampleCdf(intentCdf, rand());
    let cur = members[c]![sampleCdf(catCdf[c]!, rand())]!;
    for (let step = 0; step < len; step++) {
      if (step > 0) {
        const u = rand();
        if (u < o.transition) {
          const v = rand();
          cur = succ[cur * 3 + (v < 0.6 ? 0 : v < 0.85 ? 1 : 2)]!;
        } else if (u < o.transition + (1 - o.transition) * 0.7) {
          cur = members[c]![sampleCdf(catCdf[c]!, rand())]!;
        } else {
          c = sampleCdf(intentCdf, rand());
          cur = members[c]![sampleCdf(catCdf[c]!, rand())]!;
        }
        t += 5 + Math.floor(-Math.log(1 - rand()) * 60);
      }
      sessionId.push(s + 1);
      userId.push(user);
      itemId.push(String(cur + 1));
      category.push(cat[cur]! + 1);
      priceCol.push(price[cur]!);
      time.push(t);
    }
  }
  const spec = syntheticSpec(o);
  return {
    file: spec,
    format: "csv",
    columns: ["session_id", "user_id", "item_id", "category", "price", "timestamp"],
    data: { session_id: sessionId, user_id: userId, item_id: itemId, category, price: priceCol, timestamp: time },
    rows: itemId.length,
    skipped: 0,
  };
}

/** The feature schema of builtin:synthetic (ours, contracts.md). Cardinalities are raw-domain max + 1. */
export function syntheticFeatureSchema(opts: Partial<SyntheticOptions> | string = {}): FeatureSchemaDocLike {
  const o = typeof opts === "string" ? parseBuiltinSpec(opts) : parseBuiltinSpec(syntheticSpec(opts));
  return {
    version: 1,
    columns: [
      { name: "session_id", dtype: "int64", tags: ["session-id", "categorical"], cardinality: o.sessions + 1, min: 1, max: o.sessions },
      { name: "user_id", dtype: "int64", tags: ["user-id", "categorical", "context"], cardinality: o.users + 1, min: 1, max: o.users },
      { name: "item_id", dtype: "string", tags: ["item-id", "categorical", "list"], cardinality: o.items + 1, min: 1, max: o.items, valueCount: { min: 2, max: o.maxLength } },
      { name: "category", dtype: "int64", tags: ["categorical", "list"], cardinality: o.categories + 1, min: 1, max: o.categories, valueCount: { min: 2, max: o.maxLength } },
      { name: "price", dtype: "float64", tags: ["continuous", "list"], valueCount: { min: 2, max: o.maxLength } },
      { name: "timestamp", dtype: "int64", tags: ["timestamp", "list"], valueCount: { min: 2, max: o.maxLength } },
    ],
  };
}
