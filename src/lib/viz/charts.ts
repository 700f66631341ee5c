import { ConfigError } from "../util";
import { defaultConfig, type Figure, type PlotTrace, roundSig } from "./figure";

/** Options of {@link confusionMatrixFigure}. */
export interface ConfusionMatrixOptions {
  /**
   * Divide counts: `true`/`"row"` by each true class's total (rows then show recall),
   * `"column"` by each predicted class's total (precision), `"all"` by the grand total. Default false.
   */
  normalize?: boolean | "row" | "column" | "all";
  title?: string;
  /** Write the value in each cell; default when there are at most 40 classes. */
  showValues?: boolean;
  colorscale?: string;
  height?: number;
}

/**
 * A confusion matrix heatmap: rows = true class (first class at the top), columns = predicted
 * class, `matrix[t][p]` = count of true class t predicted as p.
 *
 * ```ts
 * import { show, confusionMatrixFigure } from "l3kit";
 * show(confusionMatrixFigure(result.confusion, result.classNames, { normalize: true }));
 * ```
 */
export function confusionMatrixFigure(matrix: number[][], classNames: string[], opts: ConfusionMatrixOptions = {}): Figure {
  const n = classNames.length;
  const subject = "confusionMatrixFigure";
  if (matrix.length !== n || matrix.some((r) => r.length !== n)) {
    throw new ConfigError(`matrix must be ${n}×${n} to match ${n} class names`, { subject, reason: "bad-shape" });
  }
  const mode = opts.normalize === true ? "row" : opts.normalize || "none";
  const rowSum = matrix.map((r) => r.reduce((a, b) => a + b, 0));
  const colSum = classNames.map((_, j) => matrix.reduce((a, r) => a + r[j]!, 0));
  const total = rowSum.reduce((a, b) => a + b, 0);
  const z = matrix.map((r, i) =>
    r.map((v, j) => {
      const d = mode === "row" ? rowSum[i]! : mode === "column" ? colSum[j]! : mode === "all" ? total : 1;
      return roundSig(d > 0 ? v / d : 0, 4) ?? 0;
    }),
  );
  const trace: PlotTrace = {
    type: "heatmap",
    x: classNames,
    y: classNames,
    z,
    colorscale: opts.colorscale ?? "Blues",
    reversescale: opts.colorscale === undefined,
    colorbar: { title: { text: mode === "none" ? "count" : "fraction" } },
    hovertemplate: "true %{y}<br>predicted %{x}<br>%{z}<extra></extra>",
  };
  if (mode !== "none") {
    trace.zmin = 0;
    trace.zmax = 1;
  }
  if (opts.showValues ?? n <= 40) {
    trace.text = z.map((r) => r.map((v) => (mode === "none" ? String(v) : v.toFixed(2))));
    trace.texttemplate = "%{text}";
    trace.textfont = { size: n > 20 ? 8 : 11 };
  }
  const size = Math.max(360, Math.min(1100, 120 + n * 26));
  const layout: Record<string, unknown> = {
    height: opts.height ?? size,
    margin: { l: 160, r: 20, t: opts.title ? 50 : 20, b: 160 },
    xaxis: { title: { text: "predicted" }, tickangle: -45, automargin: true, type: "category" },
    yaxis: { title: { text: "true" }, autorange: "reversed", automargin: true, type: "category" },
  };
  if (opts.title) layout.title = { text: opts.title };
  return { data: [trace], layout, config: defaultConfig() };
}

/**
 * One bar per class (e.g. per-class recall of a linear probe), optionally sorted, with a dashed
 * line at the mean.
 */
export function perClassBars(
  values: number[],
  classNames: string[],
  opts: { title?: string; valueLabel?: string; sort?: boolean; height?: number } = {},
): Figure {
  if (values.length !== classNames.length) {
    throw new ConfigError(`${values.length} values for ${classNames.length} class names`, { subject: "perClassBars", reason: "bad-shape" });
  }
  let order = classNames.map((_, i) => i);
  if (opts.sort) order = order.sort((a, b) => values[b]! - values[a]!);
  const finite = values.filter((v) => Number.isFinite(v));
  const mean = finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : 0;
  const label = opts.valueLabel ?? "recall";
  const layout: Record<string, unknown> = {
    height: opts.height ?? 420,
    margin: { l: 60, r: 20, t: opts.title ? 50 : 20, b: 160 },
    xaxis: { tickangle: -45, automargin: true, type: "category" },
    yaxis: { title: { text: label } },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: mean, y1: mean, line: { dash: "dash", color: "#555", width: 1 } }],
    annotations: [
      { text: `mean ${roundSig(mean, 3)}`, xref: "paper", x: 1, xanchor: "right", yref: "y", y: mean, yanchor: "bottom", showarrow: false },
    ],
  };
  if (opts.title) layout.title = { text: opts.title };
  return {
    data: [
      {
        type: "bar",
        name: label,
        x: order.map((i) => classNames[i]),
        y: order.map((i) => roundSig(values[i]!, 4)),
        marker: { color: "#1f77b4" },
      },
    ],
    layout,
    config: defaultConfig(),
  };
}

/** One bar of {@link ablationBars}: a metric's mean and standard deviation for one variant. */
export interface AblationRow {
  /** The variant (x position), e.g. "concat fusion". */
  group: string;
  /** The series (bar colour), e.g. "AVC accuracy". */
  metric: string;
  mean: number;
  std: number;
}

/**
 * Grouped bars with ±std error bars: one group per `group` (first-seen order), one coloured
 * series per `metric`. A missing (group, metric) pair leaves a gap.
 *
 * ```ts
 * import { show, ablationBars } from "l3kit";
 * show(ablationBars([{ group: "concat", metric: "AVC acc", mean: 0.74, std: 0.01 }, ...]));
 * ```
 */
export function ablationBars(rows: AblationRow[], opts: { title?: string; valueLabel?: string; height?: number } = {}): Figure {
  const groups: string[] = [];
  const metrics: string[] = [];
  const cell = new Map<string, AblationRow>();
  rows.forEach((r, i) => {
    if (!Number.isFinite(r.mean) || !(Number.isFinite(r.std) && r.std >= 0)) {
      throw new ConfigError(`mean must be finite and std ≥ 0, got ${r.mean} ± ${r.std}`, {
        subject: `ablationBars: row ${i}`,
        reason: "bad-value",
      });
    }
    if (!groups.includes(r.group)) groups.push(r.group);
    if (!metrics.includes(r.metric)) metrics.push(r.metric);
    cell.set(`${r.group}\u0000${r.metric}`, r);
  });
  const data: PlotTrace[] = metrics.map((m) => {
    const cells = groups.map((g) => cell.get(`${g}\u0000${m}`));
    return {
      type: "bar",
      name: m,
      x: groups,
      y: cells.map((c) => (c ? roundSig(c.mean, 5) : null)),
      error_y: { type: "data", array: cells.map((c) => (c ? roundSig(c.std, 4) : null)), visible: true },
      hovertemplate: `${m}<br>%{x}: %{y} ± %{error_y.array}<extra></extra>`,
    };
  });
  const layout: Record<string, unknown> = {
    barmode: "group",
    height: opts.height ?? 420,
    margin: { l: 60, r: 20, t: opts.title ? 50 : 20, b: 80 },
    xaxis: { type: "category", automargin: true },
    yaxis: { title: { text: opts.valueLabel ?? "value" } },
  };
  if (opts.title) layout.title = { text: opts.title };
  return { data, layout, config: defaultConfig() };
}

/** One probe result of {@link labelEfficiencyFigure}. */
export interface LabelEfficiencyPoint {
  /** The series (one line), e.g. "L³ audio tower" or "random weights". */
  features: string;
  /** Labelled training clips per class. */
  labelsPerClass: number;
  accuracy: number;
}

/**
 * Probe accuracy against labelled clips per class (log x axis), one line per feature set: how much
 * the features, not the labels, carry. Points of a series are drawn in order of labels per class.
 *
 * ```ts
 * import { show, labelEfficiencyFigure } from "l3kit";
 * show(labelEfficiencyFigure([{ features: "L³ audio", labelsPerClass: 5, accuracy: 0.99 }, ...], { chance: 0.1 }));
 * ```
 */
export function labelEfficiencyFigure(
  points: LabelEfficiencyPoint[],
  opts: { title?: string; chance?: number; height?: number } = {},
): Figure {
  const series = new Map<string, LabelEfficiencyPoint[]>();
  points.forEach((p, i) => {
    if (!(Number.isFinite(p.labelsPerClass) && p.labelsPerClass > 0) || !(p.accuracy >= 0 && p.accuracy <= 1)) {
      throw new ConfigError(`labelsPerClass must be > 0 and accuracy in [0, 1], got ${p.labelsPerClass}, ${p.accuracy}`, {
        subject: `labelEfficiencyFigure: point ${i}`,
        reason: "bad-value",
      });
    }
    const s = series.get(p.features) ?? [];
    s.push(p);
    series.set(p.features, s);
  });
  const data: PlotTrace[] = [...series].map(([name, ps]) => {
    const sorted = [...ps].sort((a, b) => a.labelsPerClass - b.labelsPerClass);
    return {
      type: "scatter",
      mode: "lines+markers",
      name,
      x: sorted.map((p) => p.labelsPerClass),
      y: sorted.map((p) => roundSig(p.accuracy, 4)),
      hovertemplate: `${name}<br>%{x} labels per class: %{y}<extra></extra>`,
    };
  });
  const xs = points.map((p) => p.labelsPerClass);
  if (opts.chance !== undefined && xs.length) {
    data.push({
      type: "scatter",
      mode: "lines",
      name: "chance",
      x: [Math.min(...xs), Math.max(...xs)],
      y: [opts.chance, opts.chance],
      line: { dash: "dot", color: "#888" },
      hoverinfo: "skip",
    });
  }
  const layout: Record<string, unknown> = {
    height: opts.height ?? 400,
    margin: { l: 60, r: 20, t: opts.title ? 50 : 20, b: 60 },
    xaxis: { type: "log", title: { text: "labelled clips per class" } },
    yaxis: { title: { text: "test accuracy" }, range: [0, 1.02] },
  };
  if (opts.title) layout.title = { text: opts.title };
  return { data, layout, config: defaultConfig() };
}
