/**
 * Runtime settings for the native TensorFlow engine, applied before it loads (no effect on the maths):
 * - TF_CPU_ALLOCATOR_USE_BFC=true: TensorFlow's pooling (best-fit with coalescing) CPU allocator, so the
 *   large per-step tensors reuse memory instead of faulting in fresh pages each time (measured here:
 *   an 88 MB exp 36-70 ms -> 10 ms, h.E^T 75 -> 40 ms);
 * - TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS: one pool of `threads` workers, one op at a time.
 * Values already in the environment win.
 */
export function setupNativeEnv(threads: number): void {
  process.env.TF_CPU_ALLOCATOR_USE_BFC ??= "true";
  process.env.TF_NUM_INTRAOP_THREADS ??= String(threads);
  process.env.TF_NUM_INTEROP_THREADS ??= "1";
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
}

/** Loads the engine through src/engine when it exists, else tfjs-node / wasm directly. Returns the backend name. */
export async function loadEngine(backend: "tensorflow" | "wasm" | "cpu", threads: number): Promise<string> {
  const tf = await import("@tensorflow/tfjs");
  try {
    const eng = (await import(["..", "src", "engine", "index.js"].join("/"))) as {
      initEngine?: (o: unknown) => Promise<{ backend: string }>;
    };
    if (eng.initEngine) {
      const info = await eng.initEngine({ backend, threads, quiet: true });
      return info.backend;
    }
  } catch {
    /* engine not there yet: fall through */
  }
  if (backend === "tensorflow") {
    await import("@tensorflow/tfjs-node");
    await tf.setBackend("tensorflow");
  } else if (backend === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    await tf.setBackend("wasm");
  } else await tf.setBackend("cpu");
  await tf.ready();
  return tf.getBackend();
}
