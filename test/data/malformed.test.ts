import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { dataStats, loadRecipeData, Vocabulary, type FeatureSchemaDocLike } from "../../src/data/index.js";

const DIR = join(import.meta.dirname, "../fixtures/data/malformed");

interface Case {
  file?: string;
  spec?: string;
  options?: { columns?: Record<string, string>; schema?: FeatureSchemaDocLike; format?: "sessions-text" };
  load?: boolean;
  vocabulary?: boolean;
  code: string;
  line?: number;
  path?: string;
  message: string;
  count?: number;
  lastCode?: string;
}

const cases = JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) as Case[];

async function attempt(c: Case): Promise<RecblocksError> {
  const spec = c.spec ?? join(DIR, c.file!);
  try {
    if (c.vocabulary) Vocabulary.load(spec);
    else if (c.load) await loadRecipeData({ train: spec, columns: c.options?.columns, format: c.options?.format }, c.options?.schema);
    else await dataStats(spec, { columns: c.options?.columns, schema: c.options?.schema, format: c.options?.format });
  } catch (err) {
    if (err instanceof RecblocksError) return err;
    throw new Error(`expected a RecblocksError, got ${String(err)}`);
  }
  throw new Error("expected an error, got none");
}

describe("malformed data corpus", () => {
  it("holds at least 20 malformed files", () => {
    expect(new Set(cases.filter((c) => c.file).map((c) => c.file)).size).toBeGreaterThanOrEqual(20);
  });
  for (const c of cases) {
    it(`${c.file ?? c.spec}${c.options?.columns ? ` ${JSON.stringify(c.options.columns)}` : ""}: ${c.code}`, async () => {
      const err = await attempt(c);
      const first = err.issues[0]!;
      expect(first.code).toBe(c.code);
      expect(first.message).toContain(c.message);
      if (c.file) expect(first.source?.file).toContain(c.file.replace(/\.[^.]+$/, ""));
      if (c.line !== undefined) expect(first.source?.line).toBe(c.line);
      if (c.path !== undefined) expect(first.path).toBe(c.path);
      if (c.count !== undefined) expect(err.issues.length).toBe(c.count);
      if (c.lastCode !== undefined) expect(err.issues.at(-1)!.code).toBe(c.lastCode);
    });
  }
});

describe("bad-row policy", () => {
  it("skip drops ragged rows and counts them", async () => {
    const warnings: string[] = [];
    const s = await dataStats(join(DIR, "ragged-row.csv"), { badRows: "skip", onWarning: (m) => warnings.push(m) });
    expect(s.rows).toBe(3);
    expect(s.sessions).toBe(2);
    expect(s.skippedRows).toBe(1);
    expect(warnings.join("\n")).toMatch(/skipped 1 bad row in .*ragged-row\.csv \(first: line 4: Line 4 has 4 fields/);
  });
  it("skip drops rows with bad timestamps", async () => {
    const s = await dataStats(join(DIR, "too-many-bad-rows.csv"), { badRows: "skip", onWarning: () => {} }).catch((e: RecblocksError) => e);
    // every row is bad: nothing left
    expect((s as RecblocksError).issues[0]!.code).toBe("data_no_sessions");
  });
});
