/**
 * A windowed-sinc resampler for mono Float32 audio (band-limited interpolation, as resampy /
 * libsamplerate do): each output sample is Σ x[k]·h(t − k) with h a Kaiser-windowed sinc whose cutoff
 * is min(1, out/in) of the input Nyquist, 32 zero crossings each side (of the lower rate), read from a
 * table oversampled 512× with linear interpolation. Output length ⌊n·out/in⌋ (resampy's rule); the
 * signal is treated as zero outside its ends.
 */
import { L3kitError } from "../util";

const ZEROS = 32;
const OVERSAMPLE = 512;
const KAISER_BETA = 9.6;

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

let table: Float64Array | undefined;
/** h(t) for t in [0, ZEROS] zero crossings, at OVERSAMPLE points per crossing (+1 guard). */
function sincTable(): Float64Array {
  if (table) return table;
  const n = ZEROS * OVERSAMPLE + 2;
  const t = new Float64Array(n);
  const i0b = besselI0(KAISER_BETA);
  for (let i = 0; i < n; i++) {
    const x = i / OVERSAMPLE;
    const sinc = i === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const r = x / ZEROS;
    const w = r >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0b;
    t[i] = sinc * w;
  }
  table = t;
  return t;
}

/** Resamples `samples` from `fromRate` to `toRate` Hz (see the module note). Equal rates return a copy. */
export function resampleAudio(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (!(fromRate > 0) || !(toRate > 0) || !Number.isFinite(fromRate) || !Number.isFinite(toRate)) {
    throw new L3kitError(`sample rates must be positive, got ${fromRate} → ${toRate}`, { subject: "resample", reason: "bad-rate" });
  }
  if (fromRate === toRate) return samples.slice();
  const ratio = toRate / fromRate;
  const nOut = Math.floor(samples.length * ratio);
  const out = new Float32Array(nOut);
  const h = sincTable();
  const cutoff = Math.min(1, ratio);
  // in input samples: the kernel spans ±ZEROS/cutoff; table index = |t|·cutoff·OVERSAMPLE
  const half = ZEROS / cutoff;
  const step = cutoff * OVERSAMPLE;
  const n = samples.length;
  for (let j = 0; j < nOut; j++) {
    const t = j / ratio;
    const k0 = Math.max(0, Math.ceil(t - half));
    const k1 = Math.min(n - 1, Math.floor(t + half));
    let acc = 0;
    for (let k = k0; k <= k1; k++) {
      const pos = Math.abs(t - k) * step;
      const i = pos | 0;
      const f = pos - i;
      const hv = (h[i] as number) + f * ((h[i + 1] as number) - (h[i] as number));
      acc += (samples[k] as number) * hv;
    }
    out[j] = acc * cutoff;
  }
  return out;
}
