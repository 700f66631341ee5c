import * as path from "node:path";
import { type Displayable, type Figure, isFigure } from "./figure";
import { figureHtml, type PlotlyEmbed, plotlyLoaderHtml } from "./plotly";

/** One notebook output that can be replaced in place (tslab's `newDisplay()`). */
export interface VizDisplay {
  html(html: string): void;
}

/** Where `show` sends HTML: tslab's display in a notebook, or a test's recorder. */
export interface VizDisplaySink {
  /** Adds a new `text/html` output to the running cell. */
  html(html: string): void;
  /** A handle on a new output that later calls replace (update_display_data). */
  newDisplay(): VizDisplay;
}

let override: VizDisplaySink | null | undefined;
let plotlyShown = false;
let embedMode: PlotlyEmbed = "gzip";

interface TslabPublic {
  display: { html(s: string): void };
  newDisplay(): { html(s: string): void };
}

/**
 * The tslab kernel's display when this process is a running tslab kernel, else null. Found by
 * looking for tslab's `dist/jupyter.js` in the module cache with its output writer set, so plain
 * node never loads tslab (and its TypeScript compiler).
 */
function tslabSink(): VizDisplaySink | null {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!file.endsWith(`${path.sep}tslab${path.sep}dist${path.sep}jupyter.js`)) continue;
    const exp = mod?.exports as { lastWriteDisplayData?: unknown } | undefined;
    if (typeof exp?.lastWriteDisplayData !== "function") continue;
    const pub = require(path.join(path.dirname(file), "public.js")) as TslabPublic;
    return {
      html: (s) => pub.display.html(s),
      newDisplay: () => {
        const d = pub.newDisplay();
        return { html: (s) => d.html(s) };
      },
    };
  }
  return null;
}

/**
 * Replaces where `show` writes: a sink (tests, or another front-end), `null` for "not in a
 * notebook", or `undefined` to detect tslab again (the default). Also forgets whether plotly.js
 * was already sent.
 */
export function setDisplaySink(sink: VizDisplaySink | null | undefined): void {
  override = sink;
  plotlyShown = false;
}

/** The sink `show` uses now (null outside a notebook). */
export function currentDisplaySink(): VizDisplaySink | null {
  return override !== undefined ? override : tslabSink();
}

/** True when `show` would display into a notebook (a tslab kernel, or a sink was set). */
export function inNotebook(): boolean {
  return currentDisplaySink() !== null;
}

/**
 * Sends the plotly.js loader into the notebook as its own output, once per kernel session (or
 * again with `force`). `show` calls it before the first figure; call it yourself in a notebook's
 * first cell to keep the bundle there, so re-running a later cell never drops it from the saved
 * notebook: `import { loadPlotly } from "l3kit"; loadPlotly();`. `embed` chooses gzip (≈2.6 MB,
 * default) or plain inline (10.1 MB) and applies to later calls too. Returns true if it sent it.
 */
export function loadPlotly(opts: { force?: boolean; embed?: PlotlyEmbed } = {}): boolean {
  if (opts.embed) embedMode = opts.embed;
  const sink = currentDisplaySink();
  if (!sink || (plotlyShown && !opts.force)) return false;
  sink.html(plotlyLoaderHtml({ embed: embedMode }));
  plotlyShown = true;
  return true;
}

function notice(what: string): void {
  if (process.env.L3KIT_QUIET === "1") return;
  console.log(`[l3kit viz] ${what} (not in a notebook: nothing shown; use saveHtml() to write an HTML file)`);
}

function describe(item: Displayable): string {
  if (!isFigure(item)) return "HTML fragment";
  const t = item.layout.title;
  const text = typeof t === "string" ? t : typeof t === "object" && t !== null ? (t as { text?: unknown }).text : undefined;
  return `figure${typeof text === "string" ? ` "${text}"` : ""} with ${item.data.length} trace(s)`;
}

/**
 * Displays a figure or an HTML fragment in the notebook (tslab). plotly.js goes out once per
 * kernel session, before the first figure; later figures are only a `<div>` and a
 * `Plotly.newPlot` call that waits for plotly.js, so a saved notebook stays small and renders
 * offline (in nbconvert HTML and trusted Notebook/JupyterLab). Outside a notebook it prints one
 * line and returns.
 *
 * ```ts
 * import { show, learningCurves, readMetricsJsonl } from "l3kit";
 * show(learningCurves(await readMetricsJsonl("runs/avc-lite/metrics.jsonl")));
 * ```
 */
export function show(item: Displayable | Displayable[]): void {
  const items = Array.isArray(item) ? item : [item];
  const sink = currentDisplaySink();
  if (!sink) {
    for (const it of items) notice(describe(it));
    return;
  }
  for (const it of items) {
    if (isFigure(it)) {
      loadPlotly();
      sink.html(figureHtml(it));
    } else {
      sink.html(it);
    }
  }
}

/**
 * A figure shown in one notebook output that can be redrawn in place (update_display_data):
 * `update(fig)` replaces the output, so the saved notebook keeps only the last state.
 */
export class LiveFigure {
  private display: VizDisplay | null = null;

  /** Draws (first call) or redraws the figure; returns false outside a notebook. */
  update(fig: Figure): boolean {
    const sink = currentDisplaySink();
    if (!sink) return false;
    if (!this.display) {
      loadPlotly();
      this.display = sink.newDisplay();
    }
    this.display.html(figureHtml(fig));
    return true;
  }

  /** True once the figure has been displayed. */
  get shown(): boolean {
    return this.display !== null;
  }
}

/** Exported for tests: true when the plotly.js loader has been sent in this session. */
export function plotlyLoaderSent(): boolean {
  return plotlyShown;
}
