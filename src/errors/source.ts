import { readFileSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from "yaml";
import type { Issue, SourceLocation } from "./issue.js";
import { fromPointer } from "./pointer.js";

/** Files larger than this are refused before parsing (a recipe or schema is a few kilobytes). */
export const MAX_SOURCE_BYTES = 4 * 1024 * 1024;
/** Deeper nesting than this is refused (real recipes nest < 15 levels). */
export const MAX_DEPTH = 64;

/** A parsed YAML or JSON document that remembers where every value came from. */
export interface ParsedSource {
  /** The file as shown to people (relative to the working directory when inside it). */
  file: string;
  /** The plain value (undefined when parsing failed). */
  value: unknown;
  /** Problems found while reading or parsing; empty when `value` is usable. */
  issues: Issue[];
  /**
   * Where the value at a JSON Pointer is written. With `key: true`, the key of the last segment.
   * Falls back to the nearest ancestor that exists, then to line 1.
   */
  locate(pointer: string, opts?: { key?: boolean }): SourceLocation;
}

/** A path as shown in messages: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  if (file.startsWith("builtin:") || file === "<inline>" || file === "<text>") return file;
  const abs = resolve(file);
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel.split("\\").join("/") : abs;
}

/** Read and parse a YAML or JSON file. Never throws for user errors: problems are issues. */
export function readSource(file: string, opts: { maxBytes?: number } = {}): ParsedSource & { text?: string } {
  const shown = displayPath(file);
  const fail = (code: string, message: string, hint?: string) => failed(shown, [{ code, path: "", message, ...(hint ? { hint } : {}), source: { file: shown } }]);
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) return fail("file_not_found", `"${shown}" is a folder, not a file.`);
    size = st.size;
  } catch {
    return fail("file_not_found", `File "${shown}" does not exist.`, "Check the path; paths in a recipe are relative to the recipe file.");
  }
  const max = opts.maxBytes ?? MAX_SOURCE_BYTES;
  if (size > max) {
    return fail("file_too_large", `File "${shown}" is ${(size / 1048576).toFixed(1)} MiB; recipes and feature schemas are limited to ${(max / 1048576).toFixed(0)} MiB.`, "Is this the right file? Data files go in data.train, not here.");
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return fail("file_not_found", `File "${shown}" cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}).`);
  }
  return { ...parseSource(text, shown, { json: /\.json$/i.test(file) }), text };
}

function failed(file: string, issues: Issue[]): ParsedSource {
  return { file, value: undefined, issues, locate: () => ({ file, line: 1, column: 1 }) };
}

/**
 * Parse YAML (or JSON, which is read as YAML after a strict JSON syntax check) keeping positions.
 * Duplicate keys, syntax errors, several documents, unresolved tags, empty input and too deep
 * nesting are issues.
 */
export function parseSource(text: string, file: string, opts: { json?: boolean; maxDepth?: number } = {}): ParsedSource {
  const lc = new LineCounter();
  const at = (offset: number): SourceLocation => {
    const p = lc.linePos(Math.max(0, Math.min(offset, text.length)));
    return { file, line: p.line, column: p.col };
  };
  const issue = (code: string, message: string, offset: number, hint?: string): Issue => ({
    code,
    path: "",
    message,
    ...(hint ? { hint } : {}),
    source: at(offset),
  });
  if (text.length > MAX_SOURCE_BYTES) {
    return failed(file, [{ code: "file_too_large", path: "", message: `The text is ${(text.length / 1048576).toFixed(1)} MiB; recipes and feature schemas are limited to ${MAX_SOURCE_BYTES / 1048576} MiB.`, source: { file, line: 1, column: 1 } }]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false, prettyErrors: false, strict: true, keepSourceTokens: false, logLevel: "error" });
  } catch (err) {
    if (err instanceof RangeError) return failed(file, [issue("too_deeply_nested", `The document nests too deeply to read (more than ${opts.maxDepth ?? MAX_DEPTH} levels).`, 0)]);
    throw err;
  }
  const issues: Issue[] = [];
  if (opts.json) {
    try {
      JSON.parse(text);
    } catch (err) {
      const msg = String((err as Error).message);
      const m = /position (\d+)/.exec(msg);
      const lcm = /line (\d+) column (\d+)/.exec(msg);
      let loc: SourceLocation = m ? at(Number(m[1])) : { file, line: 1, column: 1 };
      if (lcm) loc = { file, line: Number(lcm[1]), column: Number(lcm[2]) };
      const what = msg.replace(/^JSON\.parse: /, "").replace(/ in JSON at position \d+.*$/s, "").replace(/ at line \d+ column \d+.*$/s, "").replace(/^Unexpected end of JSON input$/, "Unexpected end of the text");
      issues.push({ code: "json_syntax_error", path: "", message: `JSON syntax error: ${what}.`, hint: "JSON needs double-quoted keys, commas between entries and no trailing commas; or write the file as YAML.", source: loc });
      return failed(file, issues);
    }
  }
  const overflow = [...doc.errors, ...doc.warnings].find((e) => /call stack/i.test(e.message));
  if (overflow) return failed(file, [issue("too_deeply_nested", `The document nests too deeply to read (more than ${opts.maxDepth ?? MAX_DEPTH} levels).`, overflow.pos[0], "Recipes nest a few levels; this looks like generated or corrupted content.")]);
  const seen = new Set<string>();
  for (const e of [...doc.errors, ...doc.warnings]) {
    const offset = e.pos[0];
    const key = String(offset);
    if (seen.has(key)) continue;
    seen.add(key);
    const first = e.message.split("\n")[0]!.replace(/\s+at line \d+, column \d+:?$/, "");
    if (e.code === "DUPLICATE_KEY") {
      const m = /^\s*("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^:\n]*)/.exec(text.slice(e.pos[0], e.pos[0] + 200));
      const keyText = (m?.[1] ?? "").trim().replace(/^["']|["']$/g, "");
      issues.push(issue("duplicate_key", `The key "${keyText.slice(0, 60)}" appears more than once in this mapping.`, offset, "Keep one of them; later entries would otherwise silently win."));
    } else if (e.code === "MULTIPLE_DOCS") {
      issues.push(issue("multiple_documents", "The file holds several YAML documents (separated by ---); a recipe or schema is one document.", offset, "Remove the extra --- line or split the file."));
    } else if (e.code === "RESOURCE_EXHAUSTION") {
      issues.push(issue("too_deeply_nested", `The document uses too many aliases (${first}).`, offset));
    } else if (e.code === "TAG_RESOLVE_FAILED") {
      issues.push(issue("yaml_syntax_error", `YAML tag not supported: ${first}.`, offset, "Remove the !tag; recipes use plain YAML values."));
    } else {
      issues.push(issue(opts.json ? "json_syntax_error" : "yaml_syntax_error", `${opts.json ? "JSON" : "YAML"} syntax error: ${first.replace(/\.$/, "")}.`, offset, e.code === "TAB_AS_INDENT" ? "Indent with spaces, not tabs." : undefined));
    }
  }
  // Duplicate keys are found here with one Set per mapping: yaml's own uniqueKeys check compares each
  // key with every earlier one (quadratic: minutes for a file with 60,000 keys).
  if (doc.contents && !overflow) {
    for (const dup of findDuplicateKeys(doc.contents as YamlNode)) {
      const keyText = keyString(dup.key) ?? "";
      issues.push(issue("duplicate_key", `The key "${keyText.slice(0, 60)}" appears more than once in this mapping.`, dup.offset, "Keep one of them; later entries would otherwise silently win."));
    }
    issues.sort((a, b) => ((a.source?.line ?? 0) - (b.source?.line ?? 0)) || ((a.source?.column ?? 0) - (b.source?.column ?? 0)));
  }
  if (issues.length) return withLocate(file, undefined, issues, doc, at);
  const contents = doc.contents as YamlNode | null;
  if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === "") && !text.trim().replace(/^#.*$/gm, "").trim())) {
    return failed(file, [issue("empty_file", "The file is empty.", 0, "A recipe starts with `version: 1`; see docs/recipes.md.")]);
  }
  const deep = findTooDeep(contents, opts.maxDepth ?? MAX_DEPTH);
  if (deep) return failed(file, [issue("too_deeply_nested", `The document nests more than ${opts.maxDepth ?? MAX_DEPTH} levels deep here.`, deep.range?.[0] ?? 0, "Recipes nest a few levels; this looks like generated or corrupted content.")]);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    if (err instanceof RangeError) return failed(file, [issue("too_deeply_nested", "The document nests too deeply to read.", 0)]);
    const e = err as { code?: string; message?: string };
    if (e.code === "RESOURCE_EXHAUSTION" || /alias/i.test(String(e.message))) return failed(file, [issue("too_deeply_nested", "The document uses too many aliases.", 0)]);
    throw err;
  }
  return withLocate(file, value, issues, doc, at);
}

function findTooDeep(root: YamlNode, maxDepth: number): YamlNode | undefined {
  const stack: [YamlNode, number][] = [[root, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) return node;
    if (isMap(node)) {
      for (const p of node.items) if (isPair(p) && p.value && typeof p.value === "object") stack.push([p.value as YamlNode, depth + 1]);
    } else if (isSeq(node)) {
      for (const it of node.items) if (it && typeof it === "object") stack.push([it as YamlNode, depth + 1]);
    }
  }
  return undefined;
}

/** Every key that repeats an earlier key of the same mapping, with the offset of the repeat. */
function findDuplicateKeys(root: YamlNode): { key: unknown; offset: number }[] {
  const out: { key: unknown; offset: number }[] = [];
  const stack: YamlNode[] = [root];
  while (stack.length) {
    const node = stack.pop()!;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const p of node.items) {
        if (!isPair(p)) continue;
        const k = keyString(p.key);
        if (k !== undefined) {
          if (seen.has(k)) out.push({ key: p.key, offset: (p.key as YamlNode | null)?.range?.[0] ?? 0 });
          else seen.add(k);
        }
        if (p.value && typeof p.value === "object") stack.push(p.value as YamlNode);
      }
    } else if (isSeq(node)) {
      for (const it of node.items) if (it && typeof it === "object") stack.push(it as YamlNode);
    }
  }
  return out;
}

function keyString(k: unknown): string | undefined {
  if (isScalar(k)) return String(k.value);
  if (k === null || k === undefined) return undefined;
  if (typeof k !== "object") return String(k);
  return String(k);
}

function withLocate(file: string, value: unknown, issues: Issue[], doc: Document.Parsed, at: (o: number) => SourceLocation): ParsedSource {
  // First pair of each key, per mapping, built on first use (an issue per key of a huge mapping stays linear).
  const index = new WeakMap<object, Map<string, { key: unknown; value: unknown }>>();
  const pairOf = (m: { items: { key: unknown; value: unknown }[] }, seg: string) => {
    let byKey = index.get(m);
    if (!byKey) {
      byKey = new Map();
      for (const p of m.items) {
        const k = keyString(p.key);
        if (k !== undefined && !byKey.has(k)) byKey.set(k, p);
      }
      index.set(m, byKey);
    }
    return byKey.get(seg);
  };
  const locate = (pointer: string, opts?: { key?: boolean }): SourceLocation => {
    let node: unknown = doc.contents;
    let best: { range?: [number, number, number] | null } | undefined = node as YamlNode;
    const segs = fromPointer(pointer);
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = pairOf(node as unknown as { items: { key: unknown; value: unknown }[] }, seg);
        if (!pair) break;
        if (i === segs.length - 1 && opts?.key && pair.key && typeof pair.key === "object") {
          best = pair.key as YamlNode;
          break;
        }
        node = pair.value;
        if (node && typeof node === "object" && (node as YamlNode).range) best = node as YamlNode;
        else if (pair.key && typeof pair.key === "object") best = pair.key as YamlNode;
        else break;
      } else if (isSeq(node)) {
        const idx = Number(seg);
        const item = Number.isInteger(idx) ? node.items[idx] : undefined;
        if (!item || typeof item !== "object") break;
        node = item;
        best = item as YamlNode;
      } else break;
    }
    const offset = best?.range?.[0];
    return offset === undefined ? { file, line: 1, column: 1 } : at(offset);
  };
  return { file, value, issues, locate };
}
