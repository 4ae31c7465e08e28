#!/usr/bin/env node
/*
 * recblocks-native-setup: make @tensorflow/tfjs-node work where its own install script cannot
 * download libtensorflow (no internet, CI behind a firewall).
 *
 * Run as the `preinstall` script of a small local package (a devDependency of recblocks installed
 * with `install-links=true`): npm runs every dependency's `preinstall` before any `install`, so by
 * the time tfjs-node's `install` script (scripts/install.js) runs, deps/lib holds a libtensorflow
 * and lib/napi-v*\/tfjs_binding.node is built; its script then finds both and downloads nothing.
 *
 * Where libtensorflow comes from, first that works:
 *   1. RECBLOCKS_LIBTENSORFLOW: a folder with lib/ and include/ (an extracted libtensorflow
 *      tarball), a .tar.gz/.tgz/.tar of one, a TensorFlow wheel (.whl), or a folder holding a wheel;
 *   2. tfjs-node's normal download, when its URL answers (then this script does nothing);
 *   3. a libtensorflow extracted earlier under the cache (~/.cache/recblocks/libtensorflow/), or a
 *      wheel dropped in ~/.cache/recblocks/;
 *   4. `pip download tensorflow-cpu==2.21.0 --no-deps` from pip's configured index.
 * The TensorFlow CPU wheel's tensorflow/libtensorflow_cc.so.2 exports TensorFlow's C and eager C
 * APIs; with libtensorflow_framework.so.2 beside it and the wheel's headers, tfjs-node's binding
 * compiles against it.
 *
 * Env: RECBLOCKS_NATIVE = auto (default) | local (never probe the download) | download (leave it to
 * tfjs-node) | off; RECBLOCKS_TENSORFLOW_WHEEL (pip requirement, default tensorflow-cpu==2.21.0);
 * RECBLOCKS_CACHE_DIR (default $XDG_CACHE_HOME/recblocks or ~/.cache/recblocks).
 *
 * In a lifecycle (--lifecycle) it never fails the install: when nothing can be had it writes why to
 * node_modules/.recblocks-native.json, tfjs-node's own install then fails, npm drops that optional
 * dependency, and recblocks runs on wasm, saying in one line what to do.
 *
 * Usage: recblocks-native-setup [--force] [--no-build] [--target <tfjs-node dir>] [--status] [--json]
 */
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const cp = require("node:child_process");
const https = require("node:https");

const DEFAULT_WHEEL = "tensorflow-cpu==2.21.0";
const STATUS_FILE = ".recblocks-native.json";
const DEPS_MARKER = "recblocks-native.json";
/** Headers tfjs-node's binding needs (the closure of tensorflow/c/c_api.h and eager/c_api.h), as wheel prefixes. */
const WHEEL_INCLUDE_PREFIXES = [
  "tensorflow/include/tensorflow/c/",
  "tensorflow/include/tensorflow/core/platform/",
  "tensorflow/include/tsl/platform/",
  "tensorflow/include/xla/tsl/c/",
  "tensorflow/include/xla/tsl/platform/",
];
const WHEEL_LIBS = ["tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"];

const t0 = Date.now();
let lifecycle = false;
let jsonOut = false;

function say(msg) {
  if (!jsonOut) process.stderr.write(`recblocks-native-setup: ${msg}\n`);
}
function secs() {
  return ((Date.now() - t0) / 1000).toFixed(1);
}

class SetupError extends Error {}

function parseArgv(argv) {
  const o = { force: false, build: true, target: undefined, status: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--lifecycle") lifecycle = true;
    else if (a === "--force") o.force = true;
    else if (a === "--no-build") o.build = false;
    else if (a === "--status") o.status = true;
    else if (a === "--json") jsonOut = true;
    else if (a === "--target") o.target = argv[++i];
    else if (a === "--help" || a === "-h") {
      process.stdout.write(fs.readFileSync(__filename, "utf8").split("*/")[0].replace(/^#!.*\n\/\*\n/, "").replace(/^ \* ?/gm, "") + "\n");
      process.exit(0);
    } else throw new SetupError(`unknown option "${a}" (known: --force, --no-build, --target DIR, --status, --json)`);
  }
  return o;
}

/** The installed @tensorflow/tfjs-node folder: beside this package in node_modules, or above the working directory. */
function findTfjsNode(explicit) {
  if (explicit) return fs.existsSync(path.join(explicit, "package.json")) ? path.resolve(explicit) : undefined;
  const starts = [path.dirname(__dirname), process.env.INIT_CWD, process.cwd()].filter(Boolean);
  for (const start of starts) {
    let dir = path.resolve(start);
    for (;;) {
      const cands = [path.join(dir, "@tensorflow", "tfjs-node"), path.join(dir, "node_modules", "@tensorflow", "tfjs-node")];
      for (const c of cands) if (fs.existsSync(path.join(c, "package.json"))) return c;
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return undefined;
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

function writeJsonAtomic(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

/** The built binding: lib/napi-v<N>/tfjs_binding.node, N the highest N-API version both node and the package support. */
function bindingPath(tfDir) {
  const libDir = path.join(tfDir, "lib");
  if (fs.existsSync(libDir)) {
    for (const d of fs.readdirSync(libDir).filter((x) => /^napi-v\d+$/.test(x)).sort((a, b) => Number(b.slice(6)) - Number(a.slice(6)))) {
      const f = path.join(libDir, d, "tfjs_binding.node");
      if (fs.existsSync(f)) return f;
    }
  }
  return undefined;
}

function cacheDir() {
  if (process.env.RECBLOCKS_CACHE_DIR) return path.resolve(process.env.RECBLOCKS_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "recblocks");
}

function run(cmd, args, opts = {}) {
  const r = cp.spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...opts });
  return { ok: r.status === 0 && !r.error, status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`, error: r.error };
}

function lastLines(text, n = 8) {
  return text.trim().split("\n").slice(-n).join("\n");
}

/** Does tfjs-node's libtensorflow download answer? (HEAD with a short timeout.) */
function downloadReachable(tfDir) {
  let url;
  try {
    const c = require(path.join(tfDir, "scripts", "deps-constants.js"));
    const sys = `cpu-${c.PLATFORM_MAPPING[os.platform()]}-${c.ARCH_MAPPING[os.arch()]}`;
    url = c.customTFLibUri || `https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-${sys}-${c.LIBTENSORFLOW_VERSION}.${c.PLATFORM_EXTENSION}`;
  } catch {
    return Promise.resolve(false);
  }
  if (!url.startsWith("https://")) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = https.request(url, { method: "HEAD", timeout: 4000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode < 400);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
    req.end();
  });
}

function findPython() {
  for (const py of [process.env.PYTHON, "python3", "python"].filter(Boolean)) {
    if (run(py, ["-c", "import zipfile"]).ok) return py;
  }
  return undefined;
}

/** Extract the libraries and the needed headers of a TensorFlow wheel into dest/{lib,include}. */
function extractWheel(wheel, dest) {
  const py = findPython();
  if (!py) throw new SetupError("python3 is needed to read a TensorFlow wheel (and by node-gyp to build the binding)");
  const script = `
import sys, zipfile, os, shutil
whl, dest = sys.argv[1], sys.argv[2]
libs = ${JSON.stringify(WHEEL_LIBS)}
prefixes = ${JSON.stringify(WHEEL_INCLUDE_PREFIXES)}
z = zipfile.ZipFile(whl)
names = set(z.namelist())
missing = [l for l in libs if l not in names]
if missing:
    sys.exit("not a TensorFlow wheel with the C API library (missing %s)" % ", ".join(missing))
os.makedirs(os.path.join(dest, "lib"), exist_ok=True)
for l in libs:
    with z.open(l) as src, open(os.path.join(dest, "lib", os.path.basename(l)), "wb") as out:
        shutil.copyfileobj(src, out, 1 << 22)
n = 0
for name in names:
    if name.endswith("/") or not any(name.startswith(p) for p in prefixes):
        continue
    rel = name[len("tensorflow/include/"):]
    target = os.path.join(dest, "include", rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with z.open(name) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out)
    n += 1
if n == 0:
    sys.exit("the wheel has no tensorflow/include headers")
`;
  const r = run(py, ["-c", script, wheel, dest]);
  if (!r.ok) throw new SetupError(`cannot extract ${wheel}: ${lastLines(r.out, 3) || r.error}`);
  // libtensorflow.so (what the binding links as -ltensorflow) leads to libtensorflow_cc.
  fs.symlinkSync("libtensorflow_cc.so.2", path.join(dest, "lib", "libtensorflow.so"));
  fs.symlinkSync("libtensorflow_framework.so.2", path.join(dest, "lib", "libtensorflow_framework.so"));
}

/** Extract a libtensorflow tarball (lib/, include/) into dest. */
function extractTarball(tarball, dest) {
  fs.mkdirSync(dest, { recursive: true });
  const r = run("tar", ["-xf", tarball, "-C", dest]);
  if (!r.ok) throw new SetupError(`cannot extract ${tarball}: ${lastLines(r.out, 3) || r.error}`);
}

/** A prepared folder with lib/ and include/: check it has what the binding links against. */
function checkLibFolder(dir, origin) {
  const lib = path.join(dir, "lib");
  const inc = path.join(dir, "include", "tensorflow", "c", "c_api.h");
  if (!fs.existsSync(lib)) throw new SetupError(`${origin}: no lib/ folder in ${dir}`);
  if (!fs.existsSync(inc)) throw new SetupError(`${origin}: no include/tensorflow/c/c_api.h in ${dir}`);
  const files = fs.readdirSync(lib);
  if (!files.some((f) => f.startsWith("libtensorflow.so") || f.startsWith("libtensorflow_cc.so")))
    throw new SetupError(`${origin}: ${lib} has no libtensorflow.so or libtensorflow_cc.so*`);
}

/** Turn a user-given RECBLOCKS_LIBTENSORFLOW into a prepared folder (in the cache when it needs extracting). */
function fromEnv(spec) {
  const p = path.resolve(spec);
  if (!fs.existsSync(p)) throw new SetupError(`RECBLOCKS_LIBTENSORFLOW=${spec}: no such file or folder`);
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    if (fs.existsSync(path.join(p, "lib"))) {
      checkLibFolder(p, "RECBLOCKS_LIBTENSORFLOW");
      return { dir: p, how: `RECBLOCKS_LIBTENSORFLOW folder ${p}` };
    }
    const whl = fs.readdirSync(p).filter((f) => /^tensorflow.*\.whl$/.test(f)).sort().pop();
    if (!whl) throw new SetupError(`RECBLOCKS_LIBTENSORFLOW=${spec}: a folder needs lib/ and include/, or a TensorFlow wheel in it`);
    return fromArchive(path.join(p, whl), "RECBLOCKS_LIBTENSORFLOW wheel");
  }
  return fromArchive(p, /\.whl$/.test(p) ? "RECBLOCKS_LIBTENSORFLOW wheel" : "RECBLOCKS_LIBTENSORFLOW tarball");
}

/** Extract a wheel or tarball once into the cache (keyed by file name and size) and return that folder. */
function fromArchive(file, origin) {
  const st = fs.statSync(file);
  const key = `${path.basename(file).replace(/\.(whl|tar\.gz|tgz|tar)$/, "")}-${st.size}`;
  const root = path.join(cacheDir(), "libtensorflow");
  const dir = path.join(root, key);
  if (fs.existsSync(path.join(dir, "ready"))) return { dir, how: `${origin} ${path.basename(file)} (extracted earlier to ${dir})` };
  fs.mkdirSync(root, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  say(`extracting libtensorflow from ${file} ...`);
  try {
    if (/\.whl$/.test(file)) extractWheel(file, tmp);
    else extractTarball(file, tmp);
    checkLibFolder(tmp, origin);
    fs.writeFileSync(path.join(tmp, "ready"), `${file}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dir, how: `${origin} ${path.basename(file)}` };
}

/** A libtensorflow extracted earlier, or a wheel left in the cache folder. */
function fromCache(wanted) {
  const root = path.join(cacheDir(), "libtensorflow");
  const stem = wanted.replace(/[=<>~!].*$/, "").replace(/-/g, "_");
  const version = (wanted.match(/==([\w.]+)/) || [])[1];
  const matches = (name) => name.startsWith(stem) && (!version || name.includes(`-${version}-`));
  if (fs.existsSync(root)) {
    const hit = fs.readdirSync(root).filter((d) => matches(d) && fs.existsSync(path.join(root, d, "ready"))).sort().pop();
    if (hit) return { dir: path.join(root, hit), how: `cached ${hit.replace(/-\d+$/, "")} wheel (${path.join(root, hit)})` };
  }
  if (fs.existsSync(cacheDir())) {
    const whl = fs.readdirSync(cacheDir()).filter((f) => f.endsWith(".whl") && matches(f)).sort().pop();
    if (whl) return fromArchive(path.join(cacheDir(), whl), "cached wheel");
  }
  return undefined;
}

/** pip download the TensorFlow CPU wheel from pip's configured index, then extract it into the cache. */
function fromPip(wanted) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "recblocks-wheel-"));
  try {
    const tries = [["pip", []], ["pip3", []], ["python3", ["-m", "pip"]]];
    let last = "pip not found";
    for (const [cmd, pre] of tries) {
      say(`${cmd} ${[...pre, "download", wanted].join(" ")} ...`);
      const r = run(cmd, [...pre, "download", wanted, "--no-deps", "--only-binary=:all:", "-d", tmp, "--quiet"], { timeout: 15 * 60 * 1000 });
      if (r.error && r.error.code === "ENOENT") continue;
      if (r.ok) {
        const whl = fs.readdirSync(tmp).find((f) => f.endsWith(".whl"));
        if (whl) {
          const found = fromArchive(path.join(tmp, whl), "pip download of");
          return { dir: found.dir, how: `pip download ${wanted} (${whl})` };
        }
      }
      last = lastLines(r.out, 2) || String(r.error);
      break;
    }
    throw new SetupError(`cannot get ${wanted} from pip: ${last}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Hard-link (or copy) a prepared folder into tfjs-node's deps/, add the names its scripts look for. */
function stage(src, tfDir, how) {
  const deps = path.join(tfDir, "deps");
  const tmp = path.join(tfDir, `deps.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  const copyTree = (from, to) => {
    fs.mkdirSync(to, { recursive: true });
    for (const ent of fs.readdirSync(from, { withFileTypes: true })) {
      const a = path.join(from, ent.name);
      const b = path.join(to, ent.name);
      if (ent.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(a), b);
      else if (ent.isDirectory()) copyTree(a, b);
      else {
        try {
          fs.linkSync(a, b);
        } catch {
          fs.copyFileSync(a, b);
        }
      }
    }
  };
  copyTree(path.join(src, "lib"), path.join(tmp, "lib"));
  copyTree(path.join(src, "include"), path.join(tmp, "include"));
  const lib = path.join(tmp, "lib");
  const have = new Set(fs.readdirSync(lib));
  const soTf = ["libtensorflow.so", "libtensorflow_cc.so.2"].find((f) => have.has(f)) ?? [...have].find((f) => f.startsWith("libtensorflow.so"));
  const soFw = ["libtensorflow_framework.so", "libtensorflow_framework.so.2"].find((f) => have.has(f)) ?? [...have].find((f) => f.startsWith("libtensorflow_framework.so"));
  if (!soTf || !soFw) throw new SetupError(`${src}/lib lacks libtensorflow or libtensorflow_framework`);
  const link = (name, to) => {
    if (!have.has(name)) fs.symlinkSync(to, path.join(lib, name));
    have.add(name);
  };
  link("libtensorflow.so", soTf);
  link("libtensorflow_framework.so", soFw);
  // tfjs-node's scripts/install.js skips its download when deps/lib/<this name> exists.
  const c = require(path.join(tfDir, "scripts", "deps-constants.js"));
  link(c.depsLibTensorFlowName, "libtensorflow.so");
  link(c.depsLibTensorFlowFrameworkName, "libtensorflow_framework.so");
  writeJsonAtomic(path.join(tmp, DEPS_MARKER), { how, source: src, stagedAt: new Date().toISOString() });
  fs.rmSync(deps, { recursive: true, force: true });
  fs.renameSync(tmp, deps);
}

/** Node's headers, when they are installed beside the node binary in the right version (saves node-gyp a download). */
function localNodeDir() {
  const prefix = path.resolve(process.execPath, "..", "..");
  const h = path.join(prefix, "include", "node", "node_version.h");
  try {
    const t = fs.readFileSync(h, "utf8");
    const v = ["MAJOR", "MINOR", "PATCH"].map((k) => (t.match(new RegExp(`#define NODE_${k}_VERSION (\\d+)`)) || [])[1]).join(".");
    if (`v${v}` === process.version && fs.existsSync(path.join(prefix, "include", "node", "common.gypi"))) return prefix;
  } catch {
    /* no local headers */
  }
  return undefined;
}

/** Build tfjs-node's binding from source with node-pre-gyp (node-gyp underneath), then check that it loads. */
function build(tfDir) {
  let preGyp;
  try {
    preGyp = require.resolve("@mapbox/node-pre-gyp/bin/node-pre-gyp", { paths: [tfDir] });
  } catch {
    throw new SetupError("@mapbox/node-pre-gyp (a dependency of tfjs-node) is not installed");
  }
  const env = { ...process.env };
  const nodedir = localNodeDir();
  if (nodedir && !env.npm_config_nodedir) env.npm_config_nodedir = nodedir;
  if (!env.npm_config_node_gyp) {
    // npm's own node-gyp, beside the npm that runs us (node-pre-gyp looks there too).
    const npmGyp = path.join(path.dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
    if (fs.existsSync(npmGyp)) env.npm_config_node_gyp = npmGyp;
  }
  env.JOBS = env.JOBS || String(Math.max(1, os.cpus().length));
  say(`building tfjs-node's binding from source (node-gyp, ~20 s)${nodedir ? ` with node headers from ${nodedir}` : ""} ...`);
  const r = run(process.execPath, [preGyp, "install", "--build-from-source"], { cwd: tfDir, env });
  if (!r.ok) throw new SetupError(`building the binding failed:\n${lastLines(r.out, 12)}`);
  const bin = bindingPath(tfDir);
  if (!bin) throw new SetupError(`the build left no ${path.join(tfDir, "lib", "napi-v*", "tfjs_binding.node")}`);
  const check = run(process.execPath, ["-e", `process.dlopen({exports:{}}, ${JSON.stringify(bin)})`], {
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" },
  });
  if (!check.ok) throw new SetupError(`the built binding does not load: ${lastLines(check.out, 3)}`);
}

function statusFile(tfDir) {
  // node_modules/.recblocks-native.json: survives npm dropping a failed optional tfjs-node.
  return tfDir ? path.join(path.dirname(path.dirname(tfDir)), STATUS_FILE) : path.join(path.dirname(__dirname), STATUS_FILE);
}

async function main() {
  const opts = parseArgv(process.argv.slice(2));
  const tfDir = findTfjsNode(opts.target);
  const wanted = process.env.RECBLOCKS_TENSORFLOW_WHEEL || DEFAULT_WHEEL;
  const mode = (process.env.RECBLOCKS_NATIVE || "auto").toLowerCase();
  const report = (status) => {
    const full = { ...status, seconds: Number(secs()), at: new Date().toISOString() };
    if (tfDir || lifecycle) {
      try {
        writeJsonAtomic(statusFile(tfDir), full);
      } catch {
        /* read-only node_modules: the status is only informative */
      }
    }
    if (jsonOut) process.stdout.write(JSON.stringify(full) + "\n");
    say(`${status.ok ? "ok" : "not set up"}: ${status.how} (${secs()} s)`);
  };

  if (opts.status) {
    const s = readJson(statusFile(tfDir));
    process.stdout.write(JSON.stringify(s ?? { ok: false, how: "never ran" }) + "\n");
    return 0;
  }
  if (!["auto", "local", "download", "off"].includes(mode)) throw new SetupError(`RECBLOCKS_NATIVE=${mode}: expected auto, local, download or off`);
  if (!tfDir) {
    report({ ok: false, how: "@tensorflow/tfjs-node is not installed (it is an optional dependency of recblocks)" });
    return 0;
  }
  if (mode === "off") {
    report({ ok: false, how: "RECBLOCKS_NATIVE=off: native TensorFlow not set up" });
    return 0;
  }
  const marker = readJson(path.join(tfDir, "deps", DEPS_MARKER));
  if (!opts.force && bindingPath(tfDir)) {
    report({ ok: true, how: marker ? marker.how : "tfjs-node's own download (prebuilt binding)", already: true });
    return 0;
  }
  if (!process.env.RECBLOCKS_LIBTENSORFLOW && mode !== "local") {
    if (mode === "download" || (await downloadReachable(tfDir))) {
      report({ ok: true, how: "tfjs-node's own download of libtensorflow (its URL answers)", deferred: true });
      return 0;
    }
  }
  if (os.platform() !== "linux" || os.arch() !== "x64") {
    report({ ok: false, how: `no local libtensorflow route for ${os.platform()}-${os.arch()} and tfjs-node's download does not answer` });
    return 0;
  }
  let src;
  try {
    src = process.env.RECBLOCKS_LIBTENSORFLOW ? fromEnv(process.env.RECBLOCKS_LIBTENSORFLOW) : fromCache(wanted) ?? fromPip(wanted);
    say(`libtensorflow from ${src.how}`);
    stage(src.dir, tfDir, src.how);
    if (opts.build) build(tfDir);
  } catch (e) {
    if (!(e instanceof SetupError)) throw e;
    // Leave no half-staged deps: tfjs-node's own install then tries its download as usual.
    if (!bindingPath(tfDir)) fs.rmSync(path.join(tfDir, "deps"), { recursive: true, force: true });
    report({ ok: false, how: e.message });
    return lifecycle ? 0 : 1;
  }
  report({ ok: true, how: `built from source against libtensorflow from ${src.how}`, built: opts.build });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    say(e instanceof SetupError ? e.message : `unexpected error: ${e && e.stack ? e.stack : e}`);
    process.exit(lifecycle ? 0 : 1);
  },
);
