import { RecblocksError, type Issue } from "../errors/issue.js";
import { causalScheme } from "./causal.js";
import { maskedScheme } from "./masked.js";
import { permutationScheme } from "./plm.js";
import { replacementScheme } from "./rtd.js";
import { toRandomSource, type RandomSource } from "./rng.js";
import type { MaskingConfig, MaskingScheme, MaskMode, MaskOptions, MaskResult, Resolved } from "./types.js";

const schemes = new Map<string, MaskingScheme<any>>();
const aliases = new Map<string, string>();

/** Adds a masking scheme (e.g. permutation LM) under its type id and aliases. Duplicates throw. */
export function registerMaskingScheme<C extends { type: string }>(scheme: MaskingScheme<C>): void {
  for (const name of [scheme.type, ...scheme.aliases]) {
    if (schemes.has(name) || aliases.has(name)) throw new Error(`masking scheme "${name}" is already registered`);
  }
  schemes.set(scheme.type, scheme);
  for (const a of scheme.aliases) aliases.set(a, scheme.type);
}

/** Canonical type ids of the registered schemes, sorted. */
export function maskingTypes(): string[] {
  return [...schemes.keys()].sort();
}

/** The scheme for a type id or alias, or undefined. */
export function getMaskingScheme(type: string): MaskingScheme<any> | undefined {
  return schemes.get(aliases.get(type) ?? type);
}

registerMaskingScheme(causalScheme);
registerMaskingScheme(maskedScheme);
registerMaskingScheme(permutationScheme);
registerMaskingScheme(replacementScheme);

/**
 * Validates a masking config and fills in its defaults; aliases ("clm", "mlm") become the canonical
 * type. Problems are reported all at once as a RecblocksError whose issue paths are JSON Pointers
 * under `path` (the config's place in the recipe).
 */
export function resolveMaskingConfig<C extends MaskingConfig>(cfg: C | { type: string; [k: string]: unknown }, path = ""): Resolved<C> {
  const issues: Issue[] = [];
  const raw = cfg as Record<string, unknown>;
  const type = raw?.type;
  const scheme = typeof type === "string" ? getMaskingScheme(type) : undefined;
  if (!scheme) {
    const known = [...maskingTypes(), ...aliases.keys()].sort();
    const guess = typeof type === "string" ? didYouMean(type, known) : undefined;
    issues.push({
      code: "unknown_masking_type",
      path: `${path}/type`,
      message: `Unknown masking type ${JSON.stringify(type)}.${guess ? ` Did you mean "${guess}"?` : ""}`,
      received: type,
      expected: known,
      hint: `Known masking types: ${known.join(", ")}.`,
    });
    throw new RecblocksError("masking config", issues);
  }
  const out: Record<string, unknown> = { type: scheme.type };
  const keys = Object.keys(scheme.defaults);
  for (const k of Object.keys(raw)) {
    if (k === "type") continue;
    if (!keys.includes(k)) {
      const guess = didYouMean(k, keys);
      issues.push({
        code: "unknown_key",
        path: `${path}/${k}`,
        message: `Unknown option "${k}" for masking "${scheme.type}".${guess ? ` Did you mean "${guess}"?` : ""}`,
        received: k,
        expected: keys,
      });
    }
  }
  for (const k of keys) out[k] = raw[k] === undefined ? scheme.defaults[k] : raw[k];
  for (const p of scheme.check(out as any)) {
    issues.push({ code: "invalid_value", path: `${path}/${p.key}`, message: p.message, expected: p.expected, received: p.received });
  }
  if (issues.length) throw new RecblocksError("masking config", issues);
  return out as Resolved<C>;
}

/**
 * Masks a [B, L] batch of item ids (row-major, 0 = padding, right or left padded) for the given mode.
 * `cfg` may be partial (defaults are filled in). `rng` is a RandomSource or a `() => number`.
 * Host-side, O(B·L); no tensors.
 */
export function maskBatch(
  cfg: MaskingConfig | { type: string; [k: string]: unknown },
  itemIds: Int32Array,
  B: number,
  L: number,
  mode: MaskMode,
  rng: RandomSource | (() => number),
  opts: MaskOptions = {},
): MaskResult {
  if (mode !== "train" && mode !== "eval" && mode !== "inference") {
    throw new Error(`masking: mode must be "train", "eval" or "inference", got ${JSON.stringify(mode)}`);
  }
  const resolved = resolveMaskingConfig(cfg as MaskingConfig);
  const scheme = getMaskingScheme(resolved.type)!;
  return scheme.mask(resolved, itemIds, B, L, mode, toRandomSource(rng), opts);
}

function didYouMean(word: string, candidates: string[]): string | undefined {
  const w = word.toLowerCase();
  const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(w) || w.startsWith(c.toLowerCase()));
  if (w.length >= 3 && prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}
