import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../paths.js";
import { syntheticFeatureSchema } from "../data/synthetic.js";
import { FeatureSchema } from "./feature-schema.js";

/** Makes the feature schema of a built-in dataset from the query of `builtin:<name>?k=v&...`. */
export type BuiltinSchemaProvider = (params: Record<string, string>) => FeatureSchema;

const providers = new Map<string, BuiltinSchemaProvider>();

/** builtin:synthetic: the schema of the data module's synthetic sessions (src/data/synthetic.ts). */
const synthetic: BuiltinSchemaProvider = (params) => {
  const q = new URLSearchParams(params).toString();
  return FeatureSchema.fromJSON(syntheticFeatureSchema(`builtin:synthetic${q ? `?${q}` : ""}`), { file: "builtin:synthetic" });
};
providers.set("synthetic", synthetic);

/** Register the feature schema of `builtin:<name>` (the data module registers `synthetic`). Re-registering replaces. */
export function registerBuiltinFeatureSchema(name: string, provider: BuiltinSchemaProvider): void {
  providers.set(name, provider);
}

/** Remove a registration (tests); synthetic falls back to the data module's. */
export function unregisterBuiltinFeatureSchema(name: string): void {
  providers.delete(name);
  if (name === "synthetic") providers.set("synthetic", synthetic);
}

/** Split `builtin:synthetic?items=100&seed=3` into its name and parameters. */
export function parseBuiltinSpec(spec: string): { name: string; params: Record<string, string> } | undefined {
  const m = /^builtin:([a-z0-9][a-z0-9-]*)(?:\?(.*))?$/.exec(spec);
  if (!m) return undefined;
  return { name: m[1]!, params: Object.fromEntries(new URLSearchParams(m[2] ?? "")) };
}

/**
 * How `builtin:<name>` resolves: a registered provider, else the file recipes/features/<name>.yaml of the package.
 */
export function builtinSchemaSource(name: string): { provider?: BuiltinSchemaProvider; file?: string } {
  const provider = providers.get(name);
  if (provider) return { provider };
  const file = join(packageRoot(), "recipes", "features", `${name}.yaml`);
  return existsSync(file) ? { file } : {};
}

/** Names a `builtin:` feature schema can take now. */
export function builtinSchemaNames(): string[] {
  return [...providers.keys()].sort();
}
