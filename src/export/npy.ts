/**
 * NumPy .npy files (format version 1.0): magic "\x93NUMPY", version bytes 1 0, a little-endian uint16
 * header length, an ASCII Python dict `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }`
 * padded with spaces and a final newline so that the data starts at a multiple of 64 bytes, then the
 * values in C (row-major) order. `numpy.load(file)` reads it.
 */

export type NpyArray = Float32Array | Int32Array | Float64Array;

function descrOf(a: NpyArray): string {
  if (a instanceof Float32Array) return "<f4";
  if (a instanceof Int32Array) return "<i4";
  return "<f8";
}

/** The bytes of an .npy file holding `values` with `shape` (row-major). */
export function encodeNpy(values: NpyArray, shape: number[]): Uint8Array[] {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== values.length) throw new Error(`encodeNpy: shape [${shape}] holds ${n} values, got ${values.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descrOf(values)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pre = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header.padEnd(total - pre - 1, " ") + "\n";
  const head = new Uint8Array(total);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(head.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) head[pre + i] = header.charCodeAt(i);
  // typed arrays are little-endian on every platform Node runs on
  const body = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return [head, body];
}

/** Parses an .npy file (version 1.x/2.x, little-endian f4/i4/f8, C order): for tests and round trips. */
export function decodeNpy(bytes: Uint8Array): { descr: string; fortranOrder: boolean; shape: number[]; headerLength: number; values: NpyArray } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (!magic.every((b, i) => bytes[i] === b)) throw new Error("decodeNpy: not an .npy file (bad magic)");
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(start, start + hlen)).toString("latin1");
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1] === "True";
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`decodeNpy: bad header ${JSON.stringify(header)}`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const off = start + hlen;
  const data = bytes.slice(off);
  const values = descr === "<f4" ? new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4) : descr === "<i4" ? new Int32Array(data.buffer, data.byteOffset, data.byteLength / 4) : new Float64Array(data.buffer, data.byteOffset, data.byteLength / 8);
  return { descr, fortranOrder: fortran, shape, headerLength: off, values };
}
