/**
 * Merlin / TensorFlow-Metadata `schema.pbtxt`: the `Schema` protobuf message in protobuf text format, as
 * NVTabular writes it next to its parquet files (snake_case fields: `feature { name: "item_id" type: INT
 * int_domain { ... } value_count { ... } annotation { tag: "item_id" extra_metadata { ... } } }`).
 *
 * A small tokenizer and parser of the text format (comments, strings with C escapes and adjacent-string
 * concatenation, numbers, enum identifiers, `field: value`, `field { ... }` / `field < ... >`, `[a, b]`
 * lists, `[type.url/Name] { ... }` expanded Any) turn the file into the plain document of the protobuf
 * JSON mapping that ./merlin.ts reads (camelCase keys, repeated fields as arrays), remembering the
 * line:column of every value so that issues found later point into the .pbtxt. `annotation.extra_metadata`
 * (a `google.protobuf.Any` holding a `google.protobuf.Struct`) is read in both forms protobuf writes: the
 * expanded `[type.googleapis.com/google.protobuf.Struct] { fields { key: .. value { .. } } }` and
 * `type_url: ".." value: "<serialized Struct bytes>"`; it becomes a plain object, as in schema.json.
 * The writer does the reverse (extra_metadata in the expanded form).
 */
import { readFileSync, statSync } from "node:fs";
import type { Issue, SourceLocation } from "../errors/issue.js";
import { fromPointer, toPointer } from "../errors/pointer.js";
import { displayPath, MAX_SOURCE_BYTES, type ParsedSource } from "../errors/source.js";
import type { MerlinSchema } from "./merlin.js";

interface Pos {
  line: number;
  column: number;
}

type TokenKind = "ident" | "number" | "string" | "punct" | "eof";
interface Token extends Pos {
  kind: TokenKind;
  text: string;
  /** string tokens: the bytes after escapes (adjacent strings concatenated). */
  bytes?: Uint8Array;
}

/** A syntax error at a position of the text. */
class PbtxtError extends Error {
  constructor(
    readonly pos: Pos,
    message: string,
    readonly code = "pbtxt_syntax",
  ) {
    super(message);
  }
}

const PUNCT = new Set(["{", "}", "<", ">", ":", "[", "]", ",", ";", "/"]);
const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92, "'": 39, '"': 34, "?": 63 };

/** The tokens of a protobuf text (comments and whitespace dropped). */
function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (at = i): Pos => ({ line, column: at - lineStart + 1 });
  const utf8 = new TextEncoder();
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    const start = pos();
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      out.push({ kind: "ident", text: text.slice(i, j), ...start });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(text[i + 1] ?? ""))) {
      const m = /^(0[xX][0-9A-Fa-f]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?)/.exec(text.slice(i, i + 400))!;
      const after = text[i + m[0].length] ?? "";
      if (/[A-Za-z0-9_.]/.test(after)) throw new PbtxtError(pos(i + m[0].length), `Unexpected "${after}" in the number "${m[0]}${after}".`);
      out.push({ kind: "number", text: m[0], ...start });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      const bytes: number[] = [];
      let j = i + 1;
      for (;;) {
        if (j >= text.length || text[j] === "\n") throw new PbtxtError(start, "This string is not closed (a string ends on its line with the quote it started with).");
        const ch = text[j]!;
        if (ch === c) break;
        if (ch !== "\\") {
          const cp = text.codePointAt(j)!;
          const s = String.fromCodePoint(cp);
          bytes.push(...utf8.encode(s));
          j += s.length;
          continue;
        }
        const e = text[j + 1] ?? "";
        if (e in SIMPLE_ESCAPES) {
          bytes.push(SIMPLE_ESCAPES[e]!);
          j += 2;
        } else if (/[0-7]/.test(e)) {
          const m = /^[0-7]{1,3}/.exec(text.slice(j + 1))![0];
          bytes.push(parseInt(m, 8) & 0xff);
          j += 1 + m.length;
        } else if (e === "x" || e === "X") {
          const m = /^[0-9A-Fa-f]{1,2}/.exec(text.slice(j + 2));
          if (!m) throw new PbtxtError(pos(j), "\\x must be followed by 1 or 2 hexadecimal digits.");
          bytes.push(parseInt(m[0], 16));
          j += 2 + m[0].length;
        } else if (e === "u" || e === "U") {
          const n = e === "u" ? 4 : 8;
          const h = text.slice(j + 2, j + 2 + n);
          if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(h) || parseInt(h, 16) > 0x10ffff) throw new PbtxtError(pos(j), `\\${e} must be followed by ${n} hexadecimal digits of a Unicode code point.`);
          bytes.push(...utf8.encode(String.fromCodePoint(parseInt(h, 16))));
          j += 2 + n;
        } else throw new PbtxtError(pos(j), `Unknown escape "\\${e}" in a string.`);
      }
      const last = out[out.length - 1];
      if (last?.kind === "string" && last.bytes) {
        // "a" "b" is one string "ab"
        const joined = new Uint8Array(last.bytes.length + bytes.length);
        joined.set(last.bytes);
        joined.set(bytes, last.bytes.length);
        last.bytes = joined;
        last.text += text.slice(i, j + 1);
      } else out.push({ kind: "string", text: text.slice(i, j + 1), bytes: Uint8Array.from(bytes), ...start });
      i = j + 1;
      continue;
    }
    if (c === "-" || c === "+") {
      out.push({ kind: "punct", text: c, ...start });
      i++;
      continue;
    }
    if (PUNCT.has(c) || c === ".") {
      out.push({ kind: "punct", text: c, ...start });
      i++;
      continue;
    }
    throw new PbtxtError(start, `Unexpected character ${JSON.stringify(c)}.`);
  }
  out.push({ kind: "eof", text: "", ...pos() });
  return out;
}

/** A scalar value as written: a string (bytes), a number, or an identifier (enum value, true/false, inf/nan). */
interface Scalar extends Pos {
  kind: "string" | "number" | "ident";
  text: string;
  bytes?: Uint8Array;
  /** numbers: the sign written before it. */
  negative?: boolean;
}
interface Field extends Pos {
  name: string;
  value: Scalar | Message;
}
interface Message extends Pos {
  kind: "message";
  fields: Field[];
}

/** Parses the tokens into a field tree. */
function parseTokens(tokens: Token[]): Message {
  let k = 0;
  const peek = () => tokens[k]!;
  const next = () => tokens[k++]!;
  const describe = (t: Token) => (t.kind === "eof" ? "the end of the file" : `"${t.text}"`);
  const message = (close: string | undefined, at: Pos): Message => {
    const fields: Field[] = [];
    for (;;) {
      const t = peek();
      if (close === undefined ? t.kind === "eof" : t.kind === "punct" && t.text === close) {
        next();
        return { kind: "message", fields, line: at.line, column: at.column };
      }
      if (t.kind === "eof") throw new PbtxtError(t, `Expected "${close}" to close the message opened at ${at.line}:${at.column}, found the end of the file.`);
      fields.push(...field());
      const sep = peek();
      if (sep.kind === "punct" && (sep.text === "," || sep.text === ";")) next();
    }
  };
  const fieldName = (): { name: string; pos: Pos } => {
    const t = next();
    if (t.kind === "ident") return { name: t.text, pos: t };
    if (t.kind === "punct" && t.text === "[") {
      // [type.googleapis.com/google.protobuf.Struct] or [some.extension]
      let name = "[";
      for (;;) {
        const u = next();
        if (u.kind === "punct" && u.text === "]") return { name: `${name}]`, pos: t };
        if (u.kind === "eof" || u.kind === "string" || (u.kind === "punct" && !["/", "."].includes(u.text))) throw new PbtxtError(u, `Expected a type URL or extension name and "]", found ${describe(u)}.`);
        name += u.text;
      }
    }
    throw new PbtxtError(t, `Expected a field name, found ${describe(t)}.`);
  };
  const scalar = (): Scalar => {
    const t = next();
    if (t.kind === "punct" && (t.text === "-" || t.text === "+")) {
      const n = next();
      if (n.kind === "number" || (n.kind === "ident" && /^(inf|infinity|nan)$/i.test(n.text))) return { kind: n.kind, text: n.text, negative: t.text === "-", line: t.line, column: t.column };
      throw new PbtxtError(n, `Expected a number after "${t.text}", found ${describe(n)}.`);
    }
    if (t.kind === "string") return { kind: "string", text: t.text, bytes: t.bytes, line: t.line, column: t.column };
    if (t.kind === "number" || t.kind === "ident") return { kind: t.kind, text: t.text, line: t.line, column: t.column };
    throw new PbtxtError(t, `Expected a value (a string, a number or an identifier), found ${describe(t)}.`);
  };
  const opensMessage = (t: Token) => t.kind === "punct" && (t.text === "{" || t.text === "<");
  const value = (): Scalar | Message => {
    const t = peek();
    if (opensMessage(t)) {
      next();
      return message(t.text === "{" ? "}" : ">", t);
    }
    return scalar();
  };
  const field = (): Field[] => {
    const { name, pos } = fieldName();
    let t = peek();
    const colon = t.kind === "punct" && t.text === ":";
    if (colon) {
      next();
      t = peek();
    } else if (!opensMessage(t)) throw new PbtxtError(t, `Expected ":" or "{" after the field name "${name}", found ${describe(t)}.`);
    if (t.kind === "punct" && t.text === "[") {
      // repeated field as a list: name: [v1, v2]
      next();
      const out: Field[] = [];
      if (peek().kind === "punct" && peek().text === "]") {
        next();
        return out;
      }
      for (;;) {
        const v = value();
        out.push({ name, value: v, line: pos.line, column: pos.column });
        const s = next();
        if (s.kind === "punct" && s.text === "]") return out;
        if (!(s.kind === "punct" && s.text === ",")) throw new PbtxtError(s, `Expected "," or "]" in the list of "${name}", found ${describe(s)}.`);
      }
    }
    return [{ name, value: value(), line: pos.line, column: pos.column }];
  };
  return message(undefined, { line: 1, column: 1 });
}

// ---------------------------------------------------------------------------------------------------------
// text tree -> protobuf JSON mapping (the document ./merlin.ts reads)

/** Fields of the TFMD Schema / Feature messages that are repeated (arrays in JSON even with one element). */
const REPEATED = new Set(["feature", "sparse_feature", "weighted_feature", "tag", "extra_metadata", "dim", "default_environment", "in_environment", "not_in_environment", "comment", "value", "index_feature", "float_domain", "string_domain", "int_domain"]);
/** Repeated only inside these messages (`value` is a scalar in Struct's map entries, `*_domain` a field of Feature). */
const REPEATED_TOP_ONLY = new Set(["float_domain", "string_domain", "int_domain"]);
const STRUCT_ANY = /^\[(?:[^\]]*\/)?google\.protobuf\.Struct\]$/;

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

interface Located {
  pos: Pos;
  /** where the field name is written */
  key: Pos;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

/** A number (or inf/nan) token as a JS number; 64-bit integers beyond 2^53 stay exact as strings. */
function numberOf(s: Scalar): number | string {
  const t = s.text.replace(/[fF]$/, "");
  let n: number;
  if (s.kind === "ident") n = /^nan$/i.test(t) ? NaN : Infinity;
  else if (/^0[xX]/.test(t)) n = parseInt(t, 16);
  else n = Number(t);
  if (s.negative) n = -n;
  if (/^[0-9]+$/.test(t) && !Number.isSafeInteger(n)) return `${s.negative ? "-" : ""}${t}`;
  return n;
}

function scalarValue(s: Scalar): unknown {
  if (s.kind === "string") return utf8Decoder.decode(s.bytes);
  if (s.kind === "number") return numberOf(s);
  if (s.text === "true" || s.text === "True" || s.text === "t") return true;
  if (s.text === "false" || s.text === "False" || s.text === "f") return false;
  if (s.negative || /^(inf|infinity|nan)$/i.test(s.text)) return numberOf(s);
  return s.text; // an enum value (INT, FLOAT, BYTES...)
}

/** Converts the text tree to the JSON-mapping document, filling `where` (JSON Pointer -> position). */
function toJsonDoc(root: Message, where: Map<string, Located>): Record<string, unknown> {
  const convert = (m: Message, path: string[]): Record<string, unknown> => {
    const obj: Record<string, unknown> = {};
    const counts = new Map<string, number>();
    for (const f of m.fields) counts.set(f.name, (counts.get(f.name) ?? 0) + 1);
    for (const f of m.fields) {
      const key = f.name.startsWith("[") ? f.name : camel(f.name);
      const repeated = (counts.get(f.name) ?? 0) > 1 || (REPEATED.has(f.name) && (!REPEATED_TOP_ONLY.has(f.name) || path.length === 0));
      const seg = repeated ? [key, String(((obj[key] as unknown[] | undefined) ?? []).length)] : [key];
      const p = [...path, ...seg];
      const v = f.value.kind === "message" ? (f.name === "extra_metadata" ? extraMetadata(f.value) : convert(f.value, p)) : scalarValue(f.value);
      where.set(toPointer(p), { pos: { line: f.value.line, column: f.value.column }, key: { line: f.line, column: f.column } });
      if (repeated) {
        if (!where.has(toPointer([...path, key]))) where.set(toPointer([...path, key]), { pos: { line: f.line, column: f.column }, key: { line: f.line, column: f.column } });
        ((obj[key] ??= []) as unknown[]).push(v);
      } else obj[key] = v;
    }
    return obj;
  };
  return convert(root, []);
}

/** `extra_metadata` (an Any): a Struct, expanded or serialized, as a plain object; anything else as is. */
function extraMetadata(m: Message): unknown {
  const expanded = m.fields.find((f) => STRUCT_ANY.test(f.name));
  if (expanded) {
    if (expanded.value.kind !== "message") throw new PbtxtError(expanded.value, `Expected "{" after ${expanded.name}.`);
    return structFromText(expanded.value);
  }
  const url = m.fields.find((f) => f.name === "type_url");
  const bytes = m.fields.find((f) => f.name === "value");
  if (url && url.value.kind === "string") {
    const u = utf8Decoder.decode(url.value.bytes);
    if (!/(^|\/)google\.protobuf\.Struct$/.test(u)) throw new PbtxtError(url.value, `extra_metadata holds a "${u}"; recblocks reads google.protobuf.Struct metadata only.`, "pbtxt_unsupported");
    if (!bytes) return {};
    if (bytes.value.kind !== "string") throw new PbtxtError(bytes.value, "The value of an Any is a string of bytes.");
    try {
      return decodeStruct(bytes.value.bytes!);
    } catch (err) {
      throw new PbtxtError(bytes.value, `The serialized google.protobuf.Struct of extra_metadata cannot be decoded: ${(err as Error).message}.`);
    }
  }
  if (m.fields.length === 0 || m.fields.some((f) => f.name === "fields")) return structFromText(m);
  throw new PbtxtError(m.fields[0]!, `extra_metadata is read as a google.protobuf.Struct: [type.googleapis.com/google.protobuf.Struct] { fields { ... } }, or type_url and value; found "${m.fields[0]!.name}".`, "pbtxt_unsupported");
}

/** google.protobuf.Struct in text form: `fields { key: "k" value { number_value: 1 } }`... */
function structFromText(m: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of m.fields) {
    if (f.name !== "fields" || f.value.kind !== "message") throw new PbtxtError(f, `A google.protobuf.Struct has only "fields { key: ... value { ... } }" entries, found "${f.name}".`);
    const key = f.value.fields.find((e) => e.name === "key");
    const val = f.value.fields.find((e) => e.name === "value");
    if (!key || key.value.kind !== "string") throw new PbtxtError(f, 'A Struct entry needs key: "<name>".');
    out[utf8Decoder.decode(key.value.bytes)] = val ? valueFromText(val.value) : null;
  }
  return out;
}

/** google.protobuf.Value in text form. */
function valueFromText(v: Scalar | Message): unknown {
  if (v.kind !== "message") throw new PbtxtError(v, 'A Struct value is a message: value { number_value: ... } (or string_value, bool_value, null_value, struct_value, list_value).');
  const f = v.fields[0];
  if (!f) return null;
  switch (f.name) {
    case "null_value":
      return null;
    case "number_value":
    case "string_value":
    case "bool_value":
      if (f.value.kind === "message") throw new PbtxtError(f.value, `${f.name} is a scalar.`);
      return f.name === "number_value" ? Number(numberOf(f.value)) : scalarValue(f.value);
    case "struct_value":
      if (f.value.kind !== "message") throw new PbtxtError(f.value, "struct_value is a message.");
      return structFromText(f.value);
    case "list_value":
      if (f.value.kind !== "message") throw new PbtxtError(f.value, "list_value is a message.");
      return f.value.fields.filter((e) => e.name === "values").map((e) => valueFromText(e.value));
    default:
      throw new PbtxtError(f, `Unknown google.protobuf.Value field "${f.name}".`);
  }
}

/** Decodes a serialized google.protobuf.Struct (protobuf wire format) to a plain object. */
export function decodeStruct(buf: Uint8Array): Record<string, unknown> {
  const fieldsOf = (b: Uint8Array): [number, number, Uint8Array | number][] => {
    const out: [number, number, Uint8Array | number][] = [];
    let i = 0;
    const varint = (): number => {
      let x = 0;
      let mul = 1;
      for (;;) {
        if (i >= b.length) throw new Error("truncated varint");
        const byte = b[i++]!;
        x += (byte & 0x7f) * mul;
        if (byte < 0x80) return x;
        mul *= 128;
      }
    };
    while (i < b.length) {
      const tag = varint();
      const no = Math.floor(tag / 8);
      const wt = tag % 8;
      if (wt === 0) out.push([no, wt, varint()]);
      else if (wt === 1 || wt === 5) {
        const n = wt === 1 ? 8 : 4;
        if (i + n > b.length) throw new Error("truncated fixed-width field");
        out.push([no, wt, b.subarray(i, i + n)]);
        i += n;
      } else if (wt === 2) {
        const n = varint();
        if (i + n > b.length) throw new Error("truncated length-delimited field");
        out.push([no, wt, b.subarray(i, i + n)]);
        i += n;
      } else throw new Error(`unsupported wire type ${wt}`);
    }
    return out;
  };
  const value = (b: Uint8Array): unknown => {
    let v: unknown = null;
    for (const [no, wt, x] of fieldsOf(b)) {
      if (no === 1) v = null;
      else if (no === 2 && wt === 1) v = new DataView((x as Uint8Array).buffer, (x as Uint8Array).byteOffset, 8).getFloat64(0, true);
      else if (no === 3 && wt === 2) v = utf8Decoder.decode(x as Uint8Array);
      else if (no === 4 && wt === 0) v = x !== 0;
      else if (no === 5 && wt === 2) v = struct(x as Uint8Array);
      else if (no === 6 && wt === 2) v = fieldsOf(x as Uint8Array).filter(([n, w]) => n === 1 && w === 2).map(([, , y]) => value(y as Uint8Array));
    }
    return v;
  };
  const struct = (b: Uint8Array): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [no, wt, entry] of fieldsOf(b)) {
      if (no !== 1 || wt !== 2) continue;
      let key = "";
      let v: unknown = null;
      for (const [n, w, x] of fieldsOf(entry as Uint8Array)) {
        if (n === 1 && w === 2) key = utf8Decoder.decode(x as Uint8Array);
        else if (n === 2 && w === 2) v = value(x as Uint8Array);
      }
      out[key] = v;
    }
    return out;
  };
  return struct(buf);
}

/**
 * Parse the text of a schema.pbtxt into a ParsedSource whose value is the protobuf JSON-mapping document
 * (`{feature: [{name, type, intDomain, valueCount, annotation: {tag, extraMetadata}}]}`) and whose
 * `locate` maps JSON Pointers into it back to line:column of the text. Syntax errors are issues
 * (`pbtxt_syntax`, `pbtxt_unsupported`) at their line:column.
 */
export function parsePbtxtSource(text: string, file: string): ParsedSource {
  const where = new Map<string, Located>();
  let value: unknown;
  try {
    value = toJsonDoc(parseTokens(tokenize(text)), where);
  } catch (err) {
    if (!(err instanceof PbtxtError)) throw err;
    const source: SourceLocation = { file, line: err.pos.line, column: err.pos.column };
    return { file, value: undefined, issues: [{ code: err.code, path: "", message: err.message, source }], locate: () => source };
  }
  const locate = (pointer: string, opts?: { key?: boolean }): SourceLocation => {
    const segs = fromPointer(pointer);
    for (let n = segs.length; n > 0; n--) {
      const hit = where.get(toPointer(segs.slice(0, n)));
      if (hit) {
        const p = opts?.key && n === segs.length ? hit.key : hit.pos;
        return { file, line: p.line, column: p.column };
      }
    }
    return { file, line: 1, column: 1 };
  };
  return { file, value, issues: [], locate };
}

/** Read and parse a schema.pbtxt file; never throws for user errors (they are issues). */
export function readPbtxtSource(file: string): ParsedSource {
  const shown = displayPath(file);
  const fail = (code: string, message: string): ParsedSource => ({ file: shown, value: undefined, issues: [{ code, path: "", message, source: { file: shown } }], locate: () => ({ file: shown, line: 1, column: 1 }) });
  try {
    const st = statSync(file);
    if (st.isDirectory()) return fail("file_not_found", `"${shown}" is a folder, not a file.`);
    if (st.size > MAX_SOURCE_BYTES) return fail("file_too_large", `File "${shown}" is ${(st.size / 1048576).toFixed(1)} MiB; feature schemas are limited to ${(MAX_SOURCE_BYTES / 1048576).toFixed(0)} MiB.`);
    return parsePbtxtSource(readFileSync(file, "utf8"), shown);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail("file_not_found", code === "ENOENT" ? `File "${shown}" does not exist.` : `File "${shown}" cannot be read (${code ?? "error"}).`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// protobuf JSON mapping -> text

/** JSON-mapping keys whose string values are enum identifiers in text format. */
const ENUM_KEYS = new Set(["type", "lifecycleStage"]);
/** JSON-mapping keys holding 64-bit integers (strings in JSON, bare numbers in text format). */
const INT64_KEYS = new Set(["min", "max", "size", "minCount"]);

const quote = (s: string) =>
  `"${Array.from(new TextEncoder().encode(s), (b) => {
    if (b === 0x22) return '\\"';
    if (b === 0x5c) return "\\\\";
    if (b === 0x0a) return "\\n";
    if (b === 0x0d) return "\\r";
    if (b === 0x09) return "\\t";
    if (b < 0x20 || b === 0x7f) return `\\${b.toString(8).padStart(3, "0")}`;
    return b < 0x80 ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, "0")}`;
  }).join("")}"`;

const num = (n: number) => (Number.isNaN(n) ? "nan" : n === Infinity ? "inf" : n === -Infinity ? "-inf" : String(n));

function structToText(obj: Record<string, unknown>, ind: string): string {
  let out = "";
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    out += `${ind}fields {\n${ind}  key: ${quote(k)}\n${ind}  value {\n${valueToText(v, `${ind}    `)}${ind}  }\n${ind}}\n`;
  }
  return out;
}

function valueToText(v: unknown, ind: string): string {
  if (v === null) return `${ind}null_value: NULL_VALUE\n`;
  if (typeof v === "number") return `${ind}number_value: ${num(v)}\n`;
  if (typeof v === "string") return `${ind}string_value: ${quote(v)}\n`;
  if (typeof v === "boolean") return `${ind}bool_value: ${v}\n`;
  if (Array.isArray(v)) return `${ind}list_value {\n${v.map((x) => `${ind}  values {\n${valueToText(x, `${ind}    `)}${ind}  }\n`).join("")}${ind}}\n`;
  return `${ind}struct_value {\n${structToText(v as Record<string, unknown>, `${ind}  `)}${ind}}\n`;
}

function messageToText(obj: Record<string, unknown>, ind: string): string {
  let out = "";
  for (const [key, v] of Object.entries(obj)) {
    const name = key.startsWith("[") ? key : snake(key);
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item === undefined || item === null) continue;
      if (key === "extraMetadata" && typeof item === "object") {
        out += `${ind}extra_metadata {\n${ind}  [type.googleapis.com/google.protobuf.Struct] {\n${structToText(item as Record<string, unknown>, `${ind}    `)}${ind}  }\n${ind}}\n`;
      } else if (typeof item === "object") out += `${ind}${name} {\n${messageToText(item as Record<string, unknown>, `${ind}  `)}${ind}}\n`;
      else if (typeof item === "string") {
        const bare = (ENUM_KEYS.has(key) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(item)) || (INT64_KEYS.has(key) && /^-?[0-9]+$/.test(item));
        out += `${ind}${name}: ${bare ? item : quote(item)}\n`;
      } else if (typeof item === "number") out += `${ind}${name}: ${num(item)}\n`;
      else out += `${ind}${name}: ${String(item)}\n`;
    }
  }
  return out;
}

/** A Merlin schema document (protobuf JSON mapping, as ./merlin.ts writes it) as schema.pbtxt text. */
export function toPbtxt(doc: MerlinSchema | Record<string, unknown>): string {
  return messageToText(doc as Record<string, unknown>, "");
}
