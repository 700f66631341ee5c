/**
 * Browser check of an executed notebook: nbconvert → HTML → headless Chromium (playwright-core),
 * asserting that every plotly figure really drew (an SVG with traces, lines, images or heatmaps in
 * each plot's div), that the learning curves and a localization overlay are there, and saving a
 * screenshot. Skipped with a reason when Chromium, jupyter or the executed notebook is missing; `.ci/notebooks` runs it after executing the notebooks with L3KIT_RENDER_REQUIRED=1,
 * which turns every skip into a failure.
 *
 * Environment:
 * - L3KIT_RENDER_NOTEBOOK: the executed notebook (default out/notebooks/01-quickstart.ipynb)
 * - L3KIT_RENDER_OUT: where the HTML and screenshot go (default: the notebook's folder)
 * - L3KIT_RENDER_ALL=1: also check that every figure draws in the other executed notebooks there
 * - L3KIT_CHROMIUM: the browser (default /usr/bin/chromium; playwright-core drives it, no bundled browser)
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { repoRoot } from "../helpers";

const notebook = path.resolve(repoRoot, process.env.L3KIT_RENDER_NOTEBOOK ?? path.join("out", "notebooks", "01-quickstart.ipynb"));
const outDir = path.resolve(repoRoot, process.env.L3KIT_RENDER_OUT ?? path.dirname(notebook));
const chromiumPath = process.env.L3KIT_CHROMIUM ?? "/usr/bin/chromium";
const required = process.env.L3KIT_RENDER_REQUIRED === "1";
/** The gzip+base64 plotly bundle is ≈2.6 MB; a notebook with five figures must stay under this. */
const MAX_EXECUTED_BYTES = 5 * 1024 * 1024;

function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Why the browser check cannot run here, or false. */
function missing(): string | false {
  if (!existsSync(chromiumPath)) return `no Chromium at ${chromiumPath} (apt-get install chromium, or set L3KIT_CHROMIUM)`;
  if (!hasCommand("jupyter")) return "jupyter not found (apt-get install jupyter-nbconvert)";
  if (!existsSync(notebook)) {
    return `executed notebook ${path.relative(repoRoot, notebook)} not found (run \`npm run notebook -- execute --profile ci\` first)`;
  }
  return false;
}

const reason = missing();
/** Skip with the reason, except under L3KIT_RENDER_REQUIRED=1, where the test runs and fails on it. */
const opts = { skip: required ? false : reason, timeout: 300_000 };

/** nbconvert's HTML of an executed notebook, written into outDir. */
function toHtml(ipynb: string): string {
  mkdirSync(outDir, { recursive: true });
  const r = spawnSync("jupyter", ["nbconvert", "--to", "html", `--output-dir=${outDir}`, ipynb], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `nbconvert --to html failed for ${ipynb}:\n${r.stderr}`);
  const html = path.join(outDir, `${path.basename(ipynb, ".ipynb")}.html`);
  assert.ok(existsSync(html), `nbconvert wrote no ${html}`);
  return html;
}

/** What each l3kit plot div holds once plotly drew it (evaluated in the page). */
interface PlotInfo {
  svgs: number;
  traces: number;
  lines: number;
  images: number;
  heatmaps: number;
  bars: number;
  text: string;
  failed: string;
}
const INSPECT = `[...document.querySelectorAll(".l3kit-plot")].map((d) => ({
  svgs: d.querySelectorAll("svg.main-svg").length,
  traces: d.querySelectorAll("g.trace, g.hm, g.im").length,
  lines: [...d.querySelectorAll("path.js-line")].filter((p) => (p.getAttribute("d") || "").length > 10).length,
  images: [...d.querySelectorAll("g.im image, g.imagelayer image")].filter((i) => (i.getAttribute("href") || i.getAttribute("xlink:href") || "").startsWith("data:image/png")).length,
  heatmaps: d.querySelectorAll("g.hm image").length,
  bars: [...d.querySelectorAll("g.bars path, g.point path")].filter((p) => (p.getAttribute("d") || "").length > 5).length,
  text: [...d.querySelectorAll("text")].map((t) => t.textContent).join("|"),
  failed: d.textContent.includes("plotly.js is not loaded") ? "plotly.js not loaded" : "",
}))`;
/** True once every plot div has an SVG (or a figure script gave up); at once for a page without plots. */
const ALL_DRAWN = `(() => { const d = [...document.querySelectorAll(".l3kit-plot")]; return d.every((x) => x.querySelector("svg.main-svg") || x.textContent.includes("plotly.js is not loaded")); })()`;

async function openRendered(browser: Browser, html: string, errors: string[]): Promise<{ page: Page; plots: PlotInfo[] }> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(pathToFileURL(html).href, { waitUntil: "load", timeout: 60_000 });
  await page.waitForFunction(ALL_DRAWN, undefined, { timeout: 90_000 });
  return { page, plots: await page.evaluate<PlotInfo[]>(INSPECT) };
}

function assertAllDrawn(name: string, plots: PlotInfo[], errors: string[]): void {
  plots.forEach((p, i) => {
    assert.equal(p.failed, "", `${name}: plot ${i + 1} did not draw: ${p.failed}`);
    assert.ok(p.svgs >= 1, `${name}: plot ${i + 1} has no SVG`);
    assert.ok(
      p.traces >= 1 && p.lines + p.images + p.heatmaps + p.bars >= 1,
      `${name}: plot ${i + 1} has an SVG but nothing drawn in it: ${JSON.stringify(p)}`,
    );
  });
  assert.deepEqual(errors, [], `${name}: script errors in the page`);
}

test(
  "an executed notebook renders in headless Chromium: every plot draws, with learning curves and a localization overlay",
  opts,
  async () => {
    if (reason) assert.fail(`L3KIT_RENDER_REQUIRED=1 but: ${reason}`);
    assert.ok(
      statSync(notebook).size < MAX_EXECUTED_BYTES,
      `${notebook} is ${statSync(notebook).size} bytes (limit ${MAX_EXECUTED_BYTES})`,
    );
    const html = toHtml(notebook);
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ["--no-sandbox"],
    });
    try {
      const errors: string[] = [];
      const { page, plots } = await openRendered(browser, html, errors);
      assert.ok(plots.length > 0, `${path.basename(notebook)}: no l3kit plot in the page`);
      assertAllDrawn(path.basename(notebook), plots, errors);
      const curves = plots.filter((p) => p.lines >= 1 && p.text.includes("loss") && p.text.includes("accuracy"));
      assert.ok(curves.length >= 1, `no learning-curve plot (lines under "loss" and "accuracy") among ${plots.length} plots`);
      const overlays = plots.filter((p) => p.images >= 1 && p.heatmaps >= 1 && p.text.includes("peak"));
      assert.ok(overlays.length >= 1, `no localization overlay (frame image + heatmap + peak marker) among ${plots.length} plots`);
      // the screenshot: outputs only (code cells hidden), so the curves and overlays fit in one image
      await page.addStyleTag({ content: ".jp-CodeCell .jp-Cell-inputWrapper, div.input { display: none !important; }" });
      const png = path.join(outDir, `${path.basename(notebook, ".ipynb")}.png`);
      await page.screenshot({ path: png, fullPage: true });
      assert.ok(statSync(png).size > 20_000, `screenshot ${png} is suspiciously small`);
    } finally {
      await browser.close();
    }
  },
);

test("every figure draws in the other executed notebooks (L3KIT_RENDER_ALL=1)", {
  ...opts,
  skip: opts.skip || (process.env.L3KIT_RENDER_ALL === "1" ? false : "set L3KIT_RENDER_ALL=1 to check every executed notebook"),
}, async () => {
  if (reason) assert.fail(`L3KIT_RENDER_REQUIRED=1 but: ${reason}`);
  const dir = path.dirname(notebook);
  const others = readdirSync(dir)
    .filter((f) => f.endsWith(".ipynb") && path.join(dir, f) !== notebook)
    .sort()
    .map((f) => path.join(dir, f));
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox"],
  });
  try {
    for (const nb of others) {
      assert.ok(statSync(nb).size < MAX_EXECUTED_BYTES, `${nb} is ${statSync(nb).size} bytes (limit ${MAX_EXECUTED_BYTES})`);
      const errors: string[] = [];
      const { plots } = await openRendered(browser, toHtml(nb), errors);
      assertAllDrawn(path.basename(nb), plots, errors);
    }
  } finally {
    await browser.close();
  }
});
