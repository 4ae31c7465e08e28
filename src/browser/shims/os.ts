/** `node:os` in the browser bundle: the little recblocks asks of it. */
export function availableParallelism(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}
export function platform(): string {
  return "browser";
}
export function tmpdir(): string {
  return "/tmp";
}
export const EOL = "\n";
