/**
 * Sound synthesis for the synthetic benchmark: one generator per temporal pattern, parameterised by
 * a per-clip instance drawn inside the class's ranges, plus class-independent background noise.
 * Every pattern is "amplitude envelope × carrier"; the envelope is returned too, so the renderer can
 * make the object pulse with its sound.
 */
import { Rng } from "../../util";
import type { SynthClass, SynthSoundPattern } from "./classes";

/** The per-clip draw of a class's sound identity. */
export interface SynthSoundInstance {
  pattern: SynthSoundPattern;
  /** Pitch or band centre in Hz. */
  f0: number;
  /** Event rate in events per second. */
  rate: number;
  tilt: number;
  harmonics: number;
  /** Decay-time multiplier. */
  decay: number;
  /** Modulation depth / index in [0.5, 0.9]. */
  depth: number;
  /** Sweep ratio / formant placement in [1.6, 2.6]. */
  ratio: number;
  /** Phase offset in [0, 1). */
  phase: number;
  /** Seed of the pattern's own randomness (noise, onset jitter, notes). */
  seed: number;
}

/** Background (ambient) noise of a clip; independent of the class. */
export interface SynthNoiseSpec {
  /** One-pole low-pass cutoff in Hz applied to white noise (lower = browner). */
  cutoffHz: number;
  /** Weight of unfiltered white noise mixed back in, in [0, 0.5]. */
  whiteMix: number;
  /** Mains hum frequency (0: none). */
  humHz: number;
  /** Hum level relative to the noise RMS. */
  humLevel: number;
  seed: number;
}

const r4 = (x: number) => Math.round(x * 10000) / 10000;

/** Draws a sound instance of class `cls` (pitch log-uniform in the class range, etc.). */
export function drawSynthSoundInstance(cls: SynthClass, rng: Rng): SynthSoundInstance {
  const s = cls.sound;
  const [lo, hi] = s.pitchHz;
  return {
    pattern: s.pattern,
    f0: r4(lo * (hi / lo) ** rng.next()),
    rate: r4(rng.uniform(s.rateHz[0], s.rateHz[1])),
    tilt: r4(Math.max(0.3, s.tilt + rng.uniform(-0.15, 0.15))),
    harmonics: s.harmonics,
    decay: r4(rng.uniform(0.7, 1.4)),
    depth: r4(rng.uniform(0.5, 0.9)),
    ratio: r4(rng.uniform(1.6, 2.6)),
    phase: r4(rng.next()),
    seed: rng.nextUint32(),
  };
}

/** Draws a background-noise spec. */
export function drawSynthNoise(rng: Rng): SynthNoiseSpec {
  const hum = rng.bool(0.3);
  return {
    cutoffHz: r4(200 * 40 ** rng.next()),
    whiteMix: r4(rng.uniform(0, 0.5)),
    humHz: hum ? rng.pick([50, 60]) : 0,
    humLevel: hum ? r4(rng.uniform(0.2, 0.6)) : 0,
    seed: rng.nextUint32(),
  };
}

/** A synthesised sound: samples normalised to unit RMS (absent when only the envelope was asked). */
export interface SynthSound {
  samples?: Float32Array;
  /** The designed amplitude envelope, one value per sample, max 1. */
  amp: Float32Array;
}

function onsets(rate: number, dur: number, rng: Rng): number[] {
  const out: number[] = [];
  let t = -rng.uniform(0, 1 / rate);
  while (t < dur) {
    out.push(t);
    t += (1 / rate) * rng.uniform(0.75, 1.25);
  }
  return out;
}

/**
 * Adds harmonics of a phase track starting at sample `start`:
 * out[start + i] += env[i] · Σ_k w_k sin(k θ_i) (+ env2[i] · Σ_k w2_k sin(k θ_i)), with θ following
 * `freq` (Hz, constant or per sample). Uses the Chebyshev recurrence, so one sin/cos per sample;
 * harmonics above 0.45·sr are skipped.
 */
function addHarmonics(
  out: Float32Array,
  start: number,
  len: number,
  freq: number | Float32Array,
  weights: Float64Array,
  env: Float32Array,
  sr: number,
  weights2?: Float64Array,
  env2?: Float32Array,
): void {
  let theta = 0;
  const twoPi = 2 * Math.PI;
  const nyq = 0.45 * sr;
  const end = Math.min(out.length, start + len);
  const constF = typeof freq === "number";
  const kmaxConst = constF ? Math.min(weights.length, Math.floor(nyq / Math.max(freq, 1))) : 0;
  const first = Math.max(0, start);
  // Advance the phase over samples before the clip start (notes that began earlier).
  for (let i = start; i < first; i++) theta += (twoPi * (constF ? freq : ((freq as Float32Array)[i - start] as number))) / sr;
  theta %= twoPi;
  for (let i = first; i < end; i++) {
    const j = i - start;
    const f = constF ? freq : ((freq as Float32Array)[j] as number);
    theta += (twoPi * f) / sr;
    if (theta > twoPi) theta -= twoPi;
    const e = env[j] as number;
    const e2 = env2 ? (env2[j] as number) : 0;
    if (e === 0 && e2 === 0) continue;
    const c2 = 2 * Math.cos(theta);
    let prev = 0;
    let cur = Math.sin(theta);
    let acc = 0;
    let acc2 = 0;
    const kmax = constF ? kmaxConst : Math.min(weights.length, Math.floor(nyq / Math.max(f, 1)));
    for (let k = 0; k < kmax; k++) {
      acc += (weights[k] as number) * cur;
      if (weights2) acc2 += (weights2[k] as number) * cur;
      const next = c2 * cur - prev;
      prev = cur;
      cur = next;
    }
    out[i] = (out[i] as number) + e * acc + e2 * acc2;
  }
}

/** A per-sample track fn(i) for i in [0, len). */
function track(len: number, fn: (i: number) => number): Float32Array {
  const t = new Float32Array(len);
  for (let i = 0; i < len; i++) t[i] = fn(i);
  return t;
}

/** gain · (1 − e^(−i/attack)) · e^(−i/tau) for i in [0, len), by running products (no exp per sample). */
function decayEnv(len: number, gain: number, attack: number, tau: number): Float32Array {
  const e = new Float32Array(len);
  const ra = Math.exp(-1 / attack);
  const rt = Math.exp(-1 / tau);
  let da = 1;
  let dt = 1;
  for (let i = 0; i < len; i++) {
    e[i] = gain * (1 - da) * dt;
    da *= ra;
    dt *= rt;
  }
  return e;
}

/** Adds env into amp at `start` (clipped to the buffer). */
function addEnv(amp: Float32Array, start: number, env: Float32Array): void {
  const a = Math.max(0, start);
  const b = Math.min(amp.length, start + env.length);
  for (let i = a; i < b; i++) amp[i] = (amp[i] as number) + (env[i - start] as number);
}

function harmonicWeights(n: number, tilt: number, oddOnly = false): Float64Array {
  const w = new Float64Array(n);
  for (let k = 1; k <= n; k++) w[k - 1] = oddOnly && k % 2 === 0 ? 0 : k ** -tilt;
  return w;
}

/** In-place RBJ band-pass biquad (0 dB peak). */
function bandpass(x: Float32Array, f: number, q: number, sr: number): void {
  const w0 = (2 * Math.PI * Math.min(f, 0.45 * sr)) / sr;
  const alpha = Math.sin(w0) / (2 * q);
  const a0 = 1 + alpha;
  const b0 = alpha / a0;
  const b2 = -alpha / a0;
  const a1 = (-2 * Math.cos(w0)) / a0;
  const a2 = (1 - alpha) / a0;
  let x1 = 0;
  let x2 = 0;
  let y1 = 0;
  let y2 = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i] as number;
    const y = b0 * xi + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = xi;
    y2 = y1;
    y1 = y;
    x[i] = y;
  }
}

function normaliseRms(x: Float32Array): void {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] as number) ** 2;
  const rms = Math.sqrt(s / Math.max(1, x.length));
  if (rms > 0) for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) / rms;
}

function normaliseMax(x: Float32Array): void {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i] as number);
  if (m > 0) for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) / m;
}

/** Smooth gate: 1 inside [0, len), with `ramp`-sample raised-cosine edges. */
function gate(i: number, len: number, ramp: number): number {
  if (i < 0 || i >= len) return 0;
  if (i < ramp) return 0.5 - 0.5 * Math.cos((Math.PI * i) / ramp);
  if (i > len - ramp) return 0.5 - 0.5 * Math.cos((Math.PI * (len - i)) / ramp);
  return 1;
}

/** What a pattern's generator gets: the instance, its length, the output buffers and its noise. */
interface SoundContext {
  inst: SynthSoundInstance;
  durationSec: number;
  /** Samples. */
  n: number;
  sr: number;
  /** The carrier, or undefined when only the envelope is wanted. */
  out: Float32Array | undefined;
  /** The amplitude envelope (normalised to max 1 afterwards). */
  amp: Float32Array;
  rng: Rng;
  noiseRng: Rng;
  /** Uniform noise in [−1, 1). */
  white: () => number;
  twoPi: number;
}

/** One generator per temporal pattern: fills the envelope and, when wanted, the carrier. */
const PATTERNS: Record<SynthSoundPattern, (c: SoundContext) => void> = {
  sustained: (c) => {
    const { inst, n, sr, out, amp, twoPi } = c;
    const { f0, rate, tilt, phase } = c.inst;
    for (let i = 0; i < n; i++) amp[i] = 0.55 + 0.45 * (0.5 - 0.5 * Math.cos(twoPi * (rate * (i / sr) + phase)));
    if (out)
      addHarmonics(
        out,
        0,
        n,
        track(n, (i) => f0 * (1 + 0.004 * Math.sin((twoPi * 5 * i) / sr))),
        harmonicWeights(inst.harmonics, tilt),
        amp,
        sr,
      );
  },
  plucked: (c) => {
    const { inst, sr, out, amp, rng, durationSec } = c;
    const { f0, rate, tilt, decay } = c.inst;
    const tau = 0.22 * decay;
    const len = Math.round(4.5 * tau * sr);
    const degrees = [0, 2, 4, 7, 9, 12];
    const body = harmonicWeights(inst.harmonics, tilt + 0.6);
    const bright = harmonicWeights(inst.harmonics, tilt);
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const f = f0 * 2 ** ((rng.pick(degrees) as number) / 12);
      const gain = rng.uniform(0.6, 1);
      const env = decayEnv(len, gain, 0.003 * sr, tau * sr);
      addEnv(amp, start, env);
      // Upper harmonics die faster: a fundamental-heavy body plus a bright, short attack layer.
      if (out) addHarmonics(out, start, len, f, body, env, sr, bright, decayEnv(len, gain, 0.003 * sr, (tau * sr) / 5));
    }
  },
  percussive: (c) => {
    const { n, sr, out, amp, rng, white, durationSec } = c;
    const { f0, rate, decay } = c.inst;
    const tau = 0.045 * decay;
    const len = Math.round(7 * tau * sr);
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const gain = rng.uniform(0.5, 1);
      addEnv(amp, start, decayEnv(len, gain, 0.001 * sr, tau * sr));
    }
    if (out) {
      for (let i = 0; i < n; i++) out[i] = (amp[i] as number) * white();
      bandpass(out, f0, 0.9, sr);
    }
  },
  noiseband: (c) => {
    const { n, sr, out, amp, white, twoPi } = c;
    const { f0, rate, depth, phase } = c.inst;
    for (let i = 0; i < n; i++) {
      const t = i / sr;
      amp[i] =
        (0.6 + 0.4 * (0.5 + 0.5 * Math.sin(twoPi * (rate * t + phase)))) * (0.75 + 0.25 * Math.sin(twoPi * (0.37 * rate * t + 2 * phase)));
    }
    if (out) {
      for (let i = 0; i < n; i++) out[i] = white();
      bandpass(out, f0, 2 + 4 * depth, sr);
      bandpass(out, f0, 2 + 4 * depth, sr);
      normaliseRms(out);
      for (let i = 0; i < n; i++) out[i] = (out[i] as number) * (amp[i] as number);
    }
  },
  chirp: (c) => {
    const { inst, sr, out, amp, rng, durationSec } = c;
    const { f0, rate, tilt, decay, ratio } = c.inst;
    const d = Math.min(0.8 / rate, 0.1 + 0.3 * decay);
    const len = Math.round(d * sr);
    const w = harmonicWeights(inst.harmonics, tilt);
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const env = track(len, (i) => Math.sin((Math.PI * i) / len) ** 2);
      addEnv(amp, start, env);
      if (out)
        addHarmonics(
          out,
          start,
          len,
          track(len, (i) => f0 * ratio ** (i / len)),
          w,
          env,
          sr,
        );
    }
  },
  tremolo: (c) => {
    const { inst, n, sr, out, amp, twoPi } = c;
    const { f0, rate, tilt, depth, phase } = c.inst;
    for (let i = 0; i < n; i++) amp[i] = 1 - depth * (0.5 + 0.5 * Math.sin(twoPi * (rate * (i / sr) + phase)));
    if (out) addHarmonics(out, 0, n, f0, harmonicWeights(inst.harmonics, tilt), amp, sr);
  },
  buzz: (c) => {
    const { inst, n, sr, out, amp, rng, twoPi, durationSec } = c;
    const { f0, rate, tilt } = c.inst;
    const ramp = Math.round(0.012 * sr);
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const len = Math.round((rng.uniform(0.35, 0.6) / rate) * sr);
      for (let i = Math.max(0, start); i < Math.min(n, start + len); i++) amp[i] = Math.max(amp[i] as number, gate(i - start, len, ramp));
    }
    if (out)
      addHarmonics(
        out,
        0,
        n,
        track(n, (i) => f0 * (1 + 0.006 * Math.sin((twoPi * 6 * i) / sr))),
        harmonicWeights(inst.harmonics, Math.max(0.8, tilt), true),
        amp,
        sr,
      );
  },
  bell: (c) => {
    const { n, sr, out, amp, rng, twoPi, durationSec } = c;
    const { f0, rate, decay, depth } = c.inst;
    const tau = 0.55 * decay;
    const len = Math.round(4 * tau * sr);
    const index = decayEnv(len, 3 * depth, 1e-9, 0.35 * tau * sr);
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const gain = rng.uniform(0.6, 1);
      const env = decayEnv(len, gain, 0.002 * sr, tau * sr);
      addEnv(amp, start, env);
      if (out) {
        // FM bell: carrier f0, inharmonic modulator √2·f0, index decaying faster than the tone.
        for (let i = Math.max(0, start); i < Math.min(n, start + len); i++) {
          const k = i - start;
          const t = k / sr;
          out[i] =
            (out[i] as number) +
            (env[k] as number) * Math.sin(twoPi * f0 * t + (index[k] as number) * Math.sin(twoPi * f0 * Math.SQRT2 * t));
        }
      }
    }
  },
  rattle: (c) => {
    const { n, sr, out, amp, rng, noiseRng, white, twoPi, durationSec } = c;
    const { f0, rate, depth } = c.inst;
    const clickRate = 18 + 20 * depth;
    const clickTau = 0.004 * sr;
    const ramp = Math.round(0.01 * sr);
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const len = Math.round(rng.uniform(0.15, 0.4) * sr);
      for (let i = Math.max(0, start); i < Math.min(n, start + len); i++) amp[i] = Math.max(amp[i] as number, gate(i - start, len, ramp));
      if (out) {
        const period = sr / clickRate;
        for (let c = 0; c * period < len; c++) {
          const cs = start + Math.round(c * period);
          const g = gate(cs - start, len, ramp) * noiseRng.uniform(0.6, 1);
          const cl = Math.round(6 * clickTau);
          for (let i = Math.max(0, cs); i < Math.min(n, cs + cl); i++) {
            const k = i - cs;
            out[i] =
              (out[i] as number) +
              g * Math.exp(-k / clickTau) * Math.sin((twoPi * f0 * k) / sr) +
              0.3 * g * Math.exp(-k / clickTau) * white();
          }
        }
      }
    }
  },
  vowel: (c) => {
    const { inst, n, sr, out, amp, rng, twoPi, durationSec } = c;
    const { f0, rate, tilt, depth, ratio, phase } = c.inst;
    const f1 = 350 + 450 * depth;
    const f2 = 900 + 700 * ratio;
    const w = new Float64Array(inst.harmonics);
    for (let k = 1; k <= w.length; k++) {
      const fk = k * f0;
      w[k - 1] = (1 / k ** (0.5 * tilt)) * (Math.exp(-(((fk - f1) / 180) ** 2)) + 0.6 * Math.exp(-(((fk - f2) / 260) ** 2)) + 0.04);
    }
    for (const t0 of onsets(rate, durationSec, rng)) {
      const start = Math.round(t0 * sr);
      const len = Math.round((0.7 / rate) * sr);
      for (let i = Math.max(0, start); i < Math.min(n, start + len); i++)
        amp[i] = Math.max(amp[i] as number, Math.sin((Math.PI * (i - start)) / len) ** 1.5);
    }
    if (out)
      addHarmonics(
        out,
        0,
        n,
        track(n, (i) => f0 * (1 + 0.03 * Math.sin(twoPi * (0.5 * rate * (i / sr) + phase)))),
        w,
        amp,
        sr,
      );
  },
  siren: (c) => {
    const { inst, n, sr, out, amp, twoPi } = c;
    const { f0, rate, tilt, depth, phase } = c.inst;
    for (let i = 0; i < n; i++) amp[i] = 0.8 + 0.2 * Math.sin(twoPi * (2 * rate * (i / sr) + phase));
    if (out)
      addHarmonics(
        out,
        0,
        n,
        track(n, (i) => f0 * 2 ** (0.4 * depth * Math.sin(twoPi * (rate * (i / sr) + phase)))),
        harmonicWeights(inst.harmonics, tilt),
        amp,
        sr,
      );
  },
};

/**
 * Synthesises `durationSec` of a sound instance at `sampleRate`. With `envelopeOnly`, only the
 * amplitude envelope is computed (used for silent distractors that pulse like sounding objects).
 */
export function synthesizeSynthSound(
  inst: SynthSoundInstance,
  durationSec: number,
  sampleRate: number,
  opts: { envelopeOnly?: boolean } = {},
): SynthSound {
  const sr = sampleRate;
  const n = Math.round(durationSec * sr);
  const rng = new Rng(inst.seed);
  const noiseRng = rng.fork("noise");
  const out = opts.envelopeOnly ? undefined : new Float32Array(n);
  const amp = new Float32Array(n);
  const twoPi = 2 * Math.PI;
  const white = () => noiseRng.next() * 2 - 1;

  PATTERNS[inst.pattern]({ inst, durationSec, n, sr, out, amp, rng, noiseRng, white, twoPi });
  normaliseMax(amp);
  if (out) normaliseRms(out);
  return { samples: out, amp };
}

/** Background noise of `n` samples, normalised to unit RMS. */
export function synthesizeSynthNoise(spec: SynthNoiseSpec, n: number, sampleRate: number): Float32Array {
  const rng = new Rng(spec.seed);
  const out = new Float32Array(n);
  const a = Math.exp((-2 * Math.PI * spec.cutoffHz) / sampleRate);
  let y = 0;
  for (let i = 0; i < n; i++) {
    const w = rng.next() * 2 - 1;
    y = a * y + (1 - a) * w;
    out[i] = y;
  }
  normaliseRms(out);
  for (let i = 0; i < n; i++) out[i] = (out[i] as number) + spec.whiteMix * (rng.next() * 2 - 1) * 1.732;
  if (spec.humHz > 0) {
    for (let i = 0; i < n; i++) {
      const t = i / sampleRate;
      out[i] =
        (out[i] as number) +
        spec.humLevel * 1.2 * (Math.sin(2 * Math.PI * spec.humHz * t) + 0.5 * Math.sin(2 * Math.PI * 3 * spec.humHz * t));
    }
  }
  normaliseRms(out);
  return out;
}

/**
 * The per-frame envelope of a sound: the mean amplitude over each frame's display interval
 * `[i/fps, (i+1)/fps)`, scaled so the clip's maximum is 1.
 */
export function synthFrameEnvelope(amp: Float32Array, fps: number, frames: number, sampleRate: number): Float32Array {
  const env = new Float32Array(frames);
  for (let f = 0; f < frames; f++) {
    const a = Math.round((f / fps) * sampleRate);
    const b = Math.min(amp.length, Math.round(((f + 1) / fps) * sampleRate));
    let s = 0;
    for (let i = a; i < b; i++) s += amp[i] as number;
    env[f] = b > a ? s / (b - a) : 0;
  }
  normaliseMax(env);
  return env;
}
