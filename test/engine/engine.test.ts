import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { engineLine, getEngineInfo, initEngine, parseBackendChoice, parseThreads } from "../../src/engine/index.js";
import { unavailableReason } from "../../src/engine/native.js";

describe("initEngine", () => {
  it("auto picks native tensorflow when tfjs-node is built, else wasm; the info says why", async () => {
    const info = await initEngine({ backend: "auto", quiet: true });
    expect(tf.getBackend()).toBe(info.backend);
    expect(getEngineInfo()).toBe(info);
    if (info.native.available) {
      expect(info.backend).toBe("tensorflow");
      expect(info.tensorflowVersion).toMatch(/^\d+\.\d+/);
      expect(info.threads).toBeGreaterThanOrEqual(1);
      expect(info.reason).toMatch(/^auto: @tensorflow\/tfjs-node/);
      expect(engineLine(info)).toMatch(/^recblocks: engine tensorflow \(native TensorFlow [\d.]+, \d+ threads\); auto:/);
    } else {
      expect(info.backend).toBe("wasm");
      expect(info.reason).toMatch(/native TensorFlow unavailable/);
    }
    expect(info.native.how.length).toBeGreaterThan(10);
  });

  it("wasm and cpu on request, one thread each, switching back and forth", async () => {
    const w = await initEngine({ backend: "wasm", quiet: true });
    expect([w.backend, w.threads, w.reason, tf.getBackend()]).toEqual(["wasm", 1, "requested", "wasm"]);
    const c = await initEngine({ backend: "cpu", quiet: true });
    expect([c.backend, tf.getBackend()]).toEqual(["cpu", "cpu"]);
    expect(engineLine(c)).toBe("recblocks: engine cpu; requested");
  });

  it("RECBLOCKS_BACKEND is used when no backend is passed", async () => {
    process.env.RECBLOCKS_BACKEND = "cpu";
    try {
      expect((await initEngine({ quiet: true })).backend).toBe("cpu");
    } finally {
      delete process.env.RECBLOCKS_BACKEND;
    }
  });

  it("rejects unknown backends and bad thread counts with located issues", async () => {
    const err = await initEngine({ backend: "gpu", quiet: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecblocksError);
    const issue = (err as RecblocksError).issues[0]!;
    expect(issue.code).toBe("invalid_backend");
    expect(issue.path).toBe("/backend");
    expect(issue.expected).toBe("auto | tensorflow | wasm | cpu");
    expect(() => parseThreads(0)).toThrow(RecblocksError);
    expect(() => parseThreads("two")).toThrow(RecblocksError);
    expect(parseThreads("2")).toBe(2);
    expect(parseThreads(undefined)).toBeUndefined();
    expect(parseBackendChoice(" TensorFlow ")).toBe("tensorflow");
    expect(parseBackendChoice("native")).toBe("tensorflow");
  });

  it("says what to do when the native package is missing", () => {
    const why = unavailableReason("@tensorflow/no-such-native" as "@tensorflow/tfjs-node");
    expect(why).toMatch(/is not installed/);
    expect(why).toMatch(/RECBLOCKS_LIBTENSORFLOW=/);
    expect(why).toMatch(/docs\/engine\.md/);
  });
});
