// Public API of recblocks. Re-exports only; no logic here.
export { type Issue, type SourceLocation, RecblocksError } from "./errors/issue.js";
export { packageRoot } from "./paths.js";
