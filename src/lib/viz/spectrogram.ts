import { ConfigError } from "../util";
import { defaultConfig, type Figure, roundSig } from "./figure";

/** A spectrogram to draw: `data[bin * frames + frame]` (bins × frames, row-major, low bins first). */
export interface SpectrogramInput {
  data: Float32Array;
  bins: number;
  frames: number;
  sampleRate: number;
  /** Samples between frames; frame f is drawn at t = f · hopLength / sampleRate seconds. */
  hopLength: number;
  /** Centre frequency of each bin in Hz; by default linear bins k·sr/n_fft, or Slaney mel centres on [0, sr/2]. */
  freqs?: Float32Array;
  kind: "linear" | "mel";
}

/** Options of {@link spectrogramFigure}. */
export interface SpectrogramOptions {
  title?: string;
  /** Plotly colour scale; default "Viridis". */
  colorscale?: string;
  zmin?: number;
  zmax?: number;
  /** Colour bar title; default "log magnitude" (linear) or "dB" (mel). */
  valueLabel?: string;
  /** Most heatmap cells to embed; longer inputs are averaged over neighbouring frames. Default 120 000. */
  maxCells?: number;
  height?: number;
}

function hzToMelSlaney(f: number): number {
  return f < 1000 ? f / (200 / 3) : 15 + Math.log(f / 1000) / (Math.log(6.4) / 27);
}

function melToHzSlaney(m: number): number {
  return m < 15 ? m * (200 / 3) : 1000 * Math.exp((m - 15) * (Math.log(6.4) / 27));
}

/** Centre frequencies (Hz) of `n` Slaney-scale mel bands on [fmin, fmax] (librosa's default mel scale). */
export function melCentreFrequencies(n: number, fmin: number, fmax: number): Float32Array {
  const lo = hzToMelSlaney(fmin);
  const hi = hzToMelSlaney(fmax);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = melToHzSlaney(lo + ((hi - lo) * (i + 1)) / (n + 1));
  return out;
}

function formatHz(f: number): string {
  if (f >= 1000) return `${roundSig(f / 1000, 3)}k`;
  return `${Math.round(f)}`;
}

/**
 * A spectrogram heatmap with time in seconds on x and frequency on y. Linear spectrograms use Hz
 * directly on y; mel spectrograms keep the bands evenly spaced (y = band index) and label the
 * ticks with each band's centre frequency in Hz.
 *
 * ```ts
 * import { show, spectrogramFigure } from "l3kit";
 * show(spectrogramFigure({ data, bins: 257, frames: 199, sampleRate: 48000, hopLength: 242, kind: "linear" }));
 * ```
 */
export function spectrogramFigure(spec: SpectrogramInput, opts: SpectrogramOptions = {}): Figure {
  const { bins, frames, sampleRate, hopLength } = spec;
  const subject = "spectrogramFigure";
  if (!(Number.isInteger(bins) && bins > 0 && Number.isInteger(frames) && frames > 0)) {
    throw new ConfigError(`bins and frames must be positive integers, got ${bins}×${frames}`, { subject, reason: "bad-shape" });
  }
  if (spec.data.length !== bins * frames) {
    throw new ConfigError(`data has ${spec.data.length} values, expected bins×frames = ${bins * frames}`, { subject, reason: "bad-shape" });
  }
  if (!(sampleRate > 0 && hopLength > 0)) {
    throw new ConfigError(`sampleRate and hopLength must be > 0, got ${sampleRate}, ${hopLength}`, { subject, reason: "bad-config" });
  }
  if (spec.freqs && spec.freqs.length !== bins) {
    throw new ConfigError(`freqs has ${spec.freqs.length} values, expected ${bins}`, { subject, reason: "bad-shape" });
  }
  const maxCells = opts.maxCells ?? 120_000;
  const pool = Math.max(1, Math.ceil((bins * frames) / maxCells));
  const cols = Math.ceil(frames / pool);
  const x: number[] = [];
  for (let j = 0; j < cols; j++) {
    const f0 = j * pool;
    const f1 = Math.min(frames, f0 + pool);
    x.push(roundSig((((f0 + f1 - 1) / 2) * hopLength) / sampleRate, 6) ?? 0);
  }
  const z: Array<Array<number | null>> = [];
  for (let b = 0; b < bins; b++) {
    const row: Array<number | null> = new Array(cols);
    for (let j = 0; j < cols; j++) {
      const f0 = j * pool;
      const f1 = Math.min(frames, f0 + pool);
      let s = 0;
      for (let f = f0; f < f1; f++) s += spec.data[b * frames + f]!;
      row[j] = roundSig(s / (f1 - f0), 4);
    }
    z.push(row);
  }
  const freqs =
    spec.freqs ??
    (spec.kind === "mel"
      ? melCentreFrequencies(bins, 0, sampleRate / 2)
      : Float32Array.from({ length: bins }, (_, k) => (bins > 1 ? (k * sampleRate) / (2 * (bins - 1)) : 0)));
  const trace: Record<string, unknown> = {
    type: "heatmap",
    x,
    z,
    colorscale: opts.colorscale ?? "Viridis",
    colorbar: { title: { text: opts.valueLabel ?? (spec.kind === "mel" ? "dB" : "log magnitude") } },
  };
  if (opts.zmin !== undefined) trace.zmin = opts.zmin;
  if (opts.zmax !== undefined) trace.zmax = opts.zmax;
  let yaxis: Record<string, unknown>;
  if (spec.kind === "mel") {
    trace.y = Array.from({ length: bins }, (_, i) => i);
    trace.hovertemplate = "t = %{x:.3f} s<br>mel band %{y}<br>%{z}<extra></extra>";
    const nTicks = Math.min(bins, 8);
    const tickvals = Array.from({ length: nTicks }, (_, i) => Math.round((i * (bins - 1)) / Math.max(1, nTicks - 1)));
    yaxis = { title: { text: "frequency (Hz, mel scale)" }, tickvals, ticktext: tickvals.map((i) => formatHz(freqs[i]!)) };
  } else {
    trace.y = Array.from(freqs, (f) => roundSig(f, 6));
    trace.hovertemplate = "t = %{x:.3f} s<br>%{y:.0f} Hz<br>%{z}<extra></extra>";
    yaxis = { title: { text: "frequency (Hz)" } };
  }
  const layout: Record<string, unknown> = {
    height: opts.height ?? 360,
    margin: { l: 70, r: 20, t: opts.title ? 50 : 20, b: 50 },
    xaxis: { title: { text: "time (s)" } },
    yaxis,
  };
  if (opts.title) layout.title = { text: opts.title };
  return { data: [trace], layout, config: defaultConfig() };
}
