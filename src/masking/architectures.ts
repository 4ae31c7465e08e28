import { getMaskingScheme } from "./registry.js";

/**
 * Masking schemes each transformer preset trains with (Transformers4Rec's MappingTransformerMasking,
 * plus causal for the bert family, which the transformer block makes causal with an attention mask).
 * Permutation LM needs XLNet's two-stream attention; gpt2, llama and transfo-xl are causal decoders.
 * The one copy of the rule: the transformer block enforces it at build time and `recblocks validate`
 * (src/recipe/semantic.ts) reports it from the recipe alone.
 */
export const MASKING_BY_ARCHITECTURE = {
  xlnet: ["causal", "masked", "permutation", "rtd"],
  gpt2: ["causal"],
  bert: ["causal", "masked", "rtd"],
  roberta: ["causal", "masked", "rtd"],
  electra: ["causal", "masked", "rtd"],
  albert: ["causal", "masked", "rtd"],
  llama: ["causal"],
  "transfo-xl": ["causal"],
  longformer: ["causal", "masked", "rtd"],
} as const satisfies Readonly<Record<string, readonly string[]>>;

export type MaskingArchitecture = keyof typeof MASKING_BY_ARCHITECTURE;

/** Presets that are causal decoders whatever the masking (causal: false is refused). */
export const CAUSAL_DECODERS: ReadonlySet<string> = new Set(["gpt2", "llama", "transfo-xl"]);

/** The canonical type of a masking config's type (aliases such as "plm" resolved), or the type itself. */
export function canonicalMaskingType(type: string | undefined): string | undefined {
  return type === undefined ? undefined : (getMaskingScheme(type)?.type ?? type);
}

/** Why an architecture cannot train with a masking type (issue `incompatible_masking`), or undefined when it can. */
export interface MaskingMismatch {
  message: string;
  hint: string;
  expected: string[];
  received: string;
}

/**
 * Checks a transformer architecture against the input block's masking type (aliases allowed).
 * Undefined when they fit, or when the architecture or masking is unknown (reported elsewhere).
 */
export function maskingMismatch(architecture: string, maskingType: string | undefined): MaskingMismatch | undefined {
  const type = canonicalMaskingType(maskingType);
  if (type === undefined || !Object.prototype.hasOwnProperty.call(MASKING_BY_ARCHITECTURE, architecture)) return undefined;
  const table = MASKING_BY_ARCHITECTURE as Readonly<Record<string, readonly string[]>>;
  const allowed = table[architecture]!;
  if (allowed.includes(type)) return undefined;
  const fits = Object.keys(table).filter((a) => table[a]!.includes(type));
  return {
    message: `architecture ${architecture} does not train with ${type} masking (the input block's masking.type); ${architecture} allows: ${allowed.join(", ")}.`,
    hint: fits.length
      ? `Use masking type ${allowed.map((a) => `"${a}"`).join(" or ")}, or architecture ${fits.join(" or ")} for ${type} masking.`
      : `Use masking type ${allowed.map((a) => `"${a}"`).join(" or ")}.`,
    expected: [...allowed],
    received: type,
  };
}
