#!/usr/bin/env node
/**
 * A tiny static server for the browser example: serves this folder (index.html, app.js, dist/) and
 * mounts a model directory at /model/ so the page's default ?model=./model/ finds it.
 *
 *   node examples/browser/serve.mjs <model-dir> [--port 8080] [--host 127.0.0.1] [--isolate] [--log]
 *
 * --isolate sends the cross-origin isolation headers (COOP/COEP), which let the wasm backend run
 * multi-threaded; --log prints one line per request.
 *
 * Also used by test/browser/browser.test.ts (startServer).
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
  ".png": "image/png",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
};

/** The file under `root` that `urlPath` names, or undefined when it escapes `root`. */
function inside(root, urlPath) {
  const p = normalize(join(root, decodeURIComponent(urlPath)));
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep) ? p : undefined;
}

/**
 * Starts the server. `mounts` maps URL prefixes ("/model/") to folders; everything else comes from
 * `root` (this folder by default). Resolves to {url, port, close()}.
 */
export function startServer({ root = dirname(fileURLToPath(import.meta.url)), mounts = {}, host = "127.0.0.1", port = 0, log = false, isolate = false } = {}) {
  const table = Object.entries(mounts)
    .map(([prefix, dir]) => [prefix.endsWith("/") ? prefix : prefix + "/", resolve(dir)])
    .sort((a, b) => b[0].length - a[0].length);
  const base = resolve(root);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    let file;
    const m = table.find(([prefix]) => path.startsWith(prefix));
    file = m ? inside(m[1], path.slice(m[0].length)) : inside(base, path);
    if (file && existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    const ok = file !== undefined && existsSync(file) && statSync(file).isFile() && (req.method === "GET" || req.method === "HEAD");
    if (log) process.stdout.write(`${req.method} ${path} ${ok ? 200 : 404}\n`);
    if (!ok) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": statSync(file).size,
      "cache-control": "no-cache",
      // cross-origin isolation lets the wasm backend use SharedArrayBuffer, hence threads
      ...(isolate ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {}),
    });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).on("error", () => res.destroy()).pipe(res);
  });
  return new Promise((resolveStart, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolveStart({
        port: addr.port,
        url: `http://${host}:${addr.port}/`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const modelDir = args.find((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
  if (!modelDir || !existsSync(join(modelDir, "model.json"))) {
    process.stderr.write("usage: node examples/browser/serve.mjs <model-dir (holds model.json)> [--port 8080] [--host 127.0.0.1] [--isolate] [--log]\n");
    process.exit(2);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  if (!existsSync(join(here, "dist", "recblocks.js"))) process.stderr.write("warning: examples/browser/dist/recblocks.js is missing; run `npm run build:browser` first\n");
  const s = await startServer({ mounts: { "/model/": modelDir }, host: opt("--host", "127.0.0.1"), port: Number(opt("--port", "8080")), log: args.includes("--log"), isolate: args.includes("--isolate") });
  process.stdout.write(`serving ${here} and the model ${resolve(modelDir)} at /model/\nopen ${s.url}\n`);
}
