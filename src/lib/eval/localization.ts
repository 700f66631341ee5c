/**
 * Localization metrics against boxes — the pointing game, consensus IoU (cIoU) with its success rate
 * at 0.5 and AUC (the Senocak et al. 2018 / VGG-SS protocol as coded in
 * hche11/Localizing-Visual-Sounds-the-Hard-Way `test.py`/`utils.py`), the distractor pointing rate of
 * the synthetic benchmark — and the map baselines (centre prior). Maps are plain row-major arrays.
 */
import type { Box, BoxFrame } from "../data/types";
import { ConfigError } from "../util";

/** A 2-D score map, row-major (`data[y * width + x]`), larger = more likely the sound source. */
export interface LocalizationMap {
  data: Float32Array;
  width: number;
  height: number;
}

/** Ground truth of one item: the sounding boxes, or a {@link BoxFrame} (sounding + distractors). */
export type LocalizationTarget = readonly Box[] | BoxFrame;

/** How several ground-truth boxes make the GT mask. */
export type GtMaskMode =
  /** VGG-SS: 1 inside any box. */
  | "union"
  /** Flickr-SoundNet: Σ boxes / 2 clipped to 1 (boxes of several annotators; agreement of 2 → 1). */
  | "consensus";

/** Options of {@link localizationMetrics} and {@link ciouScore}. */
export interface LocalizationMetricOptions {
  /** GT mask from several boxes. Default "union". */
  gtMask?: GtMaskMode;
  /**
   * Binarisation of the map for cIoU. "median" (default, hche11's `test.py`): after min–max
   * normalisation, pixels strictly above the value at sorted index ⌊N/2⌋ are 1, and pixels at the
   * map's maximum are always 1 (so a constant map is all 1). A number t in [0,1]: normalised map ≥ t.
   */
  threshold?: "median" | number;
}

/** Localization metrics over a set of maps. */
export interface LocalizationMetrics {
  /** Pointing-game accuracy: fraction of maps whose argmax pixel is inside a ground-truth box. */
  pointing: number;
  /** Per-item pointing hits. */
  hits: boolean[];
  /** Per-item cIoU. */
  ciou: number[];
  /** Per-item: does the argmax fall on a distractor box (null: the item has none). */
  distractorHits: (boolean | null)[];
  /** Fraction of items with cIoU ≥ 0.5 ("cIoU" in VGG-SS tables). */
  successAt05: number;
  /** Success rates at cIoU thresholds 0.05·i, i = 0…20. */
  successCurve: number[];
  /** Area under `successCurve` by the trapezoid rule over [0, 1] (sklearn.metrics.auc, as their code). */
  auc: number;
  /** Mean cIoU. */
  meanCiou: number;
  /**
   * Fraction of items with distractor boxes whose argmax falls on a distractor box (an
   * audio-conditioned map should point at the sounding object, not any object); NaN when no item has
   * distractors.
   */
  distractorPointing: number;
  /** Items with at least one distractor box. */
  nWithDistractors: number;
  /** Items scored. */
  n: number;
}

function targetParts(t: LocalizationTarget): { sounding: readonly Box[]; distractors: readonly Box[] } {
  if (Array.isArray(t)) return { sounding: t as readonly Box[], distractors: [] };
  const f = t as BoxFrame;
  return { sounding: f.sounding, distractors: f.distractors ?? [] };
}

function checkBox(b: Box, subject: string): void {
  const vals = [b.x1, b.y1, b.x2, b.y2];
  if (vals.some((v) => !Number.isFinite(v)) || !(b.x2 > b.x1) || !(b.y2 > b.y1)) {
    throw new ConfigError(`bad box [${vals.join(", ")}] (need finite x1 < x2, y1 < y2)`, { subject, reason: "bad-box" });
  }
}

/** Pixel span [lo, hi) of a normalised interval on a grid of `size` pixels: ⌊size·max(v,0)⌋, at least one pixel. */
function span(a: number, b: number, size: number): [number, number] {
  const lo = Math.min(size - 1, Math.floor(size * Math.max(a, 0)));
  const hi = Math.min(size, Math.floor(size * Math.max(b, 0)));
  return [lo, Math.max(hi, lo + 1)];
}

/**
 * The ground-truth mask of boxes on a width×height grid (pixels ⌊W·x1⌋ ≤ x < ⌊W·x2⌋, as VGG-SS's
 * `testset_gt`; a box thinner than a pixel still covers one). "union": 1 inside any box;
 * "consensus": Σ/2 clipped to 1.
 */
export function boxesMask(boxes: readonly Box[], width: number, height: number, mode: GtMaskMode = "union"): Float32Array {
  const m = new Float32Array(width * height);
  for (const b of boxes) {
    checkBox(b, "boxesMask");
    const [x0, x1] = span(b.x1, b.x2, width);
    const [y0, y1] = span(b.y1, b.y2, height);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * width + x]! += 1;
  }
  for (let i = 0; i < m.length; i++) m[i] = mode === "union" ? (m[i]! > 0 ? 1 : 0) : Math.min(1, m[i]! / 2);
  return m;
}

function checkMap(map: LocalizationMap, subject: string): void {
  if (!(map.width > 0 && map.height > 0) || map.data.length !== map.width * map.height) {
    throw new ConfigError(`map data has ${map.data.length} values for ${map.width}×${map.height}`, { subject });
  }
  for (let i = 0; i < map.data.length; i++)
    if (!Number.isFinite(map.data[i]!)) throw new ConfigError(`non-finite value at pixel ${i}`, { subject });
}

/** Index of the map's maximum, row-major; ties → the first maximum (top-most, then left-most). */
export function mapArgmax(map: LocalizationMap): { x: number; y: number; index: number } {
  let best = 0;
  for (let i = 1; i < map.data.length; i++) if (map.data[i]! > map.data[best]!) best = i;
  return { x: best % map.width, y: Math.floor(best / map.width), index: best };
}

/** Whether the map's argmax (first maximum on ties) falls inside any of the boxes (same pixel grid as the GT mask). */
export function pointingHit(map: LocalizationMap, boxes: readonly Box[]): boolean {
  const { x, y } = mapArgmax(map);
  return boxes.some((b) => {
    checkBox(b, "pointingHit");
    const [x0, x1] = span(b.x1, b.x2, map.width);
    const [y0, y1] = span(b.y1, b.y2, map.height);
    return x >= x0 && x < x1 && y >= y0 && y < y1;
  });
}

/** The binary prediction mask of a map used by cIoU (see {@link LocalizationMetricOptions.threshold}). */
export function binarizeMap(map: LocalizationMap, threshold: "median" | number = "median"): Uint8Array {
  const d = map.data;
  const n = d.length;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    if (d[i]! < min) min = d[i]!;
    if (d[i]! > max) max = d[i]!;
  }
  const out = new Uint8Array(n);
  if (threshold === "median") {
    const sorted = Float32Array.from(d).sort();
    const thr = sorted[Math.floor(n / 2)]!;
    for (let i = 0; i < n; i++) out[i] = d[i]! > thr || d[i]! === max ? 1 : 0;
  } else {
    if (!(threshold >= 0 && threshold <= 1))
      throw new ConfigError(`threshold must be "median" or in [0, 1], got ${threshold}`, { subject: "binarizeMap" });
    const range = max - min;
    for (let i = 0; i < n; i++) out[i] = (range > 0 ? (d[i]! - min) / range : 1) >= threshold ? 1 : 0;
  }
  return out;
}

/**
 * Consensus IoU of a map against boxes: Σ(pred·gt) / (Σ gt + Σ pred·[gt = 0]) with pred the binarised
 * map and gt the (union or consensus) box mask on the map's grid.
 */
export function ciouScore(map: LocalizationMap, boxes: readonly Box[], opts: LocalizationMetricOptions = {}): number {
  checkMap(map, "ciouScore");
  const gt = boxesMask(boxes, map.width, map.height, opts.gtMask ?? "union");
  const pred = binarizeMap(map, opts.threshold ?? "median");
  let inter = 0;
  let gtSum = 0;
  let outside = 0;
  for (let i = 0; i < gt.length; i++) {
    inter += pred[i]! * gt[i]!;
    gtSum += gt[i]!;
    if (gt[i] === 0) outside += pred[i]!;
  }
  const denom = gtSum + outside;
  return denom > 0 ? inter / denom : 0;
}

/** Success rates at cIoU ≥ 0.05·i (i = 0…20) and their trapezoid-rule area, as in the VGG-SS code. */
export function ciouSuccessCurve(cious: readonly number[]): { thresholds: number[]; success: number[]; auc: number } {
  const thresholds = Array.from({ length: 21 }, (_, i) => 0.05 * i);
  const success = thresholds.map((t) => (cious.length ? cious.filter((c) => c >= t).length / cious.length : Number.NaN));
  let auc = 0;
  for (let i = 1; i < thresholds.length; i++) auc += ((thresholds[i]! - thresholds[i - 1]!) * (success[i]! + success[i - 1]!)) / 2;
  return { thresholds, success, auc };
}

/**
 * The summary metrics of per-item results (pointing hits, cIoUs, distractor hits — null for items
 * without distractor boxes). Merging batches = concatenating their per-item arrays and calling this.
 */
export function summarizeLocalization(
  hits: readonly boolean[],
  ciou: readonly number[],
  distractorHits: readonly (boolean | null)[],
): LocalizationMetrics {
  const n = hits.length;
  if (ciou.length !== n || distractorHits.length !== n)
    throw new ConfigError(`per-item arrays differ in length`, { subject: "summarizeLocalization" });
  const curve = ciouSuccessCurve(ciou);
  const withD = distractorHits.filter((d) => d !== null);
  return {
    pointing: n ? hits.filter(Boolean).length / n : Number.NaN,
    hits: [...hits],
    ciou: [...ciou],
    distractorHits: [...distractorHits],
    successAt05: curve.success[10]!,
    successCurve: curve.success,
    auc: curve.auc,
    meanCiou: n ? ciou.reduce((a, b) => a + b, 0) / n : Number.NaN,
    distractorPointing: withD.length ? withD.filter(Boolean).length / withD.length : Number.NaN,
    nWithDistractors: withD.length,
    n,
  };
}

/**
 * Pointing game, cIoU (per item, success at 0.5, AUC) and — for items with distractor boxes — the
 * distractor pointing rate, of maps against their ground truth (one target per map).
 */
export function localizationMetrics(
  maps: readonly LocalizationMap[],
  targets: readonly LocalizationTarget[],
  opts: LocalizationMetricOptions = {},
): LocalizationMetrics {
  if (maps.length !== targets.length)
    throw new ConfigError(`${maps.length} maps for ${targets.length} targets`, { subject: "localizationMetrics" });
  const hits: boolean[] = [];
  const ciou: number[] = [];
  const distractorHits: (boolean | null)[] = [];
  maps.forEach((map, i) => {
    const { sounding, distractors } = targetParts(targets[i]!);
    if (sounding.length === 0) throw new ConfigError("no sounding box", { subject: `localizationMetrics item ${i}`, reason: "no-boxes" });
    checkMap(map, `localizationMetrics item ${i}`);
    hits.push(pointingHit(map, sounding));
    ciou.push(ciouScore(map, sounding, opts));
    distractorHits.push(distractors.length > 0 ? pointingHit(map, distractors) : null);
  });
  return summarizeLocalization(hits, ciou, distractorHits);
}

/**
 * The centre-prior baseline: an isotropic Gaussian centred on the frame, σ = `sigma` × the frame's
 * shorter side (default 0.25), peak 1.
 */
export function centerPriorMap(width: number, height: number, sigma = 0.25): LocalizationMap {
  if (!(width > 0 && height > 0 && sigma > 0))
    throw new ConfigError(`bad size ${width}×${height} or sigma ${sigma}`, { subject: "centerPriorMap" });
  const s = sigma * Math.min(width, height);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data[y * width + x] = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s));
  }
  return { data, width, height };
}
