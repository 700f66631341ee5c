#!/usr/bin/env node
// `npm run notebook`            start JupyterLab (or Notebook) with the project's tslab kernel
// `npm run notebook -- execute [--out DIR] [--profile ci|small] [--timeout SEC] [nb.ipynb ...]`
//                               run notebooks headless with nbconvert (fails on any cell error)
// `npm run notebook -- strip [--check] [nb.ipynb ...]`
//                               strip outputs before committing (--check: fail if any notebook has them)
// The kernel spec is committed under jupyter/kernels/tslab; JUPYTER_PATH points Jupyter at it,
// so nothing is installed globally.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const env = { ...process.env, JUPYTER_PATH: [path.join(root, "jupyter"), process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter) };

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}
function help() {
  console.log(`Usage:
  npm run notebook                          start JupyterLab (or Jupyter Notebook) on notebooks/ with the tslab kernel
  npm run notebook -- execute [--out DIR] [--profile ci|small] [--timeout SEC] [files...]
                                            execute notebooks headless (default: notebooks/*.ipynb, output to out/notebooks);
                                            --profile sets L3KIT_NOTEBOOK_PROFILE (ci: tiny data, a few steps; small: default)
  npm run notebook -- strip [--check] [files...]
                                            strip outputs and run metadata (commit notebooks stripped); --check only reports

The kernel "TypeScript (l3kit, tslab)" is the project-local spec in jupyter/kernels/tslab (JUPYTER_PATH).
Notebooks import the built package: \`import { ... } from "l3kit"\` (npm install builds dist/).
Getting Jupyter: JupyterLab via pip/conda/pipx (\`pipx install jupyterlab\`); on Debian without PyPI,
\`apt-get install jupyter-notebook\` (classic Notebook) or \`apt-get install jupyter-nbconvert\` for headless runs.`);
}

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  help();
  process.exit(0);
}
if (args[0] === "strip") {
  const r = spawnSync(process.execPath, [path.join(__dirname, "strip-notebooks.js"), ...args.slice(1)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
if (!fs.existsSync(path.join(root, "dist", "src", "lib", "index.js"))) {
  console.error("notebook: dist/ is missing; run `npm run build` first (npm install does it).");
  process.exit(1);
}

if (args[0] === "execute") {
  let out = path.join(root, "out", "notebooks");
  let timeout = 900;
  const files = [];
  for (let i = 1; i < args.length; i++) {
    if (args[i] === "--out") out = path.resolve(args[++i]);
    else if (args[i] === "--timeout") timeout = Number(args[++i]);
    else if (args[i] === "--profile") env.L3KIT_NOTEBOOK_PROFILE = args[++i];
    else files.push(path.resolve(args[i]));
  }
  if (files.length === 0) {
    for (const f of fs.readdirSync(path.join(root, "notebooks")).sort())
      if (f.endsWith(".ipynb")) files.push(path.join(root, "notebooks", f));
  }
  if (!has("jupyter")) {
    console.error("notebook execute: `jupyter` not found; install Debian's jupyter-nbconvert (apt-get install jupyter-nbconvert).");
    process.exit(1);
  }
  fs.mkdirSync(out, { recursive: true });
  console.log(`notebook: profile ${env.L3KIT_NOTEBOOK_PROFILE ?? "small (default)"}, output to ${path.relative(root, out) || "."}`);
  let failed = 0;
  const report = [];
  for (const f of files) {
    const t0 = Date.now();
    console.log(`notebook: executing ${path.relative(root, f)} ...`);
    const r = spawnSync(
      "jupyter",
      [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        `--ExecutePreprocessor.timeout=${timeout}`,
        "--ExecutePreprocessor.kernel_name=tslab",
        `--output-dir=${out}`,
        f,
      ],
      { env, stdio: "inherit", cwd: root },
    );
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.status !== 0) {
      failed++;
      report.push(`  FAILED  ${secs.padStart(6)} s  ${path.basename(f)}`);
      console.error(`notebook: FAILED ${path.relative(root, f)} after ${secs} s`);
    } else {
      const size = fs.statSync(path.join(out, path.basename(f))).size;
      report.push(`  ok      ${secs.padStart(6)} s  ${(size / 1e6).toFixed(2).padStart(5)} MB  ${path.basename(f)}`);
      console.log(`notebook: ok ${path.relative(root, f)} in ${secs} s (${(size / 1024).toFixed(0)} KiB executed)`);
    }
  }
  console.log(`notebooks: ${files.length - failed} passed, ${failed} failed\n${report.join("\n")}`);
  process.exit(failed ? 1 : 0);
}

const app = has("jupyter-lab") ? ["lab"] : has("jupyter-notebook") ? ["notebook"] : null;
if (!app) {
  console.error("notebook: neither JupyterLab nor Jupyter Notebook was found.\n");
  help();
  process.exit(1);
}
const r = spawnSync("jupyter", [...app, "--notebook-dir", path.join(root, "notebooks"), ...args], { env, stdio: "inherit", cwd: root });
process.exit(r.status ?? 1);
