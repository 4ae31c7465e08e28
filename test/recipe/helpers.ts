import { join } from "node:path";
import { SchemaSet } from "../../src/recipe/schema-set.js";
import { FeatureSchema } from "../../src/schema/feature-schema.js";
import { registerBuiltinFeatureSchema, unregisterBuiltinFeatureSchema } from "../../src/schema/builtin.js";

export const FIXTURES = join("test", "fixtures");

/** The package's recipe and feature schemas with the example block/model schemas of test/fixtures (stable for snapshots). */
export function fixtureSchemaSet(): SchemaSet {
  return new SchemaSet({ blocksDir: join(FIXTURES, "schemas", "blocks"), modelsDir: join(FIXTURES, "schemas", "models") });
}

/** Make builtin:synthetic resolve to the fixture schema (stable for snapshots); returns the undo. */
export function useFixtureSynthetic(): () => void {
  const schema = FeatureSchema.load(join(FIXTURES, "schemas", "features", "synthetic.yaml"));
  registerBuiltinFeatureSchema("synthetic", () => schema);
  return () => unregisterBuiltinFeatureSchema("synthetic");
}
