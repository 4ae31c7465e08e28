/**
 * A stand-alone entry point until `recblocks train` / `recblocks recommend` call the ALS functions:
 *   node --import tsx blocks/factorization/als-cli.ts train <recipe.yaml> [--out <dir>] [--iterations N] [--seed S] [--data <spec>] [--json]
 *   node --import tsx blocks/factorization/als-cli.ts recommend <modelDir> --user <raw id> [--k 10] [--json]
 * Errors a user can cause print their issues (code, JSON Pointer, message, hint) and exit 1.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { RecblocksError } from "../../src/errors/issue.js";
import { initEngine } from "../../src/engine/index.js";
import { type AlsRecipe, loadAlsModel, trainAlsFromRecipe } from "./recipe.js";

function usage(): never {
  process.stderr.write("usage: als-cli.ts train <recipe.yaml> [--out dir] [--iterations N] [--seed S] [--data spec] [--json]\n"
    + "       als-cli.ts recommend <modelDir> --user <id> [--k 10] [--json]\n");
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, target, ...rest] = argv;
  if (!cmd || !target) usage();
  await initEngine({ backend: "auto", quiet: true });
  const opts: Record<string, string | boolean> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith("--")) usage();
    if (a === "--json") opts.json = true;
    else opts[a.slice(2)] = rest[++i] ?? usage();
  }
  if (cmd === "train") {
    const recipe = parse(readFileSync(target, "utf8")) as AlsRecipe;
    const r = await trainAlsFromRecipe(recipe, {
      recipeFile: target, outDir: opts.out as string | undefined, data: opts.data as string | undefined,
      iterations: opts.iterations !== undefined ? Number(opts.iterations) : undefined,
      seed: opts.seed !== undefined ? Number(opts.seed) : undefined,
    });
    if (opts.json) console.log(JSON.stringify({ ...r.metrics, mostPopular: r.baseline, secondsPerIteration: r.model.metrics.secondsPerIteration }));
    return 0;
  }
  if (cmd === "recommend") {
    if (typeof opts.user !== "string") usage();
    const m = loadAlsModel(target);
    const rec = m.recommend(opts.user, { k: opts.k !== undefined ? Number(opts.k) : 10 });
    if (opts.json) console.log(JSON.stringify(rec));
    else rec.items.forEach((id, j) => console.log(`${j + 1}\t${id}\t${rec.scores[j]!.toFixed(4)}`));
    return 0;
  }
  return usage();
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
  if (e instanceof RecblocksError) {
    process.stderr.write(`${e.message}\n`);
    for (const i of e.issues) {
      const at = i.source ? `  ${i.source.file}${i.source.line ? `:${i.source.line}:${i.source.column ?? 1}` : ""}` : "";
      process.stderr.write(`✖ ${i.path || "/"}${at}  [${i.code}]\n  ${i.message}${i.hint ? `\n  hint: ${i.hint}` : ""}\n`);
    }
    process.exit(1);
  }
  throw e;
});
