/**
 * `node:fs` in the browser bundle (scripts/build-browser.mjs resolves `node:fs` / `fs` here): a
 * read-only in-memory file system holding the files the build embeds (the block schemas whose
 * defaults `withSchemaDefaults` reads, and a package.json that `packageRoot()` finds), under
 * VIRTUAL_ROOT. Everything that writes, and any name not defined here, throws when called (the
 * build generates those stubs), so Node-only code paths fail loudly instead of silently.
 */
declare const __RECBLOCKS_EMBEDDED_FILES__: Record<string, string> | undefined;

/** Where the embedded package lives in the virtual file system. */
export const VIRTUAL_ROOT = "/recblocks";

const files: Record<string, string> = typeof __RECBLOCKS_EMBEDDED_FILES__ === "object" && __RECBLOCKS_EMBEDDED_FILES__ !== null ? __RECBLOCKS_EMBEDDED_FILES__ : {};

function key(p: unknown): string {
  let s = p instanceof URL ? decodeURIComponent(p.pathname) : String(p);
  while (s.length > 1 && s.endsWith("/")) s = s.slice(0, -1);
  return s;
}

function isDir(p: string): boolean {
  const prefix = p === "/" ? "/" : p + "/";
  return Object.keys(files).some((f) => f.startsWith(prefix));
}

function enoent(syscall: string, p: string): Error {
  const e = new Error(`ENOENT: no such file or directory, ${syscall} '${p}' (the browser build of recblocks has no file system)`) as Error & { code: string; path: string; syscall: string };
  e.code = "ENOENT";
  e.path = p;
  e.syscall = syscall;
  return e;
}

export function existsSync(p: unknown): boolean {
  const k = key(p);
  return k in files || isDir(k);
}

export function readFileSync(p: unknown, opts?: string | { encoding?: string | null }): string | Uint8Array {
  const k = key(p);
  const text = files[k];
  if (text === undefined) throw enoent("open", k);
  const enc = typeof opts === "string" ? opts : opts?.encoding;
  return enc ? text : new TextEncoder().encode(text);
}

export function readdirSync(p: unknown): string[] {
  const k = key(p);
  if (!isDir(k)) throw enoent("scandir", k);
  const prefix = k === "/" ? "/" : k + "/";
  const names = new Set<string>();
  for (const f of Object.keys(files)) if (f.startsWith(prefix)) names.add(f.slice(prefix.length).split("/")[0]!);
  return [...names].sort();
}

export function statSync(p: unknown): { isFile(): boolean; isDirectory(): boolean; size: number; mtimeMs: number } {
  const k = key(p);
  const text = files[k];
  if (text === undefined && !isDir(k)) throw enoent("stat", k);
  return { isFile: () => text !== undefined, isDirectory: () => text === undefined, size: text?.length ?? 0, mtimeMs: 0 };
}
