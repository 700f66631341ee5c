import * as tf from "@tensorflow/tfjs";
import type { InferenceArray, L3Net } from "../../src/lib/models";
import { Rng } from "../../src/lib/util";

/** Gives every batch-norm parameter non-trivial values, so folding is really exercised. */
export function randomizeBatchNorm(model: L3Net, seed: string): void {
  const rng = new Rng(seed);
  for (const v of model.namedVariables()) {
    const n = v.variable.size;
    let values: Float32Array | undefined;
    if (v.role === "gamma") values = Float32Array.from({ length: n }, () => rng.uniform(0.5, 1.5));
    else if (v.role === "beta") values = Float32Array.from({ length: n }, () => rng.normal(0, 0.2));
    else if (v.role === "moving_mean") values = Float32Array.from({ length: n }, () => rng.normal(0, 0.3));
    else if (v.role === "moving_variance") values = Float32Array.from({ length: n }, () => rng.uniform(0.5, 2));
    if (values) {
      const data = values;
      tf.tidy(() => v.variable.assign(tf.tensor(data, v.variable.shape)));
    }
  }
}

/** Random inputs for a model: frames in [0, 1], spectrogram values in [−2, 2]. */
export function randomInputs(model: L3Net, batch: number, seed: string): { frames: Float32Array; audio: Float32Array } {
  const rng = new Rng(seed);
  const shape = (name: string) => model.graph.nodes.find((n) => n.name === name)?.shape ?? [];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const frames = Float32Array.from({ length: batch * size(shape(model.graph.outputs.frames)) }, () => rng.uniform());
  const audio = Float32Array.from({ length: batch * size(shape(model.graph.outputs.audio)) }, () => rng.uniform(-2, 2));
  return { frames, audio };
}

/** ‖a − b‖∞ / ‖b‖∞ (0 when both are all zero). */
export function relError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    m = Math.max(m, Math.abs(b[i] as number));
  }
  return m === 0 ? d : d / m;
}

/** Asserts-friendly comparison of two runner results: per output, shapes and relative error. */
export function compareOutputs(
  got: Record<string, InferenceArray>,
  want: Record<string, InferenceArray>,
): Array<{ name: string; sameShape: boolean; rel: number }> {
  return Object.keys(want).map((name) => {
    const g = got[name];
    const w = want[name] as InferenceArray;
    if (!g) return { name, sameShape: false, rel: Number.POSITIVE_INFINITY };
    return { name, sameShape: JSON.stringify(g.shape) === JSON.stringify(w.shape), rel: relError(g.data, w.data) };
  });
}

/**
 * Inputs with no near-ties at the network's kinks, for comparing gradients of two engines on large
 * maps: each sample is a ramp (its own direction) plus small noise, so every 2×2 max-pool window and
 * every global max has a clear winner at every layer. With random inputs, a value within float32
 * rounding of a tie (a ReLU at 0, two equal maxima) makes two correct engines route a gradient
 * differently; on `lite` and `paper` a few such positions per step are expected and each moves a
 * whole gradient entry.
 */
export function kinkFreeInputs(model: L3Net, batch: number, seed: string): { frames: Float32Array; audio: Float32Array } {
  const rng = new Rng(seed);
  const ramp = (shape: number[], lo: number, hi: number): Float32Array => {
    const [h, w, c] = shape as [number, number, number];
    const out = new Float32Array(batch * h * w * c);
    for (let b = 0; b < batch; b++) {
      const angle = rng.uniform(0.1, 1.4);
      const ay = Math.cos(angle);
      const ax = Math.sin(angle);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let ch = 0; ch < c; ch++) {
            const t = (ay * y + ax * x) / (ay * h + ax * w);
            out[((b * h + y) * w + x) * c + ch] = lo + (hi - lo) * (0.05 + 0.9 * t + 0.01 * rng.uniform() + 0.02 * ch);
          }
    }
    return out;
  };
  const shape = (name: string) => model.graph.nodes.find((n) => n.name === name)?.shape ?? [];
  return { frames: ramp(shape(model.graph.outputs.frames), 0, 1), audio: ramp(shape(model.graph.outputs.audio), -2, 2) };
}

/** Batch-norm parameters that keep every activation far above ReLU's kink (β = 8, γ in [0.5, 1.5]). */
export function kinkFreeBatchNorm(model: L3Net, seed: string): void {
  const rng = new Rng(seed);
  for (const v of model.namedVariables()) {
    const n = v.variable.size;
    let values: Float32Array | undefined;
    if (v.role === "gamma") values = Float32Array.from({ length: n }, () => rng.uniform(0.5, 1.5));
    else if (v.role === "beta") values = new Float32Array(n).fill(8);
    if (values) {
      const data = values;
      tf.tidy(() => v.variable.assign(tf.tensor(data, v.variable.shape)));
    }
  }
}
