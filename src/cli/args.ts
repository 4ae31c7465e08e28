/** A small, strict command-line parser: unknown options are errors (exit 2), every command has --help. */

export interface OptionSpec {
  /** Long name without dashes, e.g. "json". */
  name: string;
  /** One-letter alias, e.g. "k". */
  alias?: string;
  /** "boolean" flags take no value; "string" and "number" take one; "strings" may repeat. */
  kind: "boolean" | "string" | "number" | "strings";
  description: string;
  default?: string | number | boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec[];
  /** Minimum and maximum number of positional arguments. */
  positionals?: { min: number; max: number };
}

export interface ParsedArgs {
  options: Record<string, string | number | boolean | string[] | undefined>;
  positionals: string[];
  help: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: ParsedArgs["options"] = {};
  for (const o of spec.options) if (o.default !== undefined) options[o.name] = o.default;
  const positionals: string[] = [];
  let help = false;
  const byName = new Map(spec.options.map((o) => [o.name, o]));
  const byAlias = new Map(spec.options.filter((o) => o.alias).map((o) => [o.alias!, o]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      let name: string;
      let inline: string | undefined;
      let opt: OptionSpec | undefined;
      if (arg.startsWith("--")) {
        const eq = arg.indexOf("=");
        name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
        inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
        opt = byName.get(name);
        if (!opt && name.startsWith("no-") && byName.get(name.slice(3))?.kind === "boolean") {
          options[name.slice(3)] = false;
          continue;
        }
      } else {
        name = arg.slice(1);
        opt = byAlias.get(name);
      }
      if (!opt) {
        const known = spec.options.map((o) => `--${o.name}`).join(", ");
        throw new UsageError(`unknown option "${arg}" for "recblocks ${spec.name}"${known ? ` (known: ${known})` : ""}`);
      }
      if (opt.kind === "boolean") {
        if (inline !== undefined) throw new UsageError(`option --${opt.name} takes no value`);
        options[opt.name] = true;
        continue;
      }
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`option --${opt.name} needs a value`);
      if (opt.kind === "number") {
        const n = Number(value);
        if (!Number.isFinite(n)) throw new UsageError(`option --${opt.name} needs a number, got "${value}"`);
        options[opt.name] = n;
      } else if (opt.kind === "strings") {
        const prev = options[opt.name];
        options[opt.name] = [...(Array.isArray(prev) ? prev : []), value];
      } else {
        options[opt.name] = value;
      }
      continue;
    }
    positionals.push(arg);
  }
  if (!help && spec.positionals) {
    const { min, max } = spec.positionals;
    if (positionals.length < min) throw new UsageError(`"recblocks ${spec.name}" needs ${min === max ? min : `at least ${min}`} argument${min === 1 ? "" : "s"}: ${spec.usage}`);
    if (positionals.length > max) throw new UsageError(`"recblocks ${spec.name}" takes at most ${max} argument${max === 1 ? "" : "s"}: ${spec.usage}`);
  }
  return { options, positionals, help };
}

export function formatHelp(spec: CommandSpec): string {
  const lines = [`${spec.summary}`, "", `Usage: ${spec.usage}`, ""];
  if (spec.options.length) {
    lines.push("Options:");
    for (const o of spec.options) {
      const flag = `${o.alias ? `-${o.alias}, ` : "    "}--${o.name}${o.kind === "boolean" ? "" : " <value>"}`;
      const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : "";
      lines.push(`  ${flag.padEnd(28)} ${o.description}${def}`);
    }
  }
  lines.push("  -h, --help                   show this help");
  return lines.join("\n") + "\n";
}
