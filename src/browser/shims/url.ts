/**
 * `node:url` in the browser bundle. `fileURLToPath(import.meta.url)` (how src/paths.ts finds the
 * package root) maps the bundle's http(s) URL into the virtual package under VIRTUAL_ROOT, so
 * `packageRoot()` finds the embedded package.json and `schemaPath()` the embedded schemas.
 */
import { VIRTUAL_ROOT } from "./fs.js";

export function fileURLToPath(u: string | URL): string {
  const url = new URL(String(u));
  if (url.protocol === "file:") return decodeURIComponent(url.pathname);
  return `${VIRTUAL_ROOT}/dist/${url.pathname.split("/").pop() || "recblocks.js"}`;
}

export function pathToFileURL(p: string): URL {
  return new URL(`file://${p.split("/").map(encodeURIComponent).join("/")}`);
}

const URLClass = globalThis.URL;
const URLSearchParamsClass = globalThis.URLSearchParams;
export { URLClass as URL, URLSearchParamsClass as URLSearchParams };
