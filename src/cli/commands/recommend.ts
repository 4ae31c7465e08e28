import { type CommandSpec, type ParsedArgs, UsageError } from "../args.js";
import { reportErrors } from "../errors.js";

export const spec: CommandSpec = {
  name: "recommend",
  summary: "Top-k recommendations from a saved model: for a session's items (next-item models) or a user (ALS), with business-rule filters.",
  usage: "recblocks recommend <modelDir> (--items <id,id,...> | --user <id>) [--feature name=v,v,...] [-k 20] [--exclude-seen] [--deny file] [--allow file] [--rule 'attr op value'] [--item-data file] [--json]",
  options: [
    { name: "items", kind: "string", description: "raw item ids of the session, oldest first, comma-separated (next-item models; ALS: the user's items, folded in without retraining)" },
    { name: "feature", kind: "strings", description: "per-step side feature of the session, repeatable: name=v1,v2,... with one value per item of --items (an empty value takes the model's item-feature table); next-item models with side features" },
    { name: "user", kind: "string", description: "raw user id (ALS models)" },
    { name: "k", alias: "k", kind: "number", description: "how many items (default 20; ALS 10)" },
    { name: "exclude-seen", kind: "boolean", description: "never recommend an item of the session (ALS: always on, as implicit's filter_already_liked_items)" },
    { name: "deny", kind: "string", description: "file of raw item ids never to recommend (one per line, or comma-separated)" },
    { name: "allow", kind: "string", description: "file of raw item ids: recommend only these" },
    { name: "rule", kind: "strings", description: "attribute rule on the item metadata, repeatable: 'category in [3, 7]', 'price <= 20', 'brand != acme'" },
    { name: "item-data", kind: "string", description: "item metadata (CSV/TSV with a header, or JSONL) with the item id and the attributes the rules name" },
    { name: "json", kind: "boolean", description: 'print {"items": [...], "scores": [...], "unknownItems": [...]} as one JSON line' },
  ],
  positionals: { min: 1, max: 1 },
};

export async function run(args: ParsedArgs): Promise<number> {
  const o = args.options;
  const json = o.json === true;
  const dir = args.positionals[0]!;
  if (o.items === undefined && o.user === undefined) {
    process.stderr.write("recblocks recommend: give --items <id,id,...> (a session) or --user <id> (ALS).\n");
    return 2;
  }
  return reportErrors(json, async () => {
    const { initEngine } = await import("../../engine/index.js");
    const { modelDirFormat, NEXT_ITEM_FORMAT } = await import("../../io/model-dir.js");
    const { readIdList, readItemMetadata, eligibility } = await import("../../recommend/filters.js");
    const format = modelDirFormat(dir);
    await initEngine({ quiet: true });
    const filters = {
      ...(o.allow ? { allow: readIdList(o.allow as string) } : {}),
      ...(o.deny ? { deny: readIdList(o.deny as string) } : {}),
      ...(o.rule ? { rules: o.rule as string[] } : {}),
    };
    const metadata = o["item-data"] ? readItemMetadata(o["item-data"] as string) : undefined;
    const items = typeof o.items === "string" ? o.items.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
    let answer: { items: string[]; scores: number[]; unknownItems: string[] };
    if (format === NEXT_ITEM_FORMAT) {
      if (!items) throw new UsageError("a next-item model recommends from a session: give --items");
      const { registerBuiltinBlocks } = await import("../../run/train.js");
      const { NextItemRecommender } = await import("../../recommend/next-item.js");
      await registerBuiltinBlocks();
      const rec = NextItemRecommender.open(dir, { metadata });
      try {
        const features = o.feature ? parseFeatureFlags(o.feature as string[], rec.sideFeatures) : undefined;
        answer = rec.recommend({ items, ...(features ? { features } : {}), k: (o.k as number | undefined) ?? 20, excludeSeen: o["exclude-seen"] === true, filters });
      } finally {
        rec.dispose();
      }
    } else {
      if (o.feature) throw new UsageError("--feature is for next-item models with per-step side features; this is an ALS model");
      const { loadAlsModel } = await import("../../../blocks/factorization/model-io.js");
      const als = loadAlsModel(dir);
      const el = eligibility(filters, {
        size: als.items.size,
        lookup: (raw) => als.items.get(raw),
        rawOf: (id) => als.items.ids[id],
        metadata,
      });
      const k = (o.k as number | undefined) ?? 10;
      const unknownUser = o.user !== undefined && als.users.get(o.user as string) === undefined;
      if (unknownUser && !items) {
        const { RecblocksError } = await import("../../errors/issue.js");
        throw new RecblocksError(dir, [{ code: "unknown_user", path: "/user", message: `User "${String(o.user)}" is not in the model.`, hint: "Give the user's items with --items to fold a new user in without retraining." }], { kind: "RecommendError" });
      }
      const known = items?.filter((i) => als.items.get(i) !== undefined) ?? [];
      const r = als.recommend((o.user as string | undefined) ?? "__new__", {
        k, itemMask: el.mask,
        ...(items ? { history: known.map((id) => ({ id, value: 1 })), recalculate: true } : {}),
      });
      answer = { items: r.items, scores: r.scores, unknownItems: [...(items ?? []).filter((i) => als.items.get(i) === undefined), ...el.unknown] };
    }
    if (json) process.stdout.write(JSON.stringify(answer) + "\n");
    else {
      answer.items.forEach((id, i) => process.stdout.write(`${String(i + 1).padStart(3)}  ${id.padEnd(12)} ${answer.scores[i]!.toFixed(4)}\n`));
      if (answer.unknownItems.length) process.stderr.write(`skipped unknown ids: ${answer.unknownItems.slice(0, 20).join(", ")}${answer.unknownItems.length > 20 ? ", ..." : ""}\n`);
    }
    return 0;
  });
}

/**
 * `--feature name=v1,v2,...` flags as the request's `features`: one value per item, an empty value is
 * null (the item-feature table's), continuous features' values are numbers when they parse as one (a
 * value that does not is passed on as text, so the recommender's located `wrong_type` issue names it).
 */
export function parseFeatureFlags(flags: readonly string[], side: readonly { name: string; kind: string }[]): Record<string, (string | number | null)[]> {
  const out: Record<string, (string | number | null)[]> = {};
  for (const flag of flags) {
    const eq = flag.indexOf("=");
    if (eq <= 0) throw new UsageError(`--feature expects name=v1,v2,... (one value per item of --items), got "${flag}"`);
    const name = flag.slice(0, eq);
    if (name in out) throw new UsageError(`--feature ${name} is given twice`);
    const continuous = side.find((f) => f.name === name)?.kind === "continuous";
    out[name] = flag.slice(eq + 1).split(",").map((v) => {
      const t = v.trim();
      if (t === "") return null;
      return continuous && Number.isFinite(Number(t)) ? Number(t) : t;
    });
  }
  return out;
}
