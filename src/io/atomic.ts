/**
 * Crash-safe writes of files and directories.
 *
 * A directory is written as a hidden sibling `.<name>.tmp-<pid>-<stamp>` (every file flushed to disk
 * with fsync), renamed to `<that>.new` once complete, then swapped in: the current directory is
 * renamed to `<that>.old`, the `.new` one to `<name>`, and the `.old` one removed. A process killed at
 * any point leaves either the old or the new directory; the only moment where `<name>` is absent is
 * between the two renames, and `recoverDirAtomic` (called by every reader in src/io and by the next
 * writer) puts the complete `.new` (else `.old`) sibling back. Siblings of a dead process are removed.
 * Files are written the same way (`.<name>.tmp-<pid>-<stamp>`, fsync, rename over).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

let counter = 0;
const stamp = () => `${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** Writes `data` to `file` and flushes it to disk. */
function writeDurable(file: string, data: string | Uint8Array | Uint8Array[]): void {
  const fd = openSync(file, "w");
  try {
    if (typeof data === "string") writeAll(fd, Buffer.from(data, "utf8"));
    else if (Array.isArray(data)) for (const c of data) writeAll(fd, c);
    else writeAll(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, buf: Uint8Array): void {
  let at = 0;
  while (at < buf.byteLength) at += writeSync(fd, buf, at, buf.byteLength - at);
}

/** fsync of a directory (makes renames in it durable); not supported everywhere, so best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    /* e.g. Windows: directories cannot be opened */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

interface Sibling {
  name: string;
  pid: number;
  /** Creation order: milliseconds, then a per-process counter. */
  order: [number, number];
  state: "tmp" | "new" | "old";
}

/** The temporary siblings of `target` (`.<name>.tmp-<pid>-<stamp>[.new|.old]`). */
function siblings(target: string): Sibling[] {
  const prefix = `.${basename(target)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(target));
  } catch {
    return [];
  }
  const out: Sibling[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-([0-9a-z]+)-([0-9a-z]+)(\.new|\.old)?$/.exec(name.slice(prefix.length));
    if (!m) continue;
    out.push({ name, pid: Number(m[1]), order: [parseInt(m[2]!, 36), parseInt(m[3]!, 36)], state: m[4] === ".new" ? "new" : m[4] === ".old" ? "old" : "tmp" });
  }
  return out;
}

/**
 * Makes `dir` whole again after a writer was killed between its two renames (the complete `.new`
 * sibling, else the `.old` one, is renamed back to `dir`) and removes temporary siblings left by
 * dead processes. Cheap when there is nothing to do (one readdir of the parent). Returns true when
 * it restored `dir`.
 */
export function recoverDirAtomic(dir: string): boolean {
  const target = resolve(dir);
  let restored = false;
  for (let attempt = 0; attempt < 50; attempt++) {
    const sibs = siblings(target);
    if (sibs.length === 0) return restored;
    if (!existsSync(target)) {
      if (sibs.some((s) => s.state !== "tmp" && alive(s.pid))) {
        // a live writer is between its two renames (microseconds): wait for it
        const until = Date.now() + 20;
        while (Date.now() < until) {
          /* spin */
        }
        continue;
      }
      // the newest complete copy: a `.new` one (the save that was under way), else the `.old` one
      const rank = (s: Sibling) => (s.state === "new" ? 1 : 0);
      const pick = sibs
        .filter((s) => s.state !== "tmp" && !alive(s.pid))
        .sort((a, b) => rank(b) - rank(a) || b.order[0] - a.order[0] || b.order[1] - a.order[1])[0];
      if (!pick) {
        for (const s of sibs) if (!alive(s.pid)) rmSync(join(dirname(target), s.name), { recursive: true, force: true });
        return restored;
      }
      try {
        renameSync(join(dirname(target), pick.name), target);
        restored = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT" && !existsSync(target)) throw e;
      }
      continue;
    }
    for (const s of sibs) if (!alive(s.pid)) rmSync(join(dirname(target), s.name), { recursive: true, force: true });
    return restored;
  }
  return restored;
}

/**
 * Writes `files` (relative path -> content) into `dir` atomically and durably: nothing half-written
 * is ever visible at `dir`, and a crash leaves the previous directory or the new one.
 */
export function writeDirAtomic(dir: string, files: Record<string, string | Uint8Array | Uint8Array[]>): void {
  const target = resolve(dir);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  recoverDirAtomic(target);
  const tmp = join(parent, `.${basename(target)}.tmp-${process.pid}-${stamp()}`);
  const ready = `${tmp}.new`;
  const old = `${tmp}.old`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const dirs = new Set<string>([tmp]);
    for (const [rel, content] of Object.entries(files)) {
      const p = join(tmp, rel);
      if (!resolve(p).startsWith(tmp + "/") && !resolve(p).startsWith(tmp + "\\")) throw new Error(`writeDirAtomic: "${rel}" is outside the directory`);
      mkdirSync(dirname(p), { recursive: true });
      dirs.add(dirname(p));
      writeDurable(p, content);
    }
    for (const d of dirs) syncDir(d);
    renameSync(tmp, ready);
    if (existsSync(target)) {
      renameSync(target, old);
      renameSync(ready, target);
      syncDir(parent);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(ready, target);
      syncDir(parent);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(ready, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(target)) renameSync(old, target);
    throw e;
  }
}

/** Writes one file atomically and durably: a temporary sibling, fsync, rename over `file`. */
export function writeFileAtomic(file: string, data: string | Uint8Array | Uint8Array[]): void {
  const target = resolve(file);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(target)}.tmp-${process.pid}-${stamp()}`);
  try {
    writeDurable(tmp, data);
    renameSync(tmp, target);
    syncDir(parent);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  // temporary files of killed writers
  for (const s of siblings(target)) if (s.state === "tmp" && !alive(s.pid)) rmSync(join(parent, s.name), { force: true });
}
