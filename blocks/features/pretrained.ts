/**
 * Reading pre-trained embedding tables (Transformers4Rec PretrainedEmbeddingsInitializer): .npy
 * (float32 / float64, 2-D, C order), .json (an array of rows) or .csv (one row per line). The module
 * takes node:fs through process.getBuiltinModule, so that importing it does not pull Node modules
 * into a browser bundle; there `fileReadingAvailable()` is false.
 */

export interface EmbeddingMatrix {
  rows: number;
  cols: number;
  /** Row-major [rows * cols]. */
  data: Float32Array;
}

type FsLike = { readFileSync(path: string): Uint8Array; existsSync(path: string): boolean };

function nodeFs(): FsLike | undefined {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return p?.getBuiltinModule?.("node:fs") as FsLike | undefined;
}

/** True where files can be read (Node); false in a browser. */
export function fileReadingAvailable(): boolean {
  return nodeFs() !== undefined;
}

/** Thrown for a file that cannot be read or parsed; `message` says why (the caller adds where). */
export class EmbeddingFileError extends Error {}

export function readEmbeddingMatrix(path: string): EmbeddingMatrix {
  const fs = nodeFs();
  if (!fs) throw new EmbeddingFileError("files cannot be read here (no node:fs)");
  if (!fs.existsSync(path)) throw new EmbeddingFileError(`file not found: ${path}`);
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new EmbeddingFileError(`cannot read ${path} (${(e as Error).message})`);
  }
  const lower = path.toLowerCase();
  if (lower.endsWith(".npy")) return parseNpy(bytes);
  const text = new TextDecoder().decode(bytes);
  if (lower.endsWith(".json")) return fromRows(parseJsonRows(text));
  if (lower.endsWith(".csv") || lower.endsWith(".txt")) return fromRows(parseCsvRows(text));
  throw new EmbeddingFileError(`unknown file type of ${path} (expected .npy, .json or .csv)`);
}

function fromRows(rows: number[][]): EmbeddingMatrix {
  if (rows.length === 0) throw new EmbeddingFileError("the table has no rows");
  const cols = rows[0]!.length;
  if (cols === 0) throw new EmbeddingFileError("row 0 is empty");
  const data = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => {
    if (r.length !== cols) throw new EmbeddingFileError(`row ${i} has ${r.length} values, row 0 has ${cols}`);
    r.forEach((v, j) => {
      if (!Number.isFinite(v)) throw new EmbeddingFileError(`row ${i}, column ${j}: not a finite number`);
      data[i * cols + j] = v;
    });
  });
  return { rows: rows.length, cols, data };
}

function parseJsonRows(text: string): number[][] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new EmbeddingFileError(`not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || !v.every((r) => Array.isArray(r))) throw new EmbeddingFileError("expected a JSON array of rows (arrays of numbers)");
  return v as number[][];
}

function parseCsvRows(text: string): number[][] {
  const rows: number[][] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const r = line.split(",").map((s) => Number(s.trim()));
    if (r.some((x) => !Number.isFinite(x))) throw new EmbeddingFileError(`line ${i + 1}: not a comma-separated row of numbers`);
    rows.push(r);
  });
  return rows;
}

/** NumPy .npy v1/v2/v3: little-endian float32 or float64, 2-D, C order. */
export function parseNpy(bytes: Uint8Array): EmbeddingMatrix {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) throw new EmbeddingFileError("not a .npy file (bad magic)");
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new EmbeddingFileError("unreadable .npy header");
  if (fortran === "True") throw new EmbeddingFileError(".npy in Fortran order is not supported (save a C-order array)");
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.length !== 2) throw new EmbeddingFileError(`.npy array has shape (${shape.join(", ")}), expected 2-D (rows, dim)`);
  const [rows, cols] = shape as [number, number];
  const off = start + headerLen;
  const n = rows * cols;
  const data = new Float32Array(n);
  if (descr === "<f4" || descr === "<f8") {
    const size = descr === "<f4" ? 4 : 8;
    if (bytes.length - off < n * size) throw new EmbeddingFileError(`.npy data is truncated (${bytes.length - off} bytes, expected ${n * size})`);
    for (let i = 0; i < n; i++) data[i] = size === 4 ? view.getFloat32(off + i * 4, true) : view.getFloat64(off + i * 8, true);
  } else throw new EmbeddingFileError(`.npy dtype ${descr} is not supported (use float32 '<f4' or float64 '<f8')`);
  return { rows, cols, data };
}

/** A float32 2-D .npy file (for tests and tools). */
export function encodeNpy(m: EmbeddingMatrix): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${m.rows}, ${m.cols}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + m.data.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer);
  for (let i = 0; i < m.data.length; i++) view.setFloat32(10 + header.length + i * 4, m.data[i]!, true);
  return out;
}
