import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { packageRoot } from "../paths.js";

/**
 * Finding and loading the native TensorFlow backend (@tensorflow/tfjs-node or -node-gpu), and
 * explaining how it was installed or why it is not there. Only src/engine imports tfjs-node.
 */

const require_ = createRequire(import.meta.url);

export type NativePackage = "@tensorflow/tfjs-node" | "@tensorflow/tfjs-node-gpu";

/** The folder of an installed package, or undefined. */
export function packageDir(name: string): string | undefined {
  try {
    return dirname(require_.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** node_modules holding @tensorflow/tfjs (where tools/native-setup writes .recblocks-native.json). */
function nodeModulesDir(): string | undefined {
  const tfjs = packageDir("@tensorflow/tfjs");
  return tfjs ? dirname(dirname(tfjs)) : undefined;
}

/** The built binding of a tfjs-node package (lib/napi-v*\/tfjs_binding.node), if any. */
export function bindingFile(pkgDir: string): string | undefined {
  const lib = join(pkgDir, "lib");
  if (!existsSync(lib)) return undefined;
  for (const d of readdirSync(lib).filter((x) => /^napi-v\d+$/.test(x))) {
    const f = join(lib, d, "tfjs_binding.node");
    if (existsSync(f)) return f;
  }
  return undefined;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** What tools/native-setup recorded during the last install (node_modules/.recblocks-native.json). */
export function setupStatus(): { ok: boolean; how: string } | undefined {
  const nm = nodeModulesDir();
  const s = nm ? readJson(join(nm, ".recblocks-native.json")) : undefined;
  return s && typeof s.how === "string" ? { ok: s.ok === true, how: s.how } : undefined;
}

/** How an installed, working tfjs-node got its libtensorflow. */
export function installedHow(pkg: NativePackage): string {
  const dir = packageDir(pkg);
  const marker = dir ? readJson(join(dir, "deps", "recblocks-native.json")) : undefined;
  if (marker && typeof marker.how === "string") return `${pkg} built from source against libtensorflow from ${marker.how}`;
  return `${pkg}: its own install (downloaded libtensorflow and prebuilt binding)`;
}

/** The command that repairs the native install here (tools/native-setup of this recblocks). */
export function setupCommand(): string {
  let script = "tools/native-setup/setup.cjs";
  try {
    script = join(packageRoot(), "tools", "native-setup", "setup.cjs");
  } catch {
    /* keep the relative form */
  }
  return `node ${script}`;
}

/** A GPU the CUDA build could use: an NVIDIA device node, unless CUDA_VISIBLE_DEVICES hides them all. */
export function gpuVisible(): boolean {
  const cvd = process.env.CUDA_VISIBLE_DEVICES;
  if (cvd !== undefined && (cvd.trim() === "" || cvd.trim() === "-1")) return false;
  try {
    if (existsSync("/dev/nvidia0")) return true;
    const p = "/proc/driver/nvidia/gpus";
    return existsSync(p) && readdirSync(p).length > 0;
  } catch {
    return false;
  }
}

/** Why the native backend cannot be had, and the one thing to do about it. */
export function unavailableReason(pkg: NativePackage = "@tensorflow/tfjs-node"): string {
  const dir = packageDir(pkg);
  const setup = setupStatus();
  if (!dir) {
    const why = setup && !setup.ok ? ` (install-time setup: ${setup.how})` : "";
    return (
      `${pkg} is not installed${why}; npm drops it when its install fails. ` +
      `Reinstall with a libtensorflow at hand: RECBLOCKS_LIBTENSORFLOW=<folder|tarball|TensorFlow wheel> npm install (see docs/engine.md)`
    );
  }
  if (!bindingFile(dir)) {
    const why = setup && !setup.ok ? ` (${setup.how})` : "";
    return `${pkg} is installed without its binding${why}; build it: ${setupCommand()} (see docs/engine.md)`;
  }
  return `${pkg} failed to load`;
}

/**
 * Loads tfjs-node (or -gpu), which registers the `tensorflow` backend in this process's tfjs.
 * TF_* env vars must be set before this (TensorFlow reads them when the backend starts).
 */
export function loadNative(pkg: NativePackage): void {
  // tfjs-node sets the "node" platform that tfjs already set, and says so; that line is noise.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].startsWith("Platform node has already been set")) return;
    warn(...args);
  };
  try {
    require_(pkg);
  } finally {
    console.warn = warn;
  }
}
