/**
 * Static checks of the committed notebooks (no Jupyter needed): nbformat 4 with the tslab kernel
 * spec, outputs stripped, a profile switch, code that tslab can run (TypeScript 5.0 syntax, no
 * import.meta / __dirname / top-level `for await`, no shorthand property naming an earlier cell's
 * variable), and the cells type-checked together against the built package as tslab compiles them.
 * Executing them is `.ci/notebooks`' job (`npm run notebook -- execute --profile ci`).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as ts from "typescript";
import { repoRoot } from "../helpers";

interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  outputs?: unknown[];
  execution_count?: number | null;
  metadata?: Record<string, unknown>;
}
interface Notebook {
  cells: Cell[];
  metadata: { kernelspec?: { name?: string; language?: string; display_name?: string }; language_info?: { name?: string } };
  nbformat: number;
  nbformat_minor: number;
}

const strip = require(path.join(repoRoot, "scripts", "strip-notebooks.js")) as {
  notebookProblems(text: string): string[];
  stripNotebook(nb: unknown): Notebook;
  formatNotebook(nb: unknown): string;
};

const NOTEBOOKS = ["01-quickstart", "02-data-and-sampling", "03-train-avc", "04-localization", "05-kinetics-probe", "06-ablation-fusion"];
const dir = path.join(repoRoot, "notebooks");

function load(name: string): { text: string; nb: Notebook } {
  const text = readFileSync(path.join(dir, `${name}.ipynb`), "utf8");
  return { text, nb: JSON.parse(text) as Notebook };
}
const src = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
const codeCells = (nb: Notebook) => nb.cells.filter((c) => c.cell_type === "code").map(src);

test("notebooks/ holds exactly the six notebooks", () => {
  const files = readdirSync(dir).filter((f) => !f.startsWith("."));
  assert.deepEqual(
    files.filter((f) => f.endsWith(".ipynb")).sort(),
    NOTEBOOKS.map((n) => `${n}.ipynb`),
  );
});

for (const name of NOTEBOOKS) {
  describe(name, () => {
    test("is nbformat 4.5+ for the project's tslab kernel, with unique cell ids", () => {
      const { nb } = load(name);
      assert.equal(nb.nbformat, 4);
      assert.ok(nb.nbformat_minor >= 5, `nbformat_minor ${nb.nbformat_minor}`);
      assert.equal(nb.metadata.kernelspec?.name, "tslab");
      assert.equal(nb.metadata.kernelspec?.language, "typescript");
      const ids = nb.cells.map((c) => c.id);
      assert.ok(
        ids.every((id) => typeof id === "string" && /^[a-zA-Z0-9_-]{1,64}$/.test(id)),
        "every cell has a valid id",
      );
      assert.equal(new Set(ids).size, ids.length, "cell ids are unique");
      assert.equal(nb.cells[0]?.cell_type, "markdown", "opens with a markdown cell");
      assert.match(src(nb.cells[0] as Cell), /^# \d\d · /, "the first cell is the title");
    });

    test("is committed stripped (no outputs, counts or run metadata; stable layout)", () => {
      const { text } = load(name);
      assert.deepEqual(strip.notebookProblems(text), []);
    });

    test("has a profile switch at the top (L3KIT_NOTEBOOK_PROFILE, with a ci profile)", () => {
      const first = codeCells(load(name).nb)[0] ?? "";
      assert.match(first, /process\.env\.L3KIT_NOTEBOOK_PROFILE \?\? "small"/);
      assert.match(first, /\bci\b/);
      assert.match(first, /loadPlotly\(\)/, "sends plotly.js in the first cell");
    });

    test("only uses what tslab runs: l3kit (and its subpaths) / node: / tfjs imports, no import.meta, __dirname or top-level for await", () => {
      const cells = codeCells(load(name).nb);
      cells.forEach((code, i) => {
        const sf = ts.createSourceFile(`cell${i}.ts`, code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
        for (const st of sf.statements) {
          if (ts.isImportDeclaration(st)) {
            const from = (st.moduleSpecifier as ts.StringLiteral).text;
            assert.ok(/^(l3kit(\/[a-z]+)?|node:[a-z_/]+|@tensorflow\/tfjs)$/.test(from), `code cell ${i + 1}: import from "${from}"`);
          }
          if (ts.isForOfStatement(st) && st.awaitModifier) assert.fail(`code cell ${i + 1}: top-level for await (tslab does not wrap it)`);
        }
        assert.ok(!/import\.meta|__dirname|__filename/.test(code), `code cell ${i + 1} uses import.meta or __dirname`);
        const visit = (n: ts.Node): void => {
          const scoped = ts.isVariableDeclarationList(n) ? n.flags & ts.NodeFlags.BlockScoped : 0;
          if (scoped === ts.NodeFlags.Using || scoped === ts.NodeFlags.AwaitUsing) {
            assert.fail(`code cell ${i + 1}: a 'using' declaration (TypeScript 5.2; tslab compiles with 5.0)`);
          }
          if (ts.isDecorator(n)) assert.fail(`code cell ${i + 1}: a decorator`);
          ts.forEachChild(n, visit);
        };
        visit(sf);
      });
    });

    test("no shorthand property names a variable of an earlier cell (tslab leaves it undefined)", () => {
      const cells = codeCells(load(name).nb).map((code, i) =>
        ts.createSourceFile(`cell${i}.ts`, code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS),
      );
      const earlier = new Set<string>();
      cells.forEach((sf, i) => {
        const local = new Set<string>();
        const shorthand: string[] = [];
        const visit = (n: ts.Node): void => {
          if ((ts.isVariableDeclaration(n) || ts.isParameter(n) || ts.isBindingElement(n)) && ts.isIdentifier(n.name))
            local.add(n.name.text);
          if ((ts.isFunctionDeclaration(n) || ts.isClassDeclaration(n)) && n.name) local.add(n.name.text);
          if (ts.isShorthandPropertyAssignment(n)) shorthand.push(n.name.text);
          ts.forEachChild(n, visit);
        };
        visit(sf);
        for (const s of shorthand)
          assert.ok(
            !(earlier.has(s) && !local.has(s)),
            `code cell ${i + 1}: { ${s} } names cell-earlier variable "${s}"; write { ${s}: ${s} }`,
          );
        for (const st of sf.statements) {
          if (ts.isVariableStatement(st)) {
            for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) earlier.add(d.name.text);
          } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) && st.name) earlier.add(st.name.text);
        }
      });
    });
  });
}

const dist = path.join(repoRoot, "dist", "src", "lib", "index.d.ts");
const linked = path.join(repoRoot, "node_modules", "l3kit", "package.json");
test("every notebook's cells type-check together against the built l3kit, with tslab's compiler options", {
  skip: existsSync(dist) && existsSync(linked) ? false : "dist/ or node_modules/l3kit missing (npm install builds and links them)",
  timeout: 120_000,
}, () => {
  // tslab: module ESNext, moduleResolution node10, target ES2022, esModuleInterop, no strict (it ignores tsconfig)
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    esModuleInterop: true,
    resolveJsonModule: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  };
  const files = new Map<string, string>();
  for (const name of NOTEBOOKS) {
    // each notebook is one module: its cells in order, as tslab's kernel accumulates them
    files.set(path.join(repoRoot, "notebooks", `${name}.nb.ts`), `${codeCells(load(name).nb).join("\n")}\nexport {};\n`);
  }
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (f) => files.get(path.resolve(f)) ?? readFile(f);
  host.fileExists = (f) => files.has(path.resolve(f)) || fileExists(f);
  const program = ts.createProgram([...files.keys()], options, host);
  const problems = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.has(path.resolve(d.file.fileName)))
    .map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return `${path.basename(d.file!.fileName)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
  assert.deepEqual(
    problems,
    [],
    "notebook cells do not type-check against dist/ (notebooks import the built package: `npm run build` after changing src/)",
  );
});

test("the strip script strips outputs and run metadata, keeps ids, and is idempotent", () => {
  const executed = {
    cells: [
      { cell_type: "markdown", id: "m", metadata: {}, source: ["# t"] },
      {
        cell_type: "code",
        execution_count: 3,
        id: "c",
        metadata: { execution: { "iopub.status.busy": "x" }, tags: ["keep"] },
        outputs: [{ output_type: "stream", name: "stdout", text: ["hi\n"] }],
        source: ["1"],
      },
      { cell_type: "code", execution_count: null, metadata: {}, outputs: [], source: ["2"] },
    ],
    metadata: { kernelspec: { name: "tslab", language: "typescript", display_name: "x" } },
    nbformat: 4,
    nbformat_minor: 4,
  };
  const text = `${JSON.stringify(executed, null, 1)}\n`;
  assert.ok(strip.notebookProblems(text).length >= 3);
  const out = strip.stripNotebook(executed);
  assert.deepEqual(out.cells[1], {
    cell_type: "code",
    execution_count: null,
    id: "c",
    metadata: { tags: ["keep"] },
    outputs: [],
    source: ["1"],
  });
  assert.equal(out.cells[2]?.id, "cell-3", "a missing id is filled in");
  assert.equal(out.nbformat_minor, 5);
  const again = strip.formatNotebook(out);
  assert.deepEqual(strip.notebookProblems(again), []);
  assert.equal(strip.formatNotebook(strip.stripNotebook(JSON.parse(again))), again);
});
