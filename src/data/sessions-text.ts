import { createReadStream } from "node:fs";
import { failData, type BadRowPolicy } from "./errors.js";
import type { CodedSessions } from "./coded.js";
import { Interner } from "./interner.js";
import { checkDataFile } from "./text-input.js";
import { firstInvalidUtf8 } from "./utf8.js";

class GrowI32 {
  buf: Int32Array;
  n = 0;
  constructor(cap = 1 << 16) {
    this.buf = new Int32Array(cap);
  }
  push(v: number): void {
    if (this.n === this.buf.length) {
      const b = new Int32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
  done(): Int32Array {
    return this.buf.slice(0, this.n);
  }
}

export interface SessionsTextOptions {
  /** Name given to the item column (default "item_id"). */
  itemColumn?: string;
  /** Interner to share with other files (so that train and test codes agree). */
  interner?: Interner;
  badRows?: BadRowPolicy;
  onProgress?: (sessions: number) => void;
}

/**
 * Reads the one-session-per-line text format (item ids separated by spaces or tabs) straight into
 * coded sessions: bytes are parsed in place, integer ids never become strings. Blank lines are skipped;
 * session ids are the 1-based line numbers.
 */
export async function readSessionsText(file: string, opts: SessionsTextOptions = {}): Promise<CodedSessions> {
  const size = checkDataFile(file);
  const itemColumn = opts.itemColumn ?? "item_id";
  const it = opts.interner ?? new Interner();
  const items = new GrowI32(Math.max(1024, Math.floor(size / 4)));
  const offsets = new GrowI32(Math.max(1024, Math.floor(size / 16)));
  const lineNos = new GrowI32(Math.max(1024, Math.floor(size / 16)));
  offsets.push(0);
  let line = 1;
  let num = 0; // value of the current all-digit token
  let tokLen = 0; // bytes in the current token
  let digitsOnly = true;
  let leadingZero = false;
  let tok = new Uint8Array(256); // bytes of the current token
  const dec = new TextDecoder("utf-8", { fatal: true });

  const endToken = () => {
    if (tokLen === 0) return;
    let code: number;
    if (digitsOnly && !leadingZero && tokLen <= 8) code = it.internInt(num);
    else {
      const bytes = tok.slice(0, tokLen);
      let s: string;
      try {
        s = dec.decode(bytes);
      } catch {
        const at = firstInvalidUtf8(bytes);
        failData("data_invalid_utf8", { file, line }, `Invalid UTF-8 in an item id at line ${line} (byte ${bytes[at]?.toString(16)}).`, { hint: "Data files must be UTF-8." });
      }
      code = it.intern(s!);
    }
    items.push(code);
    tokLen = 0;
    num = 0;
    digitsOnly = true;
    leadingZero = false;
  };
  const endLine = () => {
    endToken();
    if (items.n > offsets.buf[offsets.n - 1]!) {
      offsets.push(items.n);
      lineNos.push(line);
      if (opts.onProgress && (offsets.n & 0xffff) === 0) opts.onProgress(offsets.n - 1);
    }
    line++;
  };

  let first = true;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let i = 0;
    if (first) {
      first = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    for (const n = chunk.length; i < n; i++) {
      const b = chunk[i]!;
      if (b === 32 || b === 9 || b === 13 || b === 44 /* tolerate commas */) endToken();
      else if (b === 10) endLine();
      else {
        if (b >= 48 && b <= 57) {
          if (tokLen === 0 && b === 48) leadingZero = true;
          num = num * 10 + (b - 48);
        } else digitsOnly = false;
        if (tokLen === tok.length) {
          const t = new Uint8Array(tok.length * 2);
          t.set(tok);
          tok = t;
        }
        tok[tokLen++] = b;
      }
    }
  }
  endLine();
  const S = offsets.n - 1;
  if (S === 0) failData("data_file_empty", { file }, size === 0 ? `Data file "${file}" is empty.` : `Data file "${file}" has no sessions (only blank lines).`);
  const ln = lineNos.done();
  const itemArr = items.done();
  return {
    file,
    itemColumn,
    ids: Array.from(ln, (l) => String(l)),
    offsets: offsets.done(),
    item: itemArr,
    categorical: {},
    continuous: {},
    contextCategorical: {},
    contextContinuous: {},
    interners: { [itemColumn]: it },
    rows: itemArr.length,
  };
}
