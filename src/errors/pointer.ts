/** JSON Pointer helpers (RFC 6901). */

export function escapeSegment(s: string | number): string {
  return String(s).replace(/~/g, "~0").replace(/\//g, "~1");
}

/** ["model", "body", 0] -> "/model/body/0"; [] -> "". */
export function toPointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${escapeSegment(s)}`).join("");
}

/** "/model/body/0" -> ["model", "body", "0"]; "" -> []. */
export function fromPointer(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The value at a pointer, or undefined. Own properties only. */
export function getAt(value: unknown, pointer: string): unknown {
  let v = value;
  for (const seg of fromPointer(pointer)) {
    if (v === null || typeof v !== "object") return undefined;
    if (!Object.prototype.hasOwnProperty.call(v, seg)) return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}
