/**
 * Plain-number metrics: AVC accuracy and ROC AUC, classification metrics (top-1, per-class recall,
 * confusion matrix), clip-level averaging of window probabilities, mean ± std.
 * Everything here takes and returns typed arrays / plain objects; no tensors.
 */
import { ConfigError } from "../util";

/** Binary labels: 1 / true = the frame and the audio correspond. */
export type BinaryLabels = ArrayLike<number> | readonly boolean[];

/** AVC metrics on a set of scored pairs. */
export interface AvcMetrics {
  /** Fraction of pairs whose decision (score > threshold → "correspond") matches the label. */
  accuracy: number;
  /** ROC AUC by the Mann–Whitney rank statistic with mid-ranks for ties; NaN when a class is absent. */
  auc: number;
  /** Number of pairs. */
  n: number;
  /** Number of corresponding (positive) pairs. */
  positives: number;
}

function labelAt(labels: BinaryLabels, i: number): boolean {
  const v = (labels as ArrayLike<number | boolean>)[i];
  return v === true || v === 1;
}

/**
 * ROC AUC by the rank statistic: P(score of a random positive > score of a random negative), ties
 * counting ½ (mid-ranks). Perfect separation → 1, reversed → 0, all tied → 0.5. NaN when there are no
 * positives or no negatives.
 */
export function rocAuc(scores: ArrayLike<number>, labels: BinaryLabels): number {
  const n = scores.length;
  if (labels.length !== n) throw new ConfigError(`scores (${n}) and labels (${labels.length}) differ in length`, { subject: "rocAuc" });
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const midRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let k = i; k <= j; k++) {
      if (labelAt(labels, order[k]!)) {
        pos++;
        rankSumPos += midRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * AVC accuracy and AUC from P(correspond) scores. A pair is called "corresponding" when its score is
 * strictly above `threshold` (default 0.5), so a score of exactly 0.5 counts as "not corresponding".
 */
export function avcMetrics(scores: ArrayLike<number>, labels: BinaryLabels, threshold = 0.5): AvcMetrics {
  const n = scores.length;
  if (labels.length !== n) throw new ConfigError(`scores (${n}) and labels (${labels.length}) differ in length`, { subject: "avcMetrics" });
  let correct = 0;
  let positives = 0;
  for (let i = 0; i < n; i++) {
    const y = labelAt(labels, i);
    if (y) positives++;
    if (scores[i]! > threshold === y) correct++;
  }
  return { accuracy: n === 0 ? Number.NaN : correct / n, auc: rocAuc(scores, labels), n, positives };
}

/** Top-1 accuracy, per-class recall and the confusion matrix of a classifier. */
export interface ClassificationMetrics {
  /** Fraction of items whose predicted class equals the true class. */
  accuracy: number;
  /** Mean of the per-class recalls over classes that occur in `yTrue` (balanced accuracy). */
  meanClassRecall: number;
  /** recall[c] = correct predictions of class c / items of class c; NaN for a class with no items. */
  perClassRecall: number[];
  /** confusion[t][p] = number of items of true class t predicted as p. */
  confusion: number[][];
  /** Items per true class. */
  support: number[];
  /** Class names, when given (index = class id). */
  classNames?: string[];
  n: number;
}

/** Classification metrics from integer labels and predictions in [0, numClasses). */
export function classificationMetrics(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
  classNames?: readonly string[],
): ClassificationMetrics {
  const n = yTrue.length;
  if (yPred.length !== n)
    throw new ConfigError(`yTrue (${n}) and yPred (${yPred.length}) differ in length`, { subject: "classificationMetrics" });
  if (!(Number.isInteger(numClasses) && numClasses > 0))
    throw new ConfigError(`numClasses must be a positive integer, got ${numClasses}`, { subject: "classificationMetrics" });
  if (classNames && classNames.length !== numClasses) {
    throw new ConfigError(`${classNames.length} class names for ${numClasses} classes`, { subject: "classificationMetrics" });
  }
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (!(Number.isInteger(t) && t >= 0 && t < numClasses))
      throw new ConfigError(`yTrue[${i}] = ${t} is not a class in [0, ${numClasses})`, { subject: "classificationMetrics" });
    if (!(Number.isInteger(p) && p >= 0 && p < numClasses))
      throw new ConfigError(`yPred[${i}] = ${p} is not a class in [0, ${numClasses})`, { subject: "classificationMetrics" });
    confusion[t]![p]!++;
    if (t === p) correct++;
  }
  const support = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const perClassRecall = confusion.map((row, c) => (support[c]! > 0 ? row[c]! / support[c]! : Number.NaN));
  const present = perClassRecall.filter((r) => !Number.isNaN(r));
  const meanClassRecall = present.length ? present.reduce((a, b) => a + b, 0) / present.length : Number.NaN;
  return {
    accuracy: n === 0 ? Number.NaN : correct / n,
    meanClassRecall,
    perClassRecall,
    confusion,
    support,
    ...(classNames ? { classNames: [...classNames] } : {}),
    n,
  };
}

/** Index of the largest value in row `i` of an n×k row-major matrix (first one on ties). */
export function argmaxRow(m: ArrayLike<number>, k: number, i: number): number {
  let best = 0;
  let bestV = m[i * k]!;
  for (let c = 1; c < k; c++) {
    const v = m[i * k + c]!;
    if (v > bestV) {
      bestV = v;
      best = c;
    }
  }
  return best;
}

/** Row-wise argmax of an n×k row-major matrix. */
export function argmaxRows(m: ArrayLike<number>, k: number): Int32Array {
  const n = Math.floor(m.length / k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = argmaxRow(m, k, i);
  return out;
}

/** Probabilities averaged per group (clip), in order of first appearance. */
export interface GroupAverage {
  /** The group ids, in order of first appearance. */
  groups: string[];
  /** groups.length × k averaged rows. */
  values: Float32Array;
  /** Index of the first row of each group (to read a per-group label). */
  firstIndex: number[];
  /** Rows per group. */
  counts: number[];
}

/**
 * Averages the rows of an n×k matrix (e.g. class probabilities of 1 s windows or frames) over the rows
 * sharing a group id (e.g. the clip id): clip-level predictions as in L³'s ESC-50 protocol.
 */
export function averageByGroup(values: ArrayLike<number>, k: number, groupIds: ArrayLike<string | number>): GroupAverage {
  const n = groupIds.length;
  if (values.length !== n * k)
    throw new ConfigError(`values has ${values.length} entries, expected ${n}×${k}`, { subject: "averageByGroup" });
  const index = new Map<string, number>();
  const groups: string[] = [];
  const firstIndex: number[] = [];
  const counts: number[] = [];
  const rowGroup = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const g = String(groupIds[i]);
    let gi = index.get(g);
    if (gi === undefined) {
      gi = groups.length;
      index.set(g, gi);
      groups.push(g);
      firstIndex.push(i);
      counts.push(0);
    }
    counts[gi]!++;
    rowGroup[i] = gi;
  }
  const sums = new Float64Array(groups.length * k);
  for (let i = 0; i < n; i++) {
    const gi = rowGroup[i]!;
    for (let c = 0; c < k; c++) sums[gi * k + c]! += values[i * k + c]!;
  }
  const out = new Float32Array(groups.length * k);
  for (let g = 0; g < groups.length; g++) for (let c = 0; c < k; c++) out[g * k + c] = sums[g * k + c]! / counts[g]!;
  return { groups, values: out, firstIndex, counts };
}

/**
 * Mean and sample standard deviation (n − 1, 0 for a single value — as `results.meanStd`) of per-fold
 * scores, e.g. ESC-50's 5 folds.
 */
export function foldMeanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), n };
}
