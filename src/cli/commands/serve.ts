import { type CommandSpec, type ParsedArgs, UsageError } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "serve",
  summary: "Serve a saved model over HTTP: POST /recommend (and /recommend/batch) with business-rule filters, GET /health and /model, hot reload.",
  usage: "recblocks serve <modelDir> [--port 8080] [--host 127.0.0.1] [--item-data file] [--body-limit bytes] [--max-k 1000] [--max-batch 1000] [--admin-token t] [--quiet]",
  options: [
    { name: "port", alias: "p", kind: "number", description: "TCP port (0 = any free port)", default: 8080 },
    { name: "host", kind: "string", description: "address to listen on (0.0.0.0 = every interface)", default: "127.0.0.1" },
    { name: "item-data", kind: "string", description: "item metadata (CSV/TSV with a header, or JSONL) for attribute rules in filters.rules; read again at every reload" },
    { name: "body-limit", kind: "number", description: "largest request body in bytes; larger ones get 413", default: 1048576 },
    { name: "max-k", kind: "number", description: "largest k a request may ask for (at most 1000)", default: 1000 },
    { name: "max-batch", kind: "number", description: "most requests in one POST /recommend/batch (at most 1000)", default: 1000 },
    { name: "admin-token", kind: "string", description: "require 'authorization: Bearer <token>' on POST /admin/reload (default: the RECBLOCKS_ADMIN_TOKEN environment variable, else no token)" },
    { name: "no-reload-endpoint", kind: "boolean", description: "no POST /admin/reload (SIGHUP still reloads)" },
    { name: "backend", kind: "string", description: "engine backend: auto (default), tensorflow, wasm, cpu" },
    { name: "threads", kind: "number", description: "engine threads" },
    { name: "shutdown-timeout", kind: "number", description: "seconds to let in-flight requests finish on SIGTERM/SIGINT before exiting anyway", default: 10 },
    { name: "quiet", alias: "q", kind: "boolean", description: "no request log lines on stderr" },
  ],
  positionals: { min: 1, max: 1 },
};

const positiveInt = (o: ParsedArgs["options"], name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return v;
};

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  let port: number | undefined;
  let bodyLimit: number | undefined;
  let maxK: number | undefined;
  let maxBatch: number | undefined;
  let threads: number | undefined;
  try {
    port = positiveInt(o, "port", 0, 65535);
    bodyLimit = positiveInt(o, "body-limit", 1);
    maxK = positiveInt(o, "max-k", 1, 1000);
    maxBatch = positiveInt(o, "max-batch", 1, 1000);
    threads = positiveInt(o, "threads", 1, 1024);
    const b = o.backend;
    if (b !== undefined && !["auto", "tensorflow", "wasm", "cpu"].includes(b as string)) throw new UsageError(`--backend must be auto, tensorflow, wasm or cpu, got "${String(b)}"`);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`recblocks serve: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const quiet = o.quiet === true;
  const log = (line: string) => void process.stderr.write(line + "\n");
  return reportErrors(false, async () => {
    const { startServer } = await import("../../serve/server.js");
    const adminToken = (o["admin-token"] as string | undefined) ?? process.env.RECBLOCKS_ADMIN_TOKEN;
    const server = await startServer({
      modelDir: args.positionals[0]!,
      port: port ?? 8080,
      host: (o.host as string | undefined) ?? "127.0.0.1",
      ...(o["item-data"] ? { itemData: o["item-data"] as string } : {}),
      ...(bodyLimit !== undefined ? { bodyLimit } : {}),
      ...(maxK !== undefined ? { maxK } : {}),
      ...(maxBatch !== undefined ? { maxBatch } : {}),
      ...(o.backend ? { backend: o.backend as "auto" } : {}),
      ...(threads ? { threads } : {}),
      ...(adminToken ? { adminToken } : {}),
      reloadEndpoint: o["no-reload-endpoint"] !== true,
      quiet,
      log,
    });
    const m = server.current();
    log(`recblocks serve: ${m.name} (${m.kind} model, version ${m.version}) from ${m.dir}`);
    log(`recblocks serve: listening on ${server.url} (POST /recommend, POST /recommend/batch, GET /health, GET /model${o["no-reload-endpoint"] === true ? "" : ", POST /admin/reload"}); SIGHUP reloads, SIGTERM/SIGINT stop`);
    const shutdownS = (o["shutdown-timeout"] as number | undefined) ?? 10;
    return await new Promise<number>((resolveExit) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          log(`recblocks serve: ${signal} again: exiting now`);
          process.exit(1);
        }
        stopping = true;
        log(`recblocks serve: ${signal}: no new connections; finishing the requests in flight`);
        const force = setTimeout(() => {
          log(`recblocks serve: requests still in flight after ${shutdownS} s; exiting anyway`);
          process.exit(1);
        }, shutdownS * 1000);
        force.unref();
        server.close().then(
          () => {
            clearTimeout(force);
            process.off("SIGHUP", hup);
            log("recblocks serve: stopped");
            // anything the engine keeps alive must not hold the process
            setTimeout(() => process.exit(0), 1000).unref();
            resolveExit(0);
          },
          (err: unknown) => {
            log(`recblocks serve: shutdown failed: ${(err as Error).message}`);
            resolveExit(1);
          },
        );
      };
      const hup = () => {
        log("recblocks serve: SIGHUP: reloading the model directory");
        server.reload().then(
          (r) => log(`recblocks serve: reloaded ${r.dir}: ${r.model} version ${r.version} (was ${r.previous.version})`),
          (err: unknown) => log(`recblocks serve: reload failed; still serving ${server.current().name} version ${server.current().version}: ${(err as Error).message}${err && typeof err === "object" && "issues" in err ? ` ${JSON.stringify((err as { issues: unknown }).issues)}` : ""}`),
        );
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGHUP", hup);
    });
  });
}
