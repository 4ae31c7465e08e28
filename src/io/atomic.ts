import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/** Writes `files` (relative path -> content) into `dir` atomically: nothing half-written is ever visible at `dir`. */
export function writeDirAtomic(dir: string, files: Record<string, string | Uint8Array | Uint8Array[]>): void {
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${Date.now().toString(36)}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    for (const [rel, content] of Object.entries(files)) {
      const p = join(tmp, rel);
      mkdirSync(dirname(p), { recursive: true });
      if (Array.isArray(content)) {
        const total = content.reduce((s, c) => s + c.byteLength, 0);
        const buf = Buffer.allocUnsafe(total);
        let at = 0;
        for (const c of content) {
          buf.set(c, at);
          at += c.byteLength;
        }
        writeFileSync(p, buf);
      } else writeFileSync(p, content);
    }
    if (existsSync(target)) {
      const old = `${tmp}.old`;
      renameSync(target, old);
      renameSync(tmp, target);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

