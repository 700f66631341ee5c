/**
 * AVC evaluation of a model on a fixed, seeded pair set (e.g. `sampler.fixedPairs(n, seed)`), in
 * batches, with every tensor disposed. Pairs that fail to load are skipped and reported.
 */
import * as tf from "@tensorflow/tfjs";
import { type AvcPair, fixedAvcPairs, type PairSource } from "../data";
import {
  audioInputShape,
  audioWindowSamples,
  computeAudioInput,
  computeFrameInput,
  type InferenceEngineChoice,
  inferenceRunnerFor,
  type L3Net,
} from "../models";
import { ConfigError, errorMessage, L3kitError } from "../util";
import { type AvcMetrics, avcMetrics } from "./metrics";

/** Model inputs for a batch of pairs (frames in [0, 1]; spectrograms from the model's audio front-end). */
export interface AvcInputs {
  frames: tf.Tensor4D;
  audio: tf.Tensor4D;
}

/** A fixed set of labelled pairs and a loader that turns some of them into a batch of model inputs. */
export interface AvcPairSource<P extends { label: number } = { label: 0 | 1 }> {
  /** The pairs, in a fixed order (label 1 = frame and audio correspond). */
  pairs: readonly P[];
  /**
   * Loads a batch: the returned tensors have one row per pair, in order, and are disposed by the
   * caller. May throw; the pairs are then retried one by one and the failures reported.
   */
  load(pairs: readonly P[]): Promise<AvcInputs>;
}

/** A pair left out of the evaluation. */
export interface FailedPair {
  index: number;
  reason: string;
  message: string;
}

/** AVC metrics plus the per-pair scores, for tables and ROC plots. */
export interface AvcEvaluation extends AvcMetrics {
  /** P(correspond) of each evaluated pair, in pair order (failed pairs left out). */
  scores: number[];
  labels: number[];
  /** Indices (into `pairs`) of the evaluated pairs. */
  indices: number[];
  failed: FailedPair[];
}

/** Options of {@link evaluateAvc}. */
export interface EvaluateAvcOptions {
  /** Pairs per forward pass. Default 32. */
  batchSize?: number;
  /** Called after each batch. */
  onProgress?: (p: { done: number; total: number }) => void;
  /** Forward engine: "auto" (default: onnxruntime-node when it loads, else tfjs), "onnx", "tfjs", or a runner of this model. */
  engine?: InferenceEngineChoice;
}

/**
 * P(correspond) (softmax index 1) of a batch, in inference mode; all tensors freed. `engine` as in
 * {@link EvaluateAvcOptions} (default "auto").
 */
export async function avcScores(model: L3Net, inputs: AvcInputs, engine?: InferenceEngineChoice): Promise<Float32Array> {
  const runner = inferenceRunnerFor(model, engine);
  if (runner.engine !== "tfjs") {
    const [f, a] = await Promise.all([inputs.frames.data(), inputs.audio.data()]);
    const { probs } = await runner.run(
      {
        frames: { data: f as Float32Array, shape: [...inputs.frames.shape] },
        audio: { data: a as Float32Array, shape: [...inputs.audio.shape] },
      },
      ["probs"],
    );
    const pr = (probs as { data: Float32Array }).data;
    return Float32Array.from({ length: pr.length / 2 }, (_, i) => pr[2 * i + 1] as number);
  }
  const p = tf.tidy(() => {
    const out = model.forward(inputs, { training: false });
    return tf.reshape(tf.slice(out.probs, [0, 1], [-1, 1]), [-1]);
  });
  try {
    return (await p.data()) as Float32Array;
  } finally {
    p.dispose();
  }
}

/**
 * Accuracy and ROC AUC of the model's correspondence probability on a fixed pair set. Deterministic
 * for a fixed pair set and weights (inference mode: batch norm uses its moving statistics).
 */
export async function evaluateAvc<P extends { label: number }>(
  model: L3Net,
  source: AvcPairSource<P>,
  opts: EvaluateAvcOptions = {},
): Promise<AvcEvaluation> {
  const bs = opts.batchSize ?? 32;
  if (!(Number.isInteger(bs) && bs >= 1))
    throw new ConfigError(`batchSize must be a positive integer, got ${bs}`, { subject: "evaluateAvc" });
  const { pairs } = source;
  const runner = inferenceRunnerFor(model, opts.engine);
  const scores: number[] = [];
  const labels: number[] = [];
  const indices: number[] = [];
  const failed: FailedPair[] = [];

  const score = async (idx: number[]): Promise<void> => {
    const batch = idx.map((i) => pairs[i]!);
    const inputs = await source.load(batch);
    try {
      const b = inputs.frames.shape[0];
      if (b !== batch.length || inputs.audio.shape[0] !== batch.length) {
        throw new L3kitError(`loader returned ${b} frames and ${inputs.audio.shape[0]} spectrograms for ${batch.length} pairs`, {
          subject: "evaluateAvc",
          reason: "bad-batch",
        });
      }
      const s = await avcScores(model, inputs, runner);
      idx.forEach((i, j) => {
        scores.push(s[j]!);
        labels.push(pairs[i]!.label);
        indices.push(i);
      });
    } finally {
      tf.dispose([inputs.frames, inputs.audio]);
    }
  };

  for (let start = 0; start < pairs.length; start += bs) {
    const idx = Array.from({ length: Math.min(bs, pairs.length - start) }, (_, j) => start + j);
    try {
      await score(idx);
    } catch (err) {
      if (err instanceof ConfigError) throw err; // a wrong input shape is not a bad pair
      for (const i of idx) {
        try {
          await score([i]);
        } catch (e) {
          if (e instanceof ConfigError) throw e;
          failed.push({ index: i, reason: e instanceof L3kitError ? e.reason : "load-failed", message: errorMessage(e) });
        }
      }
    }
    opts.onProgress?.({ done: Math.min(start + bs, pairs.length), total: pairs.length });
  }
  return { ...avcMetrics(scores, labels), scores, labels, indices, failed };
}

/**
 * An {@link AvcPairSource} over a data {@link PairSource} (sample cache or video files): `n` fixed
 * pairs drawn with `seed` alone (`fixedAvcPairs`), each decoded by the source and turned into model
 * inputs by the model's own front-ends (frame: resize + centre crop; audio: the config's
 * spectrogram). The source must decode audio at the front-end's sample rate.
 */
export function fixedAvcPairSource(model: L3Net, source: PairSource, n: number, seed: number | string): AvcPairSource<AvcPair> {
  const fe = model.config.audio.frontEnd;
  const win = audioWindowSamples(fe);
  const [bins, frames] = audioInputShape(fe);
  const size = model.config.vision.frontEnd.size;
  const pairs = fixedAvcPairs(source.clips, n, seed, { windowSec: fe.durationSec });
  return {
    pairs,
    async load(batch) {
      const loaded = await Promise.all(batch.map((p) => source.loadPair(p)));
      const f = new Float32Array(batch.length * size * size * 3);
      const a = new Float32Array(batch.length * bins * frames);
      loaded.forEach((l, i) => {
        if (Math.abs(l.audio.length - win) > Math.max(1, 0.01 * win)) {
          throw new ConfigError(
            `the source gave ${l.audio.length} audio samples; the model's front-end takes ${win} (${fe.sampleRate} Hz × ${fe.durationSec} s)`,
            {
              subject: "fixedAvcPairSource",
              reason: "sample-rate-mismatch",
            },
          );
        }
        f.set(computeFrameInput(model.config, l.frame), i * size * size * 3);
        a.set(computeAudioInput(fe, l.audio), i * bins * frames);
      });
      return { frames: tf.tensor4d(f, [batch.length, size, size, 3]), audio: tf.tensor4d(a, [batch.length, bins, frames, 1]) };
    },
  };
}
