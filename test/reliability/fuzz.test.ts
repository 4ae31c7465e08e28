/**
 * Fuzzing the front doors: thousands of mutated recipes, feature schemas and data files (random keys,
 * types and sizes, unicode, deep nesting, `__proto__` / `constructor` keys, YAML and JSON text
 * mutations, malformed rows) go through the recipe pipeline that `recblocks validate` runs
 * (validateRecipeText), the feature-schema checker and the data readers (loadRecipeData). Each must be
 * accepted, or rejected with located issues (every issue has a code, a message and a path); the only
 * exception allowed out is a RecblocksError; no case may take long; Object.prototype must be untouched.
 * Seeded: the same cases every run. The counts are printed.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRecipeData } from "../../src/data/index.js";
import type { Issue } from "../../src/errors/issue.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { parseSource } from "../../src/errors/source.js";
import { mulberry32 } from "../../src/masking/index.js";
import { validateRecipeText } from "../../src/recipe/load.js";
import { featureSchemaFromParsed } from "../../src/schema/feature-schema.js";
import { ROOT } from "./helpers.js";

const SEED = 20261204;
const RECIPE_CASES = 1200;
const SCHEMA_CASES = 600;
const DATA_CASES = 500;
/** A single case taking longer than this is a hang. */
const SLOW_MS = 5000; // generous: the test machine may be loaded; a hang is far beyond it

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Rng = { next(): number };

const rng: Rng = mulberry32(SEED);
const int = (n: number) => Math.floor(rng.next() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
const chance = (p: number) => rng.next() < p;

const WEIRD_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__", "", " ", "ключ", "键", "🔥", "a.b", "a/b", "~1", "$ref", "$schema", "0", "-1", "NaN", "type", "name", "version", "model", "train", "data", "features", "columns", "body", "head", "inputs"];
const WEIRD_STRINGS = ["", " ", "\t", "\u0000", "\u202e", "\ud800", "😀".repeat(3), "a".repeat(5000), "builtin:synthetic", "builtin:nope", "builtin:synthetic?sessions=-1", "../../../../etc/passwd", "/dev/zero", "C:\\x", "${HOME}", "%s%n", "null", "true", "1e309", "-0", "0x1F", "NaN", "Infinity", "transformer", "gpt2", "adam", "item-id", "categorical", "list", "int64", "<script>"];
const WEIRD_NUMBERS = [0, -0, 1, -1, 2, 3, 0.5, 1e-300, 1e308, -1e308, 2 ** 31, 2 ** 53 + 1, -(2 ** 31), 1e9, 1e6, 123456789, 0.1];

function randomScalar(): Json {
  switch (int(4)) {
    case 0:
      return pick(WEIRD_NUMBERS);
    case 1:
      return pick(WEIRD_STRINGS);
    case 2:
      return pick([true, false, null]);
    default:
      return String.fromCodePoint(...Array.from({ length: 1 + int(8) }, () => (chance(0.3) ? 0x80 + int(0xffff - 0x80) : 0x20 + int(0x5e)))).replace(/[\ud800-\udfff]/g, "x");
  }
}

function randomValue(depth = 0): Json {
  const r = int(10);
  if (depth > 4 || r < 6) return randomScalar();
  if (r < 8) return Array.from({ length: int(4) }, () => randomValue(depth + 1));
  const o: Record<string, Json> = {};
  for (let i = int(4); i > 0; i--) setOwn(o, chance(0.5) ? pick(WEIRD_KEYS) : String(randomScalar()).slice(0, 20), randomValue(depth + 1));
  return o;
}

/** Sets an own property, even "__proto__" (as JSON.parse would make it). */
function setOwn(o: Record<string, Json>, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function deepNest(levels: number, asArray: boolean): Json {
  let v: Json = 1;
  for (let i = 0; i < levels; i++) v = asArray ? [v] : { a: v };
  return v;
}

/** All [container, key] slots of a JSON value. */
function slots(v: Json, out: [Record<string, Json> | Json[], string | number][] = []): [Record<string, Json> | Json[], string | number][] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)));
  else if (v && typeof v === "object") for (const k of Object.keys(v)) out.push([v, k]), slots(v[k]!, out);
  return out;
}

/** A structural mutation of a parsed document (in place on a copy). */
function mutateTree(doc: Json): Json {
  const d = JSON.parse(JSON.stringify(doc)) as Json;
  const n = 1 + int(3);
  for (let i = 0; i < n; i++) {
    const all = slots(d);
    if (all.length === 0) return randomValue();
    const [c, k] = pick(all);
    const set = (v: Json) => (Array.isArray(c) ? (c[k as number] = v) : setOwn(c, k as string, v));
    switch (int(9)) {
      case 0:
        set(randomScalar());
        break;
      case 1:
        set(randomValue());
        break;
      case 2:
        if (Array.isArray(c)) c.splice(k as number, 1);
        else delete c[k as string];
        break;
      case 3: {
        const target = Array.isArray(c) ? c : c;
        if (Array.isArray(target)) target.push(randomValue());
        else setOwn(target, pick(WEIRD_KEYS), randomValue());
        break;
      }
      case 4:
        set(deepNest(chance(0.1) ? 300 : 5 + int(40), chance(0.5))); // deep ones are slow to report: a few
        break;
      case 5: // a prototype-pollution payload where a mapping is expected
        if (!Array.isArray(c)) setOwn(c, pick(["__proto__", "constructor", "prototype"]), { polluted: "yes", prototype: { polluted: "yes" } } as Json);
        break;
      case 6: // a big list
        set(Array.from({ length: chance(0.1) ? 5000 : int(300) }, (_, j) => j));
        break;
      case 7: {
        // type swap: number <-> string, list <-> mapping
        const v = Array.isArray(c) ? c[k as number] : c[k as string];
        set(typeof v === "number" ? String(v) : typeof v === "string" ? Number(v) || v.length : Array.isArray(v) ? Object.fromEntries(v.map((x, j) => [String(j), x])) : v && typeof v === "object" ? Object.values(v) : [v ?? null]);
        break;
      }
      default:
        set(pick(WEIRD_NUMBERS));
    }
  }
  return d;
}

const TEXT_INSERTS = [":", ": ", "- ", "{", "}", "[", "]", ",", "#", "&a ", "*a", "!!binary ", "!!js/function ", "? ", "|", ">", "'", '"', "\\", "\t", "\n", "\n  ", "\r\n", "\u0000", "\ufeff", "\u2028", "%YAML 1.1\n", "---\n", "...\n", "<<: *a\n", "__proto__: {polluted: yes}\n", '"__proto__": {"polluted": "yes"}', "constructor: {prototype: {polluted: yes}}\n", "😀", "é", "\ud83d"];

/** A text mutation (any text, not necessarily parseable). */
function mutateText(t: string): string {
  const n = 1 + int(4);
  for (let i = 0; i < n; i++) {
    const at = int(t.length + 1);
    switch (int(8)) {
      case 0:
        t = t.slice(0, at) + pick(TEXT_INSERTS) + t.slice(at);
        break;
      case 1:
        t = t.slice(0, at) + t.slice(at + 1 + int(20));
        break;
      case 2:
        t = t.slice(0, at); // truncated
        break;
      case 3: {
        const lines = t.split("\n");
        const j = int(lines.length);
        lines.splice(int(lines.length), 0, lines[j]!); // duplicate a line (duplicate keys)
        t = lines.join("\n");
        break;
      }
      case 4: {
        const lines = t.split("\n");
        const j = int(lines.length);
        lines[j] = (chance(0.5) ? " " : "") + lines[j]!.replace(/^ /, chance(0.5) ? "" : "   "); // indentation
        t = lines.join("\n");
        break;
      }
      case 5:
        t = t.slice(0, at) + String.fromCharCode(int(0x3000)) + t.slice(at + 1);
        break;
      case 6: // an alias bomb, bounded
        t = `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n` + t;
        break;
      default:
        t = t.slice(0, at) + "[".repeat(chance(0.1) ? 3000 : int(100)) + t.slice(at);
    }
  }
  return t;
}

/** Each issue must be located and explained. Returns what is wrong, if anything. */
function badIssues(issues: Issue[]): string | undefined {
  if (!Array.isArray(issues)) return "issues is not an array";
  for (const i of issues) {
    if (typeof i.code !== "string" || !/^[a-z][a-z0-9_]*$/.test(i.code)) return `issue without a snake_case code: ${JSON.stringify(i).slice(0, 300)}`;
    if (typeof i.message !== "string" || i.message.trim() === "") return `issue without a message: ${JSON.stringify(i).slice(0, 300)}`;
    if (typeof i.path !== "string" || (i.path !== "" && !i.path.startsWith("/"))) return `issue without a JSON Pointer path: ${JSON.stringify(i).slice(0, 300)}`;
  }
  return undefined;
}

interface Tally {
  cases: number;
  accepted: number;
  rejected: number;
  failures: string[];
  slowest: number;
}
const tally = (): Tally => ({ cases: 0, accepted: 0, rejected: 0, failures: [], slowest: 0 });

async function runCase(t: Tally, label: string, input: string, body: () => Issue[] | undefined | Promise<Issue[] | undefined>): Promise<void> {
  t.cases++;
  const t0 = performance.now();
  let issues: Issue[] | undefined;
  try {
    issues = await body();
  } catch (e) {
    if (e instanceof RecblocksError) issues = e.issues.length ? e.issues : [{ code: "", path: "", message: "RecblocksError without issues" } as Issue];
    else {
      t.failures.push(`${label}: uncaught ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message ?? e).slice(0, 200)}\n  input: ${JSON.stringify(input.slice(0, 400))}`);
      return;
    }
  }
  const ms = performance.now() - t0;
  t.slowest = Math.max(t.slowest, ms);
  if (ms > SLOW_MS) t.failures.push(`${label}: took ${ms.toFixed(0)} ms\n  input: ${JSON.stringify(input.slice(0, 400))}`);
  if (issues && issues.length) {
    t.rejected++;
    const bad = badIssues(issues);
    if (bad) t.failures.push(`${label}: ${bad}\n  input: ${JSON.stringify(input.slice(0, 400))}`);
  } else t.accepted++;
}

let tmp: string;
let protoBefore: string[];
const totals: Record<string, Tally> = {};

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "rb-fuzz-"));
  protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  const lines = Object.entries(totals).map(([k, t]) => `${k}: ${t.cases} cases, ${t.accepted} accepted, ${t.rejected} rejected with located issues, slowest ${t.slowest.toFixed(0)} ms`);
  console.log(`fuzz (seed ${SEED}):\n  ${lines.join("\n  ")}\n  total ${Object.values(totals).reduce((s, t) => s + t.cases, 0)} inputs`);
});

function expectClean(t: Tally): void {
  expect(t.failures.slice(0, 5).join("\n")).toBe("");
  // prototype pollution: Object.prototype has exactly the properties it had, and {} holds nothing new
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
}

describe("fuzz", () => {
  it(`${RECIPE_CASES} mutated recipes through the validate pipeline`, async () => {
    const dir = join(ROOT, "recipes");
    const fixtures = join(ROOT, "test/fixtures/recipes/valid");
    const bases = [...readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(dir, f)), ...readdirSync(fixtures).map((f) => join(fixtures, f))].map((f) => {
      const text = readFileSync(f, "utf8");
      return { file: f, text, parsed: parseSource(text, f).value as Json };
    });
    const t = (totals.recipes = tally());
    for (let i = 0; i < RECIPE_CASES; i++) {
      const base = pick(bases);
      const parsed = base.parsed;
      const r = int(3);
      let text: string;
      let json = false;
      if (r === 0) text = mutateText(base.text);
      else {
        const doc = mutateTree(parsed);
        json = chance(0.5);
        text = json ? JSON.stringify(doc, null, chance(0.5) ? 2 : undefined) : toYaml(doc, { aliasDuplicateObjects: false });
        if (r === 2) text = mutateText(text);
      }
      // as if the file sat next to the base (relative features paths resolve the same way)
      const file = base.file.replace(/\.(ya?ml|json)$/, json ? ".fuzz.json" : ".fuzz.yaml");
      await runCase(t, `recipe ${i} (from ${base.file.slice(ROOT.length + 1)})`, text, () => validateRecipeText(text, file).issues);
    }
    expectClean(t);
  }, 60_000);

  it(`${SCHEMA_CASES} mutated feature schemas`, async () => {
    const bases = [join(ROOT, "recipes/features/sessions.yaml"), join(ROOT, "test/fixtures/schemas/features/synthetic.yaml"), ...readdirSync(join(ROOT, "test/fixtures/schemas/merlin")).map((f) => join(ROOT, "test/fixtures/schemas/merlin", f))]
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .map((f) => {
        const text = readFileSync(f, "utf8");
        return { file: f, text, parsed: parseSource(text, f).value as Json };
      });
    const t = (totals["feature schemas"] = tally());
    for (let i = 0; i < SCHEMA_CASES; i++) {
      const base = pick(bases);
      const parsed = base.parsed;
      const text = chance(0.4) ? mutateText(base.text) : (chance(0.5) ? (s: string) => s : mutateText)(chance(0.5) ? JSON.stringify(mutateTree(parsed)) : toYaml(mutateTree(parsed), { aliasDuplicateObjects: false }));
      await runCase(t, `schema ${i} (from ${base.file.slice(ROOT.length + 1)})`, text, () => featureSchemaFromParsed(parseSource(text, "fuzz-schema.yaml")).issues);
    }
    expectClean(t);
  }, 60_000);

  it(`${DATA_CASES} mutated data files through the readers`, async () => {
    const dataDir = join(ROOT, "test/fixtures/data");
    const bases = ["side-features.csv", "events.jsonl", "session-table.jsonl", "sessions.txt", "quoted.csv", "ratings.tsv"].map((f) => ({ name: f, text: readFileSync(join(dataDir, f), "utf8") }));
    const schema = { version: 1, columns: [{ name: "price", dtype: "float64", tags: ["continuous"] }, { name: "age", dtype: "float64", tags: ["continuous", "context"] }] };
    const CELLS = ["", "NaN", "inf", "-Infinity", "1e39", "1e-400", "0x10", "１２", "null", "\"", "\"\"", ",", ";", "\t", "\n", "\r", "é", "😀", "\u0000", "[1,2", "{\"a\":", "[]", "{}", "true", "-1", "99999999999999999999", "__proto__", "constructor"];
    const t = (totals["data files"] = tally());
    const d = join(tmp, "data");
    mkdirSync(d);
    for (let i = 0; i < DATA_CASES; i++) {
      const base = pick(bases);
      let text = base.text;
      const n = 1 + int(4);
      for (let j = 0; j < n; j++) {
        const at = int(text.length + 1);
        switch (int(4)) {
          case 0:
            text = text.slice(0, at) + pick(CELLS) + text.slice(at);
            break;
          case 1:
            text = text.slice(0, at) + text.slice(at + 1 + int(10));
            break;
          case 2: {
            const lines = text.split("\n");
            lines.splice(1 + int(Math.max(1, lines.length - 1)), 0, lines[int(lines.length)]!.split(/([,\t ])/).map((c) => (chance(0.3) && !/^[,\t ]$/.test(c) ? pick(CELLS) : c)).join(""));
            text = lines.join("\n");
            break;
          }
          default:
            text = text.slice(0, at);
        }
      }
      const file = join(d, `case-${i}-${base.name}`);
      writeFileSync(file, text);
      const withSchema = chance(0.5) && base.name.endsWith(".csv");
      await runCase(t, `data ${i} (from ${base.name})`, text, async () => {
        await loadRecipeData({ train: file, ...(base.name === "sessions.txt" ? { format: "sessions-text" } : {}) } as never, withSchema ? (schema as never) : undefined);
        return undefined;
      });
      rmSync(file);
    }
    expectClean(t);
  }, 60_000);
});
