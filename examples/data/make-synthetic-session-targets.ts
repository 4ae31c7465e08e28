// Regenerates synthetic-session-targets.csv (recipes/gru-multi-task.yaml): builtin:synthetic sessions with
// per-session targets derived from them. Run: npx tsx examples/data/make-synthetic-session-targets.ts
import { writeFileSync } from "node:fs";
import { generateSynthetic, parseBuiltinSpec } from "../../src/data/synthetic.js";
const o = parseBuiltinSpec("builtin:synthetic?sessions=3000&items=300&seed=11");
const t = generateSynthetic(o);
const d = t.data as Record<string, (string | number)[]>;
const n = d.item_id!.length;
// per session: mean price, majority category
const bySession = new Map<string | number, number[]>();
for (let i = 0; i < n; i++) {
  const s = d.session_id![i]!;
  if (!bySession.has(s)) bySession.set(s, []);
  bySession.get(s)!.push(i);
}
const meanPrice = new Map<string | number, number>();
const intent = new Map<string | number, number>();
for (const [s, rows] of bySession) {
  meanPrice.set(s, rows.reduce((a, i) => a + Number(d.price![i]), 0) / rows.length);
  const c = new Map<number, number>();
  for (const i of rows) c.set(Number(d.category![i]), (c.get(Number(d.category![i])) ?? 0) + 1);
  intent.set(s, [...c].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0]);
}
const prices = [...meanPrice.values()].sort((a, b) => a - b);
const median = prices[Math.floor(prices.length / 2)]!;
// log_price is standardised (z-score over the sessions): a regression head starts near 0, so unscaled
// targets far from 0 mostly train its bias (normalise regression targets, as NVTabular's Normalize does)
const logs = [...meanPrice.values()].map(Math.log);
const mu = logs.reduce((a, x) => a + x, 0) / logs.length;
const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mu) ** 2, 0) / logs.length);
const lines = ["session_id,item_id,high_value,log_price,intent"];
for (let i = 0; i < n; i++) {
  const s = d.session_id![i]!;
  const mp = meanPrice.get(s)!;
  lines.push(`${s},${d.item_id![i]},${mp > median ? 1 : 0},${((Math.log(mp) - mu) / sd).toFixed(3)},c${intent.get(s)}`);
}
writeFileSync(new URL("./synthetic-session-targets.csv", import.meta.url), lines.join("\n") + "\n");
console.log(n, "rows", bySession.size, "sessions, median mean price", median, "categories", o.categories);
