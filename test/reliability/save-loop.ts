// Child process for atomic-writes.test.ts: saves two versions of a model directory over <target>, in
// turn, forever (until killed). Usage: node --import tsx save-loop.ts <target> <dirA> <dirB> [first: 0|1]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeDirAtomic } from "../../src/io/atomic.js";

function readTree(dir: string, rel = "", out: Record<string, Uint8Array> = {}): Record<string, Uint8Array> {
  for (const f of readdirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${f}` : f;
    if (statSync(join(dir, r)).isDirectory()) readTree(dir, r, out);
    else out[r] = readFileSync(join(dir, r));
  }
  return out;
}

const [target, a, b, first] = process.argv.slice(2) as [string, string, string, string | undefined];
const versions = [readTree(a), readTree(b)];
process.stdout.write("ready\n");
for (let i = Number(first ?? 0); ; i++) writeDirAtomic(target, versions[i % 2]!);
