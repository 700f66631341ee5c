/**
 * Spectrograms: the L³ paper's linear log-magnitude spectrogram and OpenL3's log-mel spectrogram.
 * Pure functions, Float32Array in, {@link Spectrogram} out; the data layout is [bins][frames]
 * row-major (bins are rows: the image height).
 */
import { integerProblem, L3kitError } from "../util";
import { realFft } from "./fft";
import { melBandCentres, melFilterBank } from "./mel";

/** A spectrogram: `data[bin * frames + frame]`. */
export interface Spectrogram {
  data: Float32Array;
  bins: number;
  frames: number;
  sampleRate: number;
  hopLength: number;
  nFft: number;
  kind: "linear" | "mel";
  /** Centre frequency (Hz) of each bin. */
  freqs: Float32Array;
}

/** How the signal is padded before framing. */
export type StftPadding =
  /** none: frames start at sample 0 and stop before running past the end. */
  | "none"
  /** librosa's `center=True`: winLength/2 on each side, so frame f is centred on sample f·hop. */
  | "center"
  /** TensorFlow/Keras "same" (kapre 0.1.4, the front-end OpenL3 was trained with): ceil(n/hop) frames, the padding split evenly (the extra sample at the end). */
  | "same";

interface StftOptions {
  nFft: number;
  winLength: number;
  hopLength: number;
  padding: StftPadding;
  padMode: "constant" | "reflect";
}

const hannCache = new Map<number, Float64Array>();
/** The periodic Hann window (scipy `hann(n, sym=False)`, librosa's default). */
export function hannWindow(n: number): Float64Array {
  let w = hannCache.get(n);
  if (!w) {
    w = new Float64Array(n);
    for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
    hannCache.set(n, w);
  }
  return w;
}

function checkInt(name: string, v: number, min: number): void {
  const problem = integerProblem(v, min);
  if (problem) throw new L3kitError(`${name} ${problem}`, { subject: "spectrogram", reason: "bad-config" });
}

/** Padding before/after the signal for a padding mode. */
function padAmounts(n: number, o: StftOptions): [number, number] {
  if (o.padding === "center") {
    const p = Math.floor(o.winLength / 2);
    return [p, p];
  }
  if (o.padding === "same") {
    const frames = Math.ceil(n / o.hopLength);
    const total = Math.max(0, (frames - 1) * o.hopLength + o.winLength - n);
    const left = Math.floor(total / 2);
    return [left, total - left];
  }
  return [0, 0];
}

/**
 * Power spectrum |X|² of each frame, frame-major ([frames][bins]) as float64. Frame f analyses samples
 * [f·hop, f·hop + winLength) of the padded signal, Hann-windowed and zero-padded to nFft.
 */
function stftPower(samples: Float32Array, o: StftOptions): { power: Float64Array; bins: number; frames: number } {
  checkInt("nFft", o.nFft, 2);
  if ((o.nFft & (o.nFft - 1)) !== 0)
    throw new L3kitError(`nFft must be a power of two, got ${o.nFft}`, { subject: "spectrogram", reason: "bad-config" });
  checkInt("winLength", o.winLength, 1);
  checkInt("hopLength", o.hopLength, 1);
  if (o.winLength > o.nFft)
    throw new L3kitError(`winLength ${o.winLength} > nFft ${o.nFft}`, { subject: "spectrogram", reason: "bad-config" });
  const n = samples.length;
  const [left, right] = padAmounts(n, o);
  const padded = n + left + right;
  if (padded < o.winLength) {
    throw new L3kitError(`${n} samples are too few for one ${o.winLength}-sample window`, { subject: "spectrogram", reason: "too-short" });
  }
  if (o.padMode === "reflect" && (left >= n || right >= n) && (left > 0 || right > 0)) {
    throw new L3kitError(`reflect padding of ${Math.max(left, right)} needs more than ${n} samples`, {
      subject: "spectrogram",
      reason: "too-short",
    });
  }
  const frames = 1 + Math.floor((padded - o.winLength) / o.hopLength);
  const bins = o.nFft / 2 + 1;
  const fft = realFft(o.nFft);
  const win = hannWindow(o.winLength);
  const offset = Math.floor((o.nFft - o.winLength) / 2);
  const buf = new Float64Array(o.nFft);
  const power = new Float64Array(bins * frames);
  const at = (i: number): number => {
    const j = i - left;
    if (j >= 0 && j < n) return samples[j]!;
    if (o.padMode === "constant") return 0;
    return samples[j < 0 ? -j : 2 * (n - 1) - j] ?? 0;
  };
  for (let f = 0; f < frames; f++) {
    const start = f * o.hopLength;
    const inside = start >= left && start + o.winLength <= left + n;
    for (let t = 0; t < o.winLength; t++) buf[offset + t] = (inside ? samples[start - left + t]! : at(start + t)) * win[t]!;
    fft.power(buf, power, f * bins);
  }
  return { power, bins, frames };
}

/** Options of {@link linearSpectrogram}. Defaults are the L³ paper's. */
export interface LinearSpectrogramOptions {
  /** Default 48000. */
  sampleRate?: number;
  /** FFT size (power of two), default 512 → 257 bins. */
  nFft?: number;
  /** Hann window length, default 480 (0.01 s at 48 kHz). */
  winLength?: number;
  /** Default 240 (half the window). */
  hopLength?: number;
  /** Pad winLength/2 on each side (librosa `center=True`, zeros). Default false. */
  center?: boolean;
  /** "none": ln(max(|X|, 1e-12)); "l3embedding": that divided by 5 (marl/l3embedding). Default "none". */
  normalize?: "none" | "l3embedding";
}

/**
 * The L³ audio input: log-magnitude STFT, value ln(max(|X|, 1e-12)). With the defaults (48 kHz,
 * periodic Hann window of 480, hop 240, nFft 512, no centring) 48000 samples give 257 bins × 199
 * frames: frame f covers samples [240·f, 240·f + 480), so frames = 1 + ⌊(n − 480)/240⌋.
 */
export function linearSpectrogram(samples: Float32Array, opts: LinearSpectrogramOptions = {}): Spectrogram {
  const sampleRate = opts.sampleRate ?? 48000;
  const nFft = opts.nFft ?? 512;
  const winLength = opts.winLength ?? Math.min(480, nFft);
  const hopLength = opts.hopLength ?? Math.floor(winLength / 2);
  const { power, bins, frames } = stftPower(samples, {
    nFft,
    winLength,
    hopLength,
    padding: opts.center ? "center" : "none",
    padMode: "constant",
  });
  const scale = opts.normalize === "l3embedding" ? 1 / 5 : 1;
  const data = new Float32Array(power.length);
  // ln(max(|X|, 1e-12)) = 0.5·ln(max(|X|², 1e-24))
  for (let f = 0; f < frames; f++) {
    for (let k = 0; k < bins; k++) data[k * frames + f] = 0.5 * Math.log(Math.max(power[f * bins + k]!, 1e-24)) * scale;
  }
  const freqs = new Float32Array(bins);
  for (let k = 0; k < bins; k++) freqs[k] = (k * sampleRate) / nFft;
  return { data, bins, frames, sampleRate, hopLength, nFft, kind: "linear", freqs };
}

/** Options of {@link melSpectrogram}. Defaults reproduce OpenL3's front-end. */
export interface MelSpectrogramOptions {
  /** Default 48000. */
  sampleRate?: number;
  /** Default 2048 (the Hann window is nFft long). */
  nFft?: number;
  /** Default 242. */
  hopLength?: number;
  /** Mel bands, default 128 (OpenL3 also uses 256). */
  nMels?: number;
  /** Default 0 and sampleRate/2. */
  fMin?: number;
  fMax?: number;
  /** Mel scale: HTK (default true, what OpenL3's weights use) or Slaney (librosa's default). */
  htk?: boolean;
  /**
   * Padding: "same" (default; kapre 0.1.4 / OpenL3: 982 zeros before, 982 after for 1 s at 48 kHz
   * → 199 frames), "center" (nFft/2 each side), "none". `center: true|false` is shorthand for
   * "center" / "none" and is ignored when `padding` is given.
   */
  padding?: StftPadding;
  center?: boolean;
  /** Zeros (default) or numpy-style reflection for "center"/"same" padding. */
  padMode?: "constant" | "reflect";
  /** Exponent on the mel magnitude: 1 (default) = sqrt(mel · |X|²), kapre's `power_melgram=1`; 2 = mel power. */
  power?: number;
  /** dB reference: "max" (default; kapre 0.1.4 subtracts the spectrogram's maximum, so values are in [−topDb, 0]) or a fixed value (1 = librosa's `ref=1.0`). */
  ref?: "max" | number;
  /** Floor before the log, default 1e-10. */
  amin?: number;
  /** Dynamic range: values below (max − topDb) are raised to it. Default 80; null for none. */
  topDb?: number | null;
}

/**
 * OpenL3's log-mel input, as its published models compute it (kapre 0.1.4 `Melspectrogram` with
 * n_dft 2048, n_hop 242, padding "same", power_melgram 1, HTK mel weights with Slaney area
 * normalisation, `amplitude_to_decibel`): |STFT|² → mel → sqrt → 10·log10(max(x, 1e-10)) − max →
 * clip at −80 dB. 48000 samples give nMels × 199.
 */
export function melSpectrogram(samples: Float32Array, opts: MelSpectrogramOptions = {}): Spectrogram {
  const sampleRate = opts.sampleRate ?? 48000;
  const nFft = opts.nFft ?? 2048;
  const hopLength = opts.hopLength ?? 242;
  const nMels = opts.nMels ?? 128;
  const padding: StftPadding = opts.padding ?? (opts.center === undefined ? "same" : opts.center ? "center" : "none");
  const power = opts.power ?? 1;
  const amin = opts.amin ?? 1e-10;
  const topDb = opts.topDb === undefined ? 80 : opts.topDb;
  const melOpts = { sampleRate, nFft, nMels, fMin: opts.fMin, fMax: opts.fMax, htk: opts.htk ?? true };
  const fb = melFilterBank(melOpts);
  const {
    power: spec,
    bins,
    frames,
  } = stftPower(samples, { nFft, winLength: nFft, hopLength, padding, padMode: opts.padMode ?? "constant" });
  // each band is non-zero over a short run of bins: find it once
  const lo = new Int32Array(nMels);
  const hi = new Int32Array(nMels);
  for (let m = 0; m < nMels; m++) {
    let a = bins;
    let b = -1;
    for (let k = 0; k < bins; k++) {
      if (fb[k * nMels + m] !== 0) {
        if (a === bins) a = k;
        b = k;
      }
    }
    lo[m] = a;
    hi[m] = b;
  }
  const data = new Float32Array(nMels * frames);
  const db = new Float64Array(nMels * frames);
  let peak = Number.NEGATIVE_INFINITY;
  const refDb = opts.ref === undefined || opts.ref === "max" ? undefined : 10 * Math.log10(Math.max(opts.ref, amin));
  // the bank's non-zero weights, band by band, contiguous
  const wStart = new Int32Array(nMels + 1);
  for (let m = 0; m < nMels; m++) wStart[m + 1] = wStart[m]! + Math.max(0, hi[m]! - lo[m]! + 1);
  const w = new Float64Array(wStart[nMels]!);
  for (let m = 0; m < nMels; m++) for (let k = lo[m]!; k <= hi[m]!; k++) w[wStart[m]! + k - lo[m]!] = fb[k * nMels + m]!;
  for (let f = 0; f < frames; f++) {
    const row = f * bins;
    for (let m = 0; m < nMels; m++) {
      let acc = 0;
      const base = wStart[m]! - lo[m]!;
      for (let k = lo[m]!; k <= hi[m]!; k++) acc += w[base + k]! * spec[row + k]!;
      const mag = power === 2 ? acc : acc ** (power / 2);
      const v = 10 * Math.log10(Math.max(mag, amin));
      db[m * frames + f] = v;
      if (v > peak) peak = v;
    }
  }
  const shift = refDb ?? peak;
  const floor = topDb === null ? Number.NEGATIVE_INFINITY : peak - shift - topDb;
  for (let i = 0; i < db.length; i++) data[i] = Math.max(db[i]! - shift, floor);
  return { data, bins: nMels, frames, sampleRate, hopLength, nFft, kind: "mel", freqs: melBandCentres(melOpts) };
}
