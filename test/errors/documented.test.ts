/**
 * Every issue code the code base can emit has an anchor (`### code`) in docs/errors.md.
 *
 * The sources under src/ and blocks/ are read as text and the codes are collected with these patterns:
 *
 *  1. Issue objects: the value of `code: <expr>`, e.g. `{ code: "invalid_rule", path, message }`,
 *     `{ ...other, code: "non_finite_weights" }`, `code: kind === "user" ? "unknown_user" : "unknown_item"`
 *     (string literals of the expression, except the ones compared with ===, !==, ==, !=).
 *  2. Code-taking helpers, found automatically: every function, arrow function, method or class constructor
 *     with a parameter named `code`, or typed `...Code` (e.g. `code: DataIssueCode`). Its calls are matched
 *     (`name(` for functions, `new Name(` and `super(` in subclasses for classes) in the file that defines it
 *     and in the files that import it, and the string literals of the argument at the `code` position are
 *     codes, as is a default value (`code = "invalid_checkpoint"`). Today that covers, among others,
 *     `new BlockError(<path>, "x", ...)` (src/core), `failData("x", ...)` / `dataIssue("x", ...)` (src/data),
 *     `issue("x", ...)` (src/serve), `badOption("x", ...)` (src/engine, EngineError), `bad(dir, msg, "x")`
 *     (src/train/checkpoint.ts, CheckpointError), `bad(path, msg, "x")` (src/schema/merlin.ts), `mk("x", ...)`
 *     (src/schema, src/errors/ajv.ts), `fail("x", ...)` / `issue("x", ...)` (src/errors/source.ts).
 *     REQUIRED_HELPERS below makes the test fail if the detection stops finding the main ones.
 *  3. Declared code unions: `type XxxCode = "a" | "b" | ...` (e.g. DataIssueCode in src/data/errors.ts).
 *
 * Issues built with an object literal (RecblocksError, FilterError through src/recommend's `fail(subject,
 * issues)`, ModelError, ServeError, ...) are caught by pattern 1. The test also refuses to pass when it
 * collected fewer than MIN_CODES codes, so that a broken pattern cannot pass vacuously.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const SOURCE_DIRS = ["src", "blocks"];
const DOC = join(ROOT, "docs", "errors.md");
/** 122 codes were collected when this test was written (07:20 UTC, 4 Dec 2026); a floor a bit below that. */
const MIN_CODES = 110;
/** Helpers that the automatic detection of pattern 2 must find (file relative to the root, name, code position). */
const REQUIRED_HELPERS: [file: string, name: string, index: number][] = [
  ["src/core/errors.ts", "new BlockError", 1],
  ["src/data/errors.ts", "failData", 0],
  ["src/data/errors.ts", "dataIssue", 0],
  ["src/serve/server.ts", "issue", 0],
  ["src/engine/engine.ts", "badOption", 0],
  ["src/train/checkpoint.ts", "bad", 2],
];

/** An issue code: a lower-case word or several joined by "_" (e.g. "unauthorized", "data_bad_json"). */
const CODE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

interface SourceFile {
  file: string; // relative to ROOT, with "/"
  text: string; // comments blanked
}

function listSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "node_modules") out.push(...listSources(p));
    } else if (/\.(?:[cm]?ts|[cm]?js)$/.test(name) && !name.endsWith(".d.ts")) {
      out.push(p);
    }
  }
  return out.sort();
}

/**
 * Blanks comments (keeping string and template literals, and line breaks), so that an example in a doc
 * comment is not taken for a code. A `/` is taken for the start of a regex literal (whose quotes are not strings)
 * after an operator, an opening bracket or a keyword such as `return`; elsewhere it is a division.
 */
/** Keywords after which a `/` starts a regex literal (`return /x/.test(s)`), not a division. */
const REGEX_AFTER_WORD = /(?:^|[^\w$.])(?:return|typeof|case|yield|await|in|of|void|delete|instanceof|new|else|do|throw)\s*$/;

function stripComments(src: string): string {
  let out = "";
  let i = 0;
  let lastSignificant = "";
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      const start = i;
      i++;
      while (i < src.length && src[i] !== c) {
        if (src[i] === "\\") i++;
        else if (c === "`" && src[i] === "$" && src[i + 1] === "{") {
          // skip the substitution, keeping nested braces and strings balanced
          const end = skipBalanced(src, i + 1);
          i = end - 1;
        }
        i++;
      }
      i++;
      out += src.slice(start, i);
      lastSignificant = c;
      continue;
    }
    if (c === "/" && (lastSignificant === "" || "(,=:[!&|?{};+-*%<>~^".includes(lastSignificant) || REGEX_AFTER_WORD.test(out.slice(-16)))) {
      // a regex literal
      const start = i;
      i++;
      let inClass = false;
      while (i < src.length && src[i] !== "\n") {
        if (src[i] === "\\") i++;
        else if (src[i] === "[") inClass = true;
        else if (src[i] === "]") inClass = false;
        else if (src[i] === "/" && !inClass) break;
        i++;
      }
      i++;
      out += src.slice(start, i);
      lastSignificant = "/";
      continue;
    }
    out += c;
    if (!/\s/.test(c)) lastSignificant = c;
    i++;
  }
  return out;
}

/** From an opening bracket at `open`, the index just after its matching closing bracket. */
function skipBalanced(src: string, open: number): number {
  const closing: Record<string, string> = { "(": ")", "[": "]", "{": "}" };
  const stack: string[] = [];
  let i = open;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"' || c === "'" || c === "`") {
      i = skipString(src, i);
      continue;
    }
    if (c in closing) stack.push(closing[c]!);
    else if (c === ")" || c === "]" || c === "}") {
      stack.pop();
      if (stack.length === 0) return i + 1;
    }
    i++;
  }
  return src.length;
}

/** From a quote at `start`, the index just after the closing quote. */
function skipString(src: string, start: number): number {
  const q = src[start]!;
  let i = start + 1;
  while (i < src.length && src[i] !== q) {
    if (src[i] === "\\") i++;
    else if (q === "`" && src[i] === "$" && src[i + 1] === "{") i = skipBalanced(src, i + 1) - 1;
    i++;
  }
  return i + 1;
}

/** Splits the text between the brackets of a call or parameter list at its top-level commas. */
function splitTopLevel(src: string, open: number): string[] {
  const end = skipBalanced(src, open) - 1;
  const parts: string[] = [];
  let depth = 0;
  let from = open + 1;
  let i = open + 1;
  while (i < end) {
    const c = src[i]!;
    if (c === '"' || c === "'" || c === "`") {
      i = skipString(src, i);
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      parts.push(src.slice(from, i));
      from = i + 1;
    }
    i++;
  }
  const last = src.slice(from, end);
  if (last.trim() !== "" || parts.length) parts.push(last);
  return parts;
}

/** The expression after `code:` up to its top-level end (`,` `}` `)` `]` `;` or a line end at depth 0). */
function expressionAt(src: string, from: number): string {
  let depth = 0;
  let i = from;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"' || c === "'" || c === "`") {
      i = skipString(src, i);
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") {
      if (depth === 0) break;
      depth--;
    } else if ((c === "," || c === ";") && depth === 0) break;
    i++;
  }
  return src.slice(from, i);
}

/**
 * The codes an expression can evaluate to: its plain string literals ("x", 'x', `x` without substitutions)
 * that look like codes, except those compared with ===, !==, ==, != (conditions of a ternary).
 */
function codesOfExpression(expr: string): string[] {
  const out: string[] = [];
  const lit = /(["'`])((?:(?!\1)[^\\$\n]|\\.)*)\1/g;
  for (const m of expr.matchAll(lit)) {
    const before = expr.slice(0, m.index).trimEnd();
    const after = expr.slice(m.index! + m[0].length).trimStart();
    if (/[!=]=$/.test(before) || /^[!=]=/.test(after)) continue;
    if (CODE.test(m[2]!)) out.push(m[2]!);
  }
  return out;
}

interface Helper {
  file: string;
  /** "name" for functions and methods, "new Name" for classes. */
  name: string;
  /** Position of the code parameter. */
  index: number;
  exported: boolean;
}

const IDENT = "[A-Za-z_$][\\w$]*";
/** Parameter lists: `function name(`, `name = (`, `name = async (`, `name(` of a method, `constructor(` of a class. */
const FUNCTION_HEADS = [
  new RegExp(`\\bfunction\\s*\\*?\\s*(${IDENT})\\s*(?:<[^>(]*>)?\\s*\\(`, "g"),
  new RegExp(`\\b(?:const|let|var)\\s+(${IDENT})\\s*(?::[^=]+)?=\\s*(?:async\\s*)?\\(`, "g"),
  new RegExp(`^\\s*(?:(?:public|private|protected|static|async|readonly)\\s+)*(${IDENT})\\s*(?:<[^>(]*>)?\\s*\\((?=[^)]*\\bcode\\b)`, "gm"),
];

function paramName(p: string): string {
  return p.trim().replace(/^(?:public|private|protected|readonly)\s+/, "").replace(/^\.\.\./, "").split(/[?:=\s]/)[0]!;
}

function isCodeParam(p: string): boolean {
  const name = paramName(p);
  if (name === "code") return true;
  const type = /^[^:=]*:\s*([\w$.]+)/.exec(p.trim())?.[1];
  return type !== undefined && /Code$/.test(type) && !/^(?:ErrnoCode|ExitCode|StatusCode)$/.test(type);
}

function findHelpers(f: SourceFile): { helpers: Helper[]; defaults: string[] } {
  const helpers: Helper[] = [];
  const defaults: string[] = [];
  const seen = new Set<string>();
  const add = (name: string, open: number, at: number) => {
    const params = splitTopLevel(f.text, open);
    const index = params.findIndex(isCodeParam);
    if (index < 0) return;
    const p = params[index]!;
    const eq = p.indexOf("=");
    if (eq >= 0) defaults.push(...codesOfExpression(p.slice(eq + 1)));
    const key = `${name}#${index}`;
    if (seen.has(key)) return;
    seen.add(key);
    const lineStart = f.text.lastIndexOf("\n", at) + 1;
    helpers.push({ file: f.file, name, index, exported: /^\s*export\b/.test(f.text.slice(lineStart, at + 1)) });
  };
  for (const re of FUNCTION_HEADS) {
    for (const m of f.text.matchAll(re)) {
      const name = m[1]!;
      if (name === "constructor" || ["if", "for", "while", "switch", "catch", "return"].includes(name)) continue;
      add(name, m.index! + m[0].length - 1, m.index!);
    }
  }
  // class constructors: `class Name ... { ... constructor(` (the first constructor after the class head)
  for (const m of f.text.matchAll(new RegExp(`^(\\s*(?:export\\s+)?(?:abstract\\s+)?)class\\s+(${IDENT})[^{]*\\{`, "gm"))) {
    const bodyEnd = skipBalanced(f.text, m.index! + m[0].length - 1);
    const body = f.text.slice(m.index! + m[0].length, bodyEnd);
    const c = /\bconstructor\s*\(/.exec(body);
    if (!c) continue;
    const open = m.index! + m[0].length + c.index + c[0].length - 1;
    add(`new ${m[2]!}`, open, m.index! + m[1]!.length);
  }
  return { helpers, defaults };
}

function importsName(f: SourceFile, name: string): boolean {
  const bare = name.replace(/^new /, "");
  return new RegExp(`\\bimport\\s*(?:type\\s*)?\\{[^}]*\\b${bare.replace(/\$/g, "\\$")}\\b[^}]*\\}\\s*from`).test(f.text) ||
    new RegExp(`\\{[^}]*\\b${bare.replace(/\$/g, "\\$")}\\b[^}]*\\}\\s*=\\s*await\\s+import\\(`).test(f.text);
}

/** Call sites of a helper in a file: the index of each call's opening parenthesis. */
function callSites(f: SourceFile, h: Helper): number[] {
  const out: number[] = [];
  const cls = h.name.startsWith("new ") ? h.name.slice(4) : undefined;
  const re = cls
    ? new RegExp(`\\bnew\\s+${cls}\\s*(?:<[^>(]*>)?\\(`, "g")
    : new RegExp(`(?<![\\w$.]|function\\s)${h.name.replace(/\$/g, "\\$")}\\s*(?:<[^>(]*>)?\\(`, "g");
  for (const m of f.text.matchAll(re)) out.push(m.index! + m[0].length - 1);
  if (cls) {
    // super(...) in subclasses of the class
    for (const m of f.text.matchAll(new RegExp(`\\bclass\\s+${IDENT}[^{]*\\bextends\\s+${cls}\\b[^{]*\\{`, "g"))) {
      const body = f.text.slice(m.index!, skipBalanced(f.text, m.index! + m[0].length - 1));
      for (const s of body.matchAll(/\bsuper\s*\(/g)) out.push(m.index! + s.index! + s[0].length - 1);
    }
  }
  return out;
}

interface Collected {
  codes: Map<string, Set<string>>; // code -> files
  helpers: Helper[];
}

function collect(): Collected {
  const files: SourceFile[] = SOURCE_DIRS.flatMap((d) => listSources(join(ROOT, d))).map((p) => ({
    file: relative(ROOT, p).split("\\").join("/"),
    text: stripComments(readFileSync(p, "utf8")),
  }));
  const codes = new Map<string, Set<string>>();
  const add = (code: string, file: string) => {
    if (!codes.has(code)) codes.set(code, new Set());
    codes.get(code)!.add(file);
  };
  const helpers: Helper[] = [];
  for (const f of files) {
    // 1. `code: <expr>`, not `code: string` or `code?: X` type annotations (no literal there anyway)
    for (const m of f.text.matchAll(/(?<![\w$.])code\s*:/g)) {
      for (const c of codesOfExpression(expressionAt(f.text, m.index! + m[0].length))) add(c, f.file);
    }
    // 3. `type XxxCode = | "a" | "b"`
    for (const m of f.text.matchAll(new RegExp(`\\btype\\s+(${IDENT}Code)\\s*=([^;]*);`, "g"))) {
      for (const c of codesOfExpression(m[2]!)) add(c, f.file);
    }
    const found = findHelpers(f);
    helpers.push(...found.helpers);
    for (const c of found.defaults) add(c, f.file);
  }
  // 2. calls of code-taking helpers
  for (const h of helpers) {
    for (const f of files) {
      if (f.file !== h.file && !(h.exported && importsName(f, h.name))) continue;
      for (const open of callSites(f, h)) {
        const args = splitTopLevel(f.text, open);
        const arg = args[h.index];
        if (arg !== undefined) for (const c of codesOfExpression(arg)) add(c, f.file);
      }
    }
  }
  return { codes, helpers };
}

function documentedCodes(): string[] {
  return [...readFileSync(DOC, "utf8").matchAll(/^### +(.*?)\s*$/gm)].map((m) => m[1]!);
}

describe("issue codes are documented in docs/errors.md", () => {
  const { codes, helpers } = collect();
  if (process.env.RECBLOCKS_LIST_CODES) {
    console.log(helpers.map((h) => `helper ${h.file} ${h.name} #${h.index}${h.exported ? " (exported)" : ""}`).join("\n"));
    console.log([...codes].sort(([a], [b]) => a.localeCompare(b)).map(([c, f]) => `${c}  ${[...f].sort().join(", ")}`).join("\n"));
  }

  it("finds the code-taking helpers", () => {
    const found = new Set(helpers.map((h) => `${h.file} ${h.name} ${h.index}`));
    const missing = REQUIRED_HELPERS.map(([f, n, i]) => `${f} ${n} ${i}`).filter((k) => !found.has(k));
    expect(missing, `helpers not detected (the detection is broken, or a helper moved: update REQUIRED_HELPERS)`).toEqual([]);
  });

  it(`collects at least ${MIN_CODES} codes (a broken pattern must not pass vacuously)`, () => {
    expect(codes.size, [...codes.keys()].sort().join(" ")).toBeGreaterThanOrEqual(MIN_CODES);
  });

  it("every collected code has a ### heading in docs/errors.md", () => {
    const documented = new Set(documentedCodes());
    const missing = [...codes.keys()]
      .filter((c) => !documented.has(c))
      .sort()
      .map((c) => `${c}  (${[...codes.get(c)!].sort().join(", ")})`);
    expect(missing, `${missing.length} code(s) without "### code" in docs/errors.md:\n${missing.join("\n")}\n`).toEqual([]);
  });

  it("every ### heading of docs/errors.md is a snake_case code, and unique", () => {
    const headings = documentedCodes();
    const bad = headings.filter((h) => !CODE.test(h));
    expect(bad, "headings that are not snake_case codes").toEqual([]);
    const seen = new Set<string>();
    const dup = headings.filter((h) => (seen.has(h) ? true : (seen.add(h), false)));
    expect(dup, "headings given twice").toEqual([]);
  });
});
