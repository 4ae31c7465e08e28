/**
 * Interns raw ids (strings or numbers) to compact codes 0..n-1 in first-seen order.
 * Canonical non-negative integers (no sign, no leading zeros, < 2^26) take a typed-array fast path,
 * so that numeric item ids never become strings in the hot loops.
 */
const INT_LIMIT = 1 << 26;

export class Interner {
  private intTable = new Int32Array(1024).fill(-1);
  private map = new Map<string, number>();
  /** Raw key of each code, as a string (numbers in canonical decimal form). */
  readonly keys: string[] = [];
  /** Whether every key seen was a number (or a canonical integer string). */
  numeric = true;

  get size(): number {
    return this.keys.length;
  }

  /** Code of a non-negative integer (fast path). */
  internInt(n: number): number {
    if (n < INT_LIMIT) {
      if (n >= this.intTable.length) this.growInt(n);
      const c = this.intTable[n]!;
      if (c >= 0) return c;
      const code = this.keys.length;
      this.intTable[n] = code;
      this.keys.push(String(n));
      return code;
    }
    return this.internString(String(n));
  }

  intern(raw: string | number | bigint): number {
    if (typeof raw === "number") {
      if (Number.isInteger(raw) && raw >= 0) return this.internInt(raw);
      return this.internString(String(raw));
    }
    if (typeof raw === "bigint") {
      if (raw >= 0n && raw < BigInt(INT_LIMIT)) return this.internInt(Number(raw));
      return this.internString(raw.toString());
    }
    const n = canonicalInt(raw);
    if (n >= 0) return this.internInt(n);
    if (this.numeric && !isNumericString(raw)) this.numeric = false;
    return this.internString(raw);
  }

  /** Code of a raw id if seen, else -1. */
  get(raw: string | number | bigint): number {
    const n = typeof raw === "number" ? (Number.isInteger(raw) && raw >= 0 ? raw : -1) : typeof raw === "bigint" ? (raw >= 0n && raw < BigInt(INT_LIMIT) ? Number(raw) : -1) : canonicalInt(raw);
    if (n >= 0 && n < INT_LIMIT) return n < this.intTable.length ? this.intTable[n]! : -1;
    return this.map.get(String(raw)) ?? -1;
  }

  private internString(s: string): number {
    const c = this.map.get(s);
    if (c !== undefined) return c;
    const code = this.keys.length;
    this.map.set(s, code);
    this.keys.push(s);
    return code;
  }

  private growInt(n: number): void {
    let len = this.intTable.length;
    while (len <= n) len *= 2;
    const t = new Int32Array(Math.min(len, INT_LIMIT)).fill(-1);
    t.set(this.intTable);
    this.intTable = t;
  }
}

/** The value of a canonical non-negative integer string ("0", "17"; not "017", "+1", "1.0"), else -1. */
export function canonicalInt(s: string): number {
  const len = s.length;
  if (len === 0 || len > 8) return -1;
  if (len > 1 && s.charCodeAt(0) === 48) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n < INT_LIMIT ? n : -1;
}

function isNumericString(s: string): boolean {
  return s.trim() !== "" && Number.isFinite(Number(s));
}
