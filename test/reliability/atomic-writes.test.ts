/**
 * Atomic model directories: a child process saves a model directory over an existing good one in a
 * loop and is SIGKILLed after a random delay, many times. After each kill the directory must load
 * (old or new version, byte for byte one of them, never a mix or a torn file) and no temporary
 * sibling may be left behind once a reader has looked at it.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { initEngine } from "../../src/engine/index.js";
import { recoverDirAtomic, writeDirAtomic, writeFileAtomic } from "../../src/io/atomic.js";
import { loadModelDir, readModelDirFiles, saveModelDir } from "../../src/io/model-dir.js";
import { trainRecipe } from "../../src/run/train.js";
import { mulberry32 } from "../../src/masking/index.js";
import { ROOT, tinyRecipe, writeRecipe } from "./helpers.js";

const KILLS = 25;
let tmp: string;
let dirA: string;
let dirB: string;
let saveLoop: string;

function tree(dir: string, rel = "", out: Record<string, string> = {}): Record<string, string> {
  for (const f of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${f}` : f;
    if (statSync(join(dir, r)).isDirectory()) tree(dir, r, out);
    else out[r] = readFileSync(join(dir, r)).toString("base64");
  }
  return out;
}

/** A pid that is certainly dead: a finished child's. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => c.on("close", r));
  return c.pid!;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "rb-atomic-"));
  // the child is bundled to plain JS once (esbuild, which tsx uses): it starts in ~50 ms instead of ~700
  saveLoop = join(tmp, "save-loop.mjs");
  buildSync({ entryPoints: [join(import.meta.dirname, "save-loop.ts")], bundle: true, platform: "node", format: "esm", outfile: saveLoop, logLevel: "silent" });
  await initEngine({ backend: "tensorflow", quiet: true });
  // a model big enough (about 3 MB of weights) that a save takes a while and kills land inside it
  const recipe = writeRecipe(tmp, "r.yaml", tinyRecipe({ items: 2000, sessions: 300, embeddingDim: 256, epochs: 1 }).replace("dModel: 16", "dModel: 256"));
  const r = await trainRecipe(recipe, { out: join(tmp, "run"), stream: null, epochs: 1 });
  dirA = join(tmp, "A");
  cpSync(r.modelDir, dirA, { recursive: true });
  const c = loadModelDir(dirA);
  const v = c.model.namedVariables().get("inputs/embeddings/item_id")!;
  tf.tidy(() => v.assign(tf.mul(v, 2)));
  dirB = join(tmp, "B");
  saveModelDir(dirB, { ...c, metrics: { version: "B" } });
  c.model.dispose();
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("atomic model directories under SIGKILL", () => {
  it(`a save killed at ${KILLS} random moments always leaves a loadable directory, old or new, never torn`, async () => {
    loadModelDir(dirB).model.dispose();
    const A = tree(dirA);
    const B = tree(dirB);
    expect(A["weights.bin"]).not.toBe(B["weights.bin"]);
    const parent = join(tmp, "target");
    mkdirSync(parent);
    const target = join(parent, "model");
    cpSync(dirA, target, { recursive: true });
    const rng = mulberry32(2024);
    const seen = { A: 0, B: 0, gap: 0, restored: 0, leftovers: 0 };
    for (let i = 0; i < KILLS; i++) {
      const child = spawn(process.execPath, [saveLoop, target, dirA, dirB, String(i % 2)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      await new Promise<void>((res, rej) => {
        child.stdout.once("data", () => res());
        child.on("close", () => rej(new Error(`save-loop exited early: ${err}`)));
      });
      await new Promise((r) => setTimeout(r, Math.floor(rng.next() * 120)));
      child.kill("SIGKILL");
      await new Promise((r) => child.on("close", r));
      if (readdirSync(parent).length > 1) seen.leftovers++;
      // a reader: recovers (if the kill fell between the two renames) and, every few kills, loads the
      // model (both versions load; byte equality with one of them is checked every time)
      if (!existsSync(target)) seen.gap++;
      if (recoverDirAtomic(target)) seen.restored++;
      if (i % 5 === 0 || i === KILLS - 1) loadModelDir(target).model.dispose();
      expect(existsSync(join(target, "model.json"))).toBe(true);
      const now = tree(target);
      const which = JSON.stringify(now) === JSON.stringify(A) ? "A" : JSON.stringify(now) === JSON.stringify(B) ? "B" : "torn";
      expect(which, `kill ${i}: the directory is neither the old nor the new version`).not.toBe("torn");
      seen[which as "A" | "B"]++;
      expect(readdirSync(parent), `kill ${i}: temporary siblings left after a reader looked`).toEqual(["model"]);
    }
    console.log(`atomic writes: ${KILLS} SIGKILLs during saves survived: ${seen.A} left version A, ${seen.B} version B; ${seen.leftovers} left temporary siblings that the next reader removed, ${seen.gap} fell between the two renames (${seen.restored} restored)`);
    expect(seen.A + seen.B).toBe(KILLS);
    expect(seen.restored).toBe(seen.gap);
  }, 120_000);

  it("a reader while another process saves in a loop always gets one whole version (never model.json of one and weights of the other)", async () => {
    const parent = join(tmp, "concurrent");
    mkdirSync(parent);
    const target = join(parent, "model");
    cpSync(dirA, target, { recursive: true });
    const weightsB = readFileSync(join(dirB, "weights.bin"));
    const weightsA = readFileSync(join(dirA, "weights.bin"));
    const child = spawn(process.execPath, [saveLoop, target, dirA, dirB, "1"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] });
    await new Promise((res) => child.stdout.once("data", res));
    const READS = 300;
    let seenA = 0;
    let seenB = 0;
    try {
      for (let i = 0; i < READS; i++) {
        const f = readModelDirFiles(target);
        const isB = (f.metrics as { version?: string }).version === "B";
        // the weights must belong to the version metrics.json says
        expect(Buffer.from(f.weights as Uint8Array).equals(isB ? weightsB : weightsA), `read ${i}: metrics.json of ${isB ? "B" : "A"} with the other version's weights.bin`).toBe(true);
        if (isB) seenB++;
        else seenA++;
        if (i % 50 === 0) loadModelDir(target).model.dispose();
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.on("close", r));
    }
    console.log(`concurrent reads during saves: ${READS} reads, ${seenA} version A, ${seenB} version B, all whole`);
    expect(seenA).toBeGreaterThan(0);
    expect(seenB).toBeGreaterThan(0);
  }, 60_000);

  it("a writer killed between its two renames: the reader restores the complete new copy (else the old one)", async () => {
    const parent = join(tmp, "gap");
    mkdirSync(parent);
    const target = join(parent, "model");
    const pid = await deadPid();
    // state after `rename(target, .old)` and before `rename(.new, target)`
    cpSync(dirA, join(parent, `.model.tmp-${pid}-1-0.old`), { recursive: true });
    cpSync(dirB, join(parent, `.model.tmp-${pid}-1-0.new`), { recursive: true });
    mkdirSync(join(parent, `.model.tmp-${pid}-2-0`)); // an unfinished write
    const c = loadModelDir(target);
    c.model.dispose();
    expect(tree(target)).toEqual(tree(dirB));
    expect(readdirSync(parent)).toEqual(["model"]);
    // only an .old copy: it comes back
    rmSync(target, { recursive: true });
    cpSync(dirA, join(parent, `.model.tmp-${pid}-3-0.old`), { recursive: true });
    expect(recoverDirAtomic(target)).toBe(true);
    expect(tree(target)).toEqual(tree(dirA));
    expect(readdirSync(parent)).toEqual(["model"]);
  });

  it("a live writer's temporary folders are left alone; a failed write leaves the old directory", () => {
    const parent = join(tmp, "live");
    const target = join(parent, "d");
    writeDirAtomic(target, { "a.txt": "1" });
    mkdirSync(join(parent, `.d.tmp-${process.pid}-9-9`)); // ours (alive)
    recoverDirAtomic(target);
    expect(readdirSync(parent).sort()).toEqual([`.d.tmp-${process.pid}-9-9`, "d"]);
    rmSync(join(parent, `.d.tmp-${process.pid}-9-9`), { recursive: true });
    expect(() => writeDirAtomic(target, { "../escape.txt": "x" })).toThrow(/outside/);
    expect(readdirSync(parent)).toEqual(["d"]);
    expect(readFileSync(join(target, "a.txt"), "utf8")).toBe("1");
  });

  it("writeFileAtomic replaces a file whole and removes temporary files of dead writers", async () => {
    const parent = join(tmp, "files");
    mkdirSync(parent);
    const f = join(parent, "metrics.json");
    writeFileSync(join(parent, `.metrics.json.tmp-${await deadPid()}-1-0`), "{half");
    writeFileAtomic(f, '{"a": 1}\n');
    writeFileAtomic(f, [Buffer.from('{"a": '), Buffer.from("2}\n")]);
    expect(readFileSync(f, "utf8")).toBe('{"a": 2}\n');
    expect(readdirSync(parent)).toEqual(["metrics.json"]);
  });
});
