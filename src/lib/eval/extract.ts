/**
 * Feature extractors built from a model, for the probe protocols: a tower's pooled embedding or its
 * grid-pooled last map (by default the raw last conv, as L³ and OpenL3), per window/frame of a clip; and the random-weights twin of a model (the
 * baseline every probe is reported beside).
 */
import * as tf from "@tensorflow/tfjs";
import type { ManifestRow } from "../data/types";
import { readAudio, readFrames } from "../media";
import {
  audioInputShape,
  audioWindowSamples,
  buildL3Net,
  computeAudioInput,
  computeFrameInput,
  type InferenceEngineChoice,
  type InferenceRunner,
  inferenceRunnerFor,
  type EmbeddingLayer,
  type L3Net,
  type L3NetConfig,
  resolveEmbeddingLayer,
} from "../models";
import { ConfigError, L3kitError } from "../util";
import { windowCentres } from "./baselines";
import type { FeatureExtractor, ProbeFeatures } from "./protocol";

/** Options of {@link towerFeatureExtractor}. */
export interface TowerFeatureOptions {
  /** Which tower. */
  tower: "vision" | "audio";
  /**
   * "grid" (default): the last map max-pooled to the config's `gridPool` grid (paper audio: 4×3×512 =
   * 6144-d, L³'s ESC-50 feature); "embedding": the global max-pool (512-d for the paper).
   */
  feature?: "grid" | "embedding";
  /**
   * The layer pooled: "conv" (default) — the last conv's raw output, before batch norm and ReLU, as
   * L³ and OpenL3; "relu" — after them (the fusion head's input). See {@link EMBEDDING_LAYERS}.
   */
  layer?: EmbeddingLayer;
  /**
   * The tower inputs of a row: k windows/frames as a k×… tensor (vision: frames in [0, 1], audio:
   * spectrograms of the model's front-end). The extractor disposes it. May throw for a bad file.
   */
  inputs: (row: ManifestRow) => Promise<tf.Tensor4D>;
  /** Windows per forward pass. Default 16. */
  batchSize?: number;
  /** Forward engine: "auto" (default: onnxruntime-node when it loads, else tfjs), "onnx", "tfjs", or a runner of this model. */
  engine?: InferenceEngineChoice;
}

/**
 * A {@link FeatureExtractor} from one tower of a model (inference mode): k windows → k×dim features.
 * The model is not disposed; all tensors created here are.
 */
export function towerFeatureExtractor(model: L3Net, opts: TowerFeatureOptions): FeatureExtractor {
  const feature = opts.feature ?? "grid";
  const layer = resolveEmbeddingLayer(opts.layer, model.config[opts.tower], "towerFeatureExtractor");
  const bs = opts.batchSize ?? 16;
  if (!(Number.isInteger(bs) && bs >= 1))
    throw new ConfigError(`batchSize must be a positive integer, got ${bs}`, { subject: "towerFeatureExtractor" });
  let runner: InferenceRunner | undefined;
  return async (row): Promise<ProbeFeatures> => {
    runner ??= inferenceRunnerFor(model, opts.engine);
    const x = await opts.inputs(row);
    try {
      const k = x.shape[0];
      if (!(k >= 1)) throw new L3kitError("no windows", { subject: row.id, reason: "empty" });
      if (runner.engine !== "tfjs") {
        const all = (await x.data()) as Float32Array;
        const per = all.length / k;
        const name = `${opts.tower}${layer === "conv" ? "Conv" : ""}${feature === "grid" ? "Grid" : "Embedding"}`;
        let features = new Float32Array(0);
        let dim = 0;
        for (let s = 0; s < k; s += bs) {
          const n = Math.min(bs, k - s);
          const input = { data: all.subarray(s * per, (s + n) * per), shape: [n, ...x.shape.slice(1)] };
          const out = (await runner.run(opts.tower === "vision" ? { frames: input } : { audio: input }, [name]))[name]!;
          if (s === 0) {
            dim = out.shape[1] as number;
            features = new Float32Array(k * dim);
          }
          features.set(out.data, s * dim);
        }
        return { features, k, dim };
      }
      const chunks: Float32Array[] = [];
      let dim = 0;
      for (let s = 0; s < k; s += bs) {
        const n = Math.min(bs, k - s);
        const f = tf.tidy(() => {
          const part = n === k ? x : (tf.slice(x, [s, 0, 0, 0], [n, -1, -1, -1]) as tf.Tensor4D);
          const to = { grid: feature === "grid", layer };
          const out = opts.tower === "vision" ? model.visionTower(part, to) : model.audioTower(part, to);
          return feature === "grid" ? out.grid! : out.embedding;
        });
        dim = f.shape[1];
        chunks.push((await f.data()) as Float32Array);
        f.dispose();
      }
      const features = new Float32Array(k * dim);
      let o = 0;
      for (const c of chunks) {
        features.set(c, o);
        o += c.length;
      }
      return { features, k, dim };
    } finally {
      x.dispose();
    }
  };
}

/**
 * The random-weights twin of a model: the same config, freshly initialised with a fixed seed
 * (default "random-weights-baseline"), so a probe on it measures what the architecture alone gives.
 * Batch norm keeps its initial statistics (mean 0, variance 1). Dispose it when done.
 */
export function randomWeightsModel(config: L3Net | L3NetConfig, seed: number | string = "random-weights-baseline"): L3Net {
  const cfg = "graph" in config ? (config as L3Net).config : (config as L3NetConfig);
  return buildL3Net(cfg, { seed });
}

/**
 * Audio tower inputs of a row: its audio decoded at the model's rate, cut into windows of the
 * front-end's length (default hop = the window, i.e. consecutive 1 s windows; a clip shorter than one
 * window gives one zero-padded window), each turned into the front-end's spectrogram → k×bins×frames×1.
 */
export function modelAudioInputs(model: L3Net, opts: { hopSec?: number } = {}): (row: ManifestRow) => Promise<tf.Tensor4D> {
  const fe = model.config.audio.frontEnd;
  const win = audioWindowSamples(fe);
  const hop = Math.round((opts.hopSec ?? win / fe.sampleRate) * fe.sampleRate);
  if (!(hop >= 1)) throw new ConfigError(`hopSec must be > 0`, { subject: "modelAudioInputs" });
  const [bins, frames] = audioInputShape(fe);
  return async (row) => {
    const clip = await readAudio(row.path, { sampleRate: fe.sampleRate });
    const starts: number[] = [];
    for (let s = 0; s + win <= clip.samples.length; s += hop) starts.push(s);
    if (starts.length === 0) starts.push(0);
    const data = new Float32Array(starts.length * bins * frames);
    starts.forEach((s, i) => {
      data.set(computeAudioInput(fe, clip.samples.subarray(s, s + win)), i * bins * frames);
    });
    return tf.tensor4d(data, [starts.length, bins, frames, 1]);
  };
}

/**
 * Vision tower inputs of a row: one frame per `everySec` (default 1 s, at window centres 0.5, 1.5, …),
 * resized and centre-cropped by the model's front-end → k×size×size×3 in [0, 1].
 */
export function modelFrameInputs(model: L3Net, opts: { everySec?: number } = {}): (row: ManifestRow) => Promise<tf.Tensor4D> {
  const { size, resizeTo } = model.config.vision.frontEnd;
  return async (row) => {
    const times = windowCentres(row.durationSec, opts.everySec ?? 1);
    const decoded = await readFrames(row.path, times, { shortSide: resizeTo });
    const data = new Float32Array(decoded.length * size * size * 3);
    decoded.forEach((f, i) => {
      data.set(computeFrameInput(model.config, f), i * size * size * 3);
    });
    return tf.tensor4d(data, [decoded.length, size, size, 3]);
  };
}

/**
 * A probe feature extractor that decodes a row with `media` and runs one tower of the model:
 * audio — consecutive 1 s windows; vision — one frame per second. `feature` and `layer` as in
 * {@link towerFeatureExtractor} (default "grid" of the raw last conv, e.g. 6144-d audio features for
 * the paper config, L³'s ESC-50 feature).
 */
export function modelFeatureExtractor(
  model: L3Net,
  opts: {
    tower: "vision" | "audio";
    feature?: "grid" | "embedding";
    layer?: EmbeddingLayer;
    batchSize?: number;
    everySec?: number;
    engine?: InferenceEngineChoice;
  },
): FeatureExtractor {
  const inputs =
    opts.tower === "audio" ? modelAudioInputs(model, { hopSec: opts.everySec }) : modelFrameInputs(model, { everySec: opts.everySec });
  return towerFeatureExtractor(model, {
    tower: opts.tower,
    feature: opts.feature,
    layer: opts.layer,
    batchSize: opts.batchSize,
    inputs,
    engine: opts.engine,
  });
}
