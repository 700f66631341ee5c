import { randomBytes } from "node:crypto";

/** One plotly trace, as plain JSON (`{ type: "scatter", x: [...], y: [...] }`). */
export type PlotTrace = Record<string, unknown>;

/**
 * A plotly figure as plain JSON: what `Plotly.newPlot(div, data, layout, config)` takes.
 * Every builder in `l3kit`'s viz folder returns one; show it with `show(fig)` in a notebook or
 * write it with `saveHtml(fig, "out/fig.html")`. Edit it freely before showing
 * (`fig.layout.title = { text: "run 3" }`).
 */
export interface Figure {
  data: PlotTrace[];
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** A figure or a ready HTML fragment (from `tableHtml`, `audioPlayer`, …). */
export type Displayable = Figure | string;

/** True when the value looks like a {@link Figure}. */
export function isFigure(x: unknown): x is Figure {
  return typeof x === "object" && x !== null && Array.isArray((x as Figure).data) && typeof (x as Figure).layout === "object";
}

/** The default plotly config for l3kit figures: responsive, no plotly logo. */
export function defaultConfig(): Record<string, unknown> {
  return { responsive: true, displaylogo: false };
}

/** Rounds to `sig` significant digits (keeps figure JSON small); non-finite values become null. */
export function roundSig(x: number, sig = 4): number | null {
  if (!Number.isFinite(x)) return null;
  if (x === 0) return 0;
  return Number(x.toPrecision(sig));
}

/** A fresh element id for a figure's div. */
export function newDivId(): string {
  return `l3kit-plot-${randomBytes(6).toString("hex")}`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** JSON safe to place inside a `<script>` element (no `</script>`, `<!--`, or U+2028/2029). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
