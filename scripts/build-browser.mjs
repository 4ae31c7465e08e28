#!/usr/bin/env node
/**
 * Bundles the browser entry (src/browser/index.ts) with esbuild into examples/browser/dist/:
 *
 *   recblocks.js (+ .map)        ESM bundle: TF.js, the wasm backend, every block, the loader, the recommender
 *   tfjs-backend-wasm*.wasm      the wasm binaries, fetched by the bundle from its own folder
 *
 * "@tensorflow/tfjs" resolves to tfjs-core + the cpu backend (+ webgl with --with-webgl): src/ and
 * blocks/ use only tfjs-core's API, so tfjs-layers, tfjs-converter and tfjs-data stay out (a name the
 * slim module lacks fails the build). The wasm backend comes from src/browser/index.ts.
 *
 * Node built-ins that src/ imports (node:fs, node:path, ...) resolve to src/browser/shims/: a
 * read-only in-memory file system holding the block schemas (so block defaults come from the same
 * schemas as in Node) and a package.json; every other built-in function throws when called.
 *
 *   node scripts/build-browser.mjs [--outdir DIR] [--no-minify] [--with-webgl] [--quiet]
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SHIMS = join(root, "src", "browser", "shims");
const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith("_")));
/** Schema keywords that only document (left out of the embedded copies; not inside a `properties` map). */
const DOC_KEYS = new Set(["description", "markdownDescription", "title", "examples", "$comment"]);

function stripDocs(node, inPropertiesMap = false) {
  if (Array.isArray(node)) return node.map((x) => stripDocs(x));
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (!inPropertiesMap && DOC_KEYS.has(k) && (typeof v === "string" || Array.isArray(v))) continue;
    out[k] = stripDocs(v, !inPropertiesMap && (k === "properties" || k === "patternProperties" || k === "$defs" || k === "definitions"));
  }
  return out;
}

/** Files of the virtual file system (src/browser/shims/fs.ts), by absolute virtual path. */
function embeddedFiles() {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const files = { "/recblocks/package.json": JSON.stringify({ name: pkg.name, version: pkg.version }) };
  const dir = join(root, "schemas", "blocks");
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".schema.json")).sort()) {
    files[`/recblocks/schemas/blocks/${f}`] = JSON.stringify(stripDocs(JSON.parse(readFileSync(join(dir, f), "utf8"))));
  }
  return files;
}

/** Names a shim exports (its `export const|function|class NAME` and `export { a as NAME }`). */
function shimExports(file) {
  const src = readFileSync(file, "utf8");
  const names = new Set();
  for (const m of src.matchAll(/^export\s+(?:const|let|function|class|async\s+function)\s+([A-Za-z_$][\w$]*)/gm)) names.add(m[1]);
  for (const m of src.matchAll(/^export\s*\{([^}]*)\}/gm)) for (const part of m[1].split(",")) {
    const name = part.trim().split(/\s+as\s+/).pop()?.trim();
    if (name) names.add(name);
  }
  if (/^export\s+default\b/m.test(src)) names.add("default");
  return names;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
const RESERVED = new Set(["default", "delete", "new", "class", "function", "import", "export", "in", "var", "let", "const", "return", "this", "typeof", "void", "with", "yield"]);

/** esbuild plugin: node built-ins -> shim + throwing stubs for every other name the real module has. */
const nodeBuiltinsPlugin = {
  name: "recblocks-node-builtins",
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_][a-z0-9_/]*$/ }, (args) => {
      const name = args.path.replace(/^node:/, "");
      if (!BUILTINS.has(name) && !args.path.startsWith("node:")) return undefined;
      return { path: name, namespace: "node-builtin" };
    });
    build.onLoad({ filter: /.*/, namespace: "node-builtin" }, async (args) => {
      const name = args.path;
      const shimFile = join(SHIMS, `${name.replace(/\//g, "-")}.ts`);
      const hasShim = existsSync(shimFile);
      const own = hasShim ? shimExports(shimFile) : new Set();
      let real = [];
      try {
        real = Object.keys(await import(`node:${name}`)).filter((k) => IDENT.test(k) && !RESERVED.has(k));
      } catch {
        /* not importable here: only the shim's names */
      }
      const lines = [
        `const unavailable = (n) => function () { throw new Error("node:${name}." + n + " is not available in the browser build of recblocks"); };`,
      ];
      if (hasShim) lines.push(`export * from ${JSON.stringify(shimFile)};`, `import * as shim from ${JSON.stringify(shimFile)};`);
      const stubs = real.filter((k) => !own.has(k));
      for (const k of stubs) lines.push(`export const ${k} = unavailable(${JSON.stringify(k)});`);
      if (!own.has("default")) lines.push(`export default { ${hasShim ? "...shim, " : ""}${stubs.join(", ")} };`);
      return { contents: lines.join("\n"), loader: "js", resolveDir: root };
    });
  },
};

/** esbuild plugin: "@tensorflow/tfjs" -> tfjs-core + backend-cpu (+ backend-webgl). */
function slimTfjsPlugin(webgl) {
  return {
    name: "recblocks-slim-tfjs",
    setup(build) {
      build.onResolve({ filter: /^@tensorflow\/tfjs$/ }, () => ({ path: "@tensorflow/tfjs", namespace: "slim-tfjs" }));
      build.onLoad({ filter: /.*/, namespace: "slim-tfjs" }, () => ({
        // what @tensorflow/tfjs's index does, less layers/converter/data
        contents: [
          'import "@tensorflow/tfjs-core";',
          'import "@tensorflow/tfjs-core/dist/register_all_gradients";',
          'import "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";',
          'export * from "@tensorflow/tfjs-core";',
          'import { version_core } from "@tensorflow/tfjs-core";',
          'import { version_cpu } from "@tensorflow/tfjs-backend-cpu";',
          webgl ? 'import { version_webgl } from "@tensorflow/tfjs-backend-webgl";' : "",
          `export const version = { "tfjs-core": version_core, "tfjs-backend-cpu": version_cpu${webgl ? ', "tfjs-backend-webgl": version_webgl' : ""} };`,
        ].join("\n"),
        loader: "js",
        resolveDir: root,
      }));
    },
  };
}

export async function buildBrowser({ outdir = join(root, "examples", "browser", "dist"), minify = true, webgl = false, quiet = false } = {}) {
  outdir = resolve(outdir);
  mkdirSync(outdir, { recursive: true });
  const started = Date.now();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { recblocks: join(root, "src", "browser", "index.ts") },
    outdir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify,
    sourcemap: true,
    legalComments: "linked",
    metafile: true,
    logLevel: quiet ? "error" : "warning",
    define: { __RECBLOCKS_EMBEDDED_FILES__: JSON.stringify(embeddedFiles()) },
    plugins: [slimTfjsPlugin(webgl), nodeBuiltinsPlugin],
  });
  const undefinedImports = result.warnings.filter((w) => w.id === "import-is-undefined");
  if (undefinedImports.length) {
    throw new Error(`the browser bundle uses names its modules do not export (is a tfjs-layers/converter/data API used in src/?):\n${undefinedImports.map((w) => `  ${w.location?.file}:${w.location?.line}: ${w.text}`).join("\n")}`);
  }
  const wasmDir = join(root, "node_modules", "@tensorflow", "tfjs-backend-wasm", "dist");
  const wasm = readdirSync(wasmDir).filter((f) => f.endsWith(".wasm"));
  for (const f of wasm) copyFileSync(join(wasmDir, f), join(outdir, f));
  writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile));
  const bundle = join(outdir, "recblocks.js");
  const bytes = readFileSync(bundle);
  const sizes = {
    "recblocks.js": { bytes: bytes.byteLength, gzip: gzipSync(bytes).byteLength },
    ...Object.fromEntries(wasm.map((f) => {
      const b = readFileSync(join(outdir, f));
      return [f, { bytes: b.byteLength, gzip: gzipSync(b).byteLength }];
    })),
  };
  if (!quiet) {
    const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
    process.stdout.write(`built ${bundle} in ${Date.now() - started} ms\n`);
    for (const [f, s] of Object.entries(sizes)) process.stdout.write(`  ${f.padEnd(36)} ${kb(s.bytes).padStart(9)}  (gzip ${kb(s.gzip)})\n`);
  }
  return { outdir, bundle, sizes, warnings: result.warnings };
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  buildBrowser({ outdir: opt("--outdir"), minify: !args.includes("--no-minify"), webgl: args.includes("--with-webgl"), quiet: args.includes("--quiet") }).catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
