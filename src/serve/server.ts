/**
 * `recblocks serve`: a model directory behind HTTP (fastify).
 *
 *   POST /recommend         one request (schemas/serve/recommend-request.schema.json)
 *   POST /recommend/batch   up to --max-batch requests at once (recommend-batch-request.schema.json)
 *   GET  /health            liveness and the model's name and version
 *   GET  /model             the model: recipe, feature schema, metrics, vocabulary size, version, loadedAt
 *   POST /admin/reload      load a model directory and switch to it atomically (reload-request.schema.json)
 *
 * Every error answer is `{"issues": [{code, path, message, ...}]}` as for recipes; raw ids the model
 * does not know are skipped and reported in `unknownItems`. The model sits in a reference-counted slot
 * (./model-slot.ts): a reload switches at once, requests that started on the old model finish on it,
 * and the old model is disposed when the last of them is done. See docs/serving.md.
 */
import { resolve as resolvePath } from "node:path";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { RecblocksError } from "../errors/issue.js";
import type { RecommendBatchRequest } from "../generated/serve/recommend-batch-request.js";
import type { RecommendRequest } from "../generated/serve/recommend-request.js";
import type { ReloadRequest } from "../generated/serve/reload-request.js";
import { locateJsonError } from "./json-body.js";
import { ModelSlot } from "./model-slot.js";
import { MAX_REQUEST_ISSUES, validateRequest, type RequestIssue } from "./request-schemas.js";
import { openServedModel, type Answer, type OpenOptions, type ServedModel } from "./served-model.js";

export interface ServerOptions {
  /** The model directory to serve (next-item or ALS, as `recblocks train` wrote it). */
  modelDir: string;
  /** Default 8080; 0 = a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Item metadata for attribute rules (CSV/TSV/JSONL); read again at every reload. */
  itemData?: string;
  /** Largest request body in bytes (default 1 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** Largest k a request may ask for (default 1000, the schema's bound). */
  maxK?: number;
  /** Most requests in one POST /recommend/batch (default 1000, the schema's bound). */
  maxBatch?: number;
  /** No request log lines. */
  quiet?: boolean;
  /** Where log lines go (default: process.stderr). */
  log?: (line: string) => void;
  /** Engine backend (default auto: native TensorFlow when installed). */
  backend?: OpenOptions["backend"];
  threads?: number;
  /** When set, POST /admin/reload needs `authorization: Bearer <token>`. */
  adminToken?: string;
  /** false: no POST /admin/reload (SIGHUP / server.reload() still work). Default true. */
  reloadEndpoint?: boolean;
  /** Batch entries answered per step of POST /recommend/batch before other requests get a turn (default 64). */
  batchChunk?: number;
  /** Most concurrent POST /recommend requests answered by one forward pass (default 32; 1 = one at a time). */
  microBatch?: number;
}

export interface ReloadResult {
  model: string;
  version: string;
  kind: string;
  dir: string;
  loadedAt: string;
  generation: number;
  previous: { model: string; version: string; dir: string };
}

export interface RecblocksServer {
  /** The fastify app (routes registered; `inject` works before listening). */
  readonly app: FastifyInstance;
  /** The model answering new requests now. */
  current(): ServedModel;
  /** Loads `dir` (default: the current model's directory) and switches to it; a failure keeps the old model and throws. */
  reload(dir?: string): Promise<ReloadResult>;
  /** Stops accepting, lets in-flight requests finish, disposes the models. Idempotent. */
  close(): Promise<void>;
  /** Leases on models not yet given back (requests being answered), swapped-out models still in use, and how many
   *  model passes answered POST /recommend (fewer than its requests when concurrent ones were micro-batched). */
  stats(): { inFlight: number; retiredInUse: number; generation: number; requests: number; recommendPasses: number };
}

export interface ListeningServer extends RecblocksServer {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  readonly host: string;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
const SCHEMA_MAX_K = 1000;
const SCHEMA_MAX_BATCH = 1000;

type Body = Record<string, unknown>;

/** An HTTP answer with issues. */
class HttpIssues extends Error {
  constructor(readonly status: number, readonly issues: RequestIssue[]) {
    super(issues.map((i) => i.message).join("; "));
  }
}

const issue = (code: string, path: string, message: string, extra: Partial<RequestIssue> = {}): RequestIssue => ({ code, path, message, ...extra });

function jsonIssue(text: string, err: Error): RequestIssue {
  const hint = 'Send one JSON object, e.g. {"items": ["12", "7"], "k": 10}, with "content-type: application/json".';
  const p = locateJsonError(text);
  if (p) {
    return issue("json_syntax_error", "", `The request body is not valid JSON: at line ${p.line}, column ${p.column}, ${p.reason}.`, { hint, received: text.slice(Math.max(0, p.offset - 20), p.offset + 20) });
  }
  // JSON.parse may echo the whole body in its message: keep it short
  return issue("json_syntax_error", "", `The request body is not valid JSON: ${err.message.slice(0, 200)}`, { hint });
}

function toIssues(err: unknown): RequestIssue[] {
  if (err instanceof RecblocksError) return err.issues.map(({ source: _s, ...rest }) => rest);
  return [issue("internal_error", "", `The server failed on this request: ${(err as Error)?.message ?? String(err)}`)];
}

/** Builds the app and loads the model; does not listen. */
export async function createServer(opts: ServerOptions): Promise<RecblocksServer> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const maxK = Math.min(opts.maxK ?? SCHEMA_MAX_K, SCHEMA_MAX_K);
  const maxBatch = Math.min(opts.maxBatch ?? SCHEMA_MAX_BATCH, SCHEMA_MAX_BATCH);
  const chunk = Math.max(1, opts.batchChunk ?? 64);
  const microBatch = Math.max(1, opts.microBatch ?? 32);
  const log = opts.log ?? ((line: string) => void process.stderr.write(line + "\n"));
  const openOpts: OpenOptions = {
    ...(opts.itemData ? { itemData: opts.itemData } : {}),
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(opts.threads ? { threads: opts.threads } : {}),
  };
  const slot = new ModelSlot<ServedModel>(await openServedModel(opts.modelDir, openOpts), (err) => log(`recblocks serve: disposing a model failed: ${(err as Error).message}`));
  const startedAt = Date.now();
  let requests = 0;
  let passes = 0;
  let reloading: Promise<unknown> = Promise.resolve();
  let closing: Promise<void> | null = null;

  const app = Fastify({
    logger: false,
    bodyLimit,
    // answered by the onRequest hook below, in the issues form
    return503OnClosing: false,
    forceCloseConnections: "idle",
    // the default would let a request body or a slow client hold a connection forever
    requestTimeout: 60_000,
    // errors found before routing (a URL that does not decode, e.g. "/%E0%A4%A") skip the error handler:
    // without this they were answered in Fastify's own form, not with issues
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).code(status).send({ issues: [issue("bad_request", "", err.message)] });
    },
    // requests that are not valid HTTP (bad chunked encoding, headers too large, a request line that does not
    // parse) or not received in time never reach Fastify's routing: answer them with issues too (Fastify's
    // default handler answered {"error": "Bad Request", "message": "Client Error"})
    clientErrorHandler: (err, socket) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ECONNRESET" || socket.destroyed) return;
      const [status, text, message] =
        code === "ERR_HTTP_REQUEST_TIMEOUT" ? [408, "Request Timeout", "The request was not received in full in time (60 s)."]
        : code === "HPE_HEADER_OVERFLOW" ? [431, "Request Header Fields Too Large", "The request's headers are larger than the server accepts."]
        : [400, "Bad Request", "The request is not valid HTTP/1.1."];
      const body = JSON.stringify({ issues: [issue("bad_request", "", message)] });
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy(err);
    },
  });

  // an `expect` header other than 100-continue: Node answers 417 itself, with an empty body, unless asked
  app.server.on("checkExpectation", (req, res) => {
    const body = JSON.stringify({ issues: [issue("bad_request", "", `The server does not support the expectation ${JSON.stringify(String(req.headers.expect ?? ""))}.`, { expected: "100-continue or no expect header" })] });
    res.writeHead(417, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), connection: "close" }).end(body);
  });

  // JSON bodies only, parsed here so that a syntax error is an issue with line and column
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string", bodyLimit }, (_req, text, done) => {
    const s = text as string;
    if (s.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch (e) {
      done(new HttpIssues(400, [jsonIssue(s, e as Error)]), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError | HttpIssues, _req, reply) => {
    if (err instanceof HttpIssues) return reply.code(err.status).send({ issues: err.issues });
    const code = (err as FastifyError).code;
    if (code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.code(413).send({ issues: [issue("body_too_large", "", `The request body is larger than the limit of ${bodyLimit} bytes.`, { expected: `<= ${bodyLimit} bytes`, hint: "Send fewer sessions per batch, or start the server with a larger --body-limit." })] });
    }
    if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return reply.code(415).send({ issues: [issue("unsupported_media_type", "", `The request body must be JSON; got content-type "${String(_req.headers["content-type"] ?? "")}".`, { expected: "application/json", hint: "Send the header content-type: application/json (curl: -H 'content-type: application/json')." })] });
    }
    if (code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH") {
      return reply.code(400).send({ issues: [issue("invalid_content_length", "", "The request's content-length does not match its body.")] });
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      return reply.code(status).send({ issues: [issue("bad_request", "", err.message)] });
    }
    log(`recblocks serve: internal error on ${_req.method} ${_req.url}: ${err.stack ?? err.message}`);
    return reply.code(500).send({ issues: toIssues(err) });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({
      issues: [issue("not_found", "", `There is no ${req.method} ${req.url.split("?")[0]}.`, {
        expected: ["POST /recommend", "POST /recommend/batch", "GET /health", "GET /model", ...(opts.reloadEndpoint === false ? [] : ["POST /admin/reload"])],
      })],
    });
  });

  let shuttingDown = false;
  app.addHook("onRequest", (_req, reply, done) => {
    // a request that arrives on an open connection after close() began: refused, the client may retry elsewhere
    if (shuttingDown) {
      reply.code(503).header("connection", "close").header("retry-after", "1").send({ issues: [issue("shutting_down", "", "The server is shutting down; requests already being answered finish, new ones are refused.", { hint: "Retry in a moment (against the restarted or another instance)." })] });
      return;
    }
    done();
  });
  app.addHook("onSend", (_req, reply, payload, done) => {
    // while shutting down, answers close their connection so that close() does not wait for keep-alive timeouts
    if (shuttingDown) reply.header("connection", "close");
    done(null, payload);
  });

  if (!opts.quiet) {
    app.addHook("onResponse", (req, reply, done) => {
      log(`${new Date().toISOString()} ${req.method} ${req.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)}ms`);
      done();
    });
  }

  /** Schema and server bounds of one request; `at` prefixes paths (batch entries). */
  const boundIssues = (r: RecommendRequest, at: string): RequestIssue[] =>
    r.k !== undefined && r.k > maxK
      ? [issue("out_of_range", `${at}/k`, `k is ${r.k}; this server returns at most ${maxK} items per request.`, { received: r.k, expected: `<= ${maxK}`, hint: "Ask for fewer items (the server's --max-k)." })]
      : [];

  // Micro-batching: POST /recommend requests that arrive while the model is busy (their handlers run in
  // the same turn of the event loop) are answered together by one forward pass, on one model lease.
  interface Pending {
    req: RecommendRequest;
    resolve: (v: { answer: Answer; model: ServedModel }) => void;
    reject: (e: unknown) => void;
  }
  const queue: Pending[] = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    const batch = queue.splice(0, microBatch);
    if (queue.length) {
      flushScheduled = true;
      setImmediate(flush);
    }
    let lease: ReturnType<typeof slot.acquire>;
    try {
      lease = slot.acquire();
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    try {
      const m = lease.value;
      const ok: Pending[] = [];
      for (const p of batch) {
        try {
          const issues = m.check(p.req, "");
          if (issues.length) p.reject(new HttpIssues(400, issues));
          else ok.push(p);
        } catch (e) {
          p.reject(e);
        }
      }
      if (!ok.length) return;
      let answers: Answer[] | null = null;
      passes++;
      try {
        answers = m.recommend(ok.map((p) => p.req));
      } catch (e) {
        if (ok.length === 1) return ok[0]!.reject(e);
      }
      if (answers) {
        ok.forEach((p, i) => p.resolve({ answer: answers[i]!, model: m }));
        return;
      }
      // the batch failed: answer one by one so that only the request at fault fails
      for (const p of ok) {
        try {
          p.resolve({ answer: m.recommend([p.req])[0]!, model: m });
        } catch (e) {
          p.reject(e);
        }
      }
    } finally {
      lease.release();
    }
  };
  const submit = (req: RecommendRequest): Promise<{ answer: Answer; model: ServedModel }> =>
    new Promise((resolve, reject) => {
      queue.push({ req, resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });

  const answerOf = (m: ServedModel, a: { items: string[]; scores: number[]; unknownItems: string[] }) => ({ ...a, model: m.name, version: m.version });

  app.post("/recommend", async (req: FastifyRequest, reply: FastifyReply) => {
    requests++;
    const body = req.body as Body | undefined;
    if (body === undefined) throw new HttpIssues(400, [issue("empty_body", "", "POST /recommend needs a JSON body.", { hint: 'e.g. {"items": ["12", "7"], "k": 10}' })]);
    const issues = validateRequest("recommend-request", body);
    if (issues.length) throw new HttpIssues(400, issues);
    const r = body as RecommendRequest;
    const bounds = boundIssues(r, "");
    if (bounds.length) throw new HttpIssues(400, bounds);
    try {
      const { answer, model } = await submit(r);
      return reply.send(answerOf(model, answer));
    } catch (e) {
      if (e instanceof HttpIssues) throw e;
      if (e instanceof RecblocksError) throw new HttpIssues(400, toIssues(e));
      throw e;
    }
  });

  app.post("/recommend/batch", async (req: FastifyRequest, reply: FastifyReply) => {
    requests++;
    const body = req.body as Body | undefined;
    if (body === undefined) throw new HttpIssues(400, [issue("empty_body", "", "POST /recommend/batch needs a JSON body.", { hint: 'e.g. {"requests": [{"items": ["12"]}, {"items": ["7", "3"]}]}' })]);
    const issues = validateRequest("recommend-batch-request", body);
    if (issues.length) throw new HttpIssues(400, issues);
    const reqs = (body as unknown as RecommendBatchRequest).requests;
    if (reqs.length > maxBatch) {
      throw new HttpIssues(400, [issue("invalid_length", "/requests", `The batch holds ${reqs.length} requests; this server answers at most ${maxBatch} at once.`, { received: reqs.length, expected: `at most ${maxBatch} items`, hint: "Split the batch (the server's --max-batch)." })]);
    }
    const lease = slot.acquire();
    try {
      const m = lease.value;
      const more = reqs.flatMap((r, i) => [...boundIssues(r, `/requests/${i}`), ...m.check(r, `/requests/${i}`)]);
      // as many as the schema's (a batch of 1000 entries of 100 bad rules each made a 25 MB answer)
      if (more.length) throw new HttpIssues(400, more.slice(0, MAX_REQUEST_ISSUES));
      const results: ReturnType<ServedModel["recommend"]> = [];
      for (let a = 0; a < reqs.length; a += chunk) {
        // let other requests in between chunks; this batch keeps its model (the lease) whatever happens meanwhile
        if (a > 0) await new Promise((r) => setImmediate(r));
        results.push(...m.recommend(reqs.slice(a, a + chunk)));
      }
      return reply.send({ results, model: m.name, version: m.version });
    } catch (e) {
      if (e instanceof HttpIssues) throw e;
      if (e instanceof RecblocksError) throw new HttpIssues(400, toIssues(e));
      throw e;
    } finally {
      lease.release();
    }
  });

  app.get("/health", async () => {
    const m = slot.peek();
    return { status: "ok", model: m.name, version: m.version, kind: m.kind, loadedAt: m.loadedAt, uptimeS: Math.round((Date.now() - startedAt) / 100) / 10, generation: slot.generation, requests, recommendPasses: passes, inFlight: slot.leases };
  });

  app.get("/model", async () => ({ ...slot.peek().describe(), generation: slot.generation }));

  const reload = (dir?: string): Promise<ReloadResult> => {
    // one reload at a time, in the order asked
    const run = reloading.then(async (): Promise<ReloadResult> => {
      if (closing) throw new HttpIssues(503, [issue("shutting_down", "", "The server is shutting down.")]);
      const before = slot.peek();
      const target = dir === undefined ? before.dir : resolvePath(dir);
      const next = await openServedModel(target, openOpts);
      if (closing) {
        next.dispose();
        throw new HttpIssues(503, [issue("shutting_down", "", "The server is shutting down.")]);
      }
      slot.swap(next);
      return { model: next.name, version: next.version, kind: next.kind, dir: next.dir, loadedAt: next.loadedAt, generation: slot.generation, previous: { model: before.name, version: before.version, dir: before.dir } };
    });
    reloading = run.catch(() => undefined);
    return run;
  };

  if (opts.reloadEndpoint !== false) {
    app.post("/admin/reload", async (req: FastifyRequest, reply: FastifyReply) => {
      if (opts.adminToken !== undefined && req.headers.authorization !== `Bearer ${opts.adminToken}`) {
        throw new HttpIssues(401, [issue("unauthorized", "", "POST /admin/reload needs the admin token.", { hint: "Send the header authorization: Bearer <token> (the server's --admin-token)." })]);
      }
      const body = (req.body ?? {}) as Body;
      const issues = validateRequest("reload-request", body);
      if (issues.length) throw new HttpIssues(400, issues);
      const dir = (body as ReloadRequest).dir;
      try {
        const r = await reload(dir);
        log(`recblocks serve: reloaded ${r.dir}: ${r.model} version ${r.version} (was ${r.previous.version})`);
        return reply.send(r);
      } catch (e) {
        if (e instanceof HttpIssues) throw e;
        log(`recblocks serve: reload of ${dir ?? "the current directory"} failed; still serving ${slot.peek().name} version ${slot.peek().version}: ${(e as Error).message}`);
        // a bad directory is the caller's doing (400); anything else is ours (500)
        if (e instanceof RecblocksError) {
          // issues of the model directory point at /dir; others (e.g. the --item-data file) keep their own place
          const target = resolvePath(dir ?? slot.peek().dir);
          const aboutDir = resolvePath(e.subject) === target;
          throw new HttpIssues(400, e.issues.map(({ source: _s, ...rest }) => ({ ...rest, path: rest.path === "" && aboutDir ? "/dir" : rest.path })));
        }
        throw new HttpIssues(500, [issue("reload_failed", "/dir", `Loading the model failed: ${(e as Error).message}. The previous model is still served.`)]);
      }
    });
  }

  return {
    app,
    current: () => slot.peek(),
    reload,
    stats: () => ({ inFlight: slot.leases, retiredInUse: slot.retiredInUse, generation: slot.generation, requests, recommendPasses: passes }),
    close: () => {
      closing ??= (async () => {
        shuttingDown = true;
        // connections that finish a request while we close must not linger as keep-alive
        const sweep = setInterval(() => app.server.closeIdleConnections?.(), 50);
        try {
          await app.close();
        } finally {
          clearInterval(sweep);
        }
        await reloading;
        await slot.close();
      })();
      return closing;
    },
  };
}

/** Builds the app, loads the model and listens; `port: 0` picks a free port. */
export async function startServer(opts: ServerOptions): Promise<ListeningServer> {
  const s = await createServer(opts);
  const host = opts.host ?? "127.0.0.1";
  try {
    await s.app.listen({ port: opts.port ?? 8080, host });
  } catch (e) {
    await s.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE" || err.code === "EACCES" || err.code === "EADDRNOTAVAIL") {
      throw new RecblocksError("serve", [issue("listen_failed", "/port", `Cannot listen on ${host}:${opts.port ?? 8080}: ${err.message}`, { hint: err.code === "EADDRINUSE" ? "Another process uses this port: pick another with --port (0 = any free port)." : undefined })], { kind: "ServeError" });
    }
    throw e;
  }
  const addr = s.app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : (opts.port ?? 8080);
  const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return { ...s, url: `http://${shownHost}:${port}`, port, host };
}
