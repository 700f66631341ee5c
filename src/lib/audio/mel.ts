/**
 * Mel filter banks as librosa builds them (`librosa.filters.mel`): triangles between mel-spaced
 * points, with Slaney area normalisation (each triangle scaled by 2 / its width in Hz).
 */
import { L3kitError } from "../util";

/** Options of {@link melFilterBank}. */
export interface MelFilterBankOptions {
  /** Default 48000. */
  sampleRate?: number;
  /** Default 2048 → 1025 rows. */
  nFft?: number;
  nMels: number;
  /** Default 0. */
  fMin?: number;
  /** Default sampleRate / 2. */
  fMax?: number;
  /**
   * HTK mel scale (2595·log10(1 + f/700)) when true (the default: OpenL3's banks, which torchopenl3
   * ships as mel{128,256}_weights.npy, use `htk=True`); the Slaney scale (librosa's default) when false.
   */
  htk?: boolean;
  /** "slaney" area normalisation (default, librosa's `norm="slaney"`, old `norm=1`) or none. */
  norm?: "slaney" | "none";
}

/** Hz → mel (HTK or Slaney). */
export function hzToMel(f: number, htk: boolean): number {
  if (htk) return 2595 * Math.log10(1 + f / 700);
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logStep = Math.log(6.4) / 27;
  return f >= minLogHz ? minLogMel + Math.log(f / minLogHz) / logStep : f / fSp;
}

/** mel → Hz (HTK or Slaney). */
export function melToHz(m: number, htk: boolean): number {
  if (htk) return 700 * (10 ** (m / 2595) - 1);
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logStep = Math.log(6.4) / 27;
  return m >= minLogMel ? minLogHz * Math.exp(logStep * (m - minLogMel)) : fSp * m;
}

function resolve(opts: MelFilterBankOptions) {
  const sampleRate = opts.sampleRate ?? 48000;
  const nFft = opts.nFft ?? 2048;
  const fMin = opts.fMin ?? 0;
  const fMax = opts.fMax ?? sampleRate / 2;
  const htk = opts.htk ?? true;
  const norm = opts.norm ?? "slaney";
  const { nMels } = opts;
  if (!Number.isInteger(nMels) || nMels < 1)
    throw new L3kitError(`nMels must be an integer >= 1, got ${nMels}`, { subject: "melFilterBank", reason: "bad-config" });
  if (!Number.isInteger(nFft) || nFft < 2)
    throw new L3kitError(`nFft must be an integer >= 2, got ${nFft}`, { subject: "melFilterBank", reason: "bad-config" });
  if (!(fMin >= 0 && fMax > fMin && fMax <= sampleRate / 2 + 1e-9)) {
    throw new L3kitError(`need 0 <= fMin < fMax <= sampleRate/2, got fMin ${fMin}, fMax ${fMax}, sampleRate ${sampleRate}`, {
      subject: "melFilterBank",
      reason: "bad-config",
    });
  }
  return { sampleRate, nFft, nMels, fMin, fMax, htk, norm };
}

/** The nMels + 2 mel-spaced edge frequencies (Hz) of the triangles. */
function melPoints(o: ReturnType<typeof resolve>): Float64Array {
  const lo = hzToMel(o.fMin, o.htk);
  const hi = hzToMel(o.fMax, o.htk);
  const pts = new Float64Array(o.nMels + 2);
  for (let i = 0; i < pts.length; i++) pts[i] = melToHz(lo + ((hi - lo) * i) / (o.nMels + 1), o.htk);
  return pts;
}

const bankCache = new Map<string, Float32Array>();

/**
 * The mel filter bank, shape [nFft/2 + 1][nMels] row-major (as torchopenl3's .npy files: 1025 × bands
 * for nFft 2048), float32. Equals librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk, norm).T.
 * Cached per option set; treat the result as read-only.
 */
export function melFilterBank(opts: MelFilterBankOptions): Float32Array {
  const o = resolve(opts);
  const key = JSON.stringify(o);
  const cached = bankCache.get(key);
  if (cached) return cached;
  const bins = Math.floor(o.nFft / 2) + 1;
  const pts = melPoints(o);
  const out = new Float32Array(bins * o.nMels);
  for (let m = 0; m < o.nMels; m++) {
    const f0 = pts[m]!;
    const f1 = pts[m + 1]!;
    const f2 = pts[m + 2]!;
    const enorm = o.norm === "slaney" ? 2 / (f2 - f0) : 1;
    for (let k = 0; k < bins; k++) {
      const f = (k * o.sampleRate) / o.nFft;
      const lower = (f - f0) / (f1 - f0);
      const upper = (f2 - f) / (f2 - f1);
      const w = Math.max(0, Math.min(lower, upper));
      out[k * o.nMels + m] = w * enorm;
    }
  }
  bankCache.set(key, out);
  return out;
}

/** Centre (peak) frequency in Hz of each mel band. */
export function melBandCentres(opts: MelFilterBankOptions): Float32Array {
  const pts = melPoints(resolve(opts));
  return Float32Array.from(pts.subarray(1, pts.length - 1));
}
