/**
 * The public API: the root export list stays short and chosen (≤ 120 names, values and types
 * together, no CLI glue or internals), and every subpath in package.json "exports" (`l3kit/data`,
 * `l3kit/models`, …) resolves for `require`, for `import` and for the type checker. The resolution
 * checks need the built package (dist/, made by `npm install` / `npm run build`) and skip without it,
 * as the notebooks' type check does.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as ts from "typescript";
import { repoRoot } from "../helpers";

const MAX_ROOT_NAMES = 120;
const libDir = path.join(repoRoot, "src", "lib");

interface ExportTarget {
  types: string;
  require: string;
  import: string;
  default: string;
}
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  name: string;
  main: string;
  types: string;
  exports: Record<string, ExportTarget | string>;
  typesVersions?: Record<string, Record<string, string[]>>;
};

/** The folders of src/lib with a barrel (index.ts): each is a subpath. */
const folders = readdirSync(libDir, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(path.join(libDir, e.name, "index.ts")))
  .map((e) => e.name)
  .sort();
const specifiers = [pkg.name, ...folders.map((f) => `${pkg.name}/${f}`)];

/** The names a module exports (through `export *` and re-exports), split into values and types. */
function exportedNames(file: string): { values: string[]; types: string[] } {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  };
  const program = ts.createProgram([file], options);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  assert.ok(source, file);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  assert.ok(moduleSymbol, `${file} is a module`);
  const values: string[] = [];
  const types: string[] = [];
  for (const sym of checker.getExportsOfModule(moduleSymbol)) {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    (target.flags & ts.SymbolFlags.Value ? values : types).push(sym.name);
  }
  return { values: values.sort(), types: types.sort() };
}

test(`the root export list has at most ${MAX_ROOT_NAMES} names (values and types), none of them CLI glue or internals`, {
  timeout: 120_000,
}, () => {
  const { values, types } = exportedNames(path.join(libDir, "index.ts"));
  const all = [...values, ...types];
  assert.ok(all.length <= MAX_ROOT_NAMES, `the root exports ${all.length} names (${values.length} values, ${types.length} types)`);
  const glue = all.filter((n) => /Command|Internals$|^parse[A-Z]|Like$|^trace/.test(n));
  assert.deepEqual(glue, [], "CLI glue and internals belong in src/cli or a subpath, not the root");
  for (const name of ["embedAudio", "embedImage", "embedVideo", "buildL3Net", "loadModel", "trainAvc", "runProbeProtocol", "show"])
    assert.ok(values.includes(name), `the root exports ${name}`);
});

test("package.json exports the root and one subpath per src/lib folder, each with types, require and import into dist/", () => {
  assert.deepEqual(
    Object.keys(pkg.exports).sort(),
    [".", "./package.json", ...folders.map((f) => `./${f}`)].sort(),
    "one subpath per folder of src/lib that has an index.ts",
  );
  for (const [key, target] of Object.entries(pkg.exports)) {
    if (key === "./package.json") continue;
    assert.equal(typeof target, "object", key);
    const t = target as ExportTarget;
    const dir = key === "." ? "" : `${key.slice(2)}/`;
    assert.deepEqual(Object.keys(t), ["types", "require", "import", "default"], `${key}: "types" first, "default" last`);
    assert.equal(t.types, `./dist/src/lib/${dir}index.d.ts`, key);
    for (const c of ["require", "import", "default"] as const) assert.equal(t[c], `./dist/src/lib/${dir}index.js`, `${key} ${c}`);
  }
  assert.equal(pkg.main, "./dist/src/lib/index.js");
  assert.equal(pkg.types, "./dist/src/lib/index.d.ts");
  // moduleResolution node10 (tslab, older tools) ignores "exports": typesVersions gives it the subpaths' types
  assert.deepEqual(pkg.typesVersions, { "*": Object.fromEntries(folders.map((f) => [f, [`./dist/src/lib/${f}/index.d.ts`]])) });
});

const built = existsSync(path.join(repoRoot, "dist", "src", "lib", "index.js"));
const needsDist = { skip: built ? false : "dist/ missing (npm install or npm run build makes it)", timeout: 300_000 };

function node(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: repoRoot, encoding: "utf8", env: { ...process.env, L3KIT_QUIET: "1" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("every subpath resolves and loads with require() and with import(), with the same named exports", needsDist, () => {
  const script = `
    const specs = ${JSON.stringify(specifiers)};
    const out = {};
    for (const s of specs) {
      const viaRequire = require(s);
      out[s] = { file: require.resolve(s), names: Object.keys(viaRequire).sort() };
    }
    (async () => {
      for (const s of specs) {
        const m = await import(s);
        out[s].imported = Object.keys(m).filter((k) => !["default", "module.exports", "__esModule"].includes(k)).sort();
      }
      process.stdout.write(JSON.stringify(out));
      process.exit(0);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = node(["-e", script]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, { file: string; names: string[]; imported: string[] }>;
  for (const s of specifiers) {
    const o = out[s];
    assert.ok(o, s);
    const sub = s === pkg.name ? "" : `${s.slice(pkg.name.length + 1)}/`;
    assert.equal(path.relative(repoRoot, o.file), path.join("dist", "src", "lib", sub, "index.js"), `${s} resolves into dist/`);
    assert.ok(o.names.length > 0, `${s} exports something`);
    assert.deepEqual(o.imported, o.names, `${s}: import() sees the same named exports as require()`);
  }
  // and from an ES module (the "import" condition)
  const esm = node([
    "--input-type=module",
    "-e",
    `import { loadManifest } from "l3kit/data"; import { buildL3Net } from "l3kit"; import * as viz from "l3kit/viz";
    if (typeof loadManifest !== "function" || typeof buildL3Net !== "function" || typeof viz.show !== "function") process.exit(3);`,
  ]);
  assert.equal(esm.status, 0, esm.stderr);
});

test("every subpath's types resolve (node16/nodenext for require and import, bundler, and node10 through typesVersions)", needsDist, () => {
  const importer = path.join(repoRoot, "api-check.ts");
  const modes: Array<[string, ts.CompilerOptions, ts.ResolutionMode]> = [
    ["node16 require", { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }, ts.ModuleKind.CommonJS],
    ["node16 import", { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }, ts.ModuleKind.ESNext],
    ["nodenext import", { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }, ts.ModuleKind.ESNext],
    ["bundler", { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler }, undefined],
    ["node10", { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 }, undefined],
  ];
  for (const [label, options, mode] of modes) {
    for (const s of specifiers) {
      const r = ts.resolveModuleName(s, importer, options, ts.sys, undefined, undefined, mode);
      const sub = s === pkg.name ? "" : `${s.slice(pkg.name.length + 1)}/`;
      assert.equal(
        r.resolvedModule && path.relative(repoRoot, r.resolvedModule.resolvedFileName),
        path.join("dist", "src", "lib", sub, "index.d.ts"),
        `${label}: types of ${s}`,
      );
    }
  }
  // and a file that uses them type-checks (nodenext, as a consumer's ESM would)
  const code = `import { buildL3Net, type L3Net } from "l3kit";
import { AvcPairSampler } from "l3kit/data";
import { resolveL3Config } from "l3kit/models";
import { Trainer } from "l3kit/train";
import { show } from "l3kit/viz";
const model: L3Net = buildL3Net(resolveL3Config({ preset: "tiny" }));
export const used = [model, AvcPairSampler, Trainer, show];
`;
  const file = path.join(repoRoot, "api-check.mts");
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (f) => (path.resolve(f) === file ? code : readFile(f));
  host.fileExists = (f) => path.resolve(f) === file || fileExists(f);
  const program = ts.createProgram([file], options, host);
  const problems = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && path.resolve(d.file.fileName) === file)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  assert.deepEqual(problems, []);
});
