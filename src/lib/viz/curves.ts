import type { MetricsRow } from "../train";
import { LiveFigure, show } from "./display";
import { defaultConfig, type Figure, type PlotTrace, roundSig } from "./figure";

/**
 * One row of a training run's `metrics.jsonl` as {@link learningCurves} reads it
 * (the train module's `readMetricsJsonl` reads the file): any field but `step` may be missing.
 */
export type LearningCurveRow = Pick<MetricsRow, "step"> & Partial<Omit<MetricsRow, "step">>;

/** Options of {@link learningCurves}. */
export interface LearningCurvesOptions {
  /** What the x axis shows; default "step". Rows without that field are skipped. */
  x?: "step" | "epoch";
  /** Exponential moving average of the training series (0 = none, 0.9 = strong); the raw series stays, faint. */
  smooth?: number;
  /** Add a third panel with the learning rate (log scale) when rows have `lr`. Default false. */
  showLr?: boolean;
  title?: string;
  /** Figure height in pixels; default 380. */
  height?: number;
}

const TRAIN_COLOUR = "#1f77b4";
const VAL_COLOUR = "#d62728";

function series(rows: LearningCurveRow[], xKey: "step" | "epoch", key: string): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (const r of rows) {
    const xv = r[xKey];
    const yv = (r as Record<string, unknown>)[key];
    if (typeof xv === "number" && Number.isFinite(xv) && typeof yv === "number" && Number.isFinite(yv)) {
      x.push(xv);
      y.push(yv);
    }
  }
  return { x, y };
}

function ema(y: number[], alpha: number): number[] {
  const out: number[] = [];
  let m = 0;
  let w = 0;
  for (const v of y) {
    m = alpha * m + (1 - alpha) * v;
    w = alpha * w + (1 - alpha);
    out.push(m / w); // bias-corrected, like TensorBoard's smoothing
  }
  return out;
}

function round(ys: number[]): Array<number | null> {
  return ys.map((v) => roundSig(v, 5));
}

/**
 * Loss and accuracy curves, train vs validation, side by side (left: loss, right: accuracy;
 * optional third panel: learning rate). Traces are named "train loss", "val loss",
 * "train accuracy", "val accuracy" (and "lr"); a series with no finite value is left out.
 *
 * ```ts
 * import { show, learningCurves, readMetricsJsonl } from "l3kit";
 * show(learningCurves(await readMetricsJsonl("runs/avc/metrics.jsonl"), { smooth: 0.8 }));
 * ```
 */
export function learningCurves(metrics: LearningCurveRow[], opts: LearningCurvesOptions = {}): Figure {
  const xKey = opts.x ?? "step";
  const smooth = opts.smooth ?? 0;
  const panels = opts.showLr && metrics.some((r) => typeof r.lr === "number") ? 3 : 2;
  const gap = 0.08;
  const width = (1 - gap * (panels - 1)) / panels;
  const domain = (i: number) => [roundSig(i * (width + gap), 4), roundSig(i * (width + gap) + width, 4)];
  const data: PlotTrace[] = [];
  const add = (key: string, name: string, colour: string, axis: number, isTrain: boolean) => {
    const s = series(metrics, xKey, key);
    if (s.x.length === 0) return;
    const ax = axis === 1 ? { xaxis: "x", yaxis: "y" } : { xaxis: `x${axis}`, yaxis: `y${axis}` };
    const mode = s.x.length === 1 ? "markers" : isTrain ? "lines" : "lines+markers";
    if (isTrain && smooth > 0 && s.x.length > 1) {
      data.push({
        type: "scatter",
        mode: "lines",
        name: `${name} (raw)`,
        x: s.x,
        y: round(s.y),
        ...ax,
        opacity: 0.3,
        showlegend: false,
        line: { color: colour, width: 1 },
        legendgroup: name,
        hoverinfo: "skip",
      });
      data.push({
        type: "scatter",
        mode,
        name,
        x: s.x,
        y: round(ema(s.y, smooth)),
        ...ax,
        line: { color: colour, width: 2 },
        legendgroup: name,
      });
    } else {
      data.push({
        type: "scatter",
        mode,
        name,
        x: s.x,
        y: round(s.y),
        ...ax,
        line: { color: colour, width: 2 },
        marker: { size: 5 },
        legendgroup: name,
      });
    }
  };
  add("loss", "train loss", TRAIN_COLOUR, 1, true);
  add("valLoss", "val loss", VAL_COLOUR, 1, false);
  add("trainAccuracy", "train accuracy", TRAIN_COLOUR, 2, true);
  add("valAccuracy", "val accuracy", VAL_COLOUR, 2, false);
  if (panels === 3) add("lr", "lr", "#7f7f7f", 3, false);
  const xTitle = xKey === "step" ? "step" : "epoch";
  const layout: Record<string, unknown> = {
    height: opts.height ?? 380,
    margin: { l: 60, r: 20, t: opts.title ? 60 : 40, b: 50 },
    legend: { orientation: "h", y: -0.22 },
    xaxis: { title: { text: xTitle }, domain: domain(0), anchor: "y" },
    yaxis: { title: { text: "loss" }, anchor: "x" },
    xaxis2: { title: { text: xTitle }, domain: domain(1), anchor: "y2" },
    yaxis2: { title: { text: "accuracy" }, anchor: "x2", rangemode: "tozero" },
    annotations: [
      {
        text: "loss",
        showarrow: false,
        xref: "paper",
        yref: "paper",
        x: ((domain(0)[0] ?? 0) + (domain(0)[1] ?? 0)) / 2,
        y: 1.08,
        xanchor: "center",
      },
      {
        text: "accuracy",
        showarrow: false,
        xref: "paper",
        yref: "paper",
        x: ((domain(1)[0] ?? 0) + (domain(1)[1] ?? 0)) / 2,
        y: 1.08,
        xanchor: "center",
      },
    ],
  };
  if (panels === 3) {
    layout.xaxis3 = { title: { text: xTitle }, domain: domain(2), anchor: "y3" };
    layout.yaxis3 = { title: { text: "learning rate" }, anchor: "x3", type: "log", exponentformat: "e" };
  }
  if (opts.title) layout.title = { text: opts.title };
  return { data, layout, config: defaultConfig() };
}

/** A learning-curve plot that redraws in place while training runs; see {@link liveLearningCurves}. */
export interface LiveLearningCurves {
  /** Adds rows; redraws the displayed plot when `minIntervalMs` has passed since the last draw. */
  push(row: LearningCurveRow | LearningCurveRow[]): void;
  /** The figure of all rows so far. */
  figure(): Figure;
  /** Draws the current state now (the first call creates the output). Call it when training ends. */
  show(): void;
  /** The rows pushed so far. */
  readonly rows: readonly LearningCurveRow[];
}

/**
 * Learning curves that update one notebook output in place while training runs. The first `push`
 * (or `show`) creates the output; later pushes replace it (at most once per `minIntervalMs`,
 * default 1000 ms), through Jupyter's update_display_data, so the saved notebook holds a single
 * plot. Call `show()` after training so the final state is drawn whatever the throttle skipped.
 * Outside a notebook it only collects rows (and `show()` prints a notice).
 *
 * ```ts
 * import { liveLearningCurves } from "l3kit";
 * const live = liveLearningCurves({ smooth: 0.6 });
 * await trainAvc(model, data, { onMetrics: (row) => live.push(row) });
 * live.show();
 * ```
 */
export function liveLearningCurves(opts: LearningCurvesOptions & { minIntervalMs?: number } = {}): LiveLearningCurves {
  const rows: LearningCurveRow[] = [];
  const live = new LiveFigure();
  const minInterval = opts.minIntervalMs ?? 1000;
  let lastDraw = Number.NEGATIVE_INFINITY;
  const figure = () => learningCurves(rows, opts);
  return {
    rows,
    push(row) {
      if (Array.isArray(row)) rows.push(...row);
      else rows.push(row);
      if (Date.now() - lastDraw >= minInterval && live.update(figure())) lastDraw = Date.now();
    },
    figure,
    show() {
      if (!live.update(figure())) show(figure());
      else lastDraw = Date.now();
    },
  };
}
