import { describe, expect, it } from "vitest";
import { ModelSlot } from "../../src/serve/model-slot.js";
import { locateJsonError } from "../../src/serve/json-body.js";

class Fake {
  disposed = 0;
  constructor(readonly name: string) {}
  dispose(): void {
    this.disposed++;
  }
}

describe("ModelSlot (reference-counted hot swap)", () => {
  it("a swap is immediate; the old model is disposed once, after its last lease", () => {
    const a = new Fake("a");
    const b = new Fake("b");
    const slot = new ModelSlot(a);
    const l1 = slot.acquire();
    const l2 = slot.acquire();
    expect(slot.leases).toBe(2);
    expect(slot.swap(b)).toBe(a);
    expect(slot.generation).toBe(2);
    // new requests get b at once; a is still in use by l1 and l2
    const l3 = slot.acquire();
    expect(l3.value).toBe(b);
    expect(a.disposed).toBe(0);
    expect(slot.retiredInUse).toBe(1);
    l1.release();
    l1.release(); // a second release does nothing
    expect(a.disposed).toBe(0);
    l2.release();
    expect(a.disposed).toBe(1);
    expect(slot.retiredInUse).toBe(0);
    l3.release();
    expect(b.disposed).toBe(0);
    expect(slot.peek()).toBe(b);
  });

  it("a model nobody uses is disposed at the swap; close() waits for the leases", async () => {
    const a = new Fake("a");
    const b = new Fake("b");
    const slot = new ModelSlot(a);
    slot.swap(b);
    expect(a.disposed).toBe(1);
    const l = slot.acquire();
    let closed = false;
    const c = slot.close().then(() => (closed = true));
    await Promise.resolve();
    expect(closed).toBe(false);
    expect(b.disposed).toBe(0);
    expect(() => slot.acquire()).toThrow(/closed/);
    l.release();
    await c;
    expect(b.disposed).toBe(1);
  });

  it("a dispose that throws is reported, and the slot goes on", () => {
    const errors: unknown[] = [];
    const bad = { dispose: () => { throw new Error("boom"); } };
    const slot = new ModelSlot<{ dispose(): void }>(bad, (e) => errors.push(e));
    slot.swap(new Fake("b"));
    expect(errors).toHaveLength(1);
    expect(slot.retiredInUse).toBe(0);
  });
});

describe("locateJsonError", () => {
  it.each([
    ['{"items": ["1", "2",}', 1, 21, "expected a value"],
    ['{"a": 1}\n x', 2, 2, "after the JSON value"],
    ["{items: [1]}", 1, 2, "key in double quotes"],
    ['{"a": [1 2]}', 1, 10, 'expected "," or "]"'],
    ['{"a"', 1, 5, 'expected ":"'],
    ['{"a": "x', 1, 9, "not closed"],
  ])("%j: line %i, column %i", (text, line, column, reason) => {
    const p = locateJsonError(text)!;
    expect(p).toMatchObject({ line, column });
    expect(p.reason).toContain(reason);
  });

  it("valid JSON has no problem", () => {
    for (const t of ['{"a": [1, -2.5e3, true, null, "\\u00e9\\n"]}', "[]", " 3 "]) expect(locateJsonError(t)).toBeNull();
  });
});
