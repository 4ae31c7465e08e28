/**
 * Compressed sparse rows for user-item interactions: row r's entries are
 * indices[indptr[r] .. indptr[r+1]) with their values in the same range of `values`.
 * Column indices inside a row are sorted ascending and unique.
 */
export interface Csr {
  rows: number;
  cols: number;
  indptr: Int32Array; // [rows + 1]
  indices: Int32Array; // [nnz]
  values: Float32Array; // [nnz]
}

/**
 * Builds a CSR matrix from (row, col, value) triplets. Repeated pairs are merged:
 * "sum" adds their values, "last" keeps the last one seen, "one" stores 1.
 */
export function csrFromTriplets(
  rows: number,
  cols: number,
  r: ArrayLike<number>,
  c: ArrayLike<number>,
  v: ArrayLike<number> | null,
  merge: "sum" | "last" | "one" = "sum",
): Csr {
  const n = r.length;
  const counts = new Int32Array(rows + 1);
  for (let k = 0; k < n; k++) counts[r[k]! + 1]!++;
  for (let i = 0; i < rows; i++) counts[i + 1]! += counts[i]!;
  const tmpCol = new Int32Array(n);
  const tmpVal = new Float64Array(n);
  const fill = counts.slice(0, rows);
  for (let k = 0; k < n; k++) {
    const row = r[k]!;
    const at = fill[row]!++;
    tmpCol[at] = c[k]!;
    tmpVal[at] = v === null ? 1 : v[k]!;
  }
  // sort each row by column (stable, so "last" keeps file order), then merge duplicates
  const indptr = new Int32Array(rows + 1);
  const outCol = new Int32Array(n);
  const outVal = new Float32Array(n);
  let nnz = 0;
  const order: number[] = [];
  for (let row = 0; row < rows; row++) {
    const s = counts[row]!;
    const e = counts[row + 1]!;
    order.length = 0;
    for (let k = s; k < e; k++) order.push(k);
    order.sort((a, b) => tmpCol[a]! - tmpCol[b]! || a - b);
    let prev = -1;
    for (const k of order) {
      const col = tmpCol[k]!;
      const val = merge === "one" ? 1 : tmpVal[k]!;
      if (col === prev) {
        if (merge === "sum") outVal[nnz - 1]! += val;
        else outVal[nnz - 1] = val;
      } else {
        outCol[nnz] = col;
        outVal[nnz] = val;
        nnz++;
        prev = col;
      }
    }
    indptr[row + 1] = nnz;
  }
  return { rows, cols, indptr, indices: outCol.slice(0, nnz), values: outVal.slice(0, nnz) };
}

/** The transpose (items x users from users x items), rows sorted. */
export function csrTranspose(m: Csr): Csr {
  const nnz = m.indices.length;
  const indptr = new Int32Array(m.cols + 1);
  for (let k = 0; k < nnz; k++) indptr[m.indices[k]! + 1]!++;
  for (let i = 0; i < m.cols; i++) indptr[i + 1]! += indptr[i]!;
  const fill = indptr.slice(0, m.cols);
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  for (let row = 0; row < m.rows; row++) {
    for (let k = m.indptr[row]!; k < m.indptr[row + 1]!; k++) {
      const col = m.indices[k]!;
      const at = fill[col]!++;
      indices[at] = row;
      values[at] = m.values[k]!;
    }
  }
  return { rows: m.cols, cols: m.rows, indptr, indices, values };
}

/** A copy of `m` with some rows replaced (and rows appended when a row index >= m.rows). */
export function csrReplaceRows(
  m: Csr,
  replace: Map<number, { indices: Int32Array; values: Float32Array }>,
  rows: number,
  cols: number,
): Csr {
  let nnz = 0;
  for (let row = 0; row < rows; row++) {
    const rep = replace.get(row);
    nnz += rep ? rep.indices.length : row < m.rows ? m.indptr[row + 1]! - m.indptr[row]! : 0;
  }
  const indptr = new Int32Array(rows + 1);
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  let at = 0;
  for (let row = 0; row < rows; row++) {
    const rep = replace.get(row);
    if (rep) {
      indices.set(rep.indices, at);
      values.set(rep.values, at);
      at += rep.indices.length;
    } else if (row < m.rows) {
      const s = m.indptr[row]!;
      const e = m.indptr[row + 1]!;
      indices.set(m.indices.subarray(s, e), at);
      values.set(m.values.subarray(s, e), at);
      at += e - s;
    }
    indptr[row + 1] = at;
  }
  return { rows, cols, indptr, indices, values };
}

export function csrNnz(m: Csr): number {
  return m.indptr[m.rows]!;
}
