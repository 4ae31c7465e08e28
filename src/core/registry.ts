import { didYouMean } from "../errors/did-you-mean.js";
import { RecblocksError } from "../errors/issue.js";
import type { Block, BlockConfig } from "./block.js";

/** A block class as the registry holds it: `new cls(config)`. */
export type BlockClass = new (config: any) => Block;

const classes = new Map<string, BlockClass>();
const aliases = new Map<string, string>();

const TYPE_ID = /^([a-z0-9][a-z0-9-]*\/)?[a-z0-9][a-z0-9-]*$/;

/**
 * Adds a block type. Ids are kebab-case (`mlp`, `tabular-sequence-features`); third-party blocks are
 * namespaced (`acme/my-block`). Registering an id or alias twice throws.
 */
export function registerBlock(type: string, cls: BlockClass, opts: { aliases?: string[] } = {}): void {
  if (!TYPE_ID.test(type)) throw new Error(`block type id "${type}" is not kebab-case (optionally "namespace/")`);
  for (const n of [type, ...(opts.aliases ?? [])]) {
    if (classes.has(n) || aliases.has(n)) throw new Error(`block type "${n}" is already registered`);
  }
  classes.set(type, cls);
  for (const a of opts.aliases ?? []) aliases.set(a, type);
}

/** Canonical ids of the registered block types, sorted. */
export function listBlockTypes(): string[] {
  return [...classes.keys()].sort();
}

/** The canonical id of a type id or alias, or undefined. */
export function canonicalBlockType(type: string): string | undefined {
  if (classes.has(type)) return type;
  return aliases.get(type);
}

export function getBlockClass(type: string): BlockClass | undefined {
  const t = canonicalBlockType(type);
  return t === undefined ? undefined : classes.get(t);
}

/**
 * Makes a block from its config. An unknown type is a RecblocksError with issue `unknown_block_type`
 * at `<path>/type`, with a did-you-mean and the sorted list of known ids. Aliases become the canonical id.
 */
export function createBlock<B extends Block = Block>(config: BlockConfig & Record<string, unknown>, path = ""): B {
  const type = config?.type;
  const canonical = typeof type === "string" ? canonicalBlockType(type) : undefined;
  if (canonical === undefined) {
    const known = listBlockTypes();
    throw new RecblocksError("model", [
      {
        code: "unknown_block_type",
        path: `${path}/type`,
        message: `Unknown block type ${JSON.stringify(type)}.${typeof type === "string" ? didYouMean(type, [...known, ...aliases.keys()]) : ""}`,
        received: type,
        expected: known,
        hint: `Known block types: ${known.join(", ")}.`,
      },
    ]);
  }
  const cls = classes.get(canonical)!;
  return new cls({ ...config, type: canonical }) as B;
}
