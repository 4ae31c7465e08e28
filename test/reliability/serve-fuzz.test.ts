/**
 * Fuzzing the server's front door over real HTTP: thousands of request bodies for POST /recommend,
 * POST /recommend/batch and POST /admin/reload, made by mutating valid bodies (random keys, wrong types,
 * huge / negative / non-finite numbers, long strings and lists, unicode with lone surrogates, NUL and RTL
 * marks, deep nesting, `__proto__` / `constructor` / `prototype` keys), mutating their JSON text
 * (duplicated keys, truncation, stray characters, invalid UTF-8 bytes), and sending them with wrong
 * content types, empty bodies, other methods and odd URLs, to a server listening on a free loopback port.
 *
 * Every answer must be a 200 (a valid request, checked) or a 4xx `{"issues": [...]}` whose issues all have
 * a snake_case code, a JSON Pointer path and a message; never a 5xx, never a hang (per-request timeout),
 * never a stack trace or a source path in a body, never more than 100 issues (a 1 MiB body once made 300,000). Afterwards Object.prototype is untouched, every model
 * lease is given back, and a good request gets the answer it got before the fuzz. Seeded: the same inputs
 * every run; the counts are printed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../src/masking/index.js";
import { MAX_REQUEST_ISSUES } from "../../src/serve/request-schemas.js";
import { startServer, type ListeningServer } from "../../src/serve/server.js";
import { makeServeModels, type ServeModels } from "./serve-models.js";

const SEED = 20261205;
const CASES = 3000;
/** A request not answered within this is a hang (generous: the machine may be loaded). */
const TIMEOUT_MS = 10_000;
/** Requests in flight at once. */
const POOL = 8;
/** Raw HTTP/1.1 exchanges over a socket (what fetch cannot send: broken framing, bad headers, pipelining). */
const RAW_CASES = 100;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Reseeded by each test, so that each sees the same inputs whether or not the other ran. */
let rng = mulberry32(SEED);
const int = (n: number) => Math.floor(rng.next() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
const chance = (p: number) => rng.next() < p;

const WEIRD_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__", "", " ", "ключ", "键", "🔥", "a.b", "a/b", "~1", "$ref", "0", "-1", "NaN",
  "items", "user", "userItems", "k", "excludeSeen", "filters", "allow", "deny", "rules", "requests", "dir", "Items", "K"];
const WEIRD_STRINGS = ["", " ", "\t", "\u0000", "a\u0000b", "\u202e", "\u200f12", "\u202b\u202e7", "\ud800", "\udfff", "x\ud83d", "😀".repeat(3), "é", "a".repeat(300), "b".repeat(5000), "1", "50", "-1", "1e309", "NaN", "Infinity", "-0", "0x1F", "null", "true",
  "../../../../etc/passwd", "/", "/dev/null", "/dev/zero", "/etc", ".", "..", "C:\\x", "${HOME}", "%s%n%x", "<script>alert(1)</script>", "' OR 1=1 --", "category in [1]", "price <= 20", "category in [", "== ==", "nope == 1", "price > 1e309", "price in [NaN]"];
const WEIRD_NUMBERS = [0, -0, 1, -1, 2, 5, 20, 0.5, 1.5, 999, 1000, 1001, 1e-300, 1e308, -1e308, 2 ** 31, 2 ** 53 + 1, -(2 ** 31), 1e9, 123456789, 0.1, Number.MAX_SAFE_INTEGER];

function randomScalar(): Json {
  switch (int(4)) {
    case 0:
      return pick(WEIRD_NUMBERS);
    case 1:
      return pick(WEIRD_STRINGS);
    case 2:
      return pick([true, false, null]);
    default:
      // random code units, lone surrogates included
      return String.fromCharCode(...Array.from({ length: 1 + int(12) }, () => (chance(0.3) ? int(0x10000) : 0x20 + int(0x5e))));
  }
}

/** Sets an own property, even "__proto__" (as JSON.parse would make it). */
function setOwn(o: Record<string, Json>, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function randomValue(depth = 0): Json {
  const r = int(10);
  if (depth > 4 || r < 6) return randomScalar();
  if (r < 8) return Array.from({ length: int(5) }, () => randomValue(depth + 1));
  const o: Record<string, Json> = {};
  for (let i = int(4); i > 0; i--) setOwn(o, chance(0.6) ? pick(WEIRD_KEYS) : String(randomScalar()).slice(0, 20), randomValue(depth + 1));
  return o;
}

function deepNest(levels: number, asArray: boolean): Json {
  let v: Json = "1";
  for (let i = 0; i < levels; i++) v = asArray ? [v] : { items: v };
  return v;
}

/** All [container, key] slots of a JSON value. */
function slots(v: Json, out: [Record<string, Json> | Json[], string | number][] = []): [Record<string, Json> | Json[], string | number][] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)));
  else if (v && typeof v === "object") for (const k of Object.keys(v)) out.push([v, k]), slots(v[k]!, out);
  return out;
}

/** A structural mutation of a valid body (on a copy). */
function mutateTree(doc: Json): Json {
  const d = JSON.parse(JSON.stringify(doc)) as Json;
  const n = 1 + int(3);
  for (let i = 0; i < n; i++) {
    const all = slots(d);
    if (all.length === 0) return chance(0.5) ? randomValue() : d;
    const [c, k] = pick(all);
    const get = (): Json => (Array.isArray(c) ? c[k as number]! : c[k as string]!);
    const set = (v: Json) => (Array.isArray(c) ? (c[k as number] = v) : setOwn(c, k as string, v));
    switch (int(11)) {
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
      case 3:
        if (Array.isArray(c)) c.push(randomValue());
        else setOwn(c, pick(WEIRD_KEYS), randomValue());
        break;
      case 4:
        set(deepNest(chance(0.1) ? 2000 : 5 + int(60), chance(0.5)));
        break;
      case 5: // a prototype-pollution payload where a mapping is expected
        if (!Array.isArray(c)) setOwn(c, pick(["__proto__", "constructor", "prototype"]), { polluted: "yes", prototype: { polluted: "yes" }, __proto__: { polluted: "yes" } } as unknown as Json);
        else c.push(JSON.parse('{"__proto__": {"polluted": "yes"}}') as Json);
        break;
      case 6: // a long list: of ids, numbers or long strings
        if (all.length < 2000) set(Array.from({ length: chance(0.15) ? 10_001 : int(2000) }, (_, j) => (chance(0.5) ? String(1 + (j % 60)) : chance(0.5) ? j : "z".repeat(int(300)))));
        break;
      case 7: {
        // type swap: number <-> string, list <-> mapping
        const v = get();
        set(typeof v === "number" ? String(v) : typeof v === "string" ? Number(v) || v.length : Array.isArray(v) ? Object.fromEntries(v.map((x, j) => [String(j), x])) : v && typeof v === "object" ? Object.values(v) : [v ?? null]);
        break;
      }
      case 8:
        set(chance(0.5) ? "x".repeat(chance(0.05) ? 200_000 : 257 + int(3000)) : pick(WEIRD_STRINGS));
        break;
      case 9: {
        // the same small value many times (e.g. a batch of 1000 requests)
        const v = get();
        // (not inside a copy already made: shared copies of copies would make a body of gigabytes)
        if (all.length < 2000 && JSON.stringify(v ?? null).length < 300) set(Array.from({ length: pick([999, 1000, 1001, 5000]) }, () => v));
        break;
      }
      default:
        set(pick(WEIRD_NUMBERS) * (chance(0.5) ? -1 : 1));
    }
  }
  return d;
}

const TEXT_INSERTS = ["{", "}", "[", "]", ",", ":", '"', "'", "\\", "\\u", "\\ud800", "\\u0000", "\\x00", "\t", "\n", "\r\n", "\u0000", "\ufeff", "\u2028", "\u202e", "\ud83d", "😀", "NaN", "Infinity", "-", "1e99999", "01", ".5", "null", "undefined", "/*c*/", "//c\n", '"__proto__": {"polluted": "yes"},', '"constructor": {"prototype": {"polluted": "yes"}},'];

/** Duplicates a key of the top object in the raw text: `{"k": 3, ..., "k": "x"}` (JSON.parse keeps the last). */
function duplicateKey(text: string, doc: Json): string {
  const keys = doc && typeof doc === "object" && !Array.isArray(doc) ? Object.keys(doc) : [];
  const key = keys.length && chance(0.7) ? pick(keys) : pick(["__proto__", "items", "k", "requests", "dir", "constructor"]);
  const dup = `${JSON.stringify(key)}: ${JSON.stringify(randomValue())}`;
  if (!text.startsWith("{")) return `{${dup}}`;
  return chance(0.5) ? `{${dup}, ${text.slice(1)}` : `${text.slice(0, -1)}${text.length > 2 ? ", " : ""}${dup}}`;
}

/** A text mutation (any text, not necessarily JSON). */
function mutateText(t: string): string {
  const n = 1 + int(3);
  for (let i = 0; i < n; i++) {
    const at = int(t.length + 1);
    switch (int(6)) {
      case 0:
        t = t.slice(0, at) + pick(TEXT_INSERTS) + t.slice(at);
        break;
      case 1:
        t = t.slice(0, at) + t.slice(at + 1 + int(20));
        break;
      case 2:
        t = t.slice(0, at); // truncated
        break;
      case 3:
        t = t.slice(0, at) + String.fromCharCode(int(0x10000)) + t.slice(at + 1);
        break;
      case 4:
        t = t.slice(0, at) + (chance(0.5) ? "[" : '{"a":').repeat(chance(0.1) ? 5000 : int(200)) + t.slice(at);
        break;
      default:
        t = t.replace(/"/g, chance(0.5) ? "'" : "").slice(0, Math.max(at, 1));
    }
  }
  return t;
}

const CONTENT_TYPES: (string | null)[] = [null, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "application/octet-stream", "application/json; charset=utf-16",
  "application/json; charset=latin1", "APPLICATION/JSON", "application/json;", "application/json;;;", "application/json; charset=", "application/jsonx", "application/json-patch+json", "application/vnd.api+json", "json", "*/*", "", " ", "application/json\u00e9", "application/json, text/plain", "text/json"];

interface Case {
  i: number;
  kind: string;
  method: string;
  path: string;
  contentType: string | null;
  body: string | Uint8Array | undefined;
}

let tmp: string;
let models: ServeModels;
let server: ListeningServer;
const serverLog: string[] = [];
let protoBefore: string[];

const validRecommend = (): Record<string, Json> => {
  const b: Record<string, Json> = { items: Array.from({ length: 1 + int(6) }, () => (chance(0.8) ? pick(models.items) : Number(pick(models.items)))) };
  if (chance(0.7)) b.k = 1 + int(20);
  if (chance(0.3)) b.excludeSeen = chance(0.5);
  if (chance(0.4)) {
    const f: Record<string, Json> = {};
    if (chance(0.5)) f.deny = Array.from({ length: int(5) }, () => pick(models.items));
    if (chance(0.3)) f.allow = Array.from({ length: 1 + int(10) }, () => pick(models.items));
    if (chance(0.5)) f.rules = [pick(["category in [0, 1]", "price <= 30", "category != 2", "price > 5"])];
    b.filters = f;
  }
  return b;
};

function makeCase(i: number): Case {
  const r = rng.next();
  const path = r < 0.5 ? "/recommend" : r < 0.88 ? "/recommend/batch" : "/admin/reload";
  const valid: Json =
    path === "/recommend" ? validRecommend()
    : path === "/recommend/batch" ? { requests: Array.from({ length: 1 + int(5) }, validRecommend) }
    : chance(0.3) ? {} : { dir: chance(0.5) ? models.dirA : models.dirB };
  const c: Case = { i, kind: "", method: "POST", path, contentType: "application/json", body: undefined };
  const m = rng.next();
  if (m < 0.03) {
    c.kind = "valid";
    c.body = JSON.stringify(valid);
  } else if (m < 0.45) {
    c.kind = "tree";
    c.body = JSON.stringify(mutateTree(valid));
  } else if (m < 0.55) {
    c.kind = "tree+text";
    c.body = mutateText(JSON.stringify(mutateTree(valid)));
  } else if (m < 0.72) {
    c.kind = "text";
    c.body = mutateText(JSON.stringify(valid, null, chance(0.3) ? 2 : undefined));
  } else if (m < 0.8) {
    c.kind = "duplicate-keys";
    c.body = duplicateKey(JSON.stringify(valid), valid);
  } else if (m < 0.86) {
    c.kind = "content-type";
    c.contentType = pick(CONTENT_TYPES);
    c.body = chance(0.7) ? JSON.stringify(valid) : "items=1&k=2";
  } else if (m < 0.89) {
    c.kind = "empty";
    c.body = pick(["", " ", "\n\t ", undefined]);
    if (chance(0.3)) c.contentType = null;
  } else if (m < 0.92) {
    c.kind = "bytes";
    // invalid UTF-8 (lone continuation bytes, an encoded surrogate, overlong NUL), random bytes, UTF-16
    const bad = pick([[0xff, 0xfe], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]);
    const text = Buffer.from(JSON.stringify(valid), "utf8");
    const at = int(text.length + 1);
    c.body = chance(0.2) ? Uint8Array.from(Array.from({ length: int(2000) }, () => int(256)))
      : chance(0.2) ? new Uint8Array(Buffer.from(JSON.stringify(valid), "utf16le"))
      : new Uint8Array(Buffer.concat([text.subarray(0, at), Buffer.from(bad), text.subarray(at)]));
  } else if (m < 0.927) {
    // amplification: a body under the limit that makes a great many issues
    c.kind = "amplify";
    c.path = chance(0.5) ? "/recommend" : "/recommend/batch";
    c.body = c.path === "/recommend" ? `{"k": "x", "items": [${"{},".repeat(chance(0.1) ? 300_000 : 30_000)}{}]}`
      : JSON.stringify({ requests: Array.from({ length: chance(0.1) ? 1000 : 100 }, () => ({ items: ["1"], filters: { rules: Array.from({ length: 100 }, () => "x") } })) });
  } else if (m < 0.95) {
    c.kind = "json-values";
    c.body = pick(["null", "true", "0", "-1", '"x"', "[]", "[{}]", "{}", '{"": ""}', "1e999", '"\\ud800"', "[" + "1,".repeat(100_000) + "1]", '{"items": [' + '"1",'.repeat(10_000) + '"1"]}']);
  } else if (m < 0.993) {
    c.kind = "method-url";
    c.method = pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"]);
    c.path = pick([path, path + "/", path + "?k=5&items=1", "/" + path, path.toUpperCase(), path + "%00", path + "/..%2f..%2fhealth", "/recommend/batch/x", "/admin", "/%E0%A4%A", "/admin/reload?dir=/", "/" + "a".repeat(4000)]);
    c.body = c.method === "GET" ? undefined : JSON.stringify(valid);
  } else {
    c.kind = "huge";
    // over the body limit (1 MiB): 413
    c.body = JSON.stringify(path === "/recommend/batch" ? { requests: Array.from({ length: 1000 }, () => ({ items: Array.from({ length: 60 }, () => "x".repeat(20)) })) } : { items: Array.from({ length: 10_000 }, () => "y".repeat(120)), dir: "d" });
  }
  return c;
}

/** A stack trace line, or a path into the package's sources (the tmp model paths and the client's own strings may be echoed). */
const LEAK = [/\n\s+at /, /\bat [\w$.<>]+ \(/, /\bat (file:\/\/)?\/[^\s]+:\d+:\d+/, /file:\/\//, /node_modules/, /\.[cm]?[jt]s:\d+/, /\/src\/serve\//];

interface Outcome {
  status: number;
  text: string;
  ms: number;
}

async function send(c: Case): Promise<Outcome> {
  const t0 = performance.now();
  const headers: Record<string, string> = {};
  if (c.contentType !== null) headers["content-type"] = c.contentType;
  const r = await fetch(server.url + c.path, { method: c.method, headers, ...(c.body !== undefined ? { body: c.body as BodyInit } : {}), signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await r.text();
  return { status: r.status, text, ms: performance.now() - t0 };
}

/** What is wrong with an answer, if anything. */
function judge(c: Case, o: Outcome): string | undefined {
  if (o.status >= 500) return `status ${o.status}`;
  if (o.status !== 200 && (o.status < 400 || o.status >= 500)) return `status ${o.status}`;
  for (const re of LEAK) {
    if (re.test(o.text)) return `the body leaks internals (${re})`;
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(o.text) as Record<string, unknown>;
  } catch {
    return "the body is not JSON";
  }
  if (o.status === 200) {
    const route = c.path.split("?")[0];
    if (route === "/admin/reload") return typeof j.version === "string" && typeof j.generation === "number" ? undefined : "a reload answer without version or generation";
    const answers = (route === "/recommend" ? [j] : (j.results as Record<string, unknown>[] | undefined)) ?? null;
    if (!Array.isArray(answers)) return "a batch answer without results";
    for (const a of answers) {
      const items = a.items as unknown[];
      const scores = a.scores as unknown[];
      if (!Array.isArray(items) || !Array.isArray(scores) || items.length !== scores.length || !Array.isArray(a.unknownItems)) return "an answer without items, scores and unknownItems";
      if (!items.every((x) => typeof x === "string")) return "an item that is not a string";
      if (!scores.every((s, k) => typeof s === "number" && Number.isFinite(s) && (k === 0 || s <= (scores[k - 1] as number)))) return "scores not finite and descending";
    }
    return undefined;
  }
  const issues = j.issues as { code?: unknown; path?: unknown; message?: unknown }[];
  if (!Array.isArray(issues) || issues.length === 0) return "a 4xx without issues";
  // bounded answers: at most MAX_REQUEST_ISSUES issues (a 4xx of 100 issues is ~25 KB)
  if (issues.length > MAX_REQUEST_ISSUES || o.text.length > 64 * 1024) return `a 4xx of ${issues.length} issues, ${o.text.length} bytes`;
  for (const i of issues) {
    if (typeof i.code !== "string" || !/^[a-z][a-z0-9_]*$/.test(i.code)) return `an issue without a snake_case code: ${JSON.stringify(i).slice(0, 200)}`;
    if (typeof i.message !== "string" || i.message.trim() === "") return `an issue without a message: ${JSON.stringify(i).slice(0, 200)}`;
    if (typeof i.path !== "string" || (i.path !== "" && !i.path.startsWith("/"))) return `an issue without a JSON Pointer path: ${JSON.stringify(i).slice(0, 200)}`;
  }
  return undefined;
}

/** A raw request: the bytes sent on a fresh connection; the server must answer each request it reads and close. */
function makeRawCase(i: number): { i: number; label: string; bytes: Buffer } {
  const body = JSON.stringify(chance(0.5) ? validRecommend() : { requests: [validRecommend()] });
  const path = body.startsWith('{"requests"') ? "/recommend/batch" : "/recommend";
  const head = (extra: string, len: number | string = Buffer.byteLength(body)) => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n${extra}Connection: close\r\n\r\n`;
  const chunked = (chunks: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}`;
  const hex = Buffer.byteLength(body).toString(16);
  const cases: [string, () => string | Buffer][] = [
    ["valid", () => head("") + body],
    ["content-length too short", () => head("", Math.max(1, int(Buffer.byteLength(body)))) + body],
    ["content-length not a number", () => head("", pick(["abc", "-1", "1e3", "0x10", "", "99999999999999999999"])) + body],
    ["two content-lengths", () => head(`Content-Length: ${Buffer.byteLength(body) + 1}\r\n`) + body],
    ["content-length and chunked", () => head("Transfer-Encoding: chunked\r\n") + body],
    ["valid chunked", () => chunked(`${hex}\r\n${body}\r\n0\r\n\r\n`)],
    ["bad chunk size", () => chunked(`${pick(["zz", "-1", "fffffffffffffffff", "1;" + "x".repeat(9000)])}\r\n${body}\r\n0\r\n\r\n`)],
    ["chunk longer than said", () => chunked(`2\r\n${body}\r\n0\r\n\r\n`)],
    ["headers too large", () => head(`X-Big: ${"a".repeat(20_000 + int(50_000))}\r\n`) + body],
    ["many headers", () => head(Array.from({ length: 3000 }, (_, j) => `X-H${j}: v\r\n`).join("")) + body],
    ["bad header name", () => head(pick(["Bad Header: x\r\n", "X(y): 1\r\n", ": empty\r\n", "X-\u00e9: 1\r\n"])) + body],
    ["NUL or CR in a header value", () => head(pick(["X-A: a\u0000b\r\n", "X-A: a\rb\r\n", "X-A: \u00ff\r\n"])) + body],
    ["bad request line", () => pick(["GARBAGE\r\n\r\n", `POST ${path} HTTP/9.9\r\nHost: x\r\n\r\n`, "POST  HTTP/1.1\r\n\r\n", `POST ${path}\r\n\r\n`, `\u0000\u0001\u0002 / HTTP/1.1\r\n\r\n`, `POST /${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, "\r\n\r\nGET\r\n\r\n"])],
    ["LF line endings", () => head("").replace(/\r\n/g, "\n") + body],
    ["HTTP/1.0 without Host", () => `POST ${path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`],
    ["pipelined", () => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`.repeat(1 + int(4)) + head("") + body],
    ["expect 100-continue", () => head("Expect: 100-continue\r\n") + body],
    ["unknown expectation", () => head("Expect: teapot\r\n") + body],
    ["GET with a body", () => `GET /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`],
  ];
  const [label, make] = pick(cases);
  const made = make();
  return { i, label, bytes: Buffer.isBuffer(made) ? made : Buffer.from(made, "latin1") };
}

/** Sends the bytes, reads until the server closes (or the timeout), splits the answers. */
function sendRaw(bytes: Buffer): Promise<{ answers: { status: number; text: string }[]; rest: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(server.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      let data = Buffer.concat(chunks).toString("utf8");
      const answers: { status: number; text: string }[] = [];
      for (;;) {
        const end = data.indexOf("\r\n\r\n");
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
        if (end < 0 || !m) break;
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
        const bodyBytes = Buffer.from(data.slice(end + 4), "utf8").subarray(0, len).toString("utf8");
        if (m[1] !== "100") answers.push({ status: Number(m[1]), text: bodyBytes });
        data = data.slice(end + 4 + bodyBytes.length);
      }
      resolve({ answers, rest: data, closed });
    };
    const timer = setTimeout(finish, TIMEOUT_MS);
    sock.on("data", (d) => chunks.push(d));
    sock.on("close", () => {
      closed = true;
      finish();
    });
    sock.on("error", () => {});
    sock.on("connect", () => sock.write(bytes, () => {}));
  });
}

const GOOD = { items: ["1", "2", "3"], k: 10, filters: { deny: ["4"] } };

beforeAll(async () => {
  protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  tmp = mkdtempSync(join(tmpdir(), "rb-serve-fuzz-"));
  models = await makeServeModels(tmp, { backend: "cpu" });
  server = await startServer({ modelDir: models.dirA, port: 0, backend: "cpu", itemData: models.itemData, log: (l) => serverLog.push(l) });
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("server fuzz", () => {
  it(`${CASES} mutated requests over HTTP: 200 or 4xx with located issues, never 5xx, a hang or a leak`, async () => {
    const post = async (body: unknown) => {
      const r = await fetch(server.url + "/recommend", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: r.status, json: (await r.json()) as { items: string[]; scores: number[]; model: string } };
    };
    const before = await post(GOOD);
    expect(before.status).toBe(200);
    expect(before.json.items).toHaveLength(10);
    const tensors0 = tf.memory().numTensors;

    rng = mulberry32(SEED);
    const g0 = performance.now();
    const cases = Array.from({ length: CASES }, (_, i) => makeCase(i));
    const genSeconds = (performance.now() - g0) / 1000;
    const failures: string[] = [];
    const byStatus = new Map<number, number>();
    const byKind = new Map<string, number>();
    const codes = new Map<string, number>();
    let slowest = 0;
    let biggest = 0;
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
        const show = () => `case ${c.i} (${c.kind}) ${c.method} ${c.path.slice(0, 80)} content-type ${JSON.stringify(c.contentType)}: ${typeof c.body === "string" ? JSON.stringify(c.body.slice(0, 300)) : c.body ? `${c.body.length} bytes` : "no body"}`;
        let o: Outcome;
        try {
          o = await send(c);
        } catch (e) {
          const err = e as Error & { cause?: { code?: string } };
          failures.push(`${show()}\n  -> ${err.name === "TimeoutError" ? `no answer in ${TIMEOUT_MS} ms (a hang)` : `${err.name}: ${err.message} ${err.cause?.code ?? ""}`}`);
          continue;
        }
        slowest = Math.max(slowest, o.ms);
        biggest = Math.max(biggest, o.text.length);
        byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
        if (o.status >= 400) {
          try {
            for (const i of (JSON.parse(o.text) as { issues: { code: string }[] }).issues) codes.set(i.code, (codes.get(i.code) ?? 0) + 1);
          } catch {
            /* judged below */
          }
        }
        const bad = judge(c, o);
        if (bad) failures.push(`${show()}\n  -> ${bad}: ${o.status} ${o.text.slice(0, 400)}`);
      }
    };
    await Promise.all(Array.from({ length: POOL }, worker));
    const seconds = (performance.now() - t0) / 1000;

    const fmt = (m: Map<string | number, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`serve fuzz (seed ${SEED}): ${cases.length} inputs (made in ${genSeconds.toFixed(1)} s) tried in ${seconds.toFixed(1)} s, slowest answer ${slowest.toFixed(0)} ms, largest answer ${(biggest / 1024).toFixed(0)} KiB, ${failures.length} failures\n  statuses: ${fmt(byStatus)}\n  kinds: ${fmt(byKind)}\n  issue codes: ${fmt(codes)}`);
    expect(failures.slice(0, 5).join("\n")).toBe("");
    expect([...byStatus.keys()].every((s) => s === 200 || (s >= 400 && s < 500))).toBe(true);
    expect(byStatus.get(200) ?? 0).toBeGreaterThan(0);
    // the server never logged an internal error
    expect(serverLog.filter((l) => /internal error| 5\d\d \d+\.\dms$/.test(l)).slice(0, 5)).toEqual([]);

    // prototype pollution: Object.prototype has exactly the properties it had, and {} holds nothing new
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();

    // still healthy: every lease given back, model A again answers as before, no tensor left behind
    await server.reload(models.dirA);
    expect(server.stats()).toMatchObject({ inFlight: 0, retiredInUse: 0 });
    const after = await post(GOOD);
    expect(after.status).toBe(200);
    expect(after.json.model).toBe("soak-a");
    expect(after.json.items).toEqual(before.json.items);
    after.json.scores.forEach((s, j) => expect(s).toBeCloseTo(before.json.scores[j]!, 5));
    expect(tf.memory().numTensors).toBe(tensors0);
    const health = await fetch(server.url + "/health");
    expect(health.status).toBe(200);
  }, 90_000);

  it(`${RAW_CASES} raw HTTP exchanges (broken framing, bad headers, pipelining): each answer 200 or 4xx with issues, the connection closed`, async () => {
    rng = mulberry32(SEED + 1);
    const cases = Array.from({ length: RAW_CASES }, (_, i) => makeRawCase(i));
    const failures: string[] = [];
    const byStatus = new Map<number, number>();
    const byLabel = new Map<string, number>();
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        byLabel.set(c.label, (byLabel.get(c.label) ?? 0) + 1);
        const show = `raw case ${c.i} (${c.label}): ${JSON.stringify(c.bytes.toString("latin1").slice(0, 200))}`;
        const r = await sendRaw(c.bytes);
        if (!r.closed) failures.push(`${show}\n  -> the connection was still open after ${TIMEOUT_MS} ms (a hang)`);
        if (r.rest.trim() !== "") failures.push(`${show}\n  -> bytes that are not an HTTP answer: ${JSON.stringify(r.rest.slice(0, 200))}`);
        for (const a of r.answers) {
          byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
          const bad = judge({ i: c.i, kind: "raw", method: "POST", path: c.bytes.toString("latin1").includes("/recommend/batch") ? "/recommend/batch" : "/recommend", contentType: null, body: undefined }, { status: a.status, text: a.text, ms: 0 });
          // GET /health answers 200 with no items: not a recommendation answer
          if (bad && !(c.label === "GET with a body" && a.status === 200)) failures.push(`${show}\n  -> ${bad}: ${a.status} ${a.text.slice(0, 300)}`);
        }
      }
    }));
    const fmt = (m: Map<string | number, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`serve fuzz, raw HTTP: ${cases.length} exchanges, ${failures.length} failures\n  statuses: ${fmt(byStatus)}\n  kinds: ${fmt(byLabel)}`);
    // one failure per kind of exchange
    const firstOfKind = [...new Map(failures.map((f) => [/\(([^)]*)\)/.exec(f)?.[1], f])).values()];
    expect(firstOfKind.join("\n")).toBe("");
    expect(byStatus.get(200) ?? 0).toBeGreaterThan(0);
    expect(serverLog.filter((l) => /internal error| 5\d\d \d+\.\dms$/.test(l)).slice(0, 5)).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
    expect(server.stats()).toMatchObject({ inFlight: 0, retiredInUse: 0 });
    expect((await fetch(server.url + "/health")).status).toBe(200);
  }, 60_000);
});
