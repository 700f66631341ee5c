/**
 * Localization maps from a model, upsampled (bilinear) to the frame:
 * - "unit" — L³-style: activations of the last vision conv map (summed or max over channels, or one
 *   unit); audio-agnostic, so it doubles as the vision-only baseline;
 * - "similarity" — AVOL's per-location audio–vision similarity map;
 * - "gradcam" — Grad-CAM of the correspondence score w.r.t. the last vision map (any head).
 * And {@link evaluateLocalization}: metrics of the audio-conditioned maps beside the vision-only map
 * and the centre prior.
 */
import * as tf from "@tensorflow/tfjs";
import type { Box, BoxFrame, ManifestRow } from "../data/types";
import { type RgbFrame, readSamples } from "../media";
import {
  audioInputShape,
  computeAudioInput,
  computeFrameInput,
  type InferenceEngineChoice,
  inferenceRunnerFor,
  type L3Graph,
  type L3Net,
  runGraph,
} from "../models";
import { ConfigError, errorMessage, L3kitError } from "../util";
import {
  centerPriorMap,
  type LocalizationMap,
  type LocalizationMetricOptions,
  type LocalizationMetrics,
  type LocalizationTarget,
  localizationMetrics,
  summarizeLocalization,
} from "./localization";

/** Map methods; "auto" = "similarity" for AVOL, "gradcam" for the other heads (or "unit" without audio). */
export type LocalizationMethod = "unit" | "similarity" | "gradcam" | "auto";

/** Options of {@link localizationMaps}. */
export interface LocalizationMapOptions {
  method?: LocalizationMethod;
  /** "unit" maps: "sum" (default) or "max" over channels, or the index of one unit (channel). */
  unit?: "sum" | "max" | number;
  /** Grad-CAM target: the positive-class "logit" (default) or "prob"ability. */
  gradcamTarget?: "logit" | "prob";
  /** Output [height, width]. Default: the frames' size. */
  size?: [number, number];
  /**
   * Forward engine of the "unit" and "similarity" maps: "tfjs" (default), "auto" (onnxruntime-node when
   * it loads), "onnx", or a runner of this model. Grad-CAM needs gradients and always runs on tfjs.
   */
  engine?: InferenceEngineChoice;
}

/** Inputs of {@link localizationMaps}: frames in [0, 1] (B×H×W×3) and, for audio-conditioned maps, the B spectrograms. */
export interface LocalizationInputs {
  frames: tf.Tensor4D;
  audio?: tf.Tensor4D;
}

/** The method "auto" resolves to for a model (and whether audio is given). */
export function resolveLocalizationMethod(
  model: L3Net,
  method: LocalizationMethod,
  hasAudio: boolean,
): Exclude<LocalizationMethod, "auto"> {
  if (method !== "auto") return method;
  if (!hasAudio) return "unit";
  return model.config.fusion === "avol" ? "similarity" : "gradcam";
}

/** The model's graph with the last vision map turned into an input, so the rest can be run (and differentiated) from it. */
function cutAtVisionMap(graph: L3Graph): L3Graph {
  const name = graph.outputs.visionMap;
  return {
    ...graph,
    nodes: graph.nodes.map((n) => (n.name === name ? { op: "input" as const, name: n.name, part: n.part, inputs: [], shape: n.shape } : n)),
  };
}

function variableMap(model: L3Net): Map<string, tf.Variable> {
  return new Map(model.namedVariables().map((v) => [v.name, v.variable]));
}

/**
 * The fusion head run from a given last vision map V (B×h×w×C) and spectrograms: returns the node
 * `output` (e.g. the logits). Differentiable w.r.t. V. Call inside `tf.tidy`.
 */
export function headFromVisionMap(
  model: L3Net,
  visionMap: tf.Tensor4D,
  audio: tf.Tensor4D,
  output: "logits" | "probs" = "logits",
): tf.Tensor {
  const g = model.graph;
  const cut = cutAtVisionMap(g);
  const res = runGraph(cut, variableMap(model), { [g.outputs.visionMap]: visionMap, [g.outputs.audio]: audio }, [g.outputs[output]], {
    training: false,
    updateBatchNorm: false,
  });
  return res[g.outputs[output]]!;
}

/**
 * Grad-CAM maps at the last vision map's resolution (B×h×w): weights α_c = spatial mean of
 * ∂score/∂A_c, map = ReLU(Σ_c α_c A_c), with score the positive-class logit (or probability).
 * Batch norm runs in inference mode, so items do not interact. Note: tfjs passes a max-pool's gradient
 * to every tied maximum; in practice ties occur in all-zero (dead) channels, whose A_c = 0 keeps them
 * out of the map.
 */
export function gradCamRaw(model: L3Net, frames: tf.Tensor4D, audio: tf.Tensor4D, target: "logit" | "prob" = "logit"): tf.Tensor3D {
  return tf.tidy(() => {
    const A = model.visionTower(frames).map;
    const f = (v: tf.Tensor) => {
      const out = headFromVisionMap(model, v as tf.Tensor4D, audio, target === "logit" ? "logits" : "probs");
      return tf.sum(tf.slice(out, [0, 1], [-1, 1])) as tf.Scalar;
    };
    const grad = tf.grad(f)(A) as tf.Tensor4D;
    const alpha = tf.mean(grad, [1, 2], true); // B×1×1×C
    return tf.relu(tf.sum(tf.mul(A, alpha), -1)) as tf.Tensor3D;
  });
}

/** The engine of unit/similarity maps when the options name none (see {@link LocalizationMapOptions.engine}). */
const MAPS_DEFAULT_ENGINE: InferenceEngineChoice = "tfjs";

/** The inputs of a localization batch as plain arrays for an inference runner. */
async function runnerInputs(
  inputs: LocalizationInputs,
  withAudio: boolean,
): Promise<{ frames: { data: Float32Array; shape: number[] }; audio?: { data: Float32Array; shape: number[] } }> {
  const frames = { data: (await inputs.frames.data()) as Float32Array, shape: [...inputs.frames.shape] };
  if (!withAudio || !inputs.audio) return { frames };
  return { frames, audio: { data: (await inputs.audio.data()) as Float32Array, shape: [...inputs.audio.shape] } };
}

/** Maps B×h×w → row-major maps of the output size (bilinear, half-pixel centres as OpenCV's INTER_LINEAR). */
async function toMaps(raw: tf.Tensor3D, size: [number, number]): Promise<LocalizationMap[]> {
  const up = tf.tidy(() => {
    const x = tf.expandDims(raw, -1) as tf.Tensor4D;
    const [h, w] = [raw.shape[1], raw.shape[2]];
    return h === size[0] && w === size[1] ? x : tf.image.resizeBilinear(x, size, false, true);
  });
  try {
    const data = (await up.data()) as Float32Array;
    const [b, height, width] = up.shape;
    return Array.from({ length: b }, (_, i) => ({ data: data.slice(i * height * width, (i + 1) * height * width), width, height }));
  } finally {
    up.dispose();
  }
}

/**
 * Localization maps of a batch, one per frame, at the frames' size (or `size`): "unit" (vision only),
 * "similarity" (AVOL heads), "gradcam" (any head, needs audio) or "auto". Plain arrays out; every
 * tensor made here is disposed (the inputs are the caller's).
 */
export async function localizationMaps(
  model: L3Net,
  inputs: LocalizationInputs,
  opts: LocalizationMapOptions = {},
): Promise<LocalizationMap[]> {
  const method = resolveLocalizationMethod(model, opts.method ?? "auto", inputs.audio !== undefined);
  const size: [number, number] = opts.size ?? [inputs.frames.shape[1], inputs.frames.shape[2]];
  if (method !== "unit" && !inputs.audio) throw new ConfigError(`method "${method}" needs the audio`, { subject: "localizationMaps" });
  if (method === "similarity" && model.config.fusion !== "avol") {
    throw new ConfigError(`method "similarity" needs an AVOL head; this model's fusion is "${model.config.fusion}" (use "gradcam")`, {
      subject: "localizationMaps",
    });
  }
  let raw: tf.Tensor3D;
  const runner = method === "gradcam" ? undefined : inferenceRunnerFor(model, opts.engine ?? MAPS_DEFAULT_ENGINE);
  const onnx = runner !== undefined && runner.engine !== "tfjs";
  const fed = onnx ? await runnerInputs(inputs, method === "similarity") : undefined;
  if (method === "unit") {
    const unit = opts.unit ?? "sum";
    const vm = fed ? (await runner!.run({ frames: fed.frames }, ["visionMap"])).visionMap! : undefined;
    raw = tf.tidy(() => {
      const A = vm ? tf.tensor4d(vm.data, vm.shape as [number, number, number, number]) : model.visionTower(inputs.frames).map;
      const c = A.shape[3];
      if (typeof unit === "number") {
        if (!(Number.isInteger(unit) && unit >= 0 && unit < c))
          throw new ConfigError(`unit ${unit} is not a channel in [0, ${c})`, { subject: "localizationMaps.unit" });
        return tf.squeeze(tf.slice(A, [0, 0, 0, unit], [-1, -1, -1, 1]), [3]) as tf.Tensor3D;
      }
      return (unit === "max" ? tf.max(A, -1) : tf.sum(A, -1)) as tf.Tensor3D;
    });
  } else if (method === "similarity" && fed) {
    const sm = (await runner!.run(fed, ["similarityMap"])).similarityMap!;
    raw = tf.tensor3d(sm.data, sm.shape as [number, number, number]);
  } else if (method === "similarity") {
    raw = tf.tidy(() => {
      const out = model.forward({ frames: inputs.frames, audio: inputs.audio! });
      if (!out.similarityMap)
        throw new L3kitError("the model gave no similarity map", { subject: "localizationMaps", reason: "no-similarity-map" });
      return out.similarityMap;
    });
  } else {
    raw = gradCamRaw(model, inputs.frames, inputs.audio!, opts.gradcamTarget ?? "logit");
  }
  try {
    return await toMaps(raw, size);
  } finally {
    raw.dispose();
  }
}

/** Items with localization ground truth and a loader for their model inputs. */
export interface LocalizationSource<T> {
  items: readonly T[];
  /**
   * Loads a batch (frames in [0, 1] and spectrograms, one row per item, disposed by the caller). It may
   * also return the items' targets in the loaded frames' coordinates (e.g. after a crop), which then
   * replace `target`. May throw (the items are retried one by one and the failures reported).
   */
  load(items: readonly T[]): Promise<{ frames: tf.Tensor4D; audio: tf.Tensor4D; targets?: LocalizationTarget[] }>;
  /** The ground truth of an item (sounding boxes, or a BoxFrame with distractors), when `load` gives none. */
  target?(item: T): LocalizationTarget;
  /** How the source maps annotated boxes onto its frames (recorded in the report). */
  protocol?: LocalizationProtocol;
}

/** The L3kitError reason of an item a source leaves out by its protocol (reported as dropped, not failed). */
export const DROPPED_REASON = "box-outside-crop";

/** Audio-conditioned localization metrics beside the vision-only map and the centre prior. */
export interface LocalizationReport {
  /** The method the audio-conditioned maps used ("similarity" or "gradcam" under "auto"). */
  method: Exclude<LocalizationMethod, "auto">;
  audioConditioned: LocalizationMetrics;
  /** Baseline: the audio-agnostic unit map of the same network. */
  visionOnly: LocalizationMetrics;
  /** Baseline: a centred Gaussian. */
  centerPrior: LocalizationMetrics;
  /** Items that failed to load (index into `items`). */
  failed: Array<{ index: number; message: string }>;
  /** The source's box protocol (null when it names none). */
  protocol: LocalizationProtocol | null;
  /** Items the protocol left out ("l3kit": every sounding box outside the centre crop); none under "published". */
  dropped: Array<{ index: number; message: string }>;
}

/**
 * Localization metrics of a model on items with boxes: the audio-conditioned maps (method "auto" by
 * default) and, always beside them, the vision-only unit map and the centre prior, on the same items.
 */
export async function evaluateLocalization<T>(
  model: L3Net,
  source: LocalizationSource<T>,
  opts: LocalizationMapOptions & LocalizationMetricOptions & { batchSize?: number; centerSigma?: number } = {},
): Promise<LocalizationReport> {
  const method = resolveLocalizationMethod(model, opts.method ?? "auto", true);
  if (method === "unit")
    throw new ConfigError(`the audio-conditioned method cannot be "unit" (it is the vision-only baseline)`, {
      subject: "evaluateLocalization",
    });
  const bs = opts.batchSize ?? 16;
  const metricOpts: LocalizationMetricOptions = { gtMask: opts.gtMask, threshold: opts.threshold };
  // per-item results only (maps are dropped after each batch, so memory stays flat)
  const per = { cond: [] as LocalizationMetrics[], vis: [] as LocalizationMetrics[], prior: [] as LocalizationMetrics[] };
  const failed: Array<{ index: number; message: string }> = [];
  const dropped: Array<{ index: number; message: string }> = [];
  const run = async (idx: number[]) => {
    const batch = await source.load(idx.map((i) => source.items[i]!));
    try {
      const targets =
        batch.targets ??
        idx.map((i) => {
          if (!source.target)
            throw new ConfigError("the source gives no targets (load returned none and there is no target())", {
              subject: "evaluateLocalization",
            });
          return source.target(source.items[i]!);
        });
      if (targets.length !== idx.length)
        throw new L3kitError(`${targets.length} targets for ${idx.length} items`, { subject: "evaluateLocalization", reason: "bad-batch" });
      const c = await localizationMaps(model, batch, { ...opts, method });
      if (c.length !== idx.length)
        throw new L3kitError(`loader returned ${c.length} frames for ${idx.length} items`, {
          subject: "evaluateLocalization",
          reason: "bad-batch",
        });
      const v = await localizationMaps(model, { frames: batch.frames }, { ...opts, method: "unit" });
      const p = c.map((m) => centerPriorMap(m.width, m.height, opts.centerSigma));
      const mc = localizationMetrics(c, targets, metricOpts);
      const mv = localizationMetrics(v, targets, metricOpts);
      const mp = localizationMetrics(p, targets, metricOpts);
      per.cond.push(mc);
      per.vis.push(mv);
      per.prior.push(mp);
    } finally {
      tf.dispose([batch.frames, batch.audio]);
    }
  };
  for (let s = 0; s < source.items.length; s += bs) {
    const idx = Array.from({ length: Math.min(bs, source.items.length - s) }, (_, j) => s + j);
    try {
      await run(idx);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      for (const i of idx) {
        try {
          await run([i]);
        } catch (e) {
          if (e instanceof ConfigError) throw e;
          if (e instanceof L3kitError && e.reason === DROPPED_REASON) dropped.push({ index: i, message: errorMessage(e) });
          else failed.push({ index: i, message: errorMessage(e) });
        }
      }
    }
  }
  const merge = (parts: LocalizationMetrics[]) =>
    summarizeLocalization(
      parts.flatMap((p) => p.hits),
      parts.flatMap((p) => p.ciou),
      parts.flatMap((p) => p.distractorHits),
    );
  return {
    method,
    audioConditioned: merge(per.cond),
    visionOnly: merge(per.vis),
    centerPrior: merge(per.prior),
    failed,
    protocol: source.protocol ?? null,
    dropped,
  };
}

/**
 * How boxes annotated on the full video frame are scored against maps of the model's centre crop.
 * - "published" (default): as the published localization code (hche11's `test.py`/`utils.py`, used
 *   by EZ-VSL and its successors): the boxes, normalised to the full frame, are laid on the map's grid
 *   unadjusted (pixels ⌊size·max(v, 0)⌋, clipped to the grid), and every item is scored. Numbers on
 *   VGG-SS / Flickr-SoundNet annotations are then comparable with theirs.
 * - "l3kit": the boxes are moved into the centre crop (see {@link boxesToCenterCrop}) so that they
 *   match the pixels the model saw; items whose sounding boxes all fall outside the crop are dropped
 *   (counted in the report's `dropped`).
 */
export const LOCALIZATION_PROTOCOLS = ["published", "l3kit"] as const;

/** One of {@link LOCALIZATION_PROTOCOLS}. */
export type LocalizationProtocol = (typeof LOCALIZATION_PROTOCOLS)[number];

/** The protocol when none is named. */
export const DEFAULT_LOCALIZATION_PROTOCOL: LocalizationProtocol = "published";

/**
 * The ground truth of an annotated instant in the model's input frame under a protocol, for a
 * decoded frame of width×height cropped as the eval front-end does (short side `resizeTo`, centre
 * `size`×`size`): "published" keeps the boxes as annotated; "l3kit" moves them into the crop and
 * returns null when no sounding box is left (the item is dropped).
 */
export function protocolTarget(
  frame: BoxFrame,
  protocol: LocalizationProtocol,
  geometry: { width: number; height: number; resizeTo: number; size: number },
): BoxFrame | null {
  if (protocol === "published") {
    const distractors = frame.distractors ?? [];
    return { t: frame.t, sounding: [...frame.sounding], ...(distractors.length ? { distractors: [...distractors] } : {}) };
  }
  if (protocol !== "l3kit")
    throw new ConfigError(
      `unknown localization protocol ${JSON.stringify(protocol)}; expected one of ${LOCALIZATION_PROTOCOLS.join(", ")}`,
      {
        subject: "protocol",
        reason: "unknown-value",
      },
    );
  const { width, height, resizeTo, size } = geometry;
  const sounding = boxesToCenterCrop(frame.sounding, width, height, resizeTo, size);
  if (sounding.length === 0) return null;
  const distractors = boxesToCenterCrop(frame.distractors ?? [], width, height, resizeTo, size);
  return { t: frame.t, sounding, ...(distractors.length ? { distractors } : {}) };
}

/** A localization item of a manifest: one annotated instant of a clip. */
export interface ManifestLocalizationItem {
  row: ManifestRow;
  /** The boxes at `frame.t` (normalised to the full video frame). */
  frame: BoxFrame;
}

/** Every annotated instant of the rows (`row.boxes`), at most `perClip` per clip (evenly spaced), in row order. */
export function localizationItems(rows: readonly ManifestRow[], perClip = Number.POSITIVE_INFINITY): ManifestLocalizationItem[] {
  const out: ManifestLocalizationItem[] = [];
  for (const row of rows) {
    const frames = (row.boxes ?? []).filter((b) => b.sounding.length > 0);
    const k = Math.min(frames.length, perClip);
    for (let i = 0; i < k; i++) out.push({ row, frame: frames[Math.floor((i * frames.length) / k)]! });
  }
  return out;
}

/**
 * Boxes normalised to a width×height frame → normalised to the `size`×`size` centre crop of the frame
 * resized to short side `resizeTo` (the model's eval front-end, `evalTransform`): clipped to the crop;
 * boxes left with no area are dropped.
 */
export function boxesToCenterCrop(boxes: readonly Box[], width: number, height: number, resizeTo: number, size: number): Box[] {
  const [w, h] =
    width <= height
      ? [resizeTo, Math.max(1, Math.round((height * resizeTo) / width))]
      : [Math.max(1, Math.round((width * resizeTo) / height)), resizeTo];
  const ox = Math.floor((w - size) / 2);
  const oy = Math.floor((h - size) / 2);
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  const out: Box[] = [];
  for (const b of boxes) {
    const nb: Box = {
      ...b,
      x1: clip((b.x1 * w - ox) / size),
      x2: clip((b.x2 * w - ox) / size),
      y1: clip((b.y1 * h - oy) / size),
      y2: clip((b.y2 * h - oy) / size),
    };
    if (nb.x2 > nb.x1 && nb.y2 > nb.y1) out.push(nb);
  }
  return out;
}

/**
 * A {@link LocalizationSource} over annotated manifest rows (e.g. the synthetic benchmark, or VGG-SS
 * rows with boxes): at each annotated time, the frame (through the model's eval front-end: resize +
 * centre crop) and the audio window centred on it (the model's spectrogram). The boxes are scored
 * under `protocol` (default "published": as annotated, every item; "l3kit": moved into the crop, and
 * an item whose sounding boxes all fall outside the crop is dropped and counted in the report).
 */
export function manifestLocalizationSource(
  model: L3Net,
  rows: readonly ManifestRow[],
  opts: { perClip?: number; protocol?: LocalizationProtocol } = {},
): LocalizationSource<ManifestLocalizationItem> {
  const protocol = opts.protocol ?? DEFAULT_LOCALIZATION_PROTOCOL;
  const fe = model.config.audio.frontEnd;
  const { size, resizeTo } = model.config.vision.frontEnd;
  const [bins, nFrames] = audioInputShape(fe);
  return {
    items: localizationItems(rows, opts.perClip),
    protocol,
    async load(items) {
      const f = new Float32Array(items.length * size * size * 3);
      const a = new Float32Array(items.length * bins * nFrames);
      const targets: BoxFrame[] = [];
      // one decode per clip for all of its instants in the batch (one ffmpeg run each, as the cache)
      const byPath = new Map<string, number[]>();
      items.forEach((it, i) => {
        const idx = byPath.get(it.row.path);
        if (idx) idx.push(i);
        else byPath.set(it.row.path, [i]);
      });
      const decoded: Array<{ frame: RgbFrame; audio: Float32Array }> = new Array(items.length);
      for (const [file, idx] of byPath) {
        const s = await readSamples(
          file,
          idx.map((i) => items[i]!.frame.t),
          { size: { shortSide: resizeTo }, sampleRate: fe.sampleRate, audioSec: fe.durationSec },
        );
        idx.forEach((i, j) => {
          decoded[i] = { frame: s.frames[j]!, audio: s.audio[j]!.samples };
        });
      }
      for (let i = 0; i < items.length; i++) {
        const { row, frame } = items[i]!;
        const fr = decoded[i]!.frame;
        const target = protocolTarget(frame, protocol, { width: fr.width, height: fr.height, resizeTo, size });
        if (!target)
          throw new L3kitError(`no sounding box inside the centre crop at t=${frame.t} (protocol l3kit drops the item)`, {
            subject: row.id,
            reason: DROPPED_REASON,
          });
        targets.push(target);
        f.set(computeFrameInput(model.config, fr), i * size * size * 3);
        a.set(computeAudioInput(fe, decoded[i]!.audio), i * bins * nFrames);
      }
      return { frames: tf.tensor4d(f, [items.length, size, size, 3]), audio: tf.tensor4d(a, [items.length, bins, nFrames, 1]), targets };
    },
  };
}
