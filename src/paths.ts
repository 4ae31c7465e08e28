import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/**
 * The folder of the recblocks package itself (holding package.json, schemas/, recipes/),
 * found by walking up from this module: the same answer from src/ (tests) and dist/src/.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, "utf8")) as { name?: string }).name === "recblocks") {
          root = dir;
          return dir;
        }
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("recblocks: cannot find the package root (package.json)");
    dir = up;
  }
}

/** Absolute path of a file under schemas/. */
export function schemaPath(...parts: string[]): string {
  return join(packageRoot(), "schemas", ...parts);
}

/** Where the shared datasets live when present (../shared/data beside the project root), or RECBLOCKS_SHARED_DATA. */
export function sharedDataDir(): string {
  return process.env.RECBLOCKS_SHARED_DATA ?? join(packageRoot(), "..", "shared", "data");
}
