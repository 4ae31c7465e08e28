#!/usr/bin/env node
// Generates, from schemas/ (the single source of truth):
//   schemas/blocks/index.schema.json, schemas/models/index.schema.json  (oneOf of every block / model file)
//   src/generated/**.ts                                                  (types, via json-schema-to-typescript)
// `--check` regenerates in memory and fails, naming each file that drifted, is missing or is stale.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";
import { tsImport } from "tsx/esm/api";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");
const { buildIndexSchema, checkMemberSchema } = await tsImport("../src/recipe/block-index.ts", import.meta.url);

const rel = (p) => relative(root, p).split("\\").join("/");
const readJson = (f) => JSON.parse(readFileSync(f, "utf8"));
const pascal = (id) => id.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join("");

function members(kind) {
  const dir = join(root, "schemas", kind);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".schema.json") && f !== "index.schema.json")
    .sort()
    .map((f) => ({ id: f.slice(0, -".schema.json".length), file: join(dir, f) }));
}

const blocks = members("blocks");
const models = members("models");
const serve = members("serve"); // HTTP request bodies (src/serve)
const problems = [];
for (const m of [...blocks, ...models]) {
  let s;
  try {
    s = readJson(m.file);
  } catch (err) {
    problems.push(`${rel(m.file)}: not valid JSON (${err.message})`);
    continue;
  }
  for (const p of checkMemberSchema(m.id, s, rel(m.file))) problems.push(`${p.file}: ${p.message}`);
}
if (problems.length) {
  process.stderr.write(`gen-types: schema files break the conventions (docs/design/schemas.md):\n${problems.map((p) => `  ${p}`).join("\n")}\n`);
  process.exit(1);
}

/** Every output file: path relative to root -> content. */
const outputs = new Map();
outputs.set("schemas/blocks/index.schema.json", JSON.stringify(buildIndexSchema("blocks", blocks.map((b) => b.id)), null, 2) + "\n");
outputs.set("schemas/models/index.schema.json", JSON.stringify(buildIndexSchema("models", models.map((b) => b.id)), null, 2) + "\n");

// Which schema file becomes which type in which module.
const units = [
  { file: join(root, "schemas/recipe.schema.json"), module: "recipe.ts", typeName: "Recipe" },
  { file: join(root, "schemas/feature-schema.schema.json"), module: "feature-schema.ts", typeName: "FeatureSchemaDoc" },
  ...blocks.map((b) => ({ file: b.file, module: `blocks/${b.id}.ts`, typeName: `${pascal(b.id)}Config` })),
  ...models.map((m) => ({ file: m.file, module: `models/${m.id}.ts`, typeName: `${pascal(m.id)}Config` })),
  ...serve.map((s) => ({ file: s.file, module: `serve/${s.id}.ts`, typeName: pascal(s.id) })),
];
const byFile = new Map(units.map((u) => [u.file, u]));
byFile.set(join(root, "schemas/blocks/index.schema.json"), { module: "blocks/index.ts", typeName: "BlockConfig" });
byFile.set(join(root, "schemas/models/index.schema.json"), { module: "models/index.ts", typeName: "PrebuiltModelConfig" });

function importPath(fromModule, toModule) {
  let p = relative(dirname(fromModule), toModule).split("\\").join("/").replace(/\.ts$/, ".js");
  if (!p.startsWith(".")) p = `./${p}`;
  return p;
}

/** Replace $refs into other schema files by named imports (tsType), so each type is declared once. */
function rewriteRefs(node, unit, imports) {
  if (Array.isArray(node)) return node.map((n) => rewriteRefs(n, unit, imports));
  if (!node || typeof node !== "object") return node;
  if (typeof node.$ref === "string" && !node.$ref.startsWith("#")) {
    const [path, fragment = ""] = node.$ref.split("#");
    const target = resolve(dirname(unit.file), path);
    const t = byFile.get(target);
    if (!t) throw new Error(`${rel(unit.file)}: $ref "${node.$ref}" points outside the known schema files`);
    let name = t.typeName;
    if (fragment) {
      let sub = readJson(target);
      for (const seg of fragment.split("/").filter(Boolean)) sub = sub?.[seg];
      if (!sub || typeof sub.title !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(sub.title)) {
        throw new Error(`${rel(unit.file)}: $ref "${node.$ref}" must point at a definition with a PascalCase "title" (its type name)`);
      }
      name = sub.title;
    }
    if (t.module !== unit.module) {
      const from = importPath(unit.module, t.module);
      if (!imports.has(from)) imports.set(from, new Set());
      imports.get(from).add(name);
    }
    const out = { tsType: name };
    if (node.description) out.description = node.description;
    return out;
  }
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === "const" || k === "enum" || k === "default" || k === "examples" ? v : rewriteRefs(v, unit, imports);
  return out;
}

const banner = (src) =>
  `/* eslint-disable */\n/**\n * GENERATED by scripts/gen-types.mjs from ${src}. DO NOT EDIT.\n * Change the schema and run \`npm run gen:types\`.\n */`;

for (const unit of units) {
  const imports = new Map();
  const schema = rewriteRefs(readJson(unit.file), unit, imports);
  schema.title = unit.typeName;
  delete schema.$schema;
  let ts = await compile(schema, unit.typeName, {
    bannerComment: banner(rel(unit.file)),
    cwd: dirname(unit.file),
    additionalProperties: false,
    unreachableDefinitions: true,
    declareExternallyReferenced: true,
    format: true,
    style: { printWidth: 120, singleQuote: false },
  });
  if (imports.size) {
    const lines = [...imports].sort(([a], [b]) => a.localeCompare(b)).map(([from, names]) => `import type { ${[...names].sort().join(", ")} } from "${from}";`);
    const cut = ts.indexOf("npm run gen:types`.\n */") + "npm run gen:types`.\n */".length;
    ts = `${ts.slice(0, cut)}\n\n${lines.join("\n")}${ts.slice(cut)}`;
  }
  outputs.set(`src/generated/${unit.module}`, ts);
}

function unionModule(kind, list, typeName) {
  const head = `${banner(`schemas/${kind}/*.schema.json`)}\n\n`;
  if (!list.length) {
    return `${head}/** No ${kind === "blocks" ? "block" : "prebuilt model"} schema exists yet: any object with a string \`type\`. */\nexport interface ${typeName} {\n  type: string;\n  [key: string]: unknown;\n}\n`;
  }
  const names = list.map((m) => `${pascal(m.id)}Config`);
  const imports = list.map((m, i) => `import type { ${names[i]} } from "./${m.id}.js";`).join("\n");
  const reexports = `export type { ${names.join(", ")} };`;
  const ids = `/** Every ${kind === "blocks" ? "block" : "prebuilt model"} type id. */\nexport type ${typeName.replace(/Config$/, "Type")} = ${typeName}["type"];`;
  return `${head}${imports}\n\n${reexports}\n\n/** Any ${kind === "blocks" ? "block" : "prebuilt model"} config, discriminated on \`type\`. */\nexport type ${typeName} =\n${names.map((n) => `  | ${n}`).join("\n")};\n\n${ids}\n`;
}
outputs.set("src/generated/blocks/index.ts", unionModule("blocks", blocks, "BlockConfig"));
outputs.set("src/generated/models/index.ts", unionModule("models", models, "PrebuiltModelConfig"));
outputs.set(
  "src/generated/index.ts",
  `${banner("schemas/")}\n\nexport type * from "./recipe.js";\nexport type { FeatureColumn, FeatureSchemaDoc, FeatureTag, ValueCount } from "./feature-schema.js";\nexport type * from "./blocks/index.js";\nexport type * from "./models/index.js";\n${serve.map((s) => `export type * from "./serve/${s.id}.js";\n`).join("")}`,
);

// Generated files on disk that no schema produces any more.
const stale = [];
function scan(dir) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) scan(p);
    else if (!outputs.has(rel(p))) stale.push(rel(p));
  }
}
scan(join(root, "src/generated"));

if (check) {
  const bad = [];
  for (const [file, content] of outputs) {
    const abs = join(root, file);
    if (!existsSync(abs)) bad.push(`${file}: missing`);
    else if (readFileSync(abs, "utf8") !== content) bad.push(`${file}: out of date`);
  }
  for (const f of stale) bad.push(`${f}: stale (no schema generates it)`);
  if (bad.length) {
    process.stderr.write(`check:types: generated files drifted from schemas/:\n${bad.map((b) => `  ${b}`).join("\n")}\nRun: npm run gen:types\n`);
    process.exit(1);
  }
  process.stdout.write(`check:types: ${outputs.size} generated files are up to date.\n`);
} else {
  let changed = 0;
  for (const [file, content] of outputs) {
    const abs = join(root, file);
    if (existsSync(abs) && readFileSync(abs, "utf8") === content) continue;
    mkdirSync(dirname(abs), { recursive: true });
    const tmp = `${abs}.tmp-${process.pid}`;
    writeFileSync(tmp, content);
    renameSync(tmp, abs);
    changed++;
    process.stdout.write(`gen:types: wrote ${file}\n`);
  }
  for (const f of stale) {
    rmSync(join(root, f));
    process.stdout.write(`gen:types: removed ${f}\n`);
  }
  process.stdout.write(`gen:types: ${outputs.size} files, ${changed} changed, ${stale.length} removed.\n`);
}
