import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { RecblocksError } from "../../errors/issue.js";
import type { CommandSpec, ParsedArgs } from "../args.js";
import { dataStats, type StatsOptions } from "../../data/stats.js";
import { formatIssues, dataIssue } from "../../data/errors.js";
import type { FeatureSchemaDocLike } from "../../data/schema-doc.js";
import type { FormatOption } from "../../data/detect.js";

/** Options shared by `data stats` and `schema infer`. */
export const dataOptions: CommandSpec["options"] = [
  { name: "format", kind: "string", description: "auto | sessions-text | csv | tsv | jsonl | parquet", default: "auto" },
  { name: "schema", kind: "string", description: "feature schema file (YAML/JSON): its tags name the id/timestamp columns" },
  { name: "session-col", kind: "string", description: "session id column" },
  { name: "item-col", kind: "string", description: "item id column" },
  { name: "user-col", kind: "string", description: "user id column (sessions are grouped by user when there is no session column)" },
  { name: "time-col", kind: "string", description: "timestamp column (epoch seconds/ms or ISO dates)" },
  { name: "order-col", kind: "string", description: "tie-breaker column for equal timestamps (e.g. Diginetica's timeframe)" },
  { name: "delimiter", kind: "string", description: 'CSV delimiter (sniffed by default; "\\t" for tab)' },
  { name: "header", kind: "boolean", description: "the first row is a header (sniffed by default; --no-header for none)" },
  { name: "quote", kind: "string", description: 'CSV quote character ("" for none)' },
  { name: "columns", kind: "string", description: "comma-separated names for the columns of a headerless file" },
  { name: "bad-rows", kind: "string", description: "error | skip: what to do with rows that cannot be read", default: "error" },
];

export const spec: CommandSpec = {
  name: "data stats",
  summary: "count rows, sessions, items and users of a data file (or builtin:synthetic?...)",
  usage: "recblocks data stats <data> [--schema file] [--session-col c] [--item-col c] [--user-col c] [--time-col c] [--delimiter d] [--json]",
  options: [...dataOptions, { name: "json", kind: "boolean", description: "print one JSON object as the last line" }],
  positionals: { min: 1, max: 1 },
};

function loadSchemaDoc(file: string): FeatureSchemaDocLike {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new RecblocksError(file, [dataIssue("data_bad_config", { file }, `Cannot read the feature schema: ${(err as Error).message}`)]);
  }
  const d = doc as FeatureSchemaDocLike;
  if (!d || !Array.isArray(d.columns)) throw new RecblocksError(file, [dataIssue("data_bad_config", { file }, `Not a feature schema: expected "columns: [...]".`)]);
  return d;
}

/** StatsOptions from the shared command-line options. */
export function statsOptionsFromArgs(args: ParsedArgs): StatsOptions {
  const o = args.options;
  const badRows = String(o["bad-rows"] ?? "error");
  if (badRows !== "error" && badRows !== "skip") throw new RecblocksError("--bad-rows", [dataIssue("data_bad_config", { file: "--bad-rows" }, `--bad-rows must be error or skip, got "${badRows}".`)]);
  let delimiter = o.delimiter as string | undefined;
  if (delimiter === "\\t" || delimiter === "tab") delimiter = "\t";
  const csv: StatsOptions["csv"] = {};
  if (delimiter !== undefined) csv.delimiter = delimiter;
  if (o.header !== undefined) csv.header = o.header as boolean;
  if (o.quote !== undefined) csv.quote = o.quote as string;
  return {
    format: (o.format as FormatOption | undefined) ?? "auto",
    csv,
    columns: {
      ...(o["session-col"] ? { session: o["session-col"] as string } : {}),
      ...(o["item-col"] ? { item: o["item-col"] as string } : {}),
      ...(o["user-col"] ? { user: o["user-col"] as string } : {}),
      ...(o["time-col"] ? { timestamp: o["time-col"] as string } : {}),
      ...(o["order-col"] ? { order: o["order-col"] as string } : {}),
    },
    ...(o.columns ? { columnNames: String(o.columns).split(",").map((s) => s.trim()) } : {}),
    ...(o.schema ? { schema: loadSchemaDoc(o.schema as string) } : {}),
    badRows,
    onWarning: (m) => process.stderr.write(`recblocks: ${m}\n`),
  };
}

export async function run(args: ParsedArgs): Promise<number> {
  try {
    const s = await dataStats(args.positionals[0]!, statsOptionsFromArgs(args));
    const out = { rows: s.rows, sessions: s.sessions, items: s.items, users: s.users, avgSessionLength: s.avgSessionLength, prefixExamples: s.prefixExamples, format: s.format, columns: s.columns, skippedRows: s.skippedRows };
    if (args.options.json) process.stdout.write(JSON.stringify(out) + "\n");
    else {
      const cols = Object.entries(s.columns).map(([k, v]) => `${k}=${v}`).join(" ");
      process.stdout.write(
        [
          `format            ${s.format}`,
          `columns           ${cols}`,
          `rows              ${s.rows}`,
          `sessions          ${s.sessions}`,
          `items             ${s.items}`,
          `users             ${s.users ?? "-"}`,
          `avgSessionLength  ${s.avgSessionLength}`,
          `prefixExamples    ${s.prefixExamples}`,
          ...(s.skippedRows ? [`skippedRows       ${s.skippedRows}`] : []),
        ].join("\n") + "\n",
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof RecblocksError) {
      process.stderr.write(formatIssues(err));
      return 1;
    }
    throw err;
  }
}
