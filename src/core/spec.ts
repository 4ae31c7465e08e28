/** Shapes and dtypes of what flows between blocks, known before any tensor exists. */
export type DType = "float32" | "int32" | "bool";

/** One tensor's spec; `null` marks a dimension unknown until run time (the batch size). */
export interface TensorSpec {
  shape: (number | null)[];
  dtype: DType;
}

/** A block port: one tensor, or a record of named tensors (tabular features). */
export type PortSpec = TensorSpec | { [name: string]: TensorSpec };

export function isTensorSpec(p: PortSpec | undefined): p is TensorSpec {
  return p !== undefined && Array.isArray((p as TensorSpec).shape) && typeof (p as TensorSpec).dtype === "string";
}

export function tensorSpec(shape: (number | null)[], dtype: DType = "float32"): TensorSpec {
  return { shape: [...shape], dtype };
}

/** "float32[?, 20, 64]" or "{item_id: int32[?, 20], ...}". */
export function formatSpec(p: PortSpec): string {
  if (isTensorSpec(p)) return `${p.dtype}[${p.shape.map((d) => (d === null ? "?" : String(d))).join(", ")}]`;
  return `{${Object.keys(p)
    .sort()
    .map((k) => `${k}: ${formatSpec(p[k]!)}`)
    .join(", ")}}`;
}

/** True when a concrete shape matches a spec (null dims match anything). */
export function shapeMatches(spec: TensorSpec, shape: readonly number[]): boolean {
  return spec.shape.length === shape.length && spec.shape.every((d, i) => d === null || d === shape[i]);
}
