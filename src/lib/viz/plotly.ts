import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { L3kitError, writeFileAtomic } from "../util";
import { type Displayable, defaultConfig, escapeHtml, type Figure, isFigure, newDivId, scriptJson } from "./figure";

/**
 * How plotly.js is put into a page:
 * - `"gzip"` (default): the bundle gzip-compressed and base64-encoded (≈2.6 MB for plotly.js-dist
 *   4.1, ≈2.0 MB for plotly.js-dist-min), unpacked in the browser with `DecompressionStream`
 *   (Chrome/Edge 80+, Firefox 113+, Safari 16.4+);
 * - `"inline"`: the bundle as a plain `<script>` (10.1 MB, or 4.8 MB minified): works in any browser.
 */
export type PlotlyEmbed = "gzip" | "inline";

interface Bundle {
  file: string;
  source: string;
  version: string;
  gzipB64?: string;
}

let bundle: Bundle | undefined;

/**
 * The plotly.js bundle this process embeds: `plotly.js-dist-min` when it is installed (4.8 MB),
 * else `plotly.js-dist` (10.1 MB, unminified).
 */
export function plotlyBundle(): { file: string; version: string; bytes: number } {
  const b = loadBundle();
  return { file: b.file, version: b.version, bytes: Buffer.byteLength(b.source) };
}

function loadBundle(): Bundle {
  if (bundle) return bundle;
  const tried: string[] = [];
  for (const spec of ["plotly.js-dist-min", "plotly.js-dist"]) {
    let file: string;
    try {
      file = require.resolve(spec);
    } catch {
      tried.push(spec);
      continue;
    }
    const source = readFileSync(file, "utf8");
    const version = /plotly\.js v([0-9][^\s*]*)/.exec(source.slice(0, 300))?.[1] ?? "unknown";
    bundle = { file, source, version };
    return bundle;
  }
  throw new L3kitError(`cannot find plotly.js (tried ${tried.join(", ")}); install plotly.js-dist`, {
    subject: "viz",
    reason: "missing-plotly",
  });
}

/** Runs the queue of figures that were waiting for plotly.js (set by figure scripts). */
const FLUSH_JS =
  "function(){w.__l3kitPlotlyLoading=false;var q=w.__l3kitQ||[];w.__l3kitQ=[];for(var i=0;i<q.length;i++){try{q[i]()}catch(e){console.error(e)}}}";

/**
 * The `<script>` that loads plotly.js into a page once (guarded by `if (!window.Plotly)`) and then
 * draws any l3kit figure that was waiting for it. Put it before (or anywhere around) figures made
 * with `figureHtml(fig, { includePlotly: false })`.
 */
export function plotlyLoaderHtml(opts: { embed?: PlotlyEmbed } = {}): string {
  return loaderHtmlFor(loadBundle(), opts.embed ?? "gzip");
}

/**
 * The loader `<script>` for a given library source (the plotly bundle, or a stand-in in tests).
 * The source must set `window.Plotly` when run as a classic script.
 */
export function loaderHtmlFor(b: { source: string; version: string; gzipB64?: string }, embed: PlotlyEmbed): string {
  if (embed === "inline") {
    // `</script` and `<!--` occur only inside string literals, where `<\/` and `<\!` read the same:
    // this keeps the HTML parser from ending (or escaping) the script element early.
    const source = b.source.replace(/<\/script/gi, "<\\/script").replace(/<!--/g, "<\\!--");
    return (
      `<script type="text/javascript">/* plotly.js v${b.version} (inline) */\nif(!window.Plotly){\n${source}\n}</script>\n` +
      `<script type="text/javascript">(function(){var w=window;(${FLUSH_JS})()})();</script>`
    );
  }
  b.gzipB64 ??= gzipSync(Buffer.from(b.source, "utf8"), { level: 9 }).toString("base64");
  return (
    `<script type="text/javascript">/* plotly.js v${b.version} (gzip, base64) */\n(function(){var w=window;` +
    "if(w.Plotly||w.__l3kitPlotlyLoading)return;w.__l3kitPlotlyLoading=true;" +
    `var done=${FLUSH_JS};` +
    "function fail(e){w.__l3kitPlotlyLoading=false;console.error('l3kit: could not unpack plotly.js (this browser may lack DecompressionStream)',e);}" +
    "function run(src){var s=document.createElement('script');s.text=src;(document.head||document.documentElement).appendChild(s);" +
    "if(!w.Plotly){(0,eval)(src);}done();}" +
    `try{var b64="${b.gzipB64}";` +
    "var bin=atob(b64),u=new Uint8Array(bin.length);for(var i=0;i<bin.length;i++)u[i]=bin.charCodeAt(i);" +
    "new Response(new Blob([u]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(run,fail);" +
    "}catch(e){fail(e);}})();</script>"
  );
}

/** Options of {@link figureHtml}. */
export interface FigureHtmlOptions {
  /** Put the plotly.js loader before the figure (a self-contained fragment). Default false. */
  includePlotly?: boolean;
  /** How to embed plotly.js when `includePlotly`; default "gzip". */
  embed?: PlotlyEmbed;
  /** The id of the figure's `<div>`; a random one by default. */
  divId?: string;
}

/**
 * The HTML of one figure: a `<div>` and a script that calls `Plotly.newPlot` on it as soon as
 * `window.Plotly` exists (at once, or when the loader has unpacked it, or by polling for up to
 * 2 minutes when plotly.js comes from elsewhere). With `includePlotly: true` the fragment also
 * carries the loader, so it works on its own.
 */
export function figureHtml(fig: Figure, opts: FigureHtmlOptions = {}): string {
  const id = opts.divId ?? newDivId();
  const layout = fig.layout ?? {};
  const height = typeof layout.height === "number" ? `${layout.height}px` : "450px";
  const width = typeof layout.width === "number" ? `${layout.width}px` : "100%";
  const payload = { data: fig.data, layout, config: { ...defaultConfig(), ...(fig.config ?? {}) } };
  const script =
    `(function(){var w=window,id=${scriptJson(id)},fig=${scriptJson(payload)},done=false,n=0,t=null;` +
    "function draw(){if(done||!w.Plotly)return;done=true;if(t)clearInterval(t);var el=document.getElementById(id);" +
    "if(el)w.Plotly.newPlot(el,fig.data,fig.layout,fig.config);}" +
    "if(w.Plotly){draw();}else{(w.__l3kitQ=w.__l3kitQ||[]).push(draw);t=setInterval(function(){if(w.Plotly){draw();}" +
    "else if(++n>1200){clearInterval(t);var el=document.getElementById(id);" +
    "if(el&&!done)el.textContent='plotly.js is not loaded on this page: call loadPlotly({ force: true }) from l3kit, then show the figure again.';}},100);}" +
    "})();";
  const div = `<div id="${escapeHtml(id)}" class="l3kit-plot" style="width:${width};height:${height};"></div>`;
  const html = `${div}\n<script type="text/javascript">${script}</script>`;
  return opts.includePlotly ? `${plotlyLoaderHtml({ embed: opts.embed })}\n${html}` : html;
}

/** A complete offline HTML page: plotly.js once, then each figure or HTML fragment in order. */
export function pageHtml(items: Displayable | Displayable[], opts: { title?: string; embed?: PlotlyEmbed } = {}): string {
  const list = Array.isArray(items) ? items : [items];
  const needsPlotly = list.some(isFigure);
  const title = opts.title ?? "l3kit figures";
  const body = list.map((it) => (isFigure(it) ? figureHtml(it) : it)).join("\n");
  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${escapeHtml(title)}</title>\n` +
    "<style>body{font-family:system-ui,sans-serif;margin:24px;}h1{font-size:20px;font-weight:600;}</style>\n" +
    `${needsPlotly ? plotlyLoaderHtml({ embed: opts.embed }) : ""}\n</head>\n<body>\n` +
    (opts.title ? `<h1>${escapeHtml(opts.title)}</h1>\n` : "") +
    `${body}\n</body>\n</html>\n`
  );
}

/**
 * Writes figures (and HTML fragments such as `tableHtml(...)`) to a standalone offline HTML page,
 * with plotly.js inlined once, atomically. From a notebook or an experiment:
 * `await saveHtml([learningCurves(rows), tableHtml(results)], "runs/x/report.html", { title: "x" })`.
 */
export async function saveHtml(
  items: Displayable | Displayable[],
  path: string,
  opts: { title?: string; embed?: PlotlyEmbed } = {},
): Promise<void> {
  await writeFileAtomic(path, pageHtml(items, opts));
}
