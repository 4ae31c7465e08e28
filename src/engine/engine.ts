import * as tf from "@tensorflow/tfjs";
import { availableParallelism } from "node:os";
import { RecblocksError } from "../errors/issue.js";
import {
  bindingFile,
  gpuVisible,
  installedHow,
  loadNative,
  packageDir,
  unavailableReason,
  type NativePackage,
} from "./native.js";
import { registerNativeKernels } from "./ops.js";
import { silenceCpuBanner } from "./quiet.js";
import { registerWasmKernels } from "./wasm-kernels.js";

export type BackendName = "tensorflow" | "wasm" | "cpu";
export type BackendChoice = "auto" | BackendName;
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "tensorflow", "wasm", "cpu"];

export interface EngineOptions {
  /** auto (default): tfjs-node-gpu when installed and a GPU is visible, else tfjs-node, else wasm, else cpu. */
  backend?: BackendChoice | string;
  /** TensorFlow intra-op and inter-op threads (native only; must be set before the native backend starts). */
  threads?: number;
  /** Do not print the one line that says which backend was chosen and why. */
  quiet?: boolean;
}

export interface EngineInfo {
  /** The name TF.js gives the backend. */
  backend: BackendName;
  /** Why this backend: "auto: ..." or "requested ...", plus why native is not used when it is not. */
  reason: string;
  /** The TensorFlow C library's version (native backend only). */
  tensorflowVersion?: string;
  /** Threads the backend computes with (TensorFlow's intra-op pool; 1 for wasm and cpu). */
  threads?: number;
  /** Whether the native backend can be used here, and how it was installed (or why not). */
  native: { available: boolean; how: string };
  /** What was asked for. */
  requested: BackendChoice;
  /** The native package in use (tensorflow backend only). */
  nativePackage?: NativePackage;
}

let current: EngineInfo | undefined;
let nativeLoaded: { pkg: NativePackage; threads?: number } | undefined;
let nativeError: string | undefined;
let wasmFailed: string | undefined;

function badOption(code: string, path: string, message: string, received: unknown, expected: unknown, hint?: string): RecblocksError {
  return new RecblocksError("engine options", [{ code, path, message, received, expected, ...(hint ? { hint } : {}) }], { kind: "EngineError" });
}

/** Validates a backend name (from a recipe, a flag or RECBLOCKS_BACKEND). */
export function parseBackendChoice(value: unknown, where = "/backend"): BackendChoice {
  const v = typeof value === "string" ? value.trim().toLowerCase() : value;
  if (v === "node" || v === "native" || v === "tfjs-node") return "tensorflow";
  if (typeof v === "string" && (BACKEND_CHOICES as readonly string[]).includes(v)) return v as BackendChoice;
  throw badOption("invalid_backend", where, `Unknown backend ${JSON.stringify(value)}.`, value, BACKEND_CHOICES.join(" | "),
    'Use "auto" (native TensorFlow when installed, else wasm, else cpu), "tensorflow", "wasm" or "cpu".');
}

/** Validates a thread count. */
export function parseThreads(value: unknown, where = "/threads"): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 1024)
    throw badOption("invalid_threads", where, `threads must be a whole number >= 1, got ${JSON.stringify(value)}.`, value, "integer >= 1");
  return n;
}

function nativeThreads(): number {
  const env = Number(process.env.TF_NUM_INTRAOP_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

/** Native availability without loading it (for reports when another backend is in use). */
function nativeStatus(): { available: boolean; how: string } {
  if (nativeLoaded) return { available: true, how: installedHow(nativeLoaded.pkg) };
  if (nativeError) return { available: false, how: nativeError };
  const pkg: NativePackage = gpuVisible() && packageDir("@tensorflow/tfjs-node-gpu") ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
  const dir = packageDir(pkg);
  if (dir && bindingFile(dir)) return { available: true, how: installedHow(pkg) };
  return { available: false, how: unavailableReason(pkg) };
}

/** Loads the native backend once; returns undefined on success or why it failed. */
async function tryNative(threads: number | undefined, quiet: boolean): Promise<string | undefined> {
  if (nativeLoaded) {
    if (threads !== undefined && threads !== nativeLoaded.threads && !quiet)
      process.stderr.write(`recblocks: threads=${threads} ignored: TensorFlow already started with ${nativeThreads()} threads in this process\n`);
    return (await tf.setBackend("tensorflow")) ? undefined : "the tensorflow backend failed to start";
  }
  if (nativeError) return nativeError;
  const candidates: NativePackage[] = [];
  if (gpuVisible() && packageDir("@tensorflow/tfjs-node-gpu")) candidates.push("@tensorflow/tfjs-node-gpu");
  candidates.push("@tensorflow/tfjs-node");
  let why = "";
  for (const pkg of candidates) {
    const dir = packageDir(pkg);
    if (!dir || !bindingFile(dir)) {
      why ||= unavailableReason(pkg);
      continue;
    }
    // TensorFlow reads these when its backend starts.
    process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
    // TensorFlow's pooling CPU allocator: large per-step tensors reuse memory instead of faulting in
    // fresh pages every step (measured here: an 88 MB exp 36-70 ms -> 10 ms, h.E^T 75 -> 40 ms).
    process.env.TF_CPU_ALLOCATOR_USE_BFC ??= "true";
    if (threads !== undefined) {
      process.env.TF_NUM_INTRAOP_THREADS = String(threads);
      process.env.TF_NUM_INTEROP_THREADS = String(threads);
    }
    try {
      loadNative(pkg);
      if (!(await tf.setBackend("tensorflow"))) throw new Error("the tensorflow backend failed to start");
      registerNativeKernels();
      nativeLoaded = { pkg, threads };
      return undefined;
    } catch (e) {
      why = `${pkg} failed to load: ${String((e as Error).message ?? e).split("\n")[0]}`;
    }
  }
  nativeError = why;
  return why;
}

async function tryWasm(): Promise<string | undefined> {
  if (wasmFailed) return wasmFailed;
  // Emscripten's glue adds process handlers that rethrow any uncaught error from inside its module,
  // so that Node prints a line of minified wasm glue instead of the error; take them out again.
  const before = {
    uncaughtException: process.listeners("uncaughtException"),
    unhandledRejection: process.listeners("unhandledRejection"),
  };
  const dropAdded = (): void => {
    for (const l of process.listeners("uncaughtException")) if (!before.uncaughtException.includes(l)) process.removeListener("uncaughtException", l);
    for (const l of process.listeners("unhandledRejection")) if (!before.unhandledRejection.includes(l)) process.removeListener("unhandledRejection", l);
  };
  try {
    await import("@tensorflow/tfjs-backend-wasm");
    // The multithreaded build does not start in Node; one thread.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    registerWasmKernels();
    const ok = await tf.setBackend("wasm");
    dropAdded();
    if (!ok) throw new Error("the wasm backend failed to start");
    return undefined;
  } catch (e) {
    dropAdded();
    wasmFailed = `wasm unavailable: ${String((e as Error).message ?? e).split("\n")[0]}`;
    return wasmFailed;
  }
}


/**
 * Chooses and starts the TF.js backend. `backend` defaults to RECBLOCKS_BACKEND, then "auto";
 * `threads` to RECBLOCKS_THREADS. Callers pass a recipe's `train.backend` or a `--backend` flag.
 * Prints the chosen backend and why once (to stderr), unless `quiet`.
 */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  const fromEnv = opts.backend === undefined && process.env.RECBLOCKS_BACKEND !== undefined;
  const requested = parseBackendChoice(opts.backend ?? process.env.RECBLOCKS_BACKEND ?? "auto", fromEnv ? "RECBLOCKS_BACKEND" : "/backend");
  const threads = parseThreads(opts.threads ?? process.env.RECBLOCKS_THREADS, opts.threads === undefined ? "RECBLOCKS_THREADS" : "/threads");
  const quiet = opts.quiet ?? false;
  if (current && current.requested === requested && (threads === undefined || threads === nativeLoaded?.threads || current.backend !== "tensorflow")) {
    if (tf.getBackend() !== current.backend) await tf.setBackend(current.backend);
    return current;
  }
  const previous = current?.backend;
  let backend: BackendName | undefined;
  let reason = "";
  const notes: string[] = [];
  if (requested === "auto" || requested === "tensorflow") {
    const err = await tryNative(threads, quiet);
    if (!err) {
      backend = "tensorflow";
      const gpu = nativeLoaded!.pkg === "@tensorflow/tfjs-node-gpu";
      reason = requested === "auto" ? `auto: ${nativeLoaded!.pkg} is installed${gpu ? " and a GPU is visible" : ""}` : "requested";
    } else if (requested === "tensorflow") {
      throw new RecblocksError("engine", [{ code: "backend_unavailable", path: fromEnv ? "RECBLOCKS_BACKEND" : "/backend",
        message: "The native TensorFlow backend was requested but cannot be used here.", received: "tensorflow", hint: err }], { kind: "EngineError" });
    } else {
      notes.push(`native TensorFlow unavailable: ${err}`);
    }
  }
  if (!backend && (requested === "auto" || requested === "wasm")) {
    const err = await tryWasm();
    if (!err) {
      backend = "wasm";
      reason = requested === "auto" ? "auto: fallback" : "requested";
    } else if (requested === "wasm") {
      throw new RecblocksError("engine", [{ code: "backend_unavailable", path: fromEnv ? "RECBLOCKS_BACKEND" : "/backend",
        message: "The wasm backend was requested but cannot start here.", received: "wasm", hint: err }], { kind: "EngineError" });
    } else {
      notes.push(err);
    }
  }
  if (!backend) {
    if (!(await tf.setBackend("cpu"))) throw new Error("recblocks: even the cpu backend of TF.js failed to start");
    backend = "cpu";
    reason = requested === "auto" ? "auto: fallback" : "requested";
  }
  silenceCpuBanner();
  await tf.ready();
  if (notes.length) reason += ` (${notes.join("; ")})`;
  const info: EngineInfo = {
    backend,
    reason,
    threads: backend === "tensorflow" ? nativeThreads() : 1,
    native: nativeStatus(),
    requested,
  };
  if (backend === "tensorflow") {
    info.tensorflowVersion = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding?.TF_Version;
    info.nativePackage = nativeLoaded!.pkg;
  }
  current = info;
  if (!quiet && previous !== backend) process.stderr.write(`${engineLine(info)}\n`);
  return info;
}

/** The one line printed at start: backend, version/threads, and why. */
export function engineLine(info: EngineInfo): string {
  const what = info.backend === "tensorflow" ? `tensorflow (native TensorFlow ${info.tensorflowVersion ?? "?"}, ${info.threads} threads)` : info.backend;
  return `recblocks: engine ${what}; ${info.reason}`;
}

/** The engine chosen by the last initEngine(), or undefined before it ran. */
export function getEngineInfo(): EngineInfo | undefined {
  return current;
}
