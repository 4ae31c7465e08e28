import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateFile } from "../../src/cli/commands/validate.js";
import { formatIssues } from "../../src/errors/format.js";
import { fixtureSchemaSet, FIXTURES, useFixtureSynthetic } from "./helpers.js";

const recipeDir = join(FIXTURES, "recipes", "invalid");
const schemaDir = join(FIXTURES, "schemas", "invalid");
const files = [
  ...readdirSync(recipeDir).sort().map((f) => join(recipeDir, f)),
  ...readdirSync(schemaDir).sort().map((f) => join(schemaDir, f)),
];
const documented = new Set([...readFileSync("docs/errors.md", "utf8").matchAll(/^### ([a-z0-9_]+)$/gm)].map((m) => m[1]!));
/** Codes about a whole file, which has no line to point at. */
const FILE_LEVEL = new Set(["file_not_found", "file_too_large"]);

let undo: () => void;
beforeAll(() => {
  undo = useFixtureSynthetic();
});
afterAll(() => undo());

describe("invalid recipes and feature schemas", () => {
  const set = fixtureSchemaSet();
  it("the corpus has at least 40 files", () => {
    expect(files.length).toBeGreaterThanOrEqual(40);
  });
  for (const file of files) {
    const name = file.split("/").pop()!;
    it(name, async () => {
      const report = validateFile(file, "auto", { schemaSet: set });
      expect(report.valid).toBe(false);
      expect(report.issues.length).toBeGreaterThan(0);
      for (const issue of report.issues) {
        expect(issue.code).toMatch(/^[a-z][a-z0-9_]*$/);
        expect(documented.has(issue.code), `code ${issue.code} has no "### ${issue.code}" in docs/errors.md`).toBe(true);
        expect(issue.source?.file).toBeTruthy();
        if (!FILE_LEVEL.has(issue.code)) {
          expect(issue.source?.line).toBeGreaterThanOrEqual(1);
          expect(issue.source?.column).toBeGreaterThanOrEqual(1);
        }
        expect(issue.path === "" || issue.path.startsWith("/")).toBe(true);
        // Never Ajv's own words, never a stack trace, never a huge value.
        expect(issue.message).not.toMatch(/^must |\bmust (have required property|NOT have|match pattern|be equal to)\b|instancePath|schemaPath|\n\s+at |Error:/);
        expect(issue.message.length).toBeLessThan(400);
        expect(JSON.stringify(issue.received ?? null).length).toBeLessThan(200);
      }
      const text = formatIssues(report.kind === "recipe" || !report.kind ? "RecipeError" : "SchemaError", report.file, report.issues);
      await expect(text).toMatchFileSnapshot(join("__snapshots__", "invalid", `${name}.txt`));
    });
  }
});
