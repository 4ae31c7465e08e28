/**
 * The training report in a real browser: a tiny recipe trained for 3 epochs writes report.html
 * (the hook in trainRecipe); Chromium (Debian's /usr/bin/chromium, driven by playwright-core) opens
 * it offline, the charts must have drawn (non-empty boxes, one point per epoch per series), and a
 * screenshot report.png is saved into the run directory. Skipped only when /usr/bin/chromium is
 * absent. RECBLOCKS_KEEP_REPORT=1 keeps the run directory (its path is printed) to look at the page.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TrainRunResult } from "../../src/run/train.js";
import { trainSmallModelDir } from "../helpers/small-model.js";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`report-browser.test: skipped, ${CHROMIUM} does not exist (install Debian's chromium: apt-get install chromium).`);

const EPOCHS = 3;

describe.skipIf(!haveChromium)("report.html in Chromium", () => {
  let tmp: string;
  let run: TrainRunResult;
  beforeAll(async () => {
    await tf.setBackend("cpu");
    tmp = mkdtempSync(join(tmpdir(), "recblocks-report-browser-"));
    run = await trainSmallModelDir(tmp, {
      name: "tiny-report",
      description: "A <tiny> GPT-2 & friends, for the report's browser test",
      sessions: 120,
      items: 40,
      dataSeed: 3,
      validFraction: 0.15,
      testFraction: 0.15,
      epochs: EPOCHS,
      ks: [5, 10],
    });
  }, 180_000);
  afterAll(() => {
    if (process.env.RECBLOCKS_KEEP_REPORT) console.log(`report-browser.test: run directory kept at ${join(tmp, "run")}`);
    else if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("training wrote report.html next to metrics.jsonl", () => {
    const html = readFileSync(join(run.runDir, "report.html"), "utf8");
    expect(html.startsWith("<!doctype html>")).toBe(true);
    // offline: no script, no external resource
    expect(html).not.toMatch(/<script|<link|\b(src|href)=["']?(https?:)?\/\//i);
    // the recipe's description is escaped
    expect(html).toContain("A &lt;tiny&gt; GPT-2 &amp; friends");
    expect(html).not.toContain("<tiny>");
  });

  it("draws the charts: boxes, one polyline point per epoch per series, legend; screenshot", async () => {
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const external: string[] = [];
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file:")) return route.continue();
        external.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(join(run.runDir, "report.html")).href);
      expect(external).toEqual([]);
      expect(await page.title()).toBe("recblocks report: tiny-report");

      const charts = await page.$$eval("svg.chart", (svgs) => svgs.map((s) => {
        const r = s.getBoundingClientRect();
        return {
          id: s.id,
          width: r.width,
          height: r.height,
          series: Array.from(s.querySelectorAll("g.series")).map((g) => {
            const pl = g.querySelector("polyline")!;
            const b = pl.getBBox();
            return { name: g.getAttribute("data-series"), points: pl.points.numberOfItems, circles: g.querySelectorAll("circle").length, bw: b.width, bh: b.height };
          }),
          legend: Array.from(s.querySelectorAll("g.legend text title")).map((t) => t.textContent),
          yTicks: s.querySelectorAll("g.y-axis text").length,
          xTicks: s.querySelectorAll("g.x-axis text").length,
        };
      }));
      expect(charts.map((c) => c.id)).toEqual(["chart-loss", "chart-valid", "chart-time"]);
      for (const c of charts) {
        expect(c.width).toBeGreaterThan(100);
        expect(c.height).toBeGreaterThan(100);
        expect(c.yTicks).toBeGreaterThanOrEqual(3);
        expect(c.xTicks).toBeGreaterThanOrEqual(EPOCHS);
        expect(c.legend).toEqual(c.series.map((s) => s.name));
        for (const s of c.series) {
          expect(s.points, `${c.id} ${s.name}`).toBe(EPOCHS);
          expect(s.circles).toBe(EPOCHS);
          expect(s.bw).toBeGreaterThan(0); // the line spans the epochs
        }
      }
      expect(charts[0]!.series.map((s) => s.name)).toEqual(["train loss", "valid loss"]);
      expect(charts[1]!.series.map((s) => s.name)).toEqual(["ndcg@5", "ndcg@10", "recall@5", "recall@10"]);

      // the polyline's first point sits where the chart maps epoch 1 / the first loss
      const firstX = await page.$eval("#chart-loss g.series polyline", (p) => (p as SVGPolylineElement).points.getItem(0).x);
      expect(firstX).toBe(64); // CHART.left: epoch 1 is the left edge of the plot

      // final metrics table: the model next to the most-popular baseline
      const rows = await page.$$eval("#test + p + table tbody tr", (trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent)));
      expect(rows.map((r) => r[0])).toEqual(["ndcg@5", "ndcg@10", "recall@5", "recall@10"]);
      expect(Number(rows[0]![1])).toBeCloseTo(run.metrics["ndcg@5"]!, 4);
      expect(Number(rows[0]![2])).toBeCloseTo(run.baseline["ndcg@5"]!, 4);

      const png = join(run.runDir, "report.png");
      await page.screenshot({ path: png, fullPage: true });
      expect(statSync(png).size).toBeGreaterThan(10_000);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
