import { describe, expect, it, vi } from "vitest";
import { parseArgs } from "../../src/cli/args.js";
import { run, spec } from "../../src/cli/commands/doctor.js";

async function doctor(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await run(parseArgs(spec, argv));
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe("recblocks doctor", () => {
  it("--json prints {backend, tensorflowVersion, threads, native:{available, how}} as the last line", async () => {
    const r = await doctor(["--json"]);
    expect(r.code).toBe(0);
    const last = JSON.parse(r.out.trim().split("\n").pop()!);
    expect(Object.keys(last)).toEqual(["backend", "tensorflowVersion", "threads", "native"]);
    expect(Object.keys(last.native)).toEqual(["available", "how"]);
    if (last.native.available) {
      expect(last.backend).toBe("tensorflow");
      expect(last.tensorflowVersion).toMatch(/^\d+\.\d+\.\d+/);
    } else {
      expect(last.backend).toBe("wasm");
      expect(last.tensorflowVersion).toBeNull();
    }
  });

  it("--backend cpu reports cpu with one thread; the table names every field", async () => {
    const r = await doctor(["--backend", "cpu"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^backend\s+cpu \(requested\)$/m);
    expect(r.out).toMatch(/^threads\s+1$/m);
    expect(r.out).toMatch(/^native\s+(available|NOT available): /m);
    expect(r.out).toMatch(/^install-time setup\s+/m);
  });

  it("an unknown backend is a clear error, exit 1", async () => {
    const r = await doctor(["--backend", "tpu"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('Unknown backend "tpu"');
  });
});
