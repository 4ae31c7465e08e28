import type { Issue } from "./issue.js";

/** Issues in reading order: those of `file` first, then by line and column; ties keep their order. */
export function sortIssues(issues: readonly Issue[], file?: string): Issue[] {
  return issues
    .map((i, n) => ({ i, n }))
    .sort((a, b) => {
      const fa = file === undefined || a.i.source?.file === file ? 0 : 1;
      const fb = file === undefined || b.i.source?.file === file ? 0 : 1;
      return fa - fb || (a.i.source?.line ?? 0) - (b.i.source?.line ?? 0) || (a.i.source?.column ?? 0) - (b.i.source?.column ?? 0) || a.n - b.n;
    })
    .map((x) => x.i);
}
