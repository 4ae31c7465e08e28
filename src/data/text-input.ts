import { createReadStream, openSync, readSync, closeSync, statSync } from "node:fs";
import { failData } from "./errors.js";
import { countNewlines, firstInvalidUtf8 } from "./utf8.js";

/** Checks that a data file exists and is a file; a located error otherwise. */
export function checkDataFile(file: string): number {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) failData("data_file_not_found", { file }, `"${file}" is not a file.`);
    size = st.size;
  } catch (err) {
    if ((err as { issues?: unknown }).issues) throw err;
    failData("data_file_not_found", { file }, `Data file "${file}" does not exist or cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, {
      hint: "Paths in a recipe are relative to the recipe file; builtin:synthetic needs no file.",
    });
  }
  return size;
}

/** The first bytes of a file (for format sniffing). */
export function readHead(file: string, bytes = 65536): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams a UTF-8 text file as decoded strings, chunk by chunk, failing with file:line:column
 * at the first invalid UTF-8 byte. A leading BOM is dropped.
 */
export async function* readUtf8Chunks(file: string, highWaterMark = 1 << 20): AsyncGenerator<string> {
  const dec = new TextDecoder("utf-8", { fatal: true });
  let line = 1;
  let lastLineStartCol = 0; // bytes since the last newline before this chunk
  for await (const chunk of createReadStream(file, { highWaterMark }) as AsyncIterable<Buffer>) {
    let text: string;
    try {
      text = dec.decode(chunk, { stream: true });
    } catch {
      const at = firstInvalidUtf8(chunk, 0, chunk.length, true);
      reportInvalid(file, chunk, at < 0 ? 0 : at, line, lastLineStartCol);
    }
    const nl = countNewlines(chunk);
    if (nl > 0) {
      line += nl;
      lastLineStartCol = chunk.length - 1 - chunk.lastIndexOf(10);
    } else lastLineStartCol += chunk.length;
    yield text!;
  }
  try {
    const tail = dec.decode();
    if (tail) yield tail;
  } catch {
    failData("data_invalid_utf8", { file, line }, `Invalid UTF-8 at the end of the file (a multi-byte character is cut short).`, { hint: "Save the file as UTF-8." });
  }
}

function reportInvalid(file: string, chunk: Buffer, at: number, line: number, colBefore: number): never {
  const nl = countNewlines(chunk, 0, at);
  const lastNl = chunk.lastIndexOf(10, at);
  const col = nl > 0 ? at - lastNl : colBefore + at + 1;
  const bytes = Array.from(chunk.subarray(at, Math.min(at + 4, chunk.length)), (b) => b.toString(16).padStart(2, "0")).join(" ");
  failData("data_invalid_utf8", { file, line: line + nl }, `Invalid UTF-8 at line ${line + nl}, byte column ${col} (bytes ${bytes}).`, {
    hint: "Data files must be UTF-8; convert it, e.g. iconv -f latin1 -t utf-8.",
    received: bytes,
  });
}

/** The whole file as validated UTF-8 text (small files, sniffing). */
export function decodeUtf8(file: string, buf: Uint8Array, partialOk = false): string {
  const at = firstInvalidUtf8(buf, 0, buf.length, partialOk);
  if (at >= 0) reportInvalid(file, Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), at, 1, 0);
  let end = buf.length;
  if (partialOk) {
    // drop a cut multi-byte character at the end
    let k = end - 1;
    while (k >= 0 && k > end - 4 && (buf[k]! & 0xc0) === 0x80) k--;
    if (k >= 0 && buf[k]! >= 0xc0) end = k;
  }
  let s = new TextDecoder("utf-8").decode(buf.subarray(0, end));
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  return s;
}
