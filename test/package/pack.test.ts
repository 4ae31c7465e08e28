/**
 * What `npm pack` ships: the CLI, the compiled library with its type declarations, the schemas, the
 * recipes and the native-setup tool — and no tests, fixtures, data sets, benchmarks or sources of the
 * peers. (`npm ci` builds dist/ through `prepare`; the full install of the tarball into an empty folder
 * is checked by hand, see the README.)
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

describe("npm pack", () => {
  const root = packageRoot();
  it.skipIf(!existsSync(join(root, "dist", "src", "index.js")))("ships the CLI, dist with types, schemas and recipes, and nothing else", () => {
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const must of ["bin/recblocks.js", "dist/src/index.js", "dist/src/index.d.ts", "schemas/recipe.schema.json", "schemas/feature-schema.schema.json", "recipes/gpt2-clm.yaml", "README.md", "package.json"]) {
      expect(files, must).toContain(must);
    }
    const tops = new Set(files.map((f) => f.split("/")[0]));
    expect([...tops].sort()).toEqual(["README.md", "bin", "dist", "package.json", "recipes", "schemas", "tools"]);
    const bad = files.filter((f) => /(^|\/)(test|fixtures|bench|node_modules|\.venv-peers|runs)\//.test(f) || /\.(csv|tsv|parquet|whl|so|node|bin)$/.test(f) || /sessions\.txt$|u\.data$/.test(f));
    expect(bad).toEqual([]);
    // every compiled module has its declaration file next to it
    const js = files.filter((f) => f.startsWith("dist/") && f.endsWith(".js"));
    expect(js.length).toBeGreaterThan(50);
    for (const f of js) expect(files, f).toContain(f.replace(/\.js$/, ".d.ts"));
  });
});
