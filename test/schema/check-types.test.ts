/**
 * `npm run check:types` guards the generated types: in a copy of the package (scripts/, schemas/, src/,
 * node_modules linked), editing a schema without regenerating makes the check fail and name the file;
 * `gen:types` then brings the types back in line and the check passes.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const ROOT = packageRoot();
let copy: string;
const gen = (...args: string[]) => spawnSync(process.execPath, [join(copy, "scripts", "gen-types.mjs"), ...args], { cwd: copy, encoding: "utf8", timeout: 120_000 });

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), "recblocks-check-types-"));
  for (const d of ["scripts", "schemas", "src"]) cpSync(join(ROOT, d), join(copy, d), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(copy, "package.json"));
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"), "dir");
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

describe("check:types", () => {
  it("passes on the committed types, fails after a schema edit, passes again after gen:types", () => {
    const ok = gen("--check");
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const file = join(copy, "schemas", "blocks", "mlp.schema.json");
    const schema = JSON.parse(readFileSync(file, "utf8")) as { properties: Record<string, { description: string }> };
    schema.properties.units!.description = "Units of each layer (edited by the check:types test).";
    writeFileSync(file, JSON.stringify(schema, null, 2) + "\n");
    const drift = gen("--check");
    expect(drift.status).not.toBe(0);
    expect(drift.stdout + drift.stderr).toMatch(/src\/generated\/blocks\/mlp\.ts/);
    const regen = gen();
    expect(regen.status, regen.stdout + regen.stderr).toBe(0);
    expect(readFileSync(join(copy, "src", "generated", "blocks", "mlp.ts"), "utf8")).toContain("edited by the check:types test");
    const again = gen("--check");
    expect(again.status, again.stdout + again.stderr).toBe(0);
  });
});
