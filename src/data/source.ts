import { isAbsolute, resolve } from "node:path";
import type { CodedSessions } from "./coded.js";
import { detectFormat, type FormatOption, type Sniffed } from "./detect.js";
import { failData, type BadRowPolicy } from "./errors.js";
import type { Interner } from "./interner.js";
import { missingColumn, readTable } from "./readers.js";
import type { FeatureColumnDoc, FeatureSchemaDocLike } from "./schema-doc.js";
import { groupSessions, type BagSpec, type ColumnRoles, type FeatureColumns } from "./sessions.js";
import { readSessionsText } from "./sessions-text.js";
import { generateSynthetic, isBuiltin, parseBuiltinSpec, syntheticFeatureSchema } from "./synthetic.js";
import type { DataFormat, RawTable } from "./table.js";
import { checkDataFile } from "./text-input.js";

export interface CsvOptions {
  delimiter?: string;
  header?: boolean;
  quote?: string;
}

export interface ColumnsConfig {
  session?: string;
  item?: string;
  user?: string;
  timestamp?: string;
  order?: string;
}

export interface SourceOptions {
  format?: FormatOption;
  csv?: CsvOptions;
  /** Names for the columns of a headerless file. */
  columnNames?: string[];
  badRows?: BadRowPolicy;
  /** Relative paths are resolved against this folder (the recipe's). */
  baseDir?: string;
  onWarning?: (msg: string) => void;
  onProgress?: (rows: number) => void;
}

/** An opened data source: a file with its detected format, or a built-in data set. */
export interface DataSource {
  spec: string;
  /** Absolute path for files; the spec for built-ins. */
  path: string;
  kind: "file" | "builtin";
  format: DataFormat;
  sniffed?: Sniffed;
  /** Reads the source as a table (not for sessions-text). `select` gets every column name and returns those to read. */
  readTable(select?: (columns: string[]) => string[]): Promise<RawTable>;
  /** The feature schema the source comes with (built-ins). */
  featureSchema?: FeatureSchemaDocLike;
}

/**
 * Opens a data path or `builtin:synthetic?...` spec: checks the file exists, detects the format
 * (extension, magic bytes, delimiter and header sniffing; see detect.ts), and returns a reader.
 */
export function openDataSource(spec: string, opts: SourceOptions = {}): DataSource {
  if (isBuiltin(spec)) {
    const o = parseBuiltinSpec(spec);
    let cached: RawTable | undefined;
    return {
      spec,
      path: spec,
      kind: "builtin",
      format: "csv",
      featureSchema: syntheticFeatureSchema(o),
      readTable: async (select) => {
        cached ??= generateSynthetic(o);
        if (!select) return cached;
        const want = select(cached.columns);
        return { ...cached, data: Object.fromEntries(want.map((c) => [c, cached!.data[c]!])) };
      },
    };
  }
  const path = isAbsolute(spec) || !opts.baseDir ? resolve(spec) : resolve(opts.baseDir, spec);
  checkDataFile(path);
  const sniffed = detectFormat(path, { format: opts.format, delimiter: opts.csv?.delimiter, header: opts.csv?.header });
  const format = sniffed.format;
  return {
    spec,
    path,
    kind: "file",
    format,
    sniffed,
    readTable: async (select) => {
      if (format === "sessions-text") failData("data_bad_config", { file: path }, `"${path}" is a sessions-text file (one session per line); it has no columns to read as a table.`);
      return readTable(path, {
        format,
        delimiter: sniffed.delimiter,
        header: sniffed.header,
        quote: opts.csv?.quote,
        columnNames: opts.columnNames ?? sniffed.columnNames,
        select,
        badRows: opts.badRows,
        onWarning: opts.onWarning,
        onProgress: opts.onProgress,
      });
    },
  };
}

const NAME_HINTS: Record<keyof ColumnsConfig, string[]> = {
  item: ["item_id", "itemid", "item", "product_id", "productid", "movie_id", "movieid", "sku", "article_id", "item_id-list_seq", "item_id-list"],
  session: ["session_id", "sessionid", "session", "visit_id", "visitid"],
  user: ["user_id", "userid", "user", "customer_id", "customerid", "visitor_id", "visitorid"],
  timestamp: ["timestamp", "time", "ts", "event_time", "eventtime", "datetime", "date", "eventdate", "created_at", "timestamp-list"],
  order: ["timeframe"],
};
const TAGS: Partial<Record<keyof ColumnsConfig, string>> = { item: "item-id", session: "session-id", user: "user-id", timestamp: "timestamp" };

/**
 * Which column plays which part: explicit config first, then feature-schema tags, then usual names.
 * An explicit name (config or schema) that the data lacks is an error with a did-you-mean.
 */
export function resolveRoles(file: string, columns: string[], cfg: ColumnsConfig = {}, schema?: FeatureSchemaDocLike): Partial<ColumnRoles> & { how: Record<string, string> } {
  const out: Partial<ColumnRoles> & { how: Record<string, string> } = { how: {} };
  const lower = new Map(columns.map((c) => [c.toLowerCase(), c]));
  for (const role of ["item", "session", "user", "timestamp", "order"] as const) {
    const explicit = cfg[role];
    if (explicit !== undefined) {
      if (!columns.includes(explicit)) throw missingColumn(file, explicit, role === "item" ? "item id" : role === "order" ? "order (tie-breaker)" : role === "timestamp" ? "timestamp" : `${role} id`, columns);
      out[role] = explicit;
      out.how[role] = "config";
      continue;
    }
    const tag = TAGS[role];
    const tagged = tag ? schema?.columns.find((c) => (c.tags ?? []).includes(tag)) : undefined;
    if (tagged) {
      if (!columns.includes(tagged.name)) {
        if (role === "item") throw missingColumn(file, tagged.name, `item id (tagged ${tag} in the feature schema)`, columns);
        if (role === "session" || role === "user" || role === "timestamp") {
          // the schema may describe a session-level view; fall through to names
        }
      } else {
        out[role] = tagged.name;
        out.how[role] = `schema tag ${tag}`;
        continue;
      }
    }
    const hit = NAME_HINTS[role].map((n) => lower.get(n)).find((c) => c !== undefined);
    if (hit !== undefined && !Object.values(out).includes(hit)) {
      out[role] = hit;
      out.how[role] = "column name";
    }
  }
  return out;
}

/** Tags that make a target column a class label (read as a categorical value) rather than a number. */
const CLASS_TARGET_TAGS = ["multi-class", "multi-class-classification", "classification"];

/**
 * The bag (ragged multi-hot list per interaction) a column declares in its feature-schema `properties.multiHot`
 * (`{maxValues, separator?}`), or undefined. A malformed declaration is a `data_bad_config` error at the column.
 */
export function bagSpecOf(c: FeatureColumnDoc, file = "feature schema"): BagSpec | undefined {
  const mh = c.properties?.multiHot;
  if (mh === undefined || mh === null || mh === false) return undefined;
  const o = (typeof mh === "object" ? mh : {}) as { maxValues?: unknown; separator?: unknown };
  if (typeof mh !== "object" || !Number.isInteger(o.maxValues) || (o.maxValues as number) < 1)
    failData("data_bad_config", { file, column: c.name }, `Column "${c.name}": properties.multiHot must be {maxValues: <integer >= 1>, separator?: <string>}, got ${JSON.stringify(mh)}.`, {
      hint: 'E.g. properties: {multiHot: {maxValues: 5, separator: "|"}}: each interaction holds up to 5 values.',
    });
  if (o.separator !== undefined && (typeof o.separator !== "string" || o.separator === ""))
    failData("data_bad_config", { file, column: c.name }, `Column "${c.name}": properties.multiHot.separator must be a non-empty string, got ${JSON.stringify(o.separator)}.`);
  return { maxValues: o.maxValues as number, separator: (o.separator as string | undefined) ?? "|" };
}

/**
 * Side features from the feature schema: the columns present in the data that are not id/timestamp columns.
 * Categorical list columns with `properties.multiHot` are bags (a ragged list of values per interaction).
 * Columns tagged `target` are carried as per-session (context) values for the tasks that read them: class
 * labels (categorical, or tagged multi-class / classification) as categorical, the others as numbers.
 */
export function schemaFeatures(columns: string[], schema: FeatureSchemaDocLike | undefined, roles: Partial<ColumnRoles>): FeatureColumns {
  const f: Required<FeatureColumns> = { categorical: [], continuous: [], contextCategorical: [], contextContinuous: [], bags: {}, targets: [] };
  if (!schema) return f;
  const roleCols = new Set([roles.item, roles.session, roles.timestamp, roles.order].filter(Boolean));
  for (const c of schema.columns as FeatureColumnDoc[]) {
    if (!columns.includes(c.name) || roleCols.has(c.name)) continue;
    const tags = c.tags ?? [];
    const ctx = tags.includes("context");
    if (c.name === roles.user && !ctx) continue;
    if (tags.includes("target")) {
      if (tags.includes("list")) continue; // per-step targets: no task reads them
      const cls = tags.includes("categorical") || (!tags.includes("continuous") && CLASS_TARGET_TAGS.some((t) => tags.includes(t)));
      (cls ? f.contextCategorical : f.contextContinuous).push(c.name);
      f.targets.push(c.name);
      continue;
    }
    if (tags.includes("categorical")) {
      const bag = bagSpecOf(c);
      if (bag && ctx)
        failData("data_bad_config", { file: "feature schema", column: c.name }, `Column "${c.name}" is a context (per-session) column with properties.multiHot; multi-hot bags are read per interaction only.`, {
          hint: "Drop the context tag (and tag it list) to read one bag per interaction.",
        });
      if (bag) f.bags[c.name] = bag;
      (ctx ? f.contextCategorical : f.categorical).push(c.name);
    } else if (tags.includes("continuous")) (ctx ? f.contextContinuous : f.continuous).push(c.name);
  }
  return f;
}

export interface ReadSessionsOptions extends SourceOptions {
  columns?: ColumnsConfig;
  schema?: FeatureSchemaDocLike;
  /** Carry side features from the schema (default true). */
  features?: boolean;
  interners?: Record<string, Interner>;
  /** Name of the item column for sessions-text files (default: the schema's item-id column, else item_id). */
  itemColumn?: string;
}

/** Reads any data source into coded sessions (grouped, ordered, with side features). */
export async function readCodedSessions(source: DataSource, opts: ReadSessionsOptions = {}): Promise<CodedSessions> {
  const schema = opts.schema ?? source.featureSchema;
  if (source.format === "sessions-text") {
    const itemColumn = opts.itemColumn ?? opts.columns?.item ?? schema?.columns.find((c) => (c.tags ?? []).includes("item-id"))?.name ?? "item_id";
    return readSessionsText(source.path, { itemColumn, interner: opts.interners?.[itemColumn], badRows: opts.badRows, onProgress: opts.onProgress });
  }
  let roles: ColumnRoles | undefined;
  let features: FeatureColumns = {};
  const table = await source.readTable((columns) => {
    const r = resolveRoles(source.path, columns, opts.columns, schema);
    if (!r.item)
      failData("data_missing_column", { file: source.path }, `No item id column found in ${source.path}. Columns: ${columns.map((c) => `"${c}"`).join(", ")}.`, {
        hint: "Set data.columns.item (or --item-col), or tag the column item-id in the feature schema.",
      });
    roles = { item: r.item, session: r.session, user: r.user, timestamp: r.timestamp, order: r.order };
    features = opts.features === false ? {} : schemaFeatures(columns, schema, roles);
    const want = new Set<string>([roles.item]);
    for (const c of [roles.session, roles.user, roles.timestamp, roles.order]) if (c) want.add(c);
    for (const list of [features.categorical, features.continuous, features.contextCategorical, features.contextContinuous]) for (const c of list ?? []) want.add(c);
    return [...want];
  });
  return groupSessions(table, roles!, features, { badRows: opts.badRows, onWarning: opts.onWarning, interners: opts.interners });
}
