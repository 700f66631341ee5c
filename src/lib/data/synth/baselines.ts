/**
 * "Known answers" of a synthetic dataset: the accuracy ceilings and chance levels a model can be
 * compared with, computed exactly from the generated labels and boxes.
 */
import { Rng } from "../../util";
import type { Box, ManifestRow } from "../types";

/** Class-identity AVC ceiling of one split. */
export interface SynthAvcCeiling {
  clips: number;
  /** Probability that a negative (audio of a uniformly drawn *other* clip of the split) has the same class. */
  sameClassNegativeRate: number;
  /** 1 − rate / 2: the accuracy of a perfect class recogniser on 50/50 positive/negative pairs. */
  ceiling: number;
}

/** Localization baselines over the sounding-object boxes of a set of clips. */
export interface SynthLocalizationBaselines {
  /** Box frames (frames × clips) the numbers are computed over. */
  boxFrames: number;
  /** Mean area of the sounding box (normalised). */
  meanBoxArea: number;
  /** Pointing game, always pointing at the image centre. */
  centrePointing: number;
  /** Pointing game, pointing at a uniformly random pixel (= mean box area, exact). */
  randomPointing: number;
  /** Pointing game, pointing at the centre of a random visible object (sees objects, not which one sounds). */
  randomObjectPointing: number;
  /** IoU of a fixed centred box of the mean box size: mean and success rate at IoU ≥ 0.5. */
  centreBoxIoU: { mean: number; success50: number };
  /** IoU of a random box (size drawn from the boxes, uniform position; 8 draws per box frame, seeded). */
  randomBoxIoU: { mean: number; success50: number };
  /** IoU of the box of a random visible object (sounding or distractor). */
  randomObjectBoxIoU: { mean: number; success50: number };
}

/** All known answers written to metadata.json and README.md. */
export interface SynthKnownAnswers {
  classes: number;
  /** 1/K. */
  classificationChance: number;
  /** Accuracy of always answering the most common class of the split. */
  majorityClass: Record<string, number>;
  /** AVC accuracy ceiling when class identity is the only usable cue, per split and for all clips. */
  avcClassCeiling: Record<string, SynthAvcCeiling>;
  /** The large-dataset approximation 1 − 0.5/K. */
  avcClassCeilingApprox: number;
  localization: Record<string, SynthLocalizationBaselines>;
}

/** Same-class negative rate and ceiling from class counts: q = Σ n_c (n_c − 1) / (N (N − 1)). */
export function synthAvcCeiling(counts: readonly number[]): SynthAvcCeiling {
  const n = counts.reduce((a, b) => a + b, 0);
  if (n < 2) return { clips: n, sameClassNegativeRate: 0, ceiling: 1 };
  const q = counts.reduce((s, c) => s + c * (c - 1), 0) / (n * (n - 1));
  return { clips: n, sameClassNegativeRate: q, ceiling: 1 - q / 2 };
}

function area(b: Box): number {
  return Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
}

/** Intersection over union of two boxes. */
export function synthBoxIoU(a: Box, b: Box): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / (area(a) + area(b) - inter);
}

function inside(x: number, y: number, b: Box): boolean {
  return x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2;
}

/** Localization baselines over the rows' box frames (first sounding box of each frame). */
export function synthLocalizationBaselines(rows: readonly ManifestRow[], seed: number | string = 0): SynthLocalizationBaselines {
  const frames: Array<{ s: Box; objects: Box[] }> = [];
  for (const r of rows) {
    for (const bf of r.boxes ?? []) {
      const s = bf.sounding[0];
      if (s) frames.push({ s, objects: [...bf.sounding, ...(bf.distractors ?? [])] });
    }
  }
  const n = frames.length;
  const zero = { mean: 0, success50: 0 };
  if (n === 0) {
    return {
      boxFrames: 0,
      meanBoxArea: 0,
      centrePointing: 0,
      randomPointing: 0,
      randomObjectPointing: 0,
      centreBoxIoU: zero,
      randomBoxIoU: zero,
      randomObjectBoxIoU: zero,
    };
  }
  let sumArea = 0;
  let sumW = 0;
  let sumH = 0;
  let centreHits = 0;
  let objHits = 0;
  for (const { s, objects } of frames) {
    sumArea += area(s);
    sumW += s.x2 - s.x1;
    sumH += s.y2 - s.y1;
    if (inside(0.5, 0.5, s)) centreHits++;
    let h = 0;
    for (const o of objects) if (inside((o.x1 + o.x2) / 2, (o.y1 + o.y2) / 2, s)) h++;
    objHits += h / objects.length;
  }
  const mw = sumW / n;
  const mh = sumH / n;
  const centreBox: Box = { x1: 0.5 - mw / 2, y1: 0.5 - mh / 2, x2: 0.5 + mw / 2, y2: 0.5 + mh / 2 };
  const rng = new Rng(`l3kit-synth-baselines:${seed}`);
  const acc = { centre: [0, 0], random: [0, 0], object: [0, 0] };
  const draws = 8;
  for (const { s, objects } of frames) {
    const ci = synthBoxIoU(centreBox, s);
    acc.centre[0] += ci;
    acc.centre[1] += ci >= 0.5 ? 1 : 0;
    for (let k = 0; k < draws; k++) {
      const ref = (frames[rng.int(n)] as { s: Box }).s;
      const w = ref.x2 - ref.x1;
      const h = ref.y2 - ref.y1;
      const x = rng.uniform(0, 1 - w);
      const y = rng.uniform(0, 1 - h);
      const ri = synthBoxIoU({ x1: x, y1: y, x2: x + w, y2: y + h }, s);
      (acc.random[0] as number) += ri / draws;
      (acc.random[1] as number) += (ri >= 0.5 ? 1 : 0) / draws;
    }
    for (const o of objects) {
      const oi = synthBoxIoU(o, s);
      (acc.object[0] as number) += oi / objects.length;
      (acc.object[1] as number) += (oi >= 0.5 ? 1 : 0) / objects.length;
    }
  }
  const r = (x: number) => Math.round(x * 1e6) / 1e6;
  return {
    boxFrames: n,
    meanBoxArea: r(sumArea / n),
    centrePointing: r(centreHits / n),
    randomPointing: r(sumArea / n),
    randomObjectPointing: r(objHits / n),
    centreBoxIoU: { mean: r((acc.centre[0] as number) / n), success50: r((acc.centre[1] as number) / n) },
    randomBoxIoU: { mean: r((acc.random[0] as number) / n), success50: r((acc.random[1] as number) / n) },
    randomObjectBoxIoU: { mean: r((acc.object[0] as number) / n), success50: r((acc.object[1] as number) / n) },
  };
}

/** Computes every known answer from the manifest rows and the class names (order = class index). */
export function synthKnownAnswers(
  rows: readonly ManifestRow[],
  classNames: readonly string[],
  seed: number | string = 0,
): SynthKnownAnswers {
  const K = classNames.length;
  const index = new Map(classNames.map((n, i) => [n, i]));
  const splits = ["all", ...[...new Set(rows.map((r) => r.split))].sort()];
  const avc: Record<string, SynthAvcCeiling> = {};
  const majority: Record<string, number> = {};
  const loc: Record<string, SynthLocalizationBaselines> = {};
  for (const sp of splits) {
    const sel = sp === "all" ? rows : rows.filter((r) => r.split === sp);
    const counts = new Array<number>(K).fill(0);
    for (const r of sel) {
      const i = index.get(r.label ?? "");
      if (i !== undefined) counts[i] = (counts[i] as number) + 1;
    }
    avc[sp] = synthAvcCeiling(counts);
    majority[sp] = sel.length ? Math.max(...counts) / sel.length : 0;
    loc[sp] = synthLocalizationBaselines(sel, `${seed}:${sp}`);
  }
  return {
    classes: K,
    classificationChance: 1 / K,
    majorityClass: majority,
    avcClassCeiling: avc,
    avcClassCeilingApprox: 1 - 0.5 / K,
    localization: loc,
  };
}
