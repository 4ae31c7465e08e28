/** `node:path` in the browser bundle: the POSIX functions recblocks uses, over the virtual file system (cwd "/"). */
export const sep = "/";
export const delimiter = ":";

export function normalize(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = (abs ? "/" : "") + out.join("/");
  return s || (abs ? "/" : ".");
}

export function join(...parts: string[]): string {
  const s = parts.filter((x) => x !== "").join("/");
  return s ? normalize(s) : ".";
}

export function isAbsolute(p: string): boolean {
  return p.startsWith("/");
}

export function resolve(...parts: string[]): string {
  let s = "";
  for (let i = parts.length - 1; i >= 0 && !s.startsWith("/"); i--) if (parts[i]) s = s ? `${parts[i]}/${s}` : parts[i]!;
  return normalize(s.startsWith("/") ? s : `/${s}`);
}

export function dirname(p: string): string {
  const n = normalize(p);
  const i = n.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : n.slice(0, i);
}

export function basename(p: string, ext?: string): string {
  const n = normalize(p);
  const b = n.slice(n.lastIndexOf("/") + 1);
  return ext && b.endsWith(ext) && b !== ext ? b.slice(0, -ext.length) : b;
}

export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf(".");
  return i <= 0 ? "" : b.slice(i);
}

export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...Array(a.length - i).fill(".."), ...b.slice(i)].join("/");
}

export const posix = { sep, delimiter, normalize, join, isAbsolute, resolve, dirname, basename, extname, relative };
export default posix;
