/**
 * Numerical faults: a NaN/Inf loss stops training with a located error (epoch, step, likely cause),
 * nothing NaN is ever saved (the previous model directory is kept), `recblocks train` exits non-zero;
 * NaN/Inf inputs are reported (with their line by the readers, by session as a last guard in fit).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRecipeData } from "../../src/data/index.js";
import { initEngine } from "../../src/engine/index.js";
import type { Model } from "../../src/model/index.js";
import { trainRecipe } from "../../src/run/train.js";
import { fit, nonFiniteWeights } from "../../src/train/loop.js";
import { CLI, runNode, thrown, tinyRecipe, writeRecipe } from "./helpers.js";

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "rb-nan-"));
  await initEngine({ backend: "tensorflow", quiet: true });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const f of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (f.isDirectory()) walk(join(d, f.name), rel + f.name + "/");
      else out[rel + f.name] = readFileSync(join(d, f.name)).toString("base64");
    }
  };
  walk(dir, "");
  return out;
}

describe("NaN / Inf loss", () => {
  it("`recblocks train` with SGD at learning rate 1e6 fails with non_finite_loss (epoch, step, cause), exit 1, no model dir", async () => {
    const recipe = writeRecipe(tmp, "absurd.yaml", tinyRecipe({ optimizer: "sgd", learningRate: 1e6, epochs: 3 }));
    const out = join(tmp, "cli-run");
    const r = await runNode(CLI, ["train", recipe, "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("[non_finite_loss]");
    expect(r.stderr).toMatch(/The loss became (NaN|Infinity|-Infinity) at epoch 1, step \d+ \(global step \d+\)/);
    expect(r.stderr).toContain("learning rate (1000000 with sgd) is very high");
    const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(last.error.issues[0]).toMatchObject({ code: "non_finite_loss", path: "/train/optimizer/learningRate" });
    expect(existsSync(join(out, "model"))).toBe(false);
    expect(existsSync(join(out, "summary.json"))).toBe(false);
  });

  it("a diverging run keeps the previous good model directory and checkpoint byte for byte", async () => {
    const out = join(tmp, "keep");
    const good = writeRecipe(tmp, "good.yaml", tinyRecipe({ epochs: 1 }));
    const r = await trainRecipe(good, { out, stream: null });
    const before = snapshot(r.modelDir);
    const checkpoint = snapshot(join(out, "checkpoint"));
    const summary = readFileSync(join(out, "summary.json"), "utf8");
    const bad = writeRecipe(tmp, "bad.yaml", tinyRecipe({ optimizer: "sgd", learningRate: 1e6, epochs: 2 }));
    const e = await thrown(trainRecipe(bad, { out, stream: null }));
    expect(e.issues[0]!.code).toBe("non_finite_loss");
    expect(e.issues[0]!.message).toMatch(/epoch 1, step \d+/);
    expect(snapshot(r.modelDir)).toEqual(before);
    expect(snapshot(join(out, "checkpoint"))).toEqual(checkpoint);
    expect(readFileSync(join(out, "summary.json"), "utf8")).toBe(summary);
    expect(readdirSync(out).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("nonFiniteWeights finds the variable holding NaN or Inf with one read-back", () => {
    const a = tf.variable(tf.tensor([1, 2, 3]), true, "rel-a");
    const b = tf.variable(tf.tensor([[1, 2], [3, 4]]), true, "rel-b");
    expect(nonFiniteWeights([a, b])).toBeUndefined();
    b.assign(tf.tensor([[1, 2], [Infinity, 4]]));
    expect(nonFiniteWeights([a, b])).toBe("rel-b");
    a.assign(tf.tensor([NaN, 0, 0]));
    expect(nonFiniteWeights([a, b])).toBe("rel-a");
    a.dispose();
    b.dispose();
  });
});

describe("NaN / Inf inputs", () => {
  const schema = { version: 1, columns: [{ name: "price", dtype: "float64", tags: ["continuous"] }] } as never;

  it("the CSV reader reports inf / Infinity / NaN continuous values with their line", async () => {
    const f = join(tmp, "inf.csv");
    writeFileSync(f, "session_id,item_id,price\ns1,1,1.5\ns1,2,inf\ns1,3,Infinity\ns2,1,NaN\ns2,4,2\n");
    const e = await thrown(loadRecipeData({ train: f } as never, schema));
    expect(e.issues.map((i) => [i.code, i.source?.line])).toEqual([["data_bad_number", 3], ["data_bad_number", 4], ["data_bad_number", 5]]);
    expect(e.issues[0]!.message).toContain('continuous column "price" holds "inf"');
  });

  it("a value that overflows float32 (1e39) passes the reader but fit refuses it: non_finite_input naming the session", async () => {
    const f = join(tmp, "overflow.csv");
    writeFileSync(f, "session_id,item_id,price\ns1,1,1.5\ns1,2,2\ns2,1,3\ns2,4,1e39\ns2,3,1\n");
    const d = await loadRecipeData({ train: f } as never, schema);
    const e = await thrown(fit({ pooled: false } as unknown as Model, { train: d.train, maxSequenceLength: 5 }));
    expect(e.issues[0]).toMatchObject({ code: "non_finite_input", path: "/data/train" });
    expect(e.issues[0]!.message).toMatch(/Session "s2" .* Infinity in continuous feature "price" at step 2/);
  });
});
