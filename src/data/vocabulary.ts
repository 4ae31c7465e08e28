import { readFileSync } from "node:fs";
import { RecblocksError } from "../errors/issue.js";
import { writeFileAtomic } from "./atomic.js";
import { dataIssue } from "./errors.js";
import { Interner } from "./interner.js";

export type VocabularyOrder = "frequency" | "first-seen";

export interface VocabularyOptions {
  /** Column the vocabulary is for (e.g. "item_id"). */
  name?: string;
  /** Reserve id 1 for out-of-vocabulary values (default true). */
  withOov?: boolean;
  /** `frequency` (default): id 1 (or 2 with OOV) is the most frequent value, ties by first appearance; `first-seen`: order of first appearance. */
  order?: VocabularyOrder;
  /** Values seen fewer times are left out (they map to OOV). Default 1. */
  minCount?: number;
}

export interface VocabularyJSON {
  format: "recblocks-vocabulary";
  version: 1;
  name: string;
  withOov: boolean;
  numeric: boolean;
  /** Raw value of ids firstId, firstId+1, ... */
  tokens: string[];
  /** Count of each token in the data the vocabulary was built from (same order as tokens). */
  counts: number[];
}

/**
 * Raw ids (string or number) to dense ids. 0 = padding, 1 = OOV when `withOov`; real values start at `firstId`.
 */
export class Vocabulary {
  readonly name: string;
  readonly withOov: boolean;
  /** Whether the raw values are numbers (then `raw(id)` returns numbers). */
  readonly numeric: boolean;
  private readonly index: Interner;
  private readonly tokenList: string[];
  private readonly countList: Float64Array;

  private constructor(name: string, withOov: boolean, numeric: boolean, tokens: string[], counts: ArrayLike<number>) {
    this.name = name;
    this.withOov = withOov;
    this.numeric = numeric;
    this.tokenList = tokens;
    this.countList = Float64Array.from(counts);
    this.index = new Interner();
    for (const t of tokens) this.index.intern(t);
    if (this.index.size !== tokens.length) throw new Error(`vocabulary "${name}": duplicate tokens`);
  }

  /** Builds a vocabulary from raw values (a value may repeat: repeats count). */
  static fromValues(values: Iterable<string | number>, opts: VocabularyOptions = {}): Vocabulary {
    const it = new Interner();
    const counts: number[] = [];
    for (const v of values) {
      const c = it.intern(v);
      counts[c] = (counts[c] ?? 0) + 1;
    }
    return Vocabulary.fromCounts(it.keys, counts, it.numeric, opts).vocab;
  }

  /**
   * Builds a vocabulary from interned keys and their counts. Returns it with `codeToId`:
   * the dense id of each key's code (OOV or 0 for keys left out).
   */
  static fromCounts(keys: string[], counts: ArrayLike<number>, numeric: boolean, opts: VocabularyOptions = {}): { vocab: Vocabulary; codeToId: Int32Array } {
    const withOov = opts.withOov ?? true;
    const minCount = opts.minCount ?? 1;
    const order: number[] = [];
    for (let c = 0; c < keys.length; c++) if ((counts[c] ?? 0) >= minCount) order.push(c);
    if ((opts.order ?? "frequency") === "frequency") order.sort((a, b) => (counts[b] ?? 0) - (counts[a] ?? 0) || a - b);
    const first = withOov ? 2 : 1;
    const codeToId = new Int32Array(keys.length).fill(withOov ? 1 : 0);
    const tokens: string[] = new Array(order.length);
    const cs = new Float64Array(order.length);
    for (let i = 0; i < order.length; i++) {
      const c = order[i]!;
      codeToId[c] = i + first;
      tokens[i] = keys[c]!;
      cs[i] = counts[c] ?? 0;
    }
    return { vocab: new Vocabulary(opts.name ?? "", withOov, numeric, tokens, cs), codeToId };
  }

  /** Number of ids including padding (and OOV): the size of an embedding table over this vocabulary. */
  get size(): number {
    return this.tokenList.length + this.firstId;
  }
  /** First id of a real value: 2 with OOV, else 1. */
  get firstId(): number {
    return this.withOov ? 2 : 1;
  }
  /** The OOV id (1), or -1 when there is none. */
  get oovId(): number {
    return this.withOov ? 1 : -1;
  }
  /** Number of real values. */
  get numValues(): number {
    return this.tokenList.length;
  }

  /** Dense id of a raw value; unknown values give the OOV id (1), or -1 without OOV. */
  lookup(raw: string | number | bigint): number {
    const c = this.index.get(raw);
    if (c >= 0) return c + this.firstId;
    return this.oovId;
  }

  has(raw: string | number | bigint): boolean {
    return this.index.get(raw) >= 0;
  }

  /** Dense ids of many raw values. */
  lookupMany(raws: ArrayLike<string | number>): Int32Array {
    const out = new Int32Array(raws.length);
    for (let i = 0; i < raws.length; i++) out[i] = this.lookup(raws[i]!);
    return out;
  }

  /** Raw value of a dense id (a number when the vocabulary is numeric); undefined for 0, OOV and out-of-range ids. */
  raw(id: number): string | number | undefined {
    const t = this.tokenList[id - this.firstId];
    if (t === undefined || id < this.firstId) return undefined;
    return this.numeric ? Number(t) : t;
  }

  /** Count of an id in the data the vocabulary was built from (0 for padding/OOV). */
  count(id: number): number {
    return id >= this.firstId ? (this.countList[id - this.firstId] ?? 0) : 0;
  }

  /** Counts indexed by dense id, length `size` (0 at padding and OOV): what sampled softmax needs. */
  frequencies(): Float64Array {
    const f = new Float64Array(this.size);
    f.set(this.countList, this.firstId);
    return f;
  }

  /** Real ids sorted by decreasing count (ties by id). */
  idsByFrequency(): Int32Array {
    const ids = Int32Array.from({ length: this.numValues }, (_, i) => i + this.firstId);
    const cs = this.countList;
    const first = this.firstId;
    return ids.sort((a, b) => cs[b - first]! - cs[a - first]! || a - b);
  }

  toJSON(): VocabularyJSON {
    return { format: "recblocks-vocabulary", version: 1, name: this.name, withOov: this.withOov, numeric: this.numeric, tokens: [...this.tokenList], counts: Array.from(this.countList) };
  }

  static fromJSON(doc: unknown, file = "<vocabulary>"): Vocabulary {
    const bad = (msg: string): never => {
      throw new RecblocksError(file, [dataIssue("vocab_file_invalid", { file }, `Not a recblocks vocabulary: ${msg}.`, { hint: "Vocabularies are written by recblocks next to a model (vocab/<column>.json); re-save the model." })]);
    };
    if (typeof doc !== "object" || doc === null) return bad("expected a JSON object");
    const d = doc as Partial<VocabularyJSON>;
    if (d.format !== "recblocks-vocabulary") bad('"format" is not "recblocks-vocabulary"');
    if (d.version !== 1) bad(`unsupported version ${JSON.stringify(d.version)} (expected 1)`);
    if (!Array.isArray(d.tokens) || !d.tokens.every((t) => typeof t === "string")) bad('"tokens" must be an array of strings');
    if (!Array.isArray(d.counts) || d.counts.length !== d.tokens!.length || !d.counts.every((c) => typeof c === "number")) bad('"counts" must be an array of numbers as long as "tokens"');
    if (typeof d.withOov !== "boolean") bad('"withOov" must be true or false');
    if (new Set(d.tokens).size !== d.tokens!.length) bad('"tokens" holds duplicates');
    return new Vocabulary(typeof d.name === "string" ? d.name : "", d.withOov!, d.numeric === true, d.tokens!, d.counts!);
  }

  /** Saves as JSON, atomically (temp file + rename). */
  save(file: string): void {
    writeFileAtomic(file, JSON.stringify(this.toJSON()) + "\n");
  }

  static load(file: string): Vocabulary {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new RecblocksError(file, [dataIssue("data_file_not_found", { file }, `Cannot read the vocabulary file: ${(err as Error).message}`)]);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new RecblocksError(file, [dataIssue("vocab_file_invalid", { file }, `Not valid JSON: ${(err as Error).message}`)]);
    }
    return Vocabulary.fromJSON(doc, file);
  }
}
