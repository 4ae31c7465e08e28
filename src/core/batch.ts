/**
 * A padded batch as src/data makes it (docs/design/contracts.md "SequenceBatch"), row-major
 * [batchSize, seqLen], 0 = padding. Declared structurally here so that blocks depend on the core only.
 */
export interface SequenceBatchLike {
  batchSize: number;
  seqLen: number;
  itemIds: Int32Array;
  categorical: Record<string, Int32Array>;
  continuous: Record<string, Float32Array>;
  context: Record<string, Int32Array | Float32Array>;
  /** [B] next item per row (prefix examples); absent for full sequences. */
  targets?: Int32Array;
  lengths: Int32Array;
}
