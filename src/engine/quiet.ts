import * as tf from "@tensorflow/tfjs";

/**
 * Silences TF.js's "Hi, looks like you are running TensorFlow.js in Node.js..." banner, which its
 * cpu backend prints on first use in Node. Runs on import of any engine module (the cpu backend is
 * created here, which is cheap) and again whenever initEngine picks a backend.
 */
const WRAPPED = Symbol.for("recblocks.quietCpu");

export function silenceCpuBanner(): void {
  try {
    // Every cpu backend made from now on (TF.js makes a fresh one whenever it initialises "cpu").
    const reg = (tf.engine() as unknown as { registryFactory?: Record<string, { factory: (() => unknown) & { [WRAPPED]?: boolean } }> }).registryFactory;
    const entry = reg?.cpu;
    if (entry && !entry.factory[WRAPPED]) {
      const make = entry.factory;
      const quietFactory = Object.assign(() => {
        const b = make() as { firstUse?: boolean } | Promise<unknown>;
        if (b && !(b instanceof Promise) && "firstUse" in b) b.firstUse = false;
        return b;
      }, { [WRAPPED]: true });
      entry.factory = quietFactory;
    }
    // And the one that may exist already.
    const cpu = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry.cpu as unknown as { firstUse?: boolean } | null;
    if (cpu && "firstUse" in cpu) cpu.firstUse = false;
  } catch {
    /* no cpu backend registered: nothing to silence */
  }
}

silenceCpuBanner();
