/**
 * Embedding extraction (src/export, `recblocks export`) on a small GPT-2 model trained here:
 * - item vectors are the item table rows, keyed by raw id, padding/OOV left out (or kept and flagged);
 * - a session's exported vector dotted with the item table ranks items exactly as `recblocks recommend`
 *   does for that session (library and CLI);
 * - the .npy file has a valid version-1.0 header (magic, 64-byte aligned, '<f4', C order, shape (N, D));
 * - files are replaced by rename (a new inode, no temporary file left), csv and jsonl carry the same numbers.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { trainRecipe, registerBuiltinBlocks } from "../../src/run/train.js";
import { initEngine } from "../../src/engine/index.js";
import { loadModelDir, type ModelDirContents } from "../../src/io/model-dir.js";
import { NextItemRecommender } from "../../src/recommend/next-item.js";
import { decodeNpy, encodeNpy } from "../../src/export/npy.js";
import { itemEmbeddingRows, loadSessionsForModel, sessionEmbeddingRows, writeEmbeddings } from "../../src/export/embeddings.js";
import type { Session } from "../../src/data/batches.js";

const ROOT = packageRoot();
const CLI = join(ROOT, "bin", "recblocks.js");
const DATA = "builtin:synthetic?sessions=60&items=120&seed=11&days=3";
let tmp: string;
let modelDir: string;
let c: ModelDirContents;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "recblocks-export-"));
  const recipe = readFileSync(join(ROOT, "recipes", "gpt2-clm.yaml"), "utf8")
    .replace("builtin:synthetic?sessions=5000&items=1000&seed=7", "builtin:synthetic?sessions=500&items=120&seed=3")
    .replace("embeddingDims: {item_id: 64}", "embeddingDims: {item_id: 16}")
    .replace("dModel: 64", "dModel: 16")
    .replace("numLayers: 2", "numLayers: 1")
    .replace("epochs: 5", "epochs: 2");
  writeFileSync(join(tmp, "tiny.yaml"), recipe);
  await initEngine({ quiet: true });
  modelDir = (await trainRecipe(join(tmp, "tiny.yaml"), { out: join(tmp, "run"), stream: null })).modelDir;
  await registerBuiltinBlocks();
  c = loadModelDir(modelDir);
}, 60_000);
afterAll(() => {
  c?.model.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

function tableRows(): { V: number; D: number; values: Float32Array } {
  const v = c.model.namedVariables().get("inputs/embeddings/item_id")!;
  expect(v, `variables: ${[...c.model.namedVariables().keys()].join(", ")}`).toBeDefined();
  return { V: v.shape[0]!, D: v.shape[1]!, values: v.dataSync() as Float32Array };
}

/** Top-k raw ids by session · item over the real items (ids >= firstId), best first. */
function dotTopK(q: Float32Array, items: ReturnType<typeof itemEmbeddingRows>, k: number): { ids: string[]; scores: number[] } {
  const D = items.dim;
  const scored = items.ids.map((id, r) => {
    let s = 0;
    for (let j = 0; j < D; j++) s += q[j]! * items.values[r * D + j]!;
    return { id, s };
  });
  scored.sort((a, b) => b.s - a.s);
  return { ids: scored.slice(0, k).map((x) => x.id), scores: scored.slice(0, k).map((x) => x.s) };
}

describe("item embeddings", () => {
  it("are the item table rows, keyed by raw item id; padding and OOV rows left out", () => {
    const t = tableRows();
    const vocab = c.vocabularies[c.itemColumn]!;
    const items = itemEmbeddingRows(c);
    expect(items.dim).toBe(t.D);
    expect(items.ids.length).toBe(vocab.numValues);
    expect(t.V).toBe(vocab.size);
    for (let r = 0; r < items.ids.length; r++) {
      const id = vocab.lookup(items.ids[r]!);
      expect(id).toBeGreaterThanOrEqual(vocab.firstId);
      expect(items.denseIds![r]).toBe(id);
      expect(Array.from(items.values.subarray(r * t.D, (r + 1) * t.D))).toEqual(Array.from(t.values.subarray(id * t.D, (id + 1) * t.D)));
    }
    // the Model method gives the whole table
    const whole = c.model.itemEmbeddings();
    expect([whole.rows, whole.dim]).toEqual([t.V, t.D]);
    expect(Array.from(whole.values)).toEqual(Array.from(t.values));
  });

  it("with includeReserved: every row, padding and OOV flagged", () => {
    const t = tableRows();
    const items = itemEmbeddingRows(c, { includeReserved: true });
    expect(items.ids.length).toBe(t.V);
    expect(items.reserved!.slice(0, 3)).toEqual(["padding", "oov", null]);
    expect(Array.from(items.values)).toEqual(Array.from(t.values));
  });
});

describe("session embeddings", () => {
  let sessions: Session[];
  beforeAll(async () => {
    sessions = (await loadSessionsForModel(c, DATA)).sessions;
  });

  it("one vector per session of the data, keyed by session id; · item table = recommend's ranking and scores", () => {
    const rows = sessionEmbeddingRows(c, sessions);
    expect(rows.scoresWithItemTable).toBe(true);
    expect(rows.skipped).toEqual([]);
    expect(rows.ids).toEqual(sessions.map((s) => s.id));
    const items = itemEmbeddingRows(c);
    const vocab = c.vocabularies[c.itemColumn]!;
    const rec = NextItemRecommender.fromContents(modelDir, c);
    for (let r = 0; r < 12; r++) {
      const s = sessions[r]!;
      const raw = Array.from(s.items).filter((id) => id >= vocab.firstId).map((id) => String(vocab.raw(id)));
      const want = rec.recommend({ items: raw, k: 10 });
      const got = dotTopK(rows.values.subarray(r * rows.dim, (r + 1) * rows.dim), items, 10);
      expect(got.ids, `session ${s.id}`).toEqual(want.items);
      got.scores.forEach((v, i) => expect(Math.abs(v - want.scores[i]!), `session ${s.id} rank ${i + 1}`).toBeLessThan(1e-3));
    }
  });

  it("vector: hidden gives the body's output (the same here: the head has no projection)", () => {
    const q = sessionEmbeddingRows(c, sessions.slice(0, 5));
    const h = sessionEmbeddingRows(c, sessions.slice(0, 5), { vector: "hidden" });
    expect(h.scoresWithItemTable).toBe(false);
    for (let i = 0; i < q.values.length; i++) expect(Math.abs(q.values[i]! - h.values[i]!)).toBeLessThan(1e-5);
  });
});

describe(".npy and the other formats", () => {
  it("encodeNpy writes a version-1.0 header aligned to 64 bytes, '<f4', C order, shape (N, D)", () => {
    const [head, body] = encodeNpy(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(Array.from(head!.subarray(0, 8))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const hlen = head![8]! | (head![9]! << 8);
    expect(10 + hlen).toBe(head!.length);
    expect(head!.length % 64).toBe(0);
    const text = Buffer.from(head!.subarray(10)).toString("latin1");
    expect(text).toBe(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.padEnd(hlen - 1, " ") + "\n");
    expect(body!.byteLength).toBe(24);
  });

  it("CLI: npy (+ ids.json), jsonl and csv hold the same vectors; sessions · items = recommend's top-k", () => {
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 60_000 });
    let r = run(["export", modelDir, "--what", "items", "--out", "items.npy", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!).files).toEqual([join(tmp, "items.npy"), join(tmp, "items.ids.json")]);
    const npy = decodeNpy(readFileSync(join(tmp, "items.npy")));
    const side = JSON.parse(readFileSync(join(tmp, "items.ids.json"), "utf8")) as { ids: string[]; dim: number; rows: number };
    const items = itemEmbeddingRows(c);
    expect(npy.descr).toBe("<f4");
    expect(npy.fortranOrder).toBe(false);
    expect(npy.headerLength % 64).toBe(0);
    expect(npy.shape).toEqual([items.ids.length, items.dim]);
    expect(side.ids).toEqual(items.ids);
    expect(Array.from(npy.values)).toEqual(Array.from(items.values));

    r = run(["export", modelDir, "--what", "items", "--format", "csv", "--out", "items.csv"]);
    expect(r.status, r.stderr).toBe(0);
    const csv = readFileSync(join(tmp, "items.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe(["id", ...Array.from({ length: items.dim }, (_, j) => `e${j}`)].join(","));
    expect(csv.length - 1).toBe(items.ids.length);
    const row3 = csv[3]!.split(",");
    expect(row3[0]).toBe(items.ids[2]);
    expect(row3.slice(1).map(Number)).toEqual(Array.from(items.values.subarray(2 * items.dim, 3 * items.dim)));

    r = run(["export", modelDir, "--what", "sessions", "--data", DATA, "--format", "jsonl", "--out", "sessions.jsonl"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(join(tmp, "sessions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; vector: number[] });
    expect(lines.length).toBe(60);
    // two sessions through `recblocks recommend`
    const vocab = c.vocabularies[c.itemColumn]!;
    return loadSessionsForModel(c, DATA).then(({ sessions }) => {
      for (const s of sessions.slice(0, 2)) {
        const line = lines.find((l) => l.id === s.id)!;
        const raw = Array.from(s.items).filter((id) => id >= vocab.firstId).map((id) => String(vocab.raw(id)));
        const rr = run(["recommend", modelDir, "--items", raw.join(","), "-k", "10", "--json"]);
        expect(rr.status, rr.stderr).toBe(0);
        const want = JSON.parse(rr.stdout.trim().split("\n").pop()!) as { items: string[] };
        expect(dotTopK(Float32Array.from(line.vector), items, 10).ids, `session ${s.id}`).toEqual(want.items);
      }
    });
  }, 60_000);

  it("writes atomically: an existing file is replaced by rename (new inode), no temporary file is left", () => {
    const out = join(tmp, "atomic", "items.npy");
    const items = itemEmbeddingRows(c);
    writeEmbeddings(items, out, "npy");
    const before = statSync(out).ino;
    const sideBefore = statSync(join(tmp, "atomic", "items.ids.json")).ino;
    writeEmbeddings(items, out, "npy");
    expect(statSync(out).ino).not.toBe(before);
    expect(statSync(join(tmp, "atomic", "items.ids.json")).ino).not.toBe(sideBefore);
    expect(readdirSync(join(tmp, "atomic")).sort()).toEqual(["items.ids.json", "items.npy"]);
    for (const f of ["a.jsonl", "a.csv"]) {
      writeEmbeddings(items, join(tmp, "atomic", f), f.endsWith("csv") ? "csv" : "jsonl");
      const ino = statSync(join(tmp, "atomic", f)).ino;
      writeEmbeddings(items, join(tmp, "atomic", f), f.endsWith("csv") ? "csv" : "jsonl");
      expect(statSync(join(tmp, "atomic", f)).ino).not.toBe(ino);
    }
    expect(readdirSync(join(tmp, "atomic")).filter((f) => f.includes(".tmp-"))).toEqual([]);
    expect(existsSync(out)).toBe(true);
  });

  it("CLI usage errors exit 2; a missing model directory is a located error (exit 1)", () => {
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 60_000 });
    expect(run(["export", modelDir]).status).toBe(2);
    expect(run(["export", modelDir, "--what", "items", "--format", "parquet"]).status).toBe(2);
    const r = run(["export", join(tmp, "nope"), "--what", "items", "--json"]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!).error.issues[0].code).toBe("invalid_model_dir");
  });
});
