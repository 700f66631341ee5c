/**
 * The "no shortcut cues" check: AVC pairs (frame at t; 1 s of audio centred at t of the same clip, or
 * of another clip) described by trivial statistics, and a logistic regression on them and their
 * pairwise products, evaluated on pairs from held-out clips.
 */
import type { Rng } from "../../src/lib/util";

/** Decoded clip: frames (rgb24) and mono audio. */
export interface DecodedClip {
  frames: Uint8Array[];
  audio: Float32Array;
}

/** Frame mean and variance per channel. */
export function frameStats(rgb: Uint8Array): number[] {
  const s = [0, 0, 0];
  const q = [0, 0, 0];
  const n = rgb.length / 3;
  for (let i = 0; i < rgb.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = (rgb[i + c] as number) / 255;
      s[c] = (s[c] as number) + v;
      q[c] = (q[c] as number) + v * v;
    }
  }
  const mean = s.map((x) => x / n);
  return [...mean, ...q.map((x, c) => x / n - (mean[c] as number) ** 2)];
}

/** RMS and peak of audio[start, start + len). */
export function audioStats(a: Float32Array, start: number, len: number): number[] {
  let ss = 0;
  let peak = 0;
  for (let i = start; i < start + len; i++) {
    const v = a[i] ?? 0;
    ss += v * v;
    peak = Math.max(peak, Math.abs(v));
  }
  return [Math.sqrt(ss / len), peak];
}

export interface Pair {
  x: number[];
  y: number;
}

/** Builds `perClip` positive and `perClip` negative pairs for each clip in `clipIdx` (audio of negatives from the same set). */
export function buildPairs(
  clips: DecodedClip[],
  clipIdx: number[],
  fps: number,
  sampleRate: number,
  durationSec: number,
  perClip: number,
  rng: Rng,
): Pair[] {
  const pairs: Pair[] = [];
  const win = sampleRate;
  const time = () => rng.uniform(0.5, durationSec - 0.5);
  const feats = (c: number, t: number, d: number, ta: number) => {
    const clip = clips[c] as DecodedClip;
    const frame = clip.frames[Math.min(clip.frames.length - 1, Math.floor(t * fps))] as Uint8Array;
    const a = (clips[d] as DecodedClip).audio;
    return [...frameStats(frame), ...audioStats(a, Math.round((ta - 0.5) * sampleRate), win)];
  };
  for (const c of clipIdx) {
    for (let k = 0; k < perClip; k++) {
      const t = time();
      pairs.push({ x: feats(c, t, c, t), y: 1 });
      let d = c;
      while (d === c) d = rng.pick(clipIdx);
      pairs.push({ x: feats(c, time(), d, time()), y: 0 });
    }
  }
  return pairs;
}

/** Features plus all pairwise products (squares included). */
export function expand(x: number[]): number[] {
  const out = [...x];
  for (let i = 0; i < x.length; i++) for (let j = i; j < x.length; j++) out.push((x[i] as number) * (x[j] as number));
  return out;
}

/** Logistic regression (standardised inputs, L2, full-batch gradient descent); returns held-out accuracy. */
export function logisticAccuracy(
  train: Pair[],
  test: Pair[],
  opts: { iters?: number; lr?: number; l2?: number } = {},
): { train: number; test: number } {
  const std = (ps: Pair[]) => ps.map((p) => expand(p.x));
  const Xtr0 = std(train);
  const d = (Xtr0[0] as number[]).length;
  const mu = new Array<number>(d).fill(0);
  const sd = new Array<number>(d).fill(0);
  for (const x of Xtr0) for (let j = 0; j < d; j++) mu[j] = (mu[j] as number) + (x[j] as number) / Xtr0.length;
  for (const x of Xtr0) for (let j = 0; j < d; j++) sd[j] = (sd[j] as number) + ((x[j] as number) - (mu[j] as number)) ** 2 / Xtr0.length;
  const norm = (X: number[][]) => X.map((x) => x.map((v, j) => (v - (mu[j] as number)) / Math.sqrt((sd[j] as number) + 1e-12)));
  const Xtr = norm(Xtr0);
  const Xte = norm(std(test));
  const w = new Array<number>(d).fill(0);
  let b = 0;
  const iters = opts.iters ?? 600;
  const lr = opts.lr ?? 0.2;
  const l2 = opts.l2 ?? 1e-3;
  for (let it = 0; it < iters; it++) {
    const g = new Array<number>(d).fill(0);
    let gb = 0;
    Xtr.forEach((x, i) => {
      let z = b;
      for (let j = 0; j < d; j++) z += (w[j] as number) * (x[j] as number);
      const e = 1 / (1 + Math.exp(-z)) - (train[i] as Pair).y;
      for (let j = 0; j < d; j++) g[j] = (g[j] as number) + e * (x[j] as number);
      gb += e;
    });
    for (let j = 0; j < d; j++) w[j] = (w[j] as number) - lr * ((g[j] as number) / Xtr.length + l2 * (w[j] as number));
    b -= (lr * gb) / Xtr.length;
  }
  const acc = (X: number[][], ps: Pair[]) =>
    X.reduce((s, x, i) => {
      let z = b;
      for (let j = 0; j < d; j++) z += (w[j] as number) * (x[j] as number);
      return s + ((z > 0 ? 1 : 0) === (ps[i] as Pair).y ? 1 : 0);
    }, 0) / X.length;
  return { train: acc(Xtr, train), test: acc(Xte, test) };
}
