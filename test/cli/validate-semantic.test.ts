/**
 * `node bin/recblocks.js validate` (runs from dist: `npm run build` first) reports the semantic and
 * build-time mistakes of a recipe at file:line:col and exits 1; a good recipe exits 0.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const ROOT = packageRoot();
const CLI = join(ROOT, "bin", "recblocks.js");
let tmp: string;
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 120_000 });

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "recblocks-validate-"));
  const gpt2 = readFileSync(join(ROOT, "recipes", "gpt2-clm.yaml"), "utf8");
  expect(gpt2).toContain("masking: {type: causal}");
  writeFileSync(join(tmp, "good.yaml"), gpt2);
  // gpt2 trained with masked LM: refused by the transformer block at build time, now by validate
  writeFileSync(join(tmp, "bad.yaml"), gpt2.replace("masking: {type: causal}", "masking: {type: masked}"));
  // sessions longer than gpt2's position table: only the first batch used to fail
  writeFileSync(join(tmp, "long.yaml"), gpt2.replace(/(sessions:\n\s+maxSequenceLength:) 20/, "$1 50"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** 1-based line and column of the first occurrence of `needle` in a file of tmp. */
function position(file: string, needle: string): string {
  const lines = readFileSync(join(tmp, file), "utf8").split("\n");
  const line = lines.findIndex((l) => l.includes(needle));
  return `${line + 1}:${lines[line]!.indexOf(needle) + 1}`;
}

describe("recblocks validate: semantic and build checks", () => {
  it("exits 1 and prints file:line:col of the masking key for gpt2 + masked", () => {
    const r = cli(["validate", "bad.yaml"]);
    expect(r.status, r.stderr).toBe(1);
    const key = position("bad.yaml", "type: masked");
    expect(r.stdout).toContain(`✖ /model/inputs/masking/type  bad.yaml:${key}  [incompatible_masking]`);
    expect(r.stdout).toContain("gpt2 allows: causal");
  }, 120_000);

  it("exits 1 with sequence_too_long at the transformer's maxSequenceLength key", () => {
    const r = cli(["validate", "long.yaml", "--json"]);
    expect(r.status, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout.trim()) as { files: { valid: boolean; issues: { code: string; path: string; source: { line: number; column: number } }[] }[] };
    const issues = out.files[0]!.issues;
    expect(issues.map((i) => [i.code, i.path])).toEqual([["sequence_too_long", "/model/body/0/maxSequenceLength"]]);
    const lines = readFileSync(join(tmp, "long.yaml"), "utf8").split("\n");
    const body = lines.findIndex((l) => l.trim() === "body:");
    const line = lines.findIndex((l, i) => i > body && l.includes("maxSequenceLength"));
    expect(issues[0]!.source).toMatchObject({ line: line + 1, column: lines[line]!.indexOf("maxSequenceLength") + 1 });
  }, 120_000);

  it("exits 0 for the recipe as shipped", () => {
    const r = cli(["validate", "good.yaml"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("✔ good.yaml (recipe)\n");
  }, 120_000);
});
