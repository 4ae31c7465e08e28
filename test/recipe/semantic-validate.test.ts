/**
 * `recblocks validate` reports what used to surface only when the model was built: masking vs
 * transformer architecture (the rule table of src/masking/architectures.ts), masking without a
 * next-item task, dOutput vs dModel, and every build-time check of the blocks (src/recipe/build-check.ts,
 * run on the real blocks without data), each located at file:line:col of the key to change.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildChecker, validateFile } from "../../src/cli/commands/validate.js";
import type { Issue } from "../../src/errors/issue.js";
import { MASKING_BY_ARCHITECTURE, maskingMismatch } from "../../src/masking/index.js";
import { checkModelBuild, type ModelBuildCheck } from "../../src/recipe/build-check.js";
import { validateRecipeText } from "../../src/recipe/load.js";
import { MASKING_BY_ARCHITECTURE as BLOCK_TABLE } from "../../blocks/sequence/transformer.js";

/** A recipe on builtin:synthetic; `masking`, `body` and `head` are YAML lines spliced in (2-space indent under model). */
function recipe(o: { masking?: string; dOutput?: number; body?: string; head?: string; features?: string; maxLen?: number } = {}): string {
  return [
    "version: 1", // 1
    "name: semantic", // 2
    `features: ${o.features ?? "builtin:synthetic"}`, // 3
    "data:", // 4
    "  train: builtin:synthetic?sessions=50&items=100&seed=7", // 5
    "  sessions:", // 6
    `    maxSequenceLength: ${o.maxLen ?? 20}`, // 7
    "model:", // 8
    "  inputs:", // 9
    "    type: tabular-sequence-features", // 10
    "    excludeFeatures: [user_id, category, price, timestamp]", // 11
    "    embeddingDims: {item_id: 32}", // 12
    o.dOutput !== undefined ? `    dOutput: ${o.dOutput}` : "    # no dOutput", // 13
    o.masking !== undefined ? `    masking: ${o.masking}` : "    # no masking", // 14
    "  body:", // 15
    o.body ?? "    - {type: transformer, architecture: gpt2, dModel: 32, numHeads: 4, numLayers: 1, maxSequenceLength: 20}", // 16
    "  head:", // 17
    `    ${o.head ?? "type: next-item-prediction"}`, // 18
    "",
  ].join("\n");
}

const codes = (issues: Issue[]) => issues.map((i) => i.code);
const at = (i: Issue) => `${i.source?.file}:${i.source?.line}:${i.source?.column}`;

describe("the masking rule table", () => {
  it("is one table: the transformer block reads the one in src/masking", () => {
    expect(BLOCK_TABLE).toBe(MASKING_BY_ARCHITECTURE);
  });

  it("follows Transformers4Rec (t4r-parity.md), plus causal for the bert family", () => {
    expect(maskingMismatch("gpt2", "masked")?.expected).toEqual(["causal"]);
    expect(maskingMismatch("llama", "mlm")?.received).toBe("masked"); // aliases resolved
    expect(maskingMismatch("transfo-xl", "rtd")?.expected).toEqual(["causal"]);
    expect(maskingMismatch("bert", "plm")?.expected).toEqual(["causal", "masked", "rtd"]);
    for (const a of ["bert", "roberta", "electra", "albert"]) {
      expect(maskingMismatch(a, "masked")).toBeUndefined();
      expect(maskingMismatch(a, "rtd")).toBeUndefined();
      expect(maskingMismatch(a, "permutation")).toBeDefined();
    }
    for (const m of ["causal", "masked", "permutation", "rtd"]) expect(maskingMismatch("xlnet", m)).toBeUndefined();
    expect(maskingMismatch("not-an-architecture", "masked")).toBeUndefined();
  });
});

describe("semantic checks of validate (no data, no blocks)", () => {
  it("gpt2 with masked masking: incompatible_masking at the masking key", () => {
    const r = validateRecipeText(recipe({ masking: "{type: masked}" }), "mem.yaml");
    expect(r.stage).toBe("semantic");
    expect(codes(r.issues)).toEqual(["incompatible_masking"]);
    const i = r.issues[0]!;
    expect(i.path).toBe("/model/inputs/masking/type");
    // line 14 is "    masking: {type: masked}": the key `type` starts at column 15
    expect(at(i)).toBe("mem.yaml:14:15");
    expect(i.message).toContain("/model/body/0 (line 16)");
    expect(i.message).toContain("gpt2 allows: causal");
    expect(i.expected).toEqual(["causal"]);
  });

  it("permutation with bert: incompatible_masking listing bert's schemes", () => {
    const body = "    - {type: transformer, architecture: bert, dModel: 32, numHeads: 4, numLayers: 1, maxSequenceLength: 20}";
    const r = validateRecipeText(recipe({ masking: "{type: permutation}", body }), "mem.yaml");
    expect(codes(r.issues)).toEqual(["incompatible_masking"]);
    expect(r.issues[0]!.received).toBe("permutation");
    expect(r.issues[0]!.expected).toEqual(["causal", "masked", "rtd"]);
    expect(r.issues[0]!.hint).toContain("architecture xlnet");
  });

  it("one issue per transformer that does not fit", () => {
    const body = [
      "    - {type: transformer, architecture: gpt2, dModel: 32, numHeads: 4, numLayers: 1}",
      "    - {type: transformer, architecture: bert, dModel: 32, numHeads: 4, numLayers: 1}",
      "    - {type: transformer, architecture: llama, dModel: 32, numHeads: 4, numLayers: 1}",
    ].join("\n");
    const r = validateRecipeText(recipe({ masking: "{type: masked}", body }), "mem.yaml");
    expect(r.issues.map((i) => i.message.slice(0, 33))).toEqual(["The transformer at /model/body/0 ", "The transformer at /model/body/2 "]);
  });

  it("masking that fits: no issue (gpt2 + causal, xlnet + permutation, bert + masked)", () => {
    expect(validateRecipeText(recipe({ masking: "{type: causal}" }), "mem.yaml").issues).toEqual([]);
    const xl = "    - {type: transformer, architecture: xlnet, dModel: 32, numHeads: 4, numLayers: 1}";
    expect(validateRecipeText(recipe({ masking: "{type: permutation}", body: xl }), "mem.yaml").issues).toEqual([]);
    const bert = "    - {type: transformer, architecture: bert, dModel: 32, numHeads: 4, numLayers: 1}";
    expect(validateRecipeText(recipe({ masking: "{type: masked}", body: bert }), "mem.yaml").issues).toEqual([]);
  });

  it("masked masking with only per-session tasks: masking_without_next_item at the masking key", () => {
    const features = join(process.cwd(), "recipes", "features", "synthetic-session-targets.yaml");
    const head = "{type: binary-classification, target: high_value}";
    const body = "    - {type: gru, units: 32}";
    const text = recipe({ masking: "{type: masked}", head, body, features }).replace("    excludeFeatures: [user_id, category, price, timestamp]\n", "    # all\n");
    const r = validateRecipeText(text, "mem.yaml");
    expect(codes(r.issues)).toEqual(["masking_without_next_item"]);
    expect(at(r.issues[0]!)).toBe("mem.yaml:14:15");
    expect(r.issues[0]!.message).toContain("binary-classification, line 18");
    // causal masking corrupts nothing: allowed; a multi-task head with a next-item task reads the labels
    expect(validateRecipeText(text.replace("type: masked", "type: causal"), "mem.yaml").issues).toEqual([]);
    const multi = "{type: multi-task, tasks: [{type: next-item-prediction}, {type: binary-classification, target: high_value}]}";
    expect(validateRecipeText(recipe({ masking: "{type: masked}", head: multi, body, features }).replace("    excludeFeatures: [user_id, category, price, timestamp]\n", "    # all\n"), "mem.yaml").issues).toEqual([]);
  });

  it("a feature schema without an item-id column is reported for the next-item head (decidable from the schema)", () => {
    const r = validateRecipeText(recipe({ masking: "{type: causal}", features: "{version: 1, columns: [{name: x, dtype: int64, tags: [categorical, list], cardinality: 5}]}" }).replace("    excludeFeatures: [user_id, category, price, timestamp]\n", "    # all\n"), "mem.yaml");
    expect(codes(r.issues)).toContain("missing_item_id");
    expect(at(r.issues.find((i) => i.code === "missing_item_id")!)).toBe("mem.yaml:3:11");
  });

  it("dOutput that is not the transformer's dModel: incompatible_input at the dModel key", () => {
    const r = validateRecipeText(recipe({ masking: "{type: causal}", dOutput: 48 }), "mem.yaml");
    expect(codes(r.issues)).toEqual(["incompatible_input"]);
    const i = r.issues[0]!;
    expect(i.path).toBe("/model/body/0/dModel");
    // line 16 is "    - {type: transformer, architecture: gpt2, dModel: 32, ...": `dModel` starts at column 47
    expect(at(i)).toBe("mem.yaml:16:47");
    expect(i.received).toBe(48);
    expect(i.expected).toBe(32);
    expect(i.message).toContain("(/model/inputs/dOutput, line 13)");
    expect(validateRecipeText(recipe({ masking: "{type: causal}", dOutput: 32 }), "mem.yaml").issues).toEqual([]);
  });

  it("albert / electra with embeddingSize: dOutput is compared with embeddingSize", () => {
    const body = "    - {type: transformer, architecture: albert, dModel: 64, embeddingSize: 32, numHeads: 4, numLayers: 1}";
    expect(validateRecipeText(recipe({ masking: "{type: masked}", dOutput: 32, body }), "mem.yaml").issues).toEqual([]);
    const r = validateRecipeText(recipe({ masking: "{type: masked}", dOutput: 64, body }), "mem.yaml");
    expect(r.issues.map((i) => [i.code, i.path])).toEqual([["incompatible_input", "/model/body/0/embeddingSize"]]);
  });
});

describe("build checks of validate (the real blocks, no data)", () => {
  let build: ModelBuildCheck;
  beforeAll(async () => {
    build = await buildChecker();
  }, 60_000);

  const built = (text: string): Issue[] => {
    const r = validateRecipeText(text, "mem.yaml");
    expect(r.issues).toEqual([]);
    return checkModelBuild(r.recipe!, r.featureSchema!, r.locate!);
  };

  it("a recipe that validates builds", () => {
    expect(built(recipe({ masking: "{type: causal}" }))).toEqual([]);
  });

  it("a position table shorter than data.sessions.maxSequenceLength: sequence_too_long at the key", () => {
    const issues = built(recipe({ masking: "{type: causal}", maxLen: 30 }));
    expect(codes(issues)).toEqual(["sequence_too_long"]);
    expect(issues[0]!.path).toBe("/model/body/0/maxSequenceLength");
    // `maxSequenceLength: 20` in the flow mapping of line 16 starts at column 86
    expect(at(issues[0]!)).toBe("mem.yaml:16:86");
    expect(issues[0]!.message).toContain("30 steps but the gpt2 position table holds 20");
    // bert's table has maxSequenceLength + 2 rows (Transformers4Rec): 22 steps fit, 23 do not
    const bert = "    - {type: transformer, architecture: bert, dModel: 32, numHeads: 4, numLayers: 1, maxSequenceLength: 20}";
    expect(built(recipe({ masking: "{type: masked}", body: bert, maxLen: 22 }))).toEqual([]);
    expect(codes(built(recipe({ masking: "{type: masked}", body: bert, maxLen: 23 })))).toEqual(["sequence_too_long"]);
    // xlnet has no position table
    const xl = "    - {type: transformer, architecture: xlnet, dModel: 32, numHeads: 4, numLayers: 1, maxSequenceLength: 20}";
    expect(built(recipe({ masking: "{type: masked}", body: xl, maxLen: 500 }))).toEqual([]);
  });

  it("the blocks' own build checks, located: numHeads, missing masking, aggregated size", () => {
    const heads = built(recipe({ masking: "{type: causal}", body: "    - {type: transformer, architecture: gpt2, dModel: 32, numHeads: 5, numLayers: 1}" }));
    expect(heads.map((i) => [i.code, i.path, at(i)])).toEqual([["incompatible_config", "/model/body/0/numHeads", "mem.yaml:16:59"]]);
    const noMask = built(recipe({}));
    expect(noMask.map((i) => [i.code, i.path, at(i)])).toEqual([["missing_masking", "/model/head", "mem.yaml:17:3"]]);
    // no dOutput: the item embedding (32) must be the transformer's dModel (48)
    const size = built(recipe({ masking: "{type: causal}", body: "    - {type: transformer, architecture: gpt2, dModel: 48, numHeads: 4, numLayers: 1}" }));
    expect(size.map((i) => [i.code, i.path])).toEqual([["incompatible_input", "/model/body/0/dModel"]]);
  });

  it("feature schemas whose cardinalities come from the data (builtin:sessions) still build", () => {
    const text = recipe({ masking: "{type: causal}", features: "builtin:sessions" }).replace("    excludeFeatures: [user_id, category, price, timestamp]\n", "    # all\n");
    expect(built(text)).toEqual([]);
  });

  it("every recipe in recipes/ validates and builds", () => {
    const dir = join(process.cwd(), "recipes");
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThan(10);
    const bad = files.map((f) => validateFile(join(dir, f), "recipe", { build })).filter((r) => !r.valid);
    expect(bad.map((r) => `${r.file}: ${r.issues.map((i) => `${i.code} ${i.message}`).join("; ")}`)).toEqual([]);
  }, 120_000);
});
