/**
 * Line charts as inline SVG, drawn by hand so that a report works offline with no library: axes,
 * "nice" ticks, axis labels, a legend, one polyline per series and a circle per point (with a
 * <title> tooltip). Pure functions of their input; coordinates are rounded to 0.01 px.
 */
import { escapeHtml } from "./escape.js";

export interface ChartSeries {
  name: string;
  /** [x, y] pairs; non-finite y values are left out of the line. */
  points: [number, number][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** Optional id attribute of the <svg> (tests and styles). */
  id?: string;
}

/** Layout of every chart (px). The plot area is [LEFT, LEFT+PLOT_W] x [TOP, TOP+PLOT_H]. */
export const CHART = { width: 520, height: 300, left: 64, top: 36, plotW: 300, plotH: 200 } as const;

/** Line colours (Okabe-Ito, readable for colour-blind people), in series order. */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];

/** A "nice" step (1, 2, 2.5 or 5 times a power of ten) close to range / (count - 1). */
export function niceStep(range: number, count = 5): number {
  const raw = range / Math.max(1, count - 1);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  const nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nf * p;
}

/**
 * The axis domain and ticks for values in [min, max]: the domain is widened to multiples of a nice
 * step. Equal min and max are padded by 1 (or 10% of the value) on each side.
 */
export function niceDomain(min: number, max: number, count = 5): { lo: number; hi: number; ticks: number[] } {
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const step = niceStep(max - min, count);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) ticks.push(round(lo + i * step, 12));
  return { lo: round(lo, 12), hi: round(hi, 12), ticks };
}

/** Integer ticks for an epoch axis [lo, hi], at most ~10 of them. */
export function integerTicks(lo: number, hi: number): number[] {
  const span = hi - lo;
  const step = Math.max(1, Math.ceil(span / 10));
  const out: number[] = [];
  for (let v = lo; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}

function round(v: number, digits = 2): number {
  const f = Math.pow(10, digits);
  return Math.round(v * f) / f;
}

/** A tick label: short, without float noise ("0.25", "1.2k", "3e-5"). */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

/** The x/y scales of a chart of these series (exposed for tests). */
export function chartScales(series: ChartSeries[]): { x: (v: number) => number; y: (v: number) => number; xTicks: number[]; yTicks: number[]; xDomain: [number, number]; yDomain: [number, number] } | undefined {
  const pts = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  if (!pts.length) return undefined;
  let x0 = Math.min(...pts.map((p) => p[0]));
  let x1 = Math.max(...pts.map((p) => p[0]));
  const integral = pts.every((p) => Number.isInteger(p[0]));
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  const yd = niceDomain(Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1])));
  const xTicks = integral ? integerTicks(x0, x1) : niceDomain(x0, x1).ticks.filter((t) => t >= x0 && t <= x1);
  const { left, top, plotW, plotH } = CHART;
  return {
    x: (v) => round(left + ((v - x0) / (x1 - x0)) * plotW),
    y: (v) => round(top + plotH - ((v - yd.lo) / (yd.hi - yd.lo)) * plotH),
    xTicks,
    yTicks: yd.ticks,
    xDomain: [x0, x1],
    yDomain: [yd.lo, yd.hi],
  };
}

/** One line chart as an <svg> element (a string). A chart without any finite point says so in place. */
export function lineChart(o: ChartOptions): string {
  const { width, height, left, top, plotW, plotH } = CHART;
  const title = escapeHtml(o.title);
  const idAttr = o.id ? ` id="${escapeHtml(o.id)}"` : "";
  const sc = chartScales(o.series);
  const head = `<svg class="chart"${idAttr} xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${title}">` +
    `<title>${title}</title><text class="chart-title" x="${left}" y="20">${title}</text>`;
  if (!sc) {
    return `${head}<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#ccc"/>` +
      `<text class="empty" x="${left + plotW / 2}" y="${top + plotH / 2}" text-anchor="middle">no data recorded</text></svg>`;
  }
  const parts: string[] = [head];
  const bottom = top + plotH;
  // grid + y ticks
  parts.push(`<g class="axis y-axis">`);
  for (const t of sc.yTicks) {
    const y = sc.y(t);
    parts.push(`<line class="grid" x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}"/><line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}"/>` +
      `<text x="${left - 8}" y="${y + 4}" text-anchor="end">${escapeHtml(formatTick(t))}</text>`);
  }
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/>`);
  parts.push(`<text class="axis-label" transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(o.yLabel)}</text></g>`);
  // x ticks
  parts.push(`<g class="axis x-axis"><line x1="${left}" y1="${bottom}" x2="${left + plotW}" y2="${bottom}"/>`);
  for (const t of sc.xTicks) {
    const x = sc.x(t);
    parts.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}"/><text x="${x}" y="${bottom + 18}" text-anchor="middle">${escapeHtml(formatTick(t))}</text>`);
  }
  parts.push(`<text class="axis-label" x="${left + plotW / 2}" y="${bottom + 38}" text-anchor="middle">${escapeHtml(o.xLabel)}</text></g>`);
  // series
  o.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const coords = pts.map(([x, y]) => `${sc.x(x)},${sc.y(y)}`).join(" ");
    parts.push(`<g class="series" data-series="${escapeHtml(s.name)}">` +
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${coords}"/>` +
      pts.map(([x, y]) => `<circle cx="${sc.x(x)}" cy="${sc.y(y)}" r="3.5" fill="${colour}"><title>${escapeHtml(`${s.name} at ${o.xLabel} ${x}: ${formatValue(y)}`)}</title></circle>`).join("") +
      `</g>`);
  });
  // legend, right of the plot
  const lx = left + plotW + 20;
  parts.push(`<g class="legend">`);
  o.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const y = top + 8 + i * 20;
    parts.push(`<line x1="${lx}" y1="${y}" x2="${lx + 22}" y2="${y}" stroke="${colour}" stroke-width="2"/><circle cx="${lx + 11}" cy="${y}" r="3.5" fill="${colour}"/>` +
      `<text x="${lx + 30}" y="${y + 4}">${escapeHtml(s.name.length > 16 ? `${s.name.slice(0, 15)}…` : s.name)}<title>${escapeHtml(s.name)}</title></text>`);
  });
  parts.push(`</g></svg>`);
  return parts.join("");
}

/** A metric value for tables and tooltips: 4 significant decimals for small values. */
export function formatValue(v: number | undefined | null): string {
  if (v === undefined || v === null) return "—";
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 1 });
  if (a >= 1) return v.toFixed(3);
  return v.toFixed(4);
}
