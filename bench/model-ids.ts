/** Shared by bench/serve.ts and bench/soak.ts: request material from a model directory, and a seeded random source. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { mulberry32 } from "../src/masking/index.js";

/** A seeded uniform [0, 1) source (mulberry32): the same request bodies for the same seed. */
export function rng(seed: number): () => number {
  const r = mulberry32(seed);
  return () => r.next();
}

/** Raw item ids (and ALS user ids) of a model directory, from its vocabulary files. */
export function idsOf(dir: string): { kind: "next-item" | "als"; items: string[]; users: string[] } {
  const mj = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as { format: string; modelTopology?: { itemColumn?: string } };
  if (mj.format === "recblocks-als") {
    const ids = (f: string) => (JSON.parse(readFileSync(join(dir, "vocabularies", f), "utf8")) as { ids: string[] }).ids;
    return { kind: "als", items: ids("items.json"), users: ids("users.json") };
  }
  const col = mj.modelTopology?.itemColumn ?? "item_id";
  const v = JSON.parse(readFileSync(join(dir, "vocabularies", `${col}.json`), "utf8")) as Record<string, unknown>;
  // the vocabulary file lists the raw tokens in id order under one of these keys
  const tokens = (v.tokens ?? v.values ?? v.ids ?? v.raw) as (string | number)[] | undefined;
  if (!Array.isArray(tokens)) throw new Error(`bench: cannot read the raw ids of ${dir}/vocabularies/${col}.json (keys: ${Object.keys(v).join(", ")})`);
  return { kind: "next-item", items: tokens.map(String).filter((t) => t !== ""), users: [] };
}
