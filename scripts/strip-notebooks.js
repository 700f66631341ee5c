#!/usr/bin/env node
// Strips notebooks for committing: outputs, execution counts and per-run cell metadata go; cell ids
// are kept (and given to cells that lack one); the JSON is written the way Jupyter writes it
// (indent 1, trailing newline), so a stripped notebook is byte-stable.
//
//   node scripts/strip-notebooks.js [files...]          strip in place (default: notebooks/*.ipynb)
//   node scripts/strip-notebooks.js --check [files...]  exit 1 and name each notebook that is not stripped
//
// Also `npm run notebook -- strip [--check]`.
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");

/** Cell metadata written by runs (timings, scroll state); everything else (tags, …) is kept. */
const VOLATILE_CELL_METADATA = ["execution", "collapsed", "scrolled", "ExecuteTime"];

/** The stripped form of a parsed notebook (a new object). */
function stripNotebook(nb) {
  const used = new Set();
  const cells = (nb.cells ?? []).map((cell, i) => {
    const out = { ...cell };
    const metadata = { ...(cell.metadata ?? {}) };
    for (const k of VOLATILE_CELL_METADATA) delete metadata[k];
    out.metadata = metadata;
    if (cell.cell_type === "code") {
      out.execution_count = null;
      out.outputs = [];
    } else {
      delete out.outputs;
      delete out.execution_count;
    }
    if (typeof out.id !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(out.id) || used.has(out.id)) {
      let n = i + 1;
      while (used.has(`cell-${n}`)) n++;
      out.id = `cell-${n}`;
    }
    used.add(out.id);
    return out;
  });
  const metadata = { ...(nb.metadata ?? {}) };
  delete metadata.widgets;
  return { ...nb, cells, metadata, nbformat: 4, nbformat_minor: Math.max(5, nb.nbformat_minor ?? 5) };
}

/** Jupyter's on-disk JSON: one-space indent, keys as given, a trailing newline. */
function formatNotebook(nb) {
  return `${JSON.stringify(nb, null, 1)}\n`;
}

/** Problems that make a notebook "not stripped" (empty when it is clean). */
function notebookProblems(text) {
  let nb;
  try {
    nb = JSON.parse(text);
  } catch (err) {
    return [`not valid JSON: ${err.message}`];
  }
  const problems = [];
  (nb.cells ?? []).forEach((cell, i) => {
    if (cell.cell_type === "code" && (cell.outputs?.length ?? 0) > 0) problems.push(`cell ${i + 1} has ${cell.outputs.length} output(s)`);
    if (cell.cell_type === "code" && cell.execution_count != null) problems.push(`cell ${i + 1} has an execution count`);
    for (const k of VOLATILE_CELL_METADATA) if (cell.metadata && k in cell.metadata) problems.push(`cell ${i + 1} has metadata.${k}`);
  });
  if (problems.length === 0 && formatNotebook(stripNotebook(nb)) !== text)
    problems.push("not in the stripped layout (run the strip script)");
  return problems;
}

function defaultFiles() {
  const dir = path.join(root, "notebooks");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".ipynb"))
    .sort()
    .map((f) => path.join(dir, f));
}

function main(argv) {
  const check = argv.includes("--check");
  const files = argv.filter((a) => !a.startsWith("--")).map((f) => path.resolve(f));
  const list = files.length ? files : defaultFiles();
  let bad = 0;
  for (const file of list) {
    const rel = path.relative(process.cwd(), file);
    const text = fs.readFileSync(file, "utf8");
    if (check) {
      const problems = notebookProblems(text);
      if (problems.length) {
        bad++;
        console.error(
          `${rel}: not stripped: ${problems.slice(0, 3).join("; ")}${problems.length > 3 ? `; … (${problems.length} problems)` : ""}`,
        );
      }
      continue;
    }
    const stripped = formatNotebook(stripNotebook(JSON.parse(text)));
    if (stripped !== text) {
      fs.writeFileSync(file, stripped);
      console.log(`stripped ${rel} (${text.length} → ${stripped.length} bytes)`);
    }
  }
  if (check) {
    if (bad) console.error(`${bad} of ${list.length} notebook(s) carry outputs; run \`npm run notebook -- strip\``);
    else console.log(`${list.length} notebook(s) stripped`);
  }
  return bad ? 1 : 0;
}

module.exports = { stripNotebook, formatNotebook, notebookProblems };

if (require.main === module) process.exit(main(process.argv.slice(2)));
