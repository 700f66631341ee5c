/**
 * Embedding extraction in the manner of OpenL3's `get_audio_embedding` / `get_image_embedding` /
 * `process_video_file`, with any L³-Net (inference mode: BN uses its moving statistics).
 *
 * Audio windows follow OpenL3 exactly: the signal (resampled to the model's rate) is, with
 * `center`, padded at the start by half a window so that window i is centred on t = i·hop; then zeros
 * are appended so that (length − window) is a multiple of the hop (or up to one window when shorter);
 * windows = 1 + (padded length − window)/hop, timestamps i·hopSec. A 2.0 s file with hop 0.1 s gives 16
 * windows, timestamps 0.0 … 1.5.
 *
 * Features are pooled from the raw output of each tower's last conv (conv4_2), before batch norm and
 * ReLU, as L³'s embedding models and OpenL3 do (`layer: "conv"`, the default); `layer: "relu"` pools
 * the map after batch norm and ReLU instead (the fusion head's input).
 */
import * as tf from "@tensorflow/tfjs";
import { probeMedia, type RgbFrame, readAudio, readFrames } from "../media";
import { ConfigError, integerProblem, L3kitError } from "../util";
import { audioInputShape, audioWindowSamples } from "./config";
import { computeAudioInput, computeFrameInput } from "./frontend";
import { type EmbeddingLayer, resolveEmbeddingLayer } from "./graph";
import type { L3Net } from "./model";
import { type InferenceEngineChoice, inferenceRunnerFor } from "./onnx";
import { resampleAudio } from "./resample";

/**
 * Which feature to return: `global` — the tower's global max-pooled vector (paper: 512-d); `grid` — the
 * last map max-pooled to the config's grid (paper audio 4×3×512 = 6144-d, vision 4×4×512 = 8192-d);
 * or a number, the dimension of one of the two (e.g. 512 or 6144 for the paper model).
 */
export type EmbeddingPooling = "global" | "grid" | number;

/**
 * What every embedding call answers, whatever the modality: `count` rows of `dim` values, row-major
 * in `embeddings` (one row per image, video frame or audio window). {@link embedImage} gives this;
 * modalities with time add `timestamps` ({@link TimedEmbeddings}), as OpenL3's `get_audio_embedding`
 * returns (emb, ts) and its `get_image_embedding` emb alone.
 */
export interface Embeddings {
  embeddings: Float32Array;
  dim: number;
  count: number;
}

/**
 * Embeddings along time ({@link embedAudio}, and both streams of {@link embedVideo}): `timestamps[i]`
 * is row i's time in seconds (an audio window's centre, with `center`; a frame's time).
 */
export interface TimedEmbeddings extends Embeddings {
  timestamps: number[];
}

/** Options every embedding call takes. */
export interface EmbedOptions {
  /** Default "global". */
  pooling?: EmbeddingPooling;
  /** The layer pooled: "conv" (default; L³ / OpenL3) or "relu" (see {@link EMBEDDING_LAYERS}). */
  layer?: EmbeddingLayer;
  /** Inputs (windows or frames) per forward pass (default 32). */
  batchSize?: number;
  /** Forward engine: "auto" (default: onnxruntime-node when it loads, else tfjs), "onnx", "tfjs", or a runner of this model. */
  engine?: InferenceEngineChoice;
}

/** Options of {@link embedAudio}. */
export interface EmbedAudioOptions extends EmbedOptions {
  /** Seconds between windows (default 0.1). */
  hopSec?: number;
  /** Centre the first window on t = 0 (default true, as OpenL3). */
  center?: boolean;
}

/** Resolves a pooling choice for a tower; numbers must equal one of the two dims. */
export function resolvePooling(
  model: L3Net,
  part: "vision" | "audio",
  pooling: EmbeddingPooling = "global",
): { kind: "global" | "grid"; dim: number } {
  const t = model.config[part];
  const c = t.widths[t.widths.length - 1] as number;
  const gridDim = t.gridPool[0] * t.gridPool[1] * c;
  if (pooling === "global") return { kind: "global", dim: c };
  if (pooling === "grid") return { kind: "grid", dim: gridDim };
  if (pooling === c) return { kind: "global", dim: c };
  if (pooling === gridDim) return { kind: "grid", dim: gridDim };
  throw new ConfigError(
    `pooling ${JSON.stringify(pooling)} is not available for the ${part} tower of '${model.config.name}' (valid: "global" = ${c}, "grid" = ${gridDim} (${t.gridPool[0]}×${t.gridPool[1]}×${c}))`,
    { subject: "embedding", reason: "bad-pooling" },
  );
}

/** OpenL3's window layout for `n` samples: how many windows, and the zeros before and after. */
export function audioWindowPlan(
  n: number,
  frameLength: number,
  hopLength: number,
  center = true,
): { count: number; padStart: number; padEnd: number } {
  const padStart = center ? Math.floor(frameLength / 2) : 0;
  const len = n + padStart;
  const padEnd = len < frameLength ? frameLength - len : Math.ceil((len - frameLength) / hopLength) * hopLength - (len - frameLength);
  const count = 1 + (len + padEnd - frameLength) / hopLength;
  return { count, padStart, padEnd };
}

const roundTime = (t: number) => Math.round(t * 1e9) / 1e9;

function checkBatch(batchSize: number | undefined): number {
  const b = batchSize ?? 32;
  const problem = integerProblem(b, 1);
  if (problem) throw new ConfigError(`batchSize ${problem}`, { subject: "embedding", reason: "bad-batch" });
  return b;
}

async function towerEmbed(
  model: L3Net,
  part: "vision" | "audio",
  batch: Float32Array,
  shape: number[],
  kind: "global" | "grid",
  layer: EmbeddingLayer,
  engine?: InferenceEngineChoice,
): Promise<Float32Array> {
  const runner = inferenceRunnerFor(model, engine);
  if (runner.engine !== "tfjs") {
    const name = `${part}${layer === "conv" ? "Conv" : ""}${kind === "grid" ? "Grid" : "Embedding"}`;
    const input = { data: batch, shape };
    return (await runner.run(part === "vision" ? { frames: input } : { audio: input }, [name]))[name]!.data;
  }
  const x = tf.tensor4d(batch, shape as [number, number, number, number], "float32");
  try {
    const opts = { grid: kind === "grid", layer };
    const out = part === "vision" ? model.visionTower(x, opts) : model.audioTower(x, opts);
    try {
      return (await (kind === "grid" ? (out.grid as tf.Tensor) : out.embedding).data()) as Float32Array;
    } finally {
      tf.dispose(out as unknown as tf.TensorContainer);
    }
  } finally {
    x.dispose();
  }
}

/**
 * Audio embeddings of mono `samples` at `sampleRate` (resampled to the model's rate with a
 * windowed-sinc filter when they differ): 1 s windows every `hopSec`, OpenL3's padding and timestamps.
 */
export async function embedAudio(
  model: L3Net,
  samples: Float32Array,
  sampleRate: number,
  opts: EmbedAudioOptions = {},
): Promise<TimedEmbeddings> {
  const fe = model.config.audio.frontEnd;
  const hopSec = opts.hopSec ?? 0.1;
  if (!(hopSec > 0) || !Number.isFinite(hopSec))
    throw new ConfigError(`hopSec must be > 0, got ${hopSec}`, { subject: "embedding", reason: "bad-hop" });
  const { kind, dim } = resolvePooling(model, "audio", opts.pooling);
  const layer = resolveEmbeddingLayer(opts.layer, model.config.audio);
  const batchSize = checkBatch(opts.batchSize);
  if (samples.length === 0) throw new L3kitError("the audio is empty", { subject: "embedAudio", reason: "empty" });
  const x = sampleRate === fe.sampleRate ? samples : resampleAudio(samples, sampleRate, fe.sampleRate);
  const frameLen = audioWindowSamples(fe);
  const hopLen = Math.floor(hopSec * fe.sampleRate + 1e-9);
  if (hopLen < 1)
    throw new ConfigError(`hopSec ${hopSec} is under one sample at ${fe.sampleRate} Hz`, { subject: "embedding", reason: "bad-hop" });
  const plan = audioWindowPlan(x.length, frameLen, hopLen, opts.center ?? true);
  const [bins, frames] = audioInputShape(fe);
  const per = bins * frames;
  const out = new Float32Array(plan.count * dim);
  const win = new Float32Array(frameLen);
  for (let b0 = 0; b0 < plan.count; b0 += batchSize) {
    const nb = Math.min(batchSize, plan.count - b0);
    const batch = new Float32Array(nb * per);
    for (let j = 0; j < nb; j++) {
      // window (b0+j) covers padded samples [start, start + frameLen); the signal starts at padStart
      const start = (b0 + j) * hopLen - plan.padStart;
      win.fill(0);
      const from = Math.max(0, start);
      const to = Math.min(x.length, start + frameLen);
      if (to > from) win.set(x.subarray(from, to), from - start);
      batch.set(computeAudioInput(fe, win), j * per);
    }
    out.set(await towerEmbed(model, "audio", batch, [nb, bins, frames, 1], kind, layer, opts.engine), b0 * dim);
  }
  const timestamps = Array.from({ length: plan.count }, (_, i) => roundTime(i * hopSec));
  return { embeddings: out, dim, count: plan.count, timestamps };
}

/** Options of {@link embedImage}: those of every embedding call. */
export type EmbedImageOptions = EmbedOptions;

/**
 * Vision embeddings of decoded frames (any size: the short side is resized to the config's `resizeTo`
 * and the centre `size` crop is taken; frames already size×size are used as they are).
 */
export async function embedImage(model: L3Net, frames: RgbFrame | RgbFrame[], opts: EmbedImageOptions = {}): Promise<Embeddings> {
  const list = Array.isArray(frames) ? frames : [frames];
  const { kind, dim } = resolvePooling(model, "vision", opts.pooling);
  const layer = resolveEmbeddingLayer(opts.layer, model.config.vision);
  const batchSize = checkBatch(opts.batchSize);
  const s = model.config.vision.frontEnd.size;
  const per = s * s * 3;
  const out = new Float32Array(list.length * dim);
  for (let b0 = 0; b0 < list.length; b0 += batchSize) {
    const chunk = list.slice(b0, b0 + batchSize);
    const batch = new Float32Array(chunk.length * per);
    for (let j = 0; j < chunk.length; j++) batch.set(computeFrameInput(model.config, chunk[j] as RgbFrame), j * per);
    out.set(await towerEmbed(model, "vision", batch, [chunk.length, s, s, 3], kind, layer, opts.engine), b0 * dim);
  }
  return { embeddings: out, dim, count: list.length };
}

/**
 * Options of {@link embedVideo}: those of {@link embedAudio} for the audio windows (`pooling` is the
 * audio's; `layer` is pooled by both towers), and the frames' own.
 */
export interface EmbedVideoOptions extends Omit<EmbedAudioOptions, "center"> {
  /** Seconds between embedded frames (default 1); frames at 0, hop, 2·hop, … before the end. */
  frameHopSec?: number;
  /** Vision pooling (default "global"). */
  visionPooling?: EmbeddingPooling;
  /** Most frames to embed (default 100000), a guard against a wrong frame hop. */
  maxFrames?: number;
}

/** Audio and frame embeddings of one media file (either is null when the file lacks that stream). */
export interface VideoEmbeddings {
  path: string;
  durationSec: number;
  audio: TimedEmbeddings | null;
  vision: TimedEmbeddings | null;
}

/** Embeds a video (or audio-only) file: audio windows every `hopSec`, frames every `frameHopSec`. */
export async function embedVideo(model: L3Net, file: string, opts: EmbedVideoOptions = {}): Promise<VideoEmbeddings> {
  const frameHop = opts.frameHopSec ?? 1;
  if (!(frameHop > 0) || !Number.isFinite(frameHop))
    throw new ConfigError(`frameHopSec must be > 0, got ${frameHop}`, { subject: "embedding", reason: "bad-hop" });
  resolvePooling(model, "audio", opts.pooling);
  resolvePooling(model, "vision", opts.visionPooling);
  resolveEmbeddingLayer(opts.layer, model.config.audio);
  const info = await probeMedia(file);
  if (!info.audio && !info.video) throw new L3kitError("the file has neither audio nor video", { subject: file, reason: "no-streams" });
  let audio: TimedEmbeddings | null = null;
  if (info.audio) {
    const clip = await readAudio(file, { sampleRate: model.config.audio.frontEnd.sampleRate });
    audio = await embedAudio(model, clip.samples, clip.sampleRate, {
      hopSec: opts.hopSec,
      pooling: opts.pooling,
      layer: opts.layer,
      batchSize: opts.batchSize,
      engine: opts.engine,
    });
  }
  let vision: TimedEmbeddings | null = null;
  if (info.video) {
    const times: number[] = [];
    const maxFrames = opts.maxFrames ?? 100000;
    for (let i = 0; roundTime(i * frameHop) < info.durationSec - 1e-6 && times.length < maxFrames; i++) times.push(roundTime(i * frameHop));
    if (times.length === 0) times.push(0);
    const { kind, dim } = resolvePooling(model, "vision", opts.visionPooling);
    const batchSize = checkBatch(opts.batchSize);
    const out = new Float32Array(times.length * dim);
    for (let b0 = 0; b0 < times.length; b0 += batchSize) {
      const chunk = times.slice(b0, b0 + batchSize);
      const frames = await readFrames(file, chunk, { shortSide: model.config.vision.frontEnd.resizeTo });
      const e = await embedImage(model, frames, { pooling: kind, layer: opts.layer, batchSize, engine: opts.engine });
      out.set(e.embeddings, b0 * dim);
    }
    vision = { embeddings: out, dim, count: times.length, timestamps: times };
  }
  return { path: file, durationSec: info.durationSec, audio, vision };
}
