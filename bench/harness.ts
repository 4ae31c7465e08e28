/**
 * The parts of the benchmark harness (bench/run.ts) that do not depend on a suite: running a side
 * (one child process, its last stdout line is its JSON result), alternating recblocks and the peer,
 * summarising repetitions (min, median, max), ratios ("higher is better" everywhere), the table,
 * the machine record and the raw-results file.
 */
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, type WriteStream } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem, type } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

export type Json = Record<string, unknown>;

/** One process to run per repetition: a recblocks script or a peer script, with its arguments. */
export interface Side {
  /** "recblocks" or "peer" (a suite may have several recblocks sides, e.g. two thread settings). */
  role: "recblocks" | "peer";
  /** Short name shown in progress lines and row labels, e.g. "recblocks" or "recblocks 1 thread". */
  label: string;
  cmd: string;
  args: string[];
}

/** A group of sides compared with each other (e.g. the CG solver), run alternately. */
export interface Group {
  name: string;
  recblocks: Side[];
  peer: Side | null;
  metrics: MetricDef[];
}

export interface MetricDef {
  /** Row label. */
  label: string;
  /** Which way is better: "higher" -> ratio = recblocks / peer; "lower" -> ratio = peer / recblocks. */
  better: "higher" | "lower";
  /** Reads the value from a side's JSON result (null/undefined = not reported). */
  recblocks: (j: Json, wallS: number) => number | null | undefined;
  peer: (j: Json, wallS: number) => number | null | undefined;
  /** Shown after the table for rows whose two sides are not measured the same way. */
  note?: string;
}

export interface RunRecord {
  group: string;
  side: string;
  role: Side["role"];
  rep: number;
  command: string;
  ok: boolean;
  exitCode: number | null;
  wallS: number;
  result: Json | null;
  error?: string;
}

export interface Stats { min: number; median: number; max: number; values: number[] }

export interface Row {
  /** Full name (the metric, then group and recblocks side when a suite has several). */
  metric: string;
  /** The metric alone, and the comparison it belongs to (a table section). */
  label: string;
  section: string;
  better: MetricDef["better"];
  recblocks: Stats | null;
  peer: Stats | null;
  /** ratio of the medians (higher is better) and the range of the per-repetition paired ratios. */
  ratio: { median: number; min: number; max: number } | null;
  note?: string;
}

// ------------------------------------------------------------------------------------ arguments

/** Tiny flag parser: `--name value`, `--flag`; `bool` lists the flags that take no value. */
export function parseFlags(argv: string[], bool: string[]): { positional: string[]; flags: Map<string, string | true> } {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") continue;
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) {
      flags.set(a.slice(2, eq), a.slice(eq + 1));
      continue;
    }
    const name = a.slice(2);
    if (bool.includes(name)) flags.set(name, true);
    else {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, v);
      i++;
    }
  }
  return { positional, flags };
}

/** Splits "a b 'c d'" into words (simple shell-like quoting for --rb-args / --peer-args). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

// ------------------------------------------------------------------------------------- running

const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
export const commandLine = (cmd: string, args: string[]): string => [cmd, ...args].map(quote).join(" ");

/** Runs one side; its stderr goes to `log`, its stdout is kept and its last JSON line parsed. */
export function runSide(side: Side, cwd: string, log: WriteStream, timeoutMs: number): Promise<{ ok: boolean; exitCode: number | null; wallS: number; result: Json | null; error?: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(side.cmd, side.args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let out = "";
    let errTail = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => { out += d; });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      log.write(d);
      errTail = (errTail + d).slice(-2000);
    });
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; child.kill("SIGTERM"); }, timeoutMs) : null;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      resolve({ ok: false, exitCode: null, wallS: (performance.now() - t0) / 1000, result: null, error: e.message });
    });
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      const wallS = (performance.now() - t0) / 1000;
      const line = out.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("{")).pop();
      let result: Json | null = null;
      try {
        if (line) result = JSON.parse(line) as Json;
      } catch { /* reported below */ }
      if (code === 0 && result) resolve({ ok: true, exitCode: code, wallS, result });
      else {
        const why = timedOut ? `timed out after ${(timeoutMs / 1000).toFixed(0)} s` : code !== 0 ? `exit code ${code}` : "no JSON line on stdout";
        const last = errTail.trim().split("\n").filter((l) => l.trim() && !/^\s+at /.test(l)).slice(-2).join(" | ");
        resolve({ ok: false, exitCode: code, wallS, result, error: `${why}${last ? `: ${last}` : ""}` });
      }
    });
  });
}

// ------------------------------------------------------------------------------------- summary

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export function stats(xs: number[]): Stats | null {
  if (!xs.length) return null;
  return { min: Math.min(...xs), median: median(xs), max: Math.max(...xs), values: xs };
}

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * One row per metric and recblocks side. Values per repetition; the ratio is taken on the medians
 * (recblocks / peer when higher is better, peer / recblocks when lower is better) and its range on
 * the repetitions paired in the order they ran (rep i of recblocks with rep i of the peer).
 */
export function buildRows(groups: Group[], runs: RunRecord[], multiLabel: boolean): Row[] {
  const rows: Row[] = [];
  for (const g of groups) {
    const peerRuns = runs.filter((r) => r.group === g.name && r.role === "peer" && r.ok);
    for (const side of g.recblocks) {
      const rbRuns = runs.filter((r) => r.group === g.name && r.side === side.label && r.ok);
      for (const m of g.metrics) {
        const rbByRep = new Map<number, number>();
        for (const r of rbRuns) {
          const v = m.recblocks(r.result!, r.wallS);
          if (finite(v)) rbByRep.set(r.rep, v);
        }
        const peerByRep = new Map<number, number>();
        for (const r of peerRuns) {
          const v = m.peer(r.result!, r.wallS);
          if (finite(v)) peerByRep.set(r.rep, v);
        }
        const rb = stats([...rbByRep.values()]);
        const pe = stats([...peerByRep.values()]);
        const ratioOf = (a: number, b: number): number => (m.better === "higher" ? a / b : b / a);
        let ratio: Row["ratio"] = null;
        if (rb && pe && rb.median > 0 && pe.median > 0) {
          const paired = [...rbByRep].filter(([rep]) => peerByRep.has(rep)).map(([rep, v]) => ratioOf(v, peerByRep.get(rep)!)).filter(finite);
          ratio = { median: ratioOf(rb.median, pe.median), min: paired.length ? Math.min(...paired) : NaN, max: paired.length ? Math.max(...paired) : NaN };
        }
        const parts = [groups.length > 1 ? g.name : "", multiLabel || g.recblocks.length > 1 ? side.label : ""].filter(Boolean);
        rows.push({
          metric: parts.length ? `${m.label} [${parts.join(", ")}]` : m.label, label: m.label,
          section: `${g.name}: ${side.label} vs ${g.peer?.label ?? "(no peer)"}`, better: m.better, recblocks: rb, peer: pe, ratio, note: m.note,
        });
      }
    }
  }
  return rows;
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return "-";
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString("en-US");
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a >= 0.01) return x.toFixed(3);
  return x.toPrecision(3);
}

const fmtStats = (s: Stats | null): string => (s ? `${fmtNum(s.min)}–${fmtNum(s.median)}–${fmtNum(s.max)}` : "-");
const fmtRatio = (r: Row["ratio"]): string => {
  if (!r) return "-";
  const range = Number.isFinite(r.min) ? ` (${r.min.toFixed(2)}–${r.max.toFixed(2)})` : "";
  return `${r.median.toFixed(2)}${range}`;
};

/**
 * Markdown tables (also readable in a terminal), one per section when there are several
 * (e.g. ALS: CG and Cholesky, each recblocks setting against the peer), one column width for all.
 */
export function formatTable(rows: Row[]): string {
  const header = ["metric", "recblocks (min–median–max)", "peer (min–median–max)", "ratio, median (min–max)"];
  const body = rows.map((r) => [`${r.label} ${r.better === "higher" ? "↑" : "↓"}`, fmtStats(r.recblocks), fmtStats(r.peer), fmtRatio(r.ratio)]);
  const widths = header.map((h, j) => Math.max(h.length, ...body.map((b) => b[j]!.length)));
  const line = (cells: string[]): string => "| " + cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join(" | ") + " |";
  const sep = "|" + widths.map((w, j) => (j === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|";
  const sections = [...new Set(rows.map((r) => r.section))];
  const out: string[] = [];
  for (const sec of sections) {
    if (sections.length > 1) out.push(`${out.length ? "\n" : ""}${sec}`);
    out.push(line(header), sep);
    rows.forEach((r, j) => { if (r.section === sec) out.push(line(body[j]!)); });
  }
  return out.join("\n");
}

// ------------------------------------------------------------------------------------- machine

export interface Machine {
  cores: number;
  available_parallelism: number;
  cpu_model: string;
  cpu_flags: string[];
  memory_gb: number;
  os: string;
  node: string;
  backend: string | null;
  tensorflow_version: string | null;
  tfjs_version: string | null;
  python: string | null;
  torch_version: string | null;
  numpy_version: string | null;
  scipy_version: string | null;
  load_average_start: number[];
  load_average_end?: number[];
}

function cpuModel(): { model: string; flags: string[] } {
  try {
    const txt = readFileSync("/proc/cpuinfo", "utf8");
    const model = /^model name\s*:\s*(.+)$/m.exec(txt)?.[1]?.trim() ?? cpus()[0]?.model ?? "?";
    const flags = (/^flags\s*:\s*(.+)$/m.exec(txt)?.[1] ?? "").split(/\s+/);
    return { model, flags: ["avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"].filter((f) => flags.includes(f)) };
  } catch {
    return { model: cpus()[0]?.model ?? "?", flags: [] };
  }
}

/** Probes both sides once (a child each: the harness itself loads neither TensorFlow nor torch). */
export function probeMachine(root: string, python: string | null, backend: string, threads: number): Machine {
  const { model, flags } = cpuModel();
  const m: Machine = {
    cores: cpus().length, available_parallelism: availableParallelism(), cpu_model: model, cpu_flags: flags,
    memory_gb: Math.round(totalmem() / 2 ** 30 * 10) / 10, os: `${type()} ${release()}`, node: process.version,
    backend: null, tensorflow_version: null, tfjs_version: null, python: null, torch_version: null, numpy_version: null, scipy_version: null,
    load_average_start: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const rb = spawnSync(process.execPath, ["--import", "tsx", "bench/machine.ts", "--backend", backend, "--threads", String(threads)], { cwd: root, encoding: "utf8" });
  try {
    const j = JSON.parse(rb.stdout.trim().split("\n").pop() ?? "") as Json;
    m.backend = j.backend as string;
    m.tensorflow_version = (j.tensorflow_version as string | null) ?? null;
    m.tfjs_version = j.tfjs_version as string;
  } catch { /* left null: the runs' own JSON still says which backend they used */ }
  if (python) {
    const code = "import json, platform\nv = {'python': platform.python_version()}\n"
      + "for n in ('torch', 'numpy', 'scipy'):\n    try:\n        v[n] = __import__(n).__version__\n    except Exception:\n        v[n] = None\nprint(json.dumps(v))";
    const py = spawnSync(python, ["-c", code], { encoding: "utf8" });
    try {
      const j = JSON.parse(py.stdout.trim()) as Record<string, string | null>;
      m.python = j.python ?? null;
      m.torch_version = j.torch ?? null;
      m.numpy_version = j.numpy ?? null;
      m.scipy_version = j.scipy ?? null;
    } catch { /* left null */ }
  }
  return m;
}

export function machineLine(m: Machine): string {
  const be = m.backend === "tensorflow" ? `tensorflow (native TensorFlow ${m.tensorflow_version ?? "?"})` : m.backend ?? "?";
  return `machine: ${m.cpu_model} [${m.cpu_flags.join(" ")}], ${m.cores} cores, ${m.memory_gb} GB, ${m.os}; `
    + `recblocks: node ${m.node}, TF.js ${m.tfjs_version ?? "?"}, backend ${be}; `
    + `peer: python ${m.python ?? "?"}, torch ${m.torch_version ?? "-"}, numpy ${m.numpy_version ?? "-"}, scipy ${m.scipy_version ?? "-"}; `
    + `load average at start ${m.load_average_start.join(" ")}${m.load_average_end ? `, at end ${m.load_average_end.join(" ")}` : ""}`;
}

// ------------------------------------------------------------------------------------- results

export function openLog(dir: string, base: string): { log: WriteStream; path: string } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${base}.log`);
  return { log: createWriteStream(path), path };
}

export function saveResults(dir: string, base: string, data: unknown): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${base}.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + "\n");
  return path;
}

export function timestamp(): string {
  return new Date().toISOString().replace(/[:]/g, "").replace(/\..+$/, "Z");
}

/** The peers' virtual environment: its python, or null when it is missing or lacks a module. */
export function peerPython(root: string, modules: string[]): { python: string | null; problem?: string } {
  const python = join(root, ".venv-peers", "bin", "python");
  if (!existsSync(python)) return { python: null, problem: `${python} does not exist` };
  const r = spawnSync(python, ["-c", `import ${modules.join(", ")}`], { encoding: "utf8" });
  if (r.status !== 0) return { python: null, problem: `${python} cannot import ${modules.join(", ")}: ${(r.stderr || "").trim().split("\n").pop()}` };
  return { python };
}
