/**
 * Hand-made baseline features that every probe is reported beside: colour histograms of a frame and
 * MFCC statistics of a clip's audio. Pure functions on arrays, no I/O.
 */
import { melFilterBank, realFft } from "../audio";
import { ConfigError } from "../util";

/** An 8-bit image, row-major, interleaved RGB (3 channels) or RGBA (4; alpha ignored). */
export interface EvalImage {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

/** Options of {@link colorHistogramFeatures}. */
export interface ColorHistogramOptions {
  /** Colour space. Default "rgb". */
  space?: "rgb" | "hsv";
  /** "joint": one bins³ histogram summing to 1; "per-channel": 3 histograms of `bins`, each summing to 1. Default "joint". */
  mode?: "joint" | "per-channel";
}

function binOf(v: number, bins: number): number {
  const b = Math.floor(v * bins);
  return Math.max(0, Math.min(bins - 1, b));
}

/** RGB in [0,1] → HSV in [0,1]³ (h = hue / 360°). */
function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) h = ((g - b) / d) % 6;
    else if (max === g) h = (b - r) / d + 2;
    else h = (r - g) / d + 4;
    h /= 6;
    if (h < 0) h += 1;
  }
  return [h, max === 0 ? 0 : d / max, max];
}

/**
 * A normalised colour histogram of a frame: joint (bins³-d, sums to 1) or per channel (3·bins-d, each
 * channel's block sums to 1), in RGB or HSV. Values are binned uniformly over [0, 1].
 */
export function colorHistogramFeatures(frame: EvalImage, bins = 8, opts: ColorHistogramOptions = {}): Float32Array {
  const { width, height, data } = frame;
  const pixels = width * height;
  if (!(Number.isInteger(bins) && bins >= 1))
    throw new ConfigError(`bins must be a positive integer, got ${bins}`, { subject: "colorHistogramFeatures" });
  if (!(pixels > 0)) throw new ConfigError(`empty frame ${width}×${height}`, { subject: "colorHistogramFeatures" });
  const channels = data.length / pixels;
  if (channels !== 3 && channels !== 4) {
    throw new ConfigError(`frame data has ${data.length} values for ${width}×${height}: expected RGB or RGBA`, {
      subject: "colorHistogramFeatures",
    });
  }
  const space = opts.space ?? "rgb";
  const joint = (opts.mode ?? "joint") === "joint";
  const out = new Float32Array(joint ? bins * bins * bins : 3 * bins);
  for (let p = 0; p < pixels; p++) {
    let a = data[p * channels]! / 255;
    let b = data[p * channels + 1]! / 255;
    let c = data[p * channels + 2]! / 255;
    if (space === "hsv") [a, b, c] = rgbToHsv(a, b, c);
    const i = binOf(a, bins);
    const j = binOf(b, bins);
    const k = binOf(c, bins);
    if (joint) out[(i * bins + j) * bins + k]! += 1;
    else {
      out[i]! += 1;
      out[bins + j]! += 1;
      out[2 * bins + k]! += 1;
    }
  }
  for (let i = 0; i < out.length; i++) out[i]! /= pixels;
  return out;
}

// ---- MFCC ----------------------------------------------------------------------------------------

/** Options of {@link mfccStatsFeatures}. */
export interface EvalMfccOptions {
  /** Number of coefficients kept. Default 20. */
  nMfcc?: number;
  /** Mel bands. Default 128 (librosa's default for MFCC). */
  nMels?: number;
  /** FFT size, a power of two. Default 2048. */
  nFft?: number;
  /** Hop in samples. Default 512. */
  hop?: number;
}

interface MfccPlan {
  window: Float64Array;
  /** Per mel filter: its first non-zero FFT bin and the weights from there to its last non-zero bin. */
  filters: Array<{ first: number; weights: Float64Array }>;
  fft: ReturnType<typeof realFft>;
}

const MFCC_PLANS = new Map<string, MfccPlan>();

/**
 * Window, mel filters and FFT of one (sample rate, nFft, nMels), built once: the probes call
 * evalMfcc for every 1 s window of every clip, and rebuilding the 1025×128 filter bank and
 * multiplying by its zeros took most of the time (a 1 s window at 16 kHz: 7.6 ms before, 1.7 ms after).
 */
function mfccPlan(sampleRate: number, nFft: number, nMels: number): MfccPlan {
  const key = `${sampleRate}:${nFft}:${nMels}`;
  const hit = MFCC_PLANS.get(key);
  if (hit) return hit;
  const nBins = nFft / 2 + 1;
  const window = new Float64Array(nFft);
  for (let i = 0; i < nFft; i++) window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft); // periodic Hann
  // librosa's MFCC defaults: Slaney mel scale, Slaney area normalisation
  const bank = melFilterBank({ sampleRate, nFft, nMels, htk: false, norm: "slaney" });
  const filters = Array.from({ length: nMels }, (_, m) => {
    let first = -1;
    let last = -1;
    for (let k = 0; k < nBins; k++) {
      if (bank[k * nMels + m] !== 0) {
        if (first < 0) first = k;
        last = k;
      }
    }
    if (first < 0) return { first: 0, weights: new Float64Array(0) };
    return { first, weights: Float64Array.from({ length: last - first + 1 }, (_, j) => bank[(first + j) * nMels + m]!) };
  });
  const plan = { window, filters, fft: realFft(nFft) };
  MFCC_PLANS.set(key, plan);
  return plan;
}

/**
 * MFCCs (nMfcc × frames, row-major by coefficient) with librosa ≥ 0.10's defaults: Hann-windowed STFT
 * (centred, zero-padded), power spectrum, Slaney mel bank (the audio front-end's `melFilterBank`),
 * 10·log10 with floor 1e-10 and an 80 dB range, orthonormal DCT-II.
 */
export function evalMfcc(
  samples: Float32Array,
  sampleRate: number,
  opts: EvalMfccOptions = {},
): { data: Float32Array; nMfcc: number; frames: number } {
  const nMfcc = opts.nMfcc ?? 20;
  const nMels = opts.nMels ?? 128;
  const nFft = opts.nFft ?? 2048;
  const hop = opts.hop ?? 512;
  if (!(nFft > 1 && (nFft & (nFft - 1)) === 0)) throw new ConfigError(`nFft must be a power of two, got ${nFft}`, { subject: "mfcc" });
  if (!(nMfcc >= 1 && nMfcc <= nMels)) throw new ConfigError(`nMfcc must be in [1, nMels=${nMels}], got ${nMfcc}`, { subject: "mfcc" });
  if (!(hop >= 1)) throw new ConfigError(`hop must be ≥ 1, got ${hop}`, { subject: "mfcc" });
  if (!(sampleRate > 0)) throw new ConfigError(`sampleRate must be > 0, got ${sampleRate}`, { subject: "mfcc" });
  const nBins = nFft / 2 + 1;
  const pad = nFft / 2;
  const frames = 1 + Math.floor(samples.length / hop);
  const { window, filters, fft } = mfccPlan(sampleRate, nFft, nMels);
  const logMel = new Float64Array(frames * nMels);
  const frame = new Float64Array(nFft);
  const power = new Float64Array(nBins);
  let maxDb = Number.NEGATIVE_INFINITY;
  for (let t = 0; t < frames; t++) {
    const start = t * hop - pad;
    for (let i = 0; i < nFft; i++) {
      const s = start + i;
      frame[i] = s >= 0 && s < samples.length ? samples[s]! * window[i]! : 0;
    }
    fft.power(frame, power);
    for (let m = 0; m < nMels; m++) {
      // only the filter's non-zero bins, in ascending order: the same sum as over every bin
      const { first, weights } = filters[m]!;
      let s = 0;
      for (let j = 0; j < weights.length; j++) s += power[first + j]! * weights[j]!;
      const db = 10 * Math.log10(Math.max(s, 1e-10));
      logMel[t * nMels + m] = db;
      if (db > maxDb) maxDb = db;
    }
  }
  const floor = maxDb - 80;
  for (let i = 0; i < logMel.length; i++) if (logMel[i]! < floor) logMel[i] = floor;
  // orthonormal DCT-II over the mel axis
  const data = new Float32Array(nMfcc * frames);
  for (let c = 0; c < nMfcc; c++) {
    const scale = c === 0 ? Math.sqrt(1 / nMels) : Math.sqrt(2 / nMels);
    const cosines = new Float64Array(nMels);
    for (let m = 0; m < nMels; m++) cosines[m] = Math.cos((Math.PI * c * (2 * m + 1)) / (2 * nMels));
    for (let t = 0; t < frames; t++) {
      let s = 0;
      for (let m = 0; m < nMels; m++) s += logMel[t * nMels + m]! * cosines[m]!;
      data[c * frames + t] = s * scale;
    }
  }
  return { data, nMfcc, frames };
}

/**
 * The MFCC-statistics baseline: mean and (population) std over time of each of `nMfcc` coefficients
 * → a 2·nMfcc vector (40-d by default): [mean_0 … mean_{n-1}, std_0 … std_{n-1}].
 */
export function mfccStatsFeatures(samples: Float32Array, sampleRate: number, opts: EvalMfccOptions = {}): Float32Array {
  const { data, nMfcc, frames } = evalMfcc(samples, sampleRate, opts);
  const out = new Float32Array(2 * nMfcc);
  for (let c = 0; c < nMfcc; c++) {
    let s = 0;
    for (let t = 0; t < frames; t++) s += data[c * frames + t]!;
    const mean = s / frames;
    let v = 0;
    for (let t = 0; t < frames; t++) v += (data[c * frames + t]! - mean) ** 2;
    out[c] = mean;
    out[nMfcc + c] = Math.sqrt(v / frames);
  }
  return out;
}

/**
 * MFCC statistics of consecutive windows of a clip (default 1 s windows, hop 1 s; a clip shorter than
 * one window gives one window over what there is) → k×dim features, for window-averaged probes.
 */
export function windowedMfccStats(
  samples: Float32Array,
  sampleRate: number,
  opts: EvalMfccOptions & { windowSec?: number; hopSec?: number } = {},
): { features: Float32Array; k: number; dim: number } {
  const win = Math.round((opts.windowSec ?? 1) * sampleRate);
  const hop = Math.round((opts.hopSec ?? opts.windowSec ?? 1) * sampleRate);
  if (!(win >= 1 && hop >= 1)) throw new ConfigError(`window and hop must be ≥ 1 sample`, { subject: "windowedMfccStats" });
  if (samples.length === 0) throw new ConfigError("no audio samples", { subject: "windowedMfccStats", reason: "empty" });
  const starts: number[] = [];
  for (let s = 0; s + win <= samples.length; s += hop) starts.push(s);
  if (starts.length === 0) starts.push(0);
  const dim = 2 * (opts.nMfcc ?? 20);
  const features = new Float32Array(starts.length * dim);
  starts.forEach((s, i) => {
    features.set(mfccStatsFeatures(samples.subarray(s, Math.min(s + win, samples.length)), sampleRate, opts), i * dim);
  });
  return { features, k: starts.length, dim };
}
