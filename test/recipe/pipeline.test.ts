import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatError } from "../../src/errors/format.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { checkRecipeFile, loadRecipe, validateRecipeText } from "../../src/recipe/load.js";
import { fixtureSchemaSet, FIXTURES, useFixtureSynthetic } from "./helpers.js";

const set = fixtureSchemaSet();
const valid = (f: string) => join(FIXTURES, "recipes", "valid", f);
const invalid = (f: string) => join(FIXTURES, "recipes", "invalid", f);
let undo: () => void;
let tmp: string;
beforeAll(() => {
  undo = useFixtureSynthetic();
  tmp = mkdtempSync(join(tmpdir(), "recblocks-recipe-"));
});
afterAll(() => {
  undo();
  rmSync(tmp, { recursive: true, force: true });
});

describe("loadRecipe", () => {
  it("fills every default on a copy and resolves the feature schema", () => {
    const { recipe, featureSchema, issues } = loadRecipe(valid("base.yaml"), { schemaSet: set });
    expect(issues).toEqual([]);
    expect(featureSchema.itemIdColumn().name).toBe("item_id");
    expect(featureSchema.cardinality("item_id")).toBe(51);
    // Written values are kept, defaults from the schemas are filled in.
    expect(recipe.train?.epochs).toBe(2);
    expect(recipe.train?.optimizer).toEqual({ type: "adam", learningRate: 0.001, weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, lazy: false });
    expect(recipe.train?.schedule).toEqual({ type: "constant" });
    expect(recipe.data.sessions).toEqual({ dropConsecutiveRepeats: false, minSessionLength: 2, minItemSupport: 1, iterateFilters: false, maxSequenceLength: 20 });
    expect(recipe.evaluate).toEqual({ protocol: "last-item", metrics: ["ndcg", "recall"], ks: [10, 20], batchSize: 256 });
    // Block defaults come from the block's own schema (discriminated on type).
    const model = recipe.model as unknown as { body: Record<string, unknown>[]; head: Record<string, unknown> };
    expect(model.body[0]).toEqual({ type: "transformer", dModel: 32, numHeads: 2, numLayers: 1, dropout: 0.1 });
    expect(model.body[1]).toEqual({ type: "mlp", units: [32], activation: "relu", dropout: 0 });
    expect(model.head.weightTying).toBe(true);
  });

  it("reads a JSON recipe the same as the YAML one", () => {
    const a = loadRecipe(valid("base.yaml"), { schemaSet: set }).recipe;
    const b = loadRecipe(valid("base.json"), { schemaSet: set }).recipe as unknown as Record<string, unknown>;
    delete b.$schema;
    expect(b).toEqual(a);
  });

  it("accepts inline feature schemas, schema paths and prebuilt models", () => {
    expect(loadRecipe(valid("inline-features.yaml"), { schemaSet: set }).featureSchema.names).toEqual(["item_id", "category", "session_id"]);
    expect(loadRecipe(valid("features-path.yaml"), { schemaSet: set }).featureSchema.names).toContain("price");
    const als = loadRecipe(valid("prebuilt-als.yaml"), { schemaSet: set }).recipe.model as unknown as Record<string, unknown>;
    expect(als).toEqual({ type: "als", factors: 16, regularization: 0.01, iterations: 15, alpha: 40 });
  });

  it("throws a RecblocksError with every issue of the stage", () => {
    let err: unknown;
    try {
      loadRecipe(invalid("three-independent-mistakes.yaml"), { schemaSet: set });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RecblocksError);
    const e = err as RecblocksError;
    expect(e.kind).toBe("RecipeError");
    expect(e.issues.map((i) => [i.code, i.path, i.source?.line, i.source?.column])).toEqual([
      ["unknown_block_type", "/model/body/0/type", 17, 13],
      ["out_of_range", "/model/body/1/units/0", 22, 15],
      ["unknown_key", "/train/batchsize", 28, 3],
    ]);
    expect(e.issues[0]!.message).toContain('Did you mean "transformer"?');
    expect(e.issues[2]!.message).toContain('Did you mean "batchSize"?');
    expect(formatError(e)).toMatch(/^RecipeError: test\/fixtures\/recipes\/invalid\/three-independent-mistakes\.yaml is invalid \(3 issues\)\n/);
  });
});

describe("stages", () => {
  const text = readFileSync(valid("base.yaml"), "utf8");
  it("stops after the first stage with issues", () => {
    // A schema mistake and a resolve mistake: only the schema stage is reported.
    const bad = text.replace("batchSize: 32", "batchSize: -1").replace("features: [item_id, category]", "features: [nope]");
    const r = validateRecipeText(bad, "x.yaml", { schemaSet: set });
    expect(r.stage).toBe("schema");
    expect(r.issues.map((i) => i.code)).toEqual(["out_of_range"]);
    const r2 = validateRecipeText(bad.replace("batchSize: -1", "batchSize: 1"), "x.yaml", { schemaSet: set });
    expect(r2.stage).toBe("resolve");
    expect(r2.issues.map((i) => i.code)).toEqual(["unknown_feature"]);
  });
  it("syntax errors stop before the version and schema stages", () => {
    const r = validateRecipeText(`${text}\ntrain: {`, "x.yaml", { schemaSet: set });
    expect(r.stage).toBe("read");
  });
  it("never changes the caller's view of the source and never pollutes prototypes", () => {
    const r = checkRecipeFile(invalid("proto-keys.yaml"), { schemaSet: set });
    expect(r.issues.map((i) => i.path)).toEqual(["/__proto__", "/train/constructor"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("hostile input", () => {
  it("refuses a 5 MB file quickly, with a location", () => {
    const file = join(tmp, "huge.yaml");
    const line = "  - {name: junk, dtype: int64, tags: [categorical], cardinality: 10}\n";
    writeFileSync(file, `version: 1\nname: huge\njunk:\n${line.repeat(Math.ceil((5 * 1024 * 1024) / line.length))}`);
    const t0 = Date.now();
    const r = checkRecipeFile(file, { schemaSet: set });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]!.code).toBe("file_too_large");
    expect(r.issues[0]!.source?.file).toBe(file.startsWith(process.cwd()) ? file.slice(process.cwd().length + 1) : file);
    expect(r.issues[0]!.message).toMatch(/5\.0 MiB/);
  });
  it("handles 3.9 MB of valid YAML junk keys without a stack trace", () => {
    const file = join(tmp, "big.yaml");
    const body = Array.from({ length: 60000 }, (_, i) => `k${i}: ${"v".repeat(50)}`).join("\n");
    writeFileSync(file, `version: 1\n${body}\n`);
    const r = checkRecipeFile(file, { schemaSet: set });
    expect(r.stage).toBe("schema");
    expect(r.issues.length).toBeGreaterThan(1000);
    expect(r.issues.every((i) => i.source?.line !== undefined)).toBe(true);
  });
  it("deep flow nesting is an issue, not a crash", () => {
    const r = validateRecipeText(`version: 1\njunk: ${"[".repeat(20000)}${"]".repeat(20000)}\n`, "deep.yaml", { schemaSet: set });
    expect(r.issues.map((i) => i.code)).toEqual(["too_deeply_nested"]);
  });
});
