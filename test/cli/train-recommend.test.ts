/**
 * The CLI end to end, as a user runs it, in child processes: `recblocks train` on a small STAMP recipe
 * (real files on disk, the real engine), `recblocks evaluate` of the saved model directory (same test
 * metrics as train printed), and `recblocks recommend` with and without a deny-list file: the denied
 * items disappear while k items still come back, and unknown ids are reported, not errors.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const ROOT = packageRoot();
const CLI = join(ROOT, "bin", "recblocks.js");
let tmp: string;
let trainJson: Record<string, unknown>;

const lastJson = (out: string) => JSON.parse(out.trim().split("\n").pop()!) as Record<string, unknown>;
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 120_000 });

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "recblocks-cli-"));
  // recipes/stamp.yaml made small: fewer sessions and items, one epoch, a smaller dimension
  const recipe = readFileSync(join(ROOT, "recipes", "stamp.yaml"), "utf8")
    .replace("builtin:synthetic?sessions=5000&items=1000&seed=7", "builtin:synthetic?sessions=600&items=80&seed=3")
    .replace("embeddingDims: {item_id: 100}", "embeddingDims: {item_id: 16}")
    .replace("epochs: 3", "epochs: 2")
    .replace("batchSize: 512", "batchSize: 128");
  writeFileSync(join(tmp, "stamp-small.yaml"), recipe);
  const r = cli(["train", "stamp-small.yaml", "--out", "run", "--json"]);
  expect(r.status, r.stderr).toBe(0);
  trainJson = lastJson(r.stdout);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("recblocks train / evaluate / recommend", () => {
  it("train prints the test metrics and the most-popular baseline as its last JSON line, and saves a model directory", () => {
    expect(trainJson.modelDir).toBe(join(tmp, "run", "model"));
    for (const k of ["recall@20", "mrr@20", "ndcg@20"]) expect(typeof trainJson[k]).toBe("number");
    const pop = trainJson.mostPopular as Record<string, number>;
    for (const k of ["recall@20", "mrr@20"]) {
      expect(trainJson[k] as number, k).toBeGreaterThan(0);
      expect(trainJson[k] as number, k).toBeLessThanOrEqual(1);
      expect(pop[k]!, k).toBeGreaterThan(0);
    }
    // MRR@20 never exceeds recall@20 (each hit adds at most 1 to both)
    expect(trainJson["mrr@20"] as number).toBeLessThanOrEqual(trainJson["recall@20"] as number);
    const lines = readFileSync(join(tmp, "run", "metrics.jsonl"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
  });

  it("evaluate on the saved model gives the metrics train printed", () => {
    const r = cli(["evaluate", "run/model", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const ev = lastJson(r.stdout);
    for (const k of ["recall@20", "mrr@20", "ndcg@20"]) expect(Math.abs((ev[k] as number) - (trainJson[k] as number)), k).toBeLessThan(1e-6);
  });

  it("recommend: k items, best first; a deny-list removes items and k still come back; unknown ids reported", () => {
    const base = cli(["recommend", "run/model", "--items", "1,2,3", "-k", "10", "--json"]);
    expect(base.status, base.stderr).toBe(0);
    const a = lastJson(base.stdout) as { items: string[]; scores: number[]; unknownItems: string[] };
    expect(a.items).toHaveLength(10);
    expect(new Set(a.items).size).toBe(10);
    for (let i = 1; i < a.scores.length; i++) expect(a.scores[i - 1]!).toBeGreaterThanOrEqual(a.scores[i]!);
    const denied = a.items.slice(0, 4);
    writeFileSync(join(tmp, "deny.txt"), denied.join("\n") + "\nnot-an-item\n");
    const r = cli(["recommend", "run/model", "--items", "1,2,3,ghost", "-k", "10", "--deny", "deny.txt", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const b = lastJson(r.stdout) as { items: string[]; scores: number[]; unknownItems: string[] };
    expect(b.items).toHaveLength(10);
    for (const d of denied) expect(b.items).not.toContain(d);
    // the items that were not denied keep their order and scores
    expect(b.items.slice(0, 6)).toEqual(a.items.slice(4, 10));
    expect(b.unknownItems).toEqual(expect.arrayContaining(["ghost", "not-an-item"]));
  });

  it("train --max-batches N trains N batches per epoch (a smoke run); a bad N is a usage error", () => {
    const r = cli(["train", "stamp-small.yaml", "--epochs", "1", "--max-batches", "2", "--out", "mb", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(join(tmp, "mb", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { examplesPerSecond: number; seconds: number });
    expect(lines).toHaveLength(1);
    // 2 batches of 128 prefix examples
    expect(Math.round(lines[0]!.examplesPerSecond * lines[0]!.seconds)).toBe(256);
    const bad = cli(["train", "stamp-small.yaml", "--max-batches", "0"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--max-batches must be an integer >= 1");
  });

  it("a bad recipe fails with file:line:col and a non-zero exit, and no run directory", () => {
    writeFileSync(join(tmp, "bad.yaml"), readFileSync(join(tmp, "stamp-small.yaml"), "utf8").replace("learningRate: 0.005", "learningRate: fast"));
    const r = cli(["train", "bad.yaml", "--out", "badrun"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+/);
    expect(r.stderr).toMatch(/learningRate/);
    expect(() => execFileSync("ls", [join(tmp, "badrun")], { stdio: "ignore" })).toThrow();
  });
});

describe("recblocks recommend on an ALS model", () => {
  it("--user for a known user, and --items folds a new user in: their items are known, not reported as unknown", () => {
    const recipe = readFileSync(join(ROOT, "recipes", "als.yaml"), "utf8")
      .replace("builtin:synthetic?sessions=2000&items=1000&seed=7", "builtin:synthetic?sessions=300&items=120&seed=5")
      .replace("iterations: 15", "iterations: 4");
    writeFileSync(join(tmp, "als-small.yaml"), recipe);
    const t = cli(["train", "als-small.yaml", "--out", "alsrun", "--json"]);
    expect(t.status, t.stderr).toBe(0);
    const user = cli(["recommend", "alsrun/model", "--user", "u1", "-k", "5", "--json"]);
    const known = user.status === 0 ? (lastJson(user.stdout) as { items: string[] }) : undefined;
    // the synthetic users are u1.. or 1..: take whichever the model knows
    const u = known ? "u1" : "1";
    const r = known ? user : cli(["recommend", "alsrun/model", "--user", u, "-k", "5", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const a = lastJson(r.stdout) as { items: string[]; unknownItems: string[] };
    expect(a.items).toHaveLength(5);
    const fold = cli(["recommend", "alsrun/model", "--items", a.items.slice(0, 3).join(","), "-k", "5", "--json"]);
    expect(fold.status, fold.stderr).toBe(0);
    const b = lastJson(fold.stdout) as { items: string[]; unknownItems: string[] };
    expect(b.unknownItems).toEqual([]);
    expect(b.items).toHaveLength(5);
    for (const i of a.items.slice(0, 3)) expect(b.items, "already-liked items are filtered").not.toContain(i);
  });
});
