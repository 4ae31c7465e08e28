// Public API of src/export: embedding extraction (docs/export-and-windows.md).
export { exportEmbeddings, itemEmbeddingRows, sessionEmbeddingRows, loadSessionsForModel, writeEmbeddings, exportFiles, type EmbeddingRows, type ExportFormat, type ExportOptions, type ExportResult, type ExportWhat } from "./embeddings.js";
export { encodeNpy, decodeNpy, type NpyArray } from "./npy.js";
