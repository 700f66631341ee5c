import type { Rng } from "../util";

/**
 * The L³ audio augmentation: the whole clip times one gain drawn from U[range[0], range[1]]
 * (default [0.9, 1.1]). Returns a new array; the input is not changed.
 */
export function augmentGain(samples: Float32Array, rng: Rng, range: [number, number] = [0.9, 1.1]): Float32Array {
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi)) throw new RangeError(`augmentGain: bad range [${lo}, ${hi}]`);
  const gain = rng.uniform(lo, hi);
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! * gain;
  return out;
}
