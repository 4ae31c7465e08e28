/**
 * The browser example end to end: a small trained model directory, the esbuild bundle
 * (scripts/build-browser.mjs), examples/browser served by its own tiny node:http server, and the
 * page driven in headless Chromium (playwright-core). The page's answers must be the Node answers
 * (NextItemRecommender on the same directory): the same items, scores within 1e-4.
 *
 * The browser-driven tests skip when /usr/bin/chromium (or $RECBLOCKS_CHROMIUM) is absent; the
 * entry is then still checked in Node, over HTTP with fetch. RECBLOCKS_KEEP_TMP=1 keeps the
 * temporary folder (with browser.png, the screenshot).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { NextItemRecommender, type NextItemAnswer } from "../../src/recommend/next-item.js";
import { startServer, type StartedServer } from "../../examples/browser/serve.mjs";
import { trainSmallModelDir } from "../helpers/small-model.js";

const CHROMIUM = process.env.RECBLOCKS_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/browser: the headless-Chromium tests are skipped: ${CHROMIUM} is absent (install Debian's chromium to run them)`);

const ROOT = resolve(import.meta.dirname, "..", "..");

let tmp: string;
let modelDir: string;
let server: StartedServer;
let browser: Browser;
let node: NextItemRecommender;
const pageErrors: string[] = [];

interface PageAnswer {
  items: string[];
  scores: number[];
  unknown: string;
}

/** Types a session into the page, submits, and reads the rendered rows (full-precision scores from data-score). */
async function ask(page: Page, session: string, k: number, excludeSeen: boolean): Promise<PageAnswer> {
  const before = Number((await page.getAttribute("body", "data-answered")) ?? 0);
  await page.fill("#session", session);
  await page.fill("#k", String(k));
  await page.setChecked("#exclude-seen", excludeSeen);
  await page.click("#recommend");
  await page.waitForFunction((n) => Number(document.body.dataset.answered ?? 0) > n || document.getElementById("status")!.className === "error", before);
  const status = await page.$eval("#status", (e) => (e.className === "error" ? e.textContent : null));
  expect(status, "the page says").toBeNull();
  return page.evaluate(() => {
    const rows = Array.from(document.querySelectorAll<HTMLTableRowElement>("#results tr"));
    const unk = document.getElementById("unknown")!;
    return { items: rows.map((r) => r.dataset.item!), scores: rows.map((r) => Number(r.dataset.score)), unknown: unk.hidden ? "" : unk.textContent ?? "" };
  });
}

function expectSame(page: PageAnswer, ref: NextItemAnswer): void {
  expect(ref.items.length).toBeGreaterThan(0);
  expect(page.items).toEqual(ref.items);
  expect(page.scores).toHaveLength(ref.scores.length);
  for (let i = 0; i < ref.scores.length; i++) expect(Math.abs(page.scores[i]! - ref.scores[i]!), `score of ${ref.items[i]}`).toBeLessThan(1e-4);
}

async function openPage(query = ""): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) pageErrors.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await page.goto(server.url + query);
  await page.waitForFunction(() => document.body.dataset.ready === "1" || document.body.dataset.error === "1", undefined, { timeout: 30_000 });
  const status = await page.textContent("#status");
  expect(await page.getAttribute("body", "data-error"), `page failed: ${status}\n${pageErrors.join("\n")}`).toBeNull();
  return page;
}

describe("browser: the example page answers as Node does", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
    tmp = mkdtempSync(join(tmpdir(), "recblocks-browser-"));
    const [run] = await Promise.all([
      // a small GPT-2 next-item model: one epoch on 200 synthetic sessions of 50 items (a few seconds)
      trainSmallModelDir(tmp, { name: "tiny-gpt2-browser", metrics: ["recall"], ks: [5] }),
      // the bundle goes to the temporary folder (mounted at /dist/), not into the working tree
      Promise.resolve().then(() => execFileSync(process.execPath, [join(ROOT, "scripts", "build-browser.mjs"), "--outdir", join(tmp, "dist"), "--quiet"], { stdio: "pipe" })),
    ]);
    modelDir = run.modelDir;
    node = NextItemRecommender.open(modelDir);
    server = await startServer({ root: join(ROOT, "examples", "browser"), mounts: { "/model/": modelDir, "/dist/": join(tmp, "dist") } });
    if (haveChromium) browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    node?.dispose();
    if (tmp) {
      if (process.env.RECBLOCKS_KEEP_TMP) console.log(`test/browser: kept ${tmp} (screenshot: ${join(tmp, "browser.png")})`);
      else rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("the browser entry also runs in Node: loadModel over HTTP (fetch) gives the NextItemRecommender answer", async () => {
    const { loadModel } = await import("../../src/browser/index.js");
    const rec = await loadModel(server.url + "model", { backend: "cpu" });
    try {
      expect(rec.backend.backend).toBe("cpu");
      expect(rec.url).toBe(server.url + "model/");
      expect(rec.itemColumn).toBe("item_id");
      expect(rec.maxSequenceLength).toBe(8);
      expect(rec.parameters).toBe(node.contents.model.countParams());
      const session = ["5", "9", "unknown-id", "21"];
      for (const o of [{ k: 10, excludeSeen: false }, { k: 5, excludeSeen: true }, { k: 8, filters: { deny: ["1", "2", "3"] } }]) {
        // the same code (cpu, in one process): the same answer exactly
        expect(rec.recommend({ items: session, ...o })).toEqual(node.recommend({ items: session, ...o }));
      }
      const before = tf.memory().numTensors;
      rec.recommendBatch([session, ["7"]], { k: 3 });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      rec.dispose();
    }
    await expect(loadModel(server.url + "nothing-here/", { backend: "cpu" })).rejects.toMatchObject({ issues: [{ code: "invalid_model_dir" }] });
  });

  it("the bundle and the wasm binaries are built", () => {
    for (const f of ["recblocks.js", "tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"]) expect(existsSync(join(tmp, "dist", f)), f).toBe(true);
  });

  it.skipIf(!haveChromium)("loads the model on wasm and gives the Node answer (items equal, scores within 1e-4)", async () => {
    const page = await openPage();
    expect(await page.textContent("#backend")).toMatch(/^wasm/);
    expect(await page.textContent("#model-name")).toBe("tiny-gpt2-browser");
    const popular = await page.evaluate(() => (window as unknown as { recommender: { popularItems(n: number): string[] } }).recommender.popularItems(5));
    expect(popular).toHaveLength(5);

    // a session of known items plus one the model does not know
    const session = [popular[0]!, popular[3]!, "no-such-item", popular[1]!];
    const typed = session.join(", ");
    const a = await ask(page, typed, 10, false);
    expectSame(a, node.recommend({ items: session, k: 10, excludeSeen: false }));
    expect(a.unknown).toContain("no-such-item");

    const b = await ask(page, typed, 7, true);
    const refB = node.recommend({ items: session, k: 7, excludeSeen: true });
    expectSame(b, refB);
    for (const item of session) expect(b.items).not.toContain(item);

    // a longer session than the model's maxSequenceLength (8): both keep the last 8 items
    const long = Array.from({ length: 12 }, (_, i) => String(((i * 7) % 50) + 1));
    expectSame(await ask(page, long.join(","), 20, true), node.recommend({ items: long, k: 20, excludeSeen: true }));

    // a session of unknown items only: no answer, as in Node
    const none = await ask(page, "nope, nada", 5, false);
    expect(none.items).toEqual([]);
    expect(node.recommend({ items: ["nope", "nada"], k: 5 }).items).toEqual([]);

    // answering leaves no tensor behind in the page
    // (a string: vitest would rewrite an import() inside a function)
    const leaked = await page.evaluate(`(async () => {
      const { tf } = await import("./dist/recblocks.js");
      const items = ${JSON.stringify(session)};
      window.recommender.recommend({ items, k: 10 });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) window.recommender.recommend({ items, k: 10, excludeSeen: true });
      return tf.memory().numTensors - before;
    })()`);
    expect(leaked).toBe(0);

    // the screenshot shows an answer
    await ask(page, typed, 10, true);
    await page.screenshot({ path: join(tmp, "browser.png"), fullPage: true });
    expect(existsSync(join(tmp, "browser.png"))).toBe(true);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 60_000);

  it.skipIf(!haveChromium)("the cpu backend (the fallback) gives the same answer", async () => {
    const page = await openPage("?backend=cpu");
    expect(await page.textContent("#backend")).toMatch(/^cpu/);
    const session = ["3", "17", "5", "42"];
    expectSame(await ask(page, session.join(","), 10, true), node.recommend({ items: session, k: 10, excludeSeen: true }));
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 60_000);

  it.skipIf(!haveChromium)("falls back to cpu when the wasm binaries cannot be fetched", async () => {
    const bare = join(tmp, "dist-no-wasm");
    mkdirSync(bare);
    copyFileSync(join(tmp, "dist", "recblocks.js"), join(bare, "recblocks.js"));
    const s2 = await startServer({ root: join(ROOT, "examples", "browser"), mounts: { "/model/": modelDir, "/dist/": bare } });
    try {
      const page = await browser.newPage();
      await page.goto(s2.url);
      await page.waitForFunction(() => document.body.dataset.ready === "1" || document.body.dataset.error === "1", undefined, { timeout: 30_000 });
      expect(await page.textContent("#backend")).toMatch(/^cpu — wasm unavailable/);
      const session = ["8", "1", "30"];
      expectSame(await ask(page, session.join(","), 5, false), node.recommend({ items: session, k: 5 }));
      await page.close();
    } finally {
      await s2.close();
    }
  }, 60_000);

  it.skipIf(!haveChromium)("says clearly when the model directory is not there", async () => {
    const page = await browser.newPage();
    await page.goto(server.url + "?model=./no-model/");
    await page.waitForFunction(() => document.body.dataset.error === "1", undefined, { timeout: 30_000 });
    expect(await page.textContent("#status")).toMatch(/model\.json is missing from the model directory .*no-model\/ \(HTTP 404\)/);
    await page.close();
  }, 60_000);
});
