/** Types of serve.mjs (for test/browser/browser.test.ts). */
export interface StartedServer {
  port: number;
  /** "http://host:port/" */
  url: string;
  close(): Promise<void>;
}
export function startServer(opts?: { root?: string; mounts?: Record<string, string>; host?: string; port?: number; log?: boolean; isolate?: boolean }): Promise<StartedServer>;
