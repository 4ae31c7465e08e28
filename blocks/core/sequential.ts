import {
  Block,
  BlockError,
  createBlock,
  formatSpec,
  isTensorSpec,
  type BlockConfig,
  type BlockContext,
  type BlockInput,
  type BlockOutput,
  type CallContext,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";

/** True when two specs can describe the same tensors (same dtype and rank; null dims match any size). */
function compatible(a: PortSpec, b: PortSpec): boolean {
  if (isTensorSpec(a) || isTensorSpec(b)) {
    if (!isTensorSpec(a) || !isTensorSpec(b)) return false;
    return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === null || b.shape[i] === null || d === b.shape[i]);
  }
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && compatible(a[k] as TensorSpec, b[k] as TensorSpec));
}

/** Config of `sequential` (schemas/blocks/sequential.schema.json). */
export interface SequentialConfig {
  type: "sequential";
  name?: string;
  blocks: (BlockConfig & Record<string, unknown>)[];
}

/**
 * Runs blocks in order; each child is built from the previous child's output spec
 * (Transformers4Rec SequentialBlock). `new SequentialBlock([a, b])` takes block instances;
 * `new SequentialBlock({type: "sequential", blocks: [...configs]})` makes them from the registry.
 */
export class SequentialBlock extends Block<SequentialConfig> {
  readonly blocks: Block[];

  constructor(blocks: Block[] | SequentialConfig | Omit<SequentialConfig, "type">, opts: { name?: string } = {}) {
    if (Array.isArray(blocks)) {
      super({ type: "sequential", ...(opts.name ? { name: opts.name } : {}), blocks: blocks.map((b) => b.getConfig() as SequentialConfig["blocks"][number]) });
      this.blocks = blocks;
    } else {
      super({ ...blocks, type: "sequential" } as SequentialConfig);
      this.blocks = this.config.blocks.map((c, i) => createBlock(structuredClone(c) as SequentialConfig["blocks"][number], `/blocks/${i}`));
    }
    if (this.blocks.length === 0) throw new BlockError("", "empty_sequential", "SequentialBlock needs at least one block.");
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): PortSpec {
    let spec = input;
    this.blocks.forEach((b, i) => {
      spec = b.built ? SequentialBlock.builtOutput(b, spec, ctx.child("blocks", i)) : b.computeOutputSpec(spec, ctx.child("blocks", i));
    });
    return spec;
  }

  override build(input: PortSpec, ctx: BlockContext): void {
    // children are built in order, each from the previous output spec
    let spec = input;
    this.blocks.forEach((b, i) => {
      if (!b.built) b.build(spec, ctx.child("blocks", i));
      spec = SequentialBlock.builtOutput(b, spec, ctx.child("blocks", i));
    });
    super.build(input, ctx);
  }

  /** The output spec of a child that is already built, after checking it was built for `input`. */
  private static builtOutput(b: Block, input: PortSpec, ctx: BlockContext): PortSpec {
    if (!compatible(b.inputSpec!, input)) {
      throw new BlockError(ctx.path, "incompatible_input", `Block "${b.name}" (${b.config.type}) was already built for input ${formatSpec(b.inputSpec!)}, but here it gets ${formatSpec(input)}.`, {
        hint: "Use a new block instance here, or give it the input it was built for.",
      });
    }
    return b.outputSpec!;
  }

  override getConfig(): SequentialConfig {
    return { ...structuredClone(this.config), blocks: this.blocks.map((b) => b.getConfig() as SequentialConfig["blocks"][number]) };
  }

  override children(): [string, Block][] {
    return this.blocks.map((b, i) => [String(i), b]);
  }

  call(input: BlockInput, ctx: CallContext): BlockOutput {
    let x: BlockOutput = input;
    for (const b of this.blocks) x = b.call(x, ctx);
    return x;
  }
}

