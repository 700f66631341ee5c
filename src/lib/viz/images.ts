import type { Box } from "../data/types";
import { ConfigError } from "../util";
import { defaultConfig, type Figure, type PlotTrace, roundSig } from "./figure";
import { checkImage, pngDataUri, shrinkImage, type VizImage } from "./png";

/**
 * A plotly `image` trace showing `img` in pixel coordinates of its full size: pixel (i, j) covers
 * x ∈ [j, j+1], y ∈ [i, i+1] (y down), even when the embedded PNG is shrunk to `maxSide`.
 */
function imageTrace(img: VizImage, maxSide: number, axis: { xaxis: string; yaxis: string }, name: string): PlotTrace {
  const small = shrinkImage(img, maxSide);
  const dx = img.width / small.width;
  const dy = img.height / small.height;
  return { type: "image", name, source: pngDataUri(small), x0: dx / 2, y0: dy / 2, dx, dy, hoverinfo: "x+y", ...axis };
}

function hiddenAxis(extra: Record<string, unknown>): Record<string, unknown> {
  return { showgrid: false, zeroline: false, showticklabels: false, ticks: "", ...extra };
}

/** Options of {@link frameGrid}. */
export interface FrameGridOptions {
  /** A title above each frame. */
  titles?: string[];
  /** Frames per row; default min(n, 4). */
  columns?: number;
  /** Embedded images are shrunk so their longer side is at most this (keeps notebooks small); default 256. */
  maxSide?: number;
  /** Height of one row in pixels; default 240. */
  rowHeight?: number;
  title?: string;
}

/**
 * Frames (8-bit HWC RGB) in a grid, each a plotly `image` trace whose PNG is encoded here and
 * inlined as a data URI.
 *
 * ```ts
 * import { show, frameGrid } from "l3kit";
 * show(frameGrid(frames, { titles: frames.map((_, i) => `t = ${i} s`), columns: 5 }));
 * ```
 */
export function frameGrid(frames: VizImage[], opts: FrameGridOptions = {}): Figure {
  if (frames.length === 0) throw new ConfigError("no frames to show", { subject: "frameGrid", reason: "empty" });
  for (const [i, f] of frames.entries()) checkImage(f, `frameGrid: frame ${i}`);
  if (opts.titles && opts.titles.length !== frames.length) {
    throw new ConfigError(`${opts.titles.length} titles for ${frames.length} frames`, { subject: "frameGrid", reason: "bad-shape" });
  }
  const cols = Math.max(1, Math.min(frames.length, Math.floor(opts.columns ?? 4)));
  const rows = Math.ceil(frames.length / cols);
  const gx = 0.02;
  const titleSpace = opts.titles ? 0.1 / rows : 0.02 / rows;
  const data: PlotTrace[] = [];
  const layout: Record<string, unknown> = {
    height: rows * (opts.rowHeight ?? 240) + (opts.title ? 40 : 10),
    margin: { l: 10, r: 10, t: opts.title ? 50 : 10, b: 10 },
    showlegend: false,
  };
  const annotations: Array<Record<string, unknown>> = [];
  frames.forEach((f, i) => {
    const k = i + 1;
    const r = Math.floor(i / cols);
    const c = i % cols;
    const xd = [roundSig(c / cols + gx / 2, 4), roundSig((c + 1) / cols - gx / 2, 4)];
    const yd = [roundSig(1 - (r + 1) / rows + 0.01, 4), roundSig(1 - r / rows - titleSpace, 4)];
    const xa = k === 1 ? "x" : `x${k}`;
    const ya = k === 1 ? "y" : `y${k}`;
    data.push(imageTrace(f, opts.maxSide ?? 256, { xaxis: xa, yaxis: ya }, opts.titles?.[i] ?? `frame ${i}`));
    layout[k === 1 ? "xaxis" : `xaxis${k}`] = hiddenAxis({ domain: xd, range: [0, f.width], anchor: ya });
    layout[k === 1 ? "yaxis" : `yaxis${k}`] = hiddenAxis({ domain: yd, range: [f.height, 0], anchor: xa, scaleanchor: xa });
    if (opts.titles) {
      annotations.push({
        text: opts.titles[i],
        showarrow: false,
        xref: "paper",
        yref: "paper",
        x: ((xd[0] ?? 0) + (xd[1] ?? 0)) / 2,
        y: yd[1],
        xanchor: "center",
        yanchor: "bottom",
        font: { size: 12 },
      });
    }
  });
  if (annotations.length) layout.annotations = annotations;
  if (opts.title) layout.title = { text: opts.title };
  return { data, layout, config: defaultConfig() };
}

/** A localization map: `data[row * width + col]`, any scale (higher = more likely the source). */
export interface VizMap {
  data: Float32Array;
  width: number;
  height: number;
}

/** Input of {@link localizationOverlay}. */
export interface LocalizationOverlayInput {
  frame: VizImage;
  map: VizMap;
  /** Ground-truth boxes of the sounding object(s), normalised x1, y1, x2, y2. */
  boxes?: Box[];
  /** Boxes of silent distractor objects (drawn dashed). */
  distractors?: Box[];
  /** Mark the map's maximum; default true. */
  peak?: boolean;
  title?: string;
  /** Opacity of the heatmap over the frame; default 0.5. */
  opacity?: number;
  /** Plotly colour scale of the map; default "Jet". */
  colorscale?: string;
  /** The embedded frame is shrunk to this longer side; default 320. */
  maxSide?: number;
  height?: number;
}

/** Where a map's maximum is, in the frame's pixel coordinates (cell centre), and its value. */
export function mapPeak(
  map: VizMap,
  frameWidth: number,
  frameHeight: number,
): { x: number; y: number; row: number; col: number; value: number } {
  let best = 0;
  let bestV = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < map.data.length; i++) {
    const v = map.data[i]!;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  const row = Math.floor(best / map.width);
  const col = best % map.width;
  const sx = frameWidth / map.width;
  const sy = frameHeight / map.height;
  return { x: (col + 0.5) * sx, y: (row + 0.5) * sy, row, col, value: bestV };
}

function checkBox(b: Box, subject: string): void {
  const ok = [b.x1, b.y1, b.x2, b.y2].every((v) => Number.isFinite(v) && v >= -0.01 && v <= 1.01) && b.x2 > b.x1 && b.y2 > b.y1;
  if (!ok) {
    throw new ConfigError(`box [${b.x1}, ${b.y1}, ${b.x2}, ${b.y2}] is not a normalised box with x1 < x2, y1 < y2`, {
      subject,
      reason: "bad-box",
    });
  }
}

/**
 * A frame with a localization map laid over it as a semi-transparent heatmap (each map cell
 * stretched over its share of the frame), ground-truth boxes as solid rectangles, distractor boxes
 * dashed, and the map's peak as a marker (named "peak (in box)" or "peak (outside box)" when boxes
 * are given: the pointing game). Coordinates are the frame's pixels: pixel (i, j) covers
 * x ∈ [j, j+1], y ∈ [i, i+1], y down.
 *
 * ```ts
 * import { show, localizationOverlay } from "l3kit";
 * show(localizationOverlay({ frame, map: { data: sim, width: 14, height: 14 }, boxes: row.boxes?.[0]?.sounding }));
 * ```
 */
export function localizationOverlay(input: LocalizationOverlayInput): Figure {
  const { frame, map } = input;
  checkImage(frame, "localizationOverlay: frame");
  if (
    !(Number.isInteger(map.width) && map.width > 0 && Number.isInteger(map.height) && map.height > 0) ||
    map.data.length !== map.width * map.height
  ) {
    throw new ConfigError(`map data has ${map.data.length} values for ${map.width}×${map.height}`, {
      subject: "localizationOverlay: map",
      reason: "bad-shape",
    });
  }
  const W = frame.width;
  const H = frame.height;
  const sx = W / map.width;
  const sy = H / map.height;
  const z: Array<Array<number | null>> = [];
  for (let r = 0; r < map.height; r++) {
    const row: Array<number | null> = [];
    for (let c = 0; c < map.width; c++) row.push(roundSig(map.data[r * map.width + c]!, 4));
    z.push(row);
  }
  const data: PlotTrace[] = [
    imageTrace(frame, input.maxSide ?? 320, { xaxis: "x", yaxis: "y" }, "frame"),
    {
      type: "heatmap",
      name: "map",
      z,
      x0: sx / 2,
      dx: sx,
      y0: sy / 2,
      dy: sy,
      opacity: input.opacity ?? 0.5,
      colorscale: input.colorscale ?? "Jet",
      zsmooth: "best",
      colorbar: { thickness: 12, len: 0.8 },
      hovertemplate: "x %{x:.0f}, y %{y:.0f}<br>%{z}<extra>map</extra>",
    },
  ];
  const shapes: Array<Record<string, unknown>> = [];
  const annotations: Array<Record<string, unknown>> = [];
  const addBox = (b: Box, i: number, kind: "box" | "distractor") => {
    checkBox(b, `localizationOverlay: ${kind} ${i}`);
    const colour = kind === "box" ? "#00e676" : "#ff9100";
    shapes.push({
      type: "rect",
      xref: "x",
      yref: "y",
      x0: roundSig(b.x1 * W, 6),
      y0: roundSig(b.y1 * H, 6),
      x1: roundSig(b.x2 * W, 6),
      y1: roundSig(b.y2 * H, 6),
      line: { color: colour, width: 2, dash: kind === "box" ? "solid" : "dash" },
      name: kind,
    });
    if (b.label) {
      annotations.push({
        text: b.label,
        x: b.x1 * W,
        y: b.y1 * H,
        xref: "x",
        yref: "y",
        xanchor: "left",
        yanchor: "bottom",
        showarrow: false,
        font: { color: colour, size: 11 },
      });
    }
  };
  for (const [i, b] of (input.boxes ?? []).entries()) addBox(b, i, "box");
  for (const [i, b] of (input.distractors ?? []).entries()) addBox(b, i, "distractor");
  if (input.peak ?? true) {
    const p = mapPeak(map, W, H);
    const boxes = input.boxes ?? [];
    let name = "peak";
    if (boxes.length) {
      const hit = boxes.some((b) => p.x >= b.x1 * W && p.x <= b.x2 * W && p.y >= b.y1 * H && p.y <= b.y2 * H);
      name = hit ? "peak (in box)" : "peak (outside box)";
    }
    data.push({
      type: "scatter",
      mode: "markers",
      name,
      x: [roundSig(p.x, 6)],
      y: [roundSig(p.y, 6)],
      marker: { symbol: "x", size: 14, color: "white", line: { color: "black", width: 2 } },
      hovertemplate: `${name}<br>x %{x:.0f}, y %{y:.0f}<br>value ${roundSig(p.value, 4)}<extra></extra>`,
    });
  }
  const layout: Record<string, unknown> = {
    height: input.height ?? 420,
    margin: { l: 10, r: 10, t: input.title ? 50 : 10, b: 10 },
    xaxis: hiddenAxis({ range: [0, W], constrain: "domain" }),
    yaxis: hiddenAxis({ range: [H, 0], scaleanchor: "x", constrain: "domain" }),
    shapes,
    showlegend: true,
    legend: { orientation: "h", y: -0.02, yanchor: "top" },
  };
  if (annotations.length) layout.annotations = annotations;
  if (input.title) layout.title = { text: input.title };
  return { data, layout, config: defaultConfig() };
}
