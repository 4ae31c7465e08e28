/**
 * The WebAssembly SIMD kernels of kernels.wat (apply_a for CG, gram_lower + cholesky for the
 * exact solve) with a bump allocator over their memory. Arrays handed to the kernels must live in
 * that memory (views from f64()/i32()).
 */
import { ALS_KERNELS_WASM_BASE64 } from "./kernels-wasm.js";

interface Exports {
  apply_a(u: number, v: number, out: number, f: number, indptr: number, indices: number, weight: number, lambda: number, Y: number, G: number): void;
  cholesky(A: number, f: number): number;
  gram_lower(A: number, W: number, T: number, f: number, n: number): void;
  build_row(u: number, A: number, b: number, T: number, W: number, f: number, indptr: number, indices: number, weight: number,
    target: number, lambda: number, Y: number, G: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(ALS_KERNELS_WASM_BASE64, "base64"));
    } catch {
      compiled = null; // no WebAssembly SIMD here: the typed-array kernels are used
    }
  }
  return compiled;
}

export class AlsWasm {
  readonly memory: WebAssembly.Memory;
  readonly k: Exports;
  private top = 64;

  private constructor(mod: WebAssembly.Module, bytes: number) {
    const pages = Math.ceil((bytes + 65536) / 65536);
    this.memory = new WebAssembly.Memory({ initial: pages });
    this.k = new WebAssembly.Instance(mod, { env: { memory: this.memory } }).exports as unknown as Exports;
  }

  /** An arena of at least `bytes` bytes, or null when WebAssembly SIMD is not available. */
  static create(bytes: number): AlsWasm | null {
    const mod = module();
    if (!mod || bytes > 3.5 * 2 ** 30) return null;
    try {
      return new AlsWasm(mod, bytes);
    } catch {
      return null;
    }
  }

  static available(): boolean {
    return module() !== null;
  }

  private alloc(bytes: number): number {
    const at = this.top;
    this.top = (at + bytes + 15) & ~15;
    if (this.top > this.memory.buffer.byteLength) throw new Error("AlsWasm: arena too small");
    return at;
  }

  f64(n: number): Float64Array {
    return new Float64Array(this.memory.buffer, this.alloc(8 * n), n);
  }

  i32(n: number): Int32Array {
    return new Int32Array(this.memory.buffer, this.alloc(4 * n), n);
  }
}
