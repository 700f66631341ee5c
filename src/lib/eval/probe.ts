/**
 * Linear probes on frozen features: multinomial logistic regression trained with tfjs (Adam on
 * standardised features, zero init, seeded mini-batch order → deterministic for a given backend),
 * its L2 strength chosen on a validation split from a grid. The trained probe holds plain arrays only.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError, Rng } from "../util";
import { argmaxRows, averageByGroup, classificationMetrics } from "./metrics";

/** A row-major n×dim matrix of features. */
export interface FeatureMatrix {
  x: Float32Array;
  n: number;
  dim: number;
}

/** Features with integer class labels (and optionally a group id per row, e.g. the clip). */
export interface LabelledFeatures extends FeatureMatrix {
  y: Int32Array;
  /** Rows with the same id are windows/frames of one clip; accuracy is then measured per clip. */
  groupIds?: readonly string[];
}

/** Options of {@link trainLinearProbe}. */
export interface LinearProbeOptions {
  train: LabelledFeatures;
  /** Validation set for choosing L2; when absent, `valFraction` of the training groups is held out. */
  val?: LabelledFeatures;
  numClasses: number;
  /** L2 strengths tried (penalty l2·‖W‖² added to the mean cross-entropy). Default 1e-5 … 1e-1. */
  l2Grid?: readonly number[];
  /** Passes over the training set per fit. Default 100. */
  epochs?: number;
  /** Mini-batch size; the whole set is one batch when smaller. Default 1024. */
  batchSize?: number;
  /** Adam learning rate. Default 0.01. */
  learningRate?: number;
  /** Seed of the mini-batch order and of the held-out split. Default 0. */
  seed?: number | string;
  /** Fraction of training groups held out for L2 selection when `val` is absent. Default 0.2. */
  valFraction?: number;
  /** After choosing L2, fit again on train ∪ val with it (sklearn's refit). Default false. */
  refit?: boolean;
}

/** Validation score of one L2 strength. */
export interface L2Score {
  l2: number;
  /** Accuracy on the validation set (per group when group ids are given). */
  valAccuracy: number;
  /** Mean validation cross-entropy per row (breaks accuracy ties: lower wins). */
  valLoss: number;
}

/** The plain-array state of a trained probe (JSON-serialisable with Array.from). */
export interface LinearProbeState {
  dim: number;
  numClasses: number;
  /** Per-feature mean and std of the (final) training set; features are standardised with them. */
  mean: Float32Array;
  std: Float32Array;
  /** dim × numClasses weights (row-major) and numClasses biases, on standardised features. */
  weights: Float32Array;
  bias: Float32Array;
  chosenL2: number;
}

/** A trained linear probe. */
export interface LinearProbe extends LinearProbeState {
  /** Validation accuracy of the chosen L2 (measured before any refit). */
  valAccuracy: number;
  /** Validation scores of every L2 in the grid. */
  l2Scores: L2Score[];
  /** Rows used in the final fit. */
  trainRows: number;
  /** Class probabilities (n × numClasses, row-major) of n rows of raw (unstandardised) features. */
  predictProba(x: Float32Array): Float32Array;
  /** Most probable class of each row. */
  predict(x: Float32Array): Int32Array;
}

/** Default L2 grid: 1e-5, 1e-4, 1e-3, 1e-2, 1e-1. */
export const DEFAULT_L2_GRID: readonly number[] = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

function checkMatrix(m: FeatureMatrix, what: string): void {
  if (!(Number.isInteger(m.n) && m.n >= 0 && Number.isInteger(m.dim) && m.dim > 0)) {
    throw new ConfigError(`bad shape n=${m.n}, dim=${m.dim}`, { subject: what });
  }
  if (m.x.length !== m.n * m.dim) throw new ConfigError(`x has ${m.x.length} values, expected ${m.n}×${m.dim}`, { subject: what });
  for (let i = 0; i < m.x.length; i++) {
    if (!Number.isFinite(m.x[i]!))
      throw new ConfigError(`non-finite feature at row ${Math.floor(i / m.dim)}, column ${i % m.dim}`, { subject: what });
  }
}

function checkLabelled(m: LabelledFeatures, numClasses: number, what: string): void {
  checkMatrix(m, what);
  if (m.y.length !== m.n) throw new ConfigError(`y has ${m.y.length} labels for ${m.n} rows`, { subject: what });
  for (let i = 0; i < m.n; i++) {
    const c = m.y[i]!;
    if (!(c >= 0 && c < numClasses)) throw new ConfigError(`label ${c} at row ${i} is not in [0, ${numClasses})`, { subject: what });
  }
  if (m.groupIds && m.groupIds.length !== m.n) throw new ConfigError(`${m.groupIds.length} group ids for ${m.n} rows`, { subject: what });
}

/** Per-column mean and std (std 0 → 1 so constant columns stay 0 after standardising). */
function columnStats(m: FeatureMatrix): { mean: Float32Array; std: Float32Array } {
  const { x, n, dim } = m;
  const sum = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let j = 0; j < dim; j++) sum[j]! += x[o + j]!;
  }
  const mean = new Float32Array(dim);
  for (let j = 0; j < dim; j++) mean[j] = n ? sum[j]! / n : 0;
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let j = 0; j < dim; j++) {
      const d = x[o + j]! - mean[j]!;
      sq[j]! += d * d;
    }
  }
  const std = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    const s = n ? Math.sqrt(sq[j]! / n) : 0;
    std[j] = s > 1e-8 ? s : 1;
  }
  return { mean, std };
}

/** Row subset of labelled features. */
function takeRows(m: LabelledFeatures, rows: readonly number[]): LabelledFeatures {
  const x = new Float32Array(rows.length * m.dim);
  const y = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    x.set(m.x.subarray(r * m.dim, (r + 1) * m.dim), i * m.dim);
    y[i] = m.y[r]!;
  });
  return { x, n: rows.length, dim: m.dim, y, ...(m.groupIds ? { groupIds: rows.map((r) => m.groupIds![r]!) } : {}) };
}

/** Concatenates two labelled sets row-wise. */
function concatLabelled(a: LabelledFeatures, b: LabelledFeatures): LabelledFeatures {
  const x = new Float32Array((a.n + b.n) * a.dim);
  x.set(a.x, 0);
  x.set(b.x, a.n * a.dim);
  const y = new Int32Array(a.n + b.n);
  y.set(a.y, 0);
  y.set(b.y, a.n);
  const groupIds = a.groupIds && b.groupIds ? [...a.groupIds, ...b.groupIds] : undefined;
  return { x, n: a.n + b.n, dim: a.dim, y, ...(groupIds ? { groupIds } : {}) };
}

/**
 * Splits labelled rows into train/held-out by group (all rows of one clip go to the same side), with
 * a seeded shuffle of the groups. At least one group stays on each side when there are two or more.
 */
export function probeSplitByGroup(
  m: LabelledFeatures,
  fraction: number,
  seed: number | string,
): { train: LabelledFeatures; val: LabelledFeatures } {
  const ids = m.groupIds ?? Array.from({ length: m.n }, (_, i) => String(i));
  const groups = [...new Set(ids)];
  new Rng(`${seed}:holdout`).shuffle(groups);
  let nVal = Math.round(groups.length * fraction);
  if (groups.length >= 2) nVal = Math.min(Math.max(nVal, 1), groups.length - 1);
  const valSet = new Set(groups.slice(0, nVal));
  const trainRows: number[] = [];
  const valRows: number[] = [];
  for (let i = 0; i < m.n; i++) (valSet.has(ids[i]!) ? valRows : trainRows).push(i);
  return { train: takeRows(m, trainRows), val: takeRows(m, valRows) };
}

interface FitResult {
  weights: Float32Array;
  bias: Float32Array;
}

/** Fits softmax regression on standardised features with Adam; plain arrays out, no tensors left. */
async function fitSoftmax(
  data: LabelledFeatures,
  stats: { mean: Float32Array; std: Float32Array },
  numClasses: number,
  l2: number,
  opts: { epochs: number; batchSize: number; learningRate: number; seed: number | string },
): Promise<FitResult> {
  const { n, dim } = data;
  const rng = new Rng(`${opts.seed}:probe-order`);
  const bs = Math.min(opts.batchSize, n);
  const stdX = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) stdX[i * dim + j] = (data.x[i * dim + j]! - stats.mean[j]!) / stats.std[j]!;
  }
  const W = tf.tidy(() => tf.variable(tf.zeros([dim, numClasses]), true));
  const b = tf.tidy(() => tf.variable(tf.zeros([numClasses]), true));
  const optimizer = tf.train.adam(opts.learningRate);
  const fullBatch = bs === n;
  const fullX = fullBatch ? tf.tensor2d(stdX, [n, dim]) : null;
  const fullY = fullBatch ? tf.tidy(() => tf.oneHot(tf.tensor1d(data.y, "int32"), numClasses).toFloat()) : null;
  const order = Array.from({ length: n }, (_, i) => i);
  const bx = new Float32Array(bs * dim);
  const by = new Int32Array(bs);
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      if (!fullBatch) rng.shuffle(order);
      for (let start = 0; start < n; start += bs) {
        const m = Math.min(bs, n - start);
        tf.tidy(() => {
          let xs: tf.Tensor2D;
          let ys: tf.Tensor;
          if (fullX && fullY) {
            xs = fullX;
            ys = fullY;
          } else {
            for (let r = 0; r < m; r++) {
              const src = order[start + r]!;
              bx.set(stdX.subarray(src * dim, (src + 1) * dim), r * dim);
              by[r] = data.y[src]!;
            }
            xs = tf.tensor2d(bx.subarray(0, m * dim), [m, dim]);
            ys = tf.oneHot(tf.tensor1d(by.subarray(0, m), "int32"), numClasses).toFloat();
          }
          optimizer.minimize(
            () => {
              const logits = tf.add(tf.matMul(xs, W), b);
              const ce = tf.losses.softmaxCrossEntropy(ys, logits);
              return tf.add(ce, tf.mul(l2, tf.sum(tf.square(W)))) as tf.Scalar;
            },
            false,
            [W, b],
          );
        });
      }
      // let the event loop breathe on long fits
      if (epoch % 20 === 19) await new Promise<void>((r) => setImmediate(r));
    }
    return { weights: (await W.data()) as Float32Array, bias: (await b.data()) as Float32Array };
  } finally {
    W.dispose();
    b.dispose();
    fullX?.dispose();
    fullY?.dispose();
    optimizer.dispose();
  }
}

/** Class probabilities of raw features under a probe state (pure JS, float64 accumulation). */
export function probeProba(state: LinearProbeState, x: Float32Array): Float32Array {
  const { dim, numClasses: k, mean, std, weights, bias } = state;
  if (x.length % dim !== 0) throw new ConfigError(`x has ${x.length} values, not a multiple of dim ${dim}`, { subject: "predictProba" });
  const n = x.length / dim;
  const out = new Float32Array(n * k);
  const z = new Float64Array(dim);
  const logits = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) z[j] = (x[i * dim + j]! - mean[j]!) / std[j]!;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      let s = bias[c]!;
      for (let j = 0; j < dim; j++) s += z[j]! * weights[j * k + c]!;
      logits[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) {
      logits[c] = Math.exp(logits[c]! - max);
      sum += logits[c]!;
    }
    for (let c = 0; c < k; c++) out[i * k + c] = logits[c]! / sum;
  }
  return out;
}

function makeProbe(state: LinearProbeState, extra: { valAccuracy: number; l2Scores: L2Score[]; trainRows: number }): LinearProbe {
  return {
    ...state,
    ...extra,
    predictProba: (x) => probeProba(state, x),
    predict: (x) => argmaxRows(probeProba(state, x), state.numClasses),
  };
}

/** Accuracy (per group when group ids are given) and mean cross-entropy of a probe on labelled rows. */
export function scoreProbe(state: LinearProbeState, m: LabelledFeatures): { accuracy: number; loss: number } {
  const k = state.numClasses;
  const p = probeProba(state, m.x);
  let loss = 0;
  for (let i = 0; i < m.n; i++) loss -= Math.log(Math.max(p[i * k + m.y[i]!]!, 1e-12));
  loss /= Math.max(m.n, 1);
  if (m.groupIds) {
    const avg = averageByGroup(p, k, m.groupIds);
    const yPred = argmaxRows(avg.values, k);
    const yTrue = avg.firstIndex.map((i) => m.y[i]!);
    return { accuracy: classificationMetrics(yTrue, yPred, k).accuracy, loss };
  }
  return { accuracy: classificationMetrics(m.y, argmaxRows(p, k), k).accuracy, loss };
}

/**
 * Trains a multinomial logistic-regression probe on frozen features. Every L2 strength of the grid is
 * fitted on `train` and scored on `val` (per-clip accuracy when group ids are given; ties go to the
 * lower validation loss, then to the stronger L2); the best one is kept (and refitted on train ∪ val
 * when `refit`). Deterministic for a given seed and backend.
 */
export async function trainLinearProbe(opts: LinearProbeOptions): Promise<LinearProbe> {
  const { numClasses } = opts;
  if (!(Number.isInteger(numClasses) && numClasses >= 2))
    throw new ConfigError(`numClasses must be an integer ≥ 2, got ${numClasses}`, { subject: "trainLinearProbe" });
  const grid = [...(opts.l2Grid ?? DEFAULT_L2_GRID)];
  if (grid.length === 0 || grid.some((l) => !(l >= 0)))
    throw new ConfigError(`l2Grid must be non-empty and ≥ 0, got [${grid}]`, { subject: "trainLinearProbe.l2Grid" });
  const fitOpts = {
    epochs: opts.epochs ?? 100,
    batchSize: opts.batchSize ?? 1024,
    learningRate: opts.learningRate ?? 0.01,
    seed: opts.seed ?? 0,
  };
  if (!(Number.isInteger(fitOpts.epochs) && fitOpts.epochs > 0))
    throw new ConfigError(`epochs must be a positive integer`, { subject: "trainLinearProbe.epochs" });
  if (!(Number.isInteger(fitOpts.batchSize) && fitOpts.batchSize > 0))
    throw new ConfigError(`batchSize must be a positive integer`, { subject: "trainLinearProbe.batchSize" });
  checkLabelled(opts.train, numClasses, "probe train set");
  if (opts.train.n === 0) throw new ConfigError("empty training set", { subject: "trainLinearProbe" });

  let train = opts.train;
  let val = opts.val;
  if (val) {
    checkLabelled(val, numClasses, "probe val set");
    if (val.dim !== train.dim) throw new ConfigError(`val dim ${val.dim} ≠ train dim ${train.dim}`, { subject: "trainLinearProbe" });
  } else if (grid.length > 1) {
    ({ train, val } = probeSplitByGroup(train, opts.valFraction ?? 0.2, fitOpts.seed));
  }

  const stats = columnStats(train);
  const l2Scores: L2Score[] = [];
  let best: { state: LinearProbeState; score: L2Score } | undefined;
  for (const l2 of grid) {
    const fit = await fitSoftmax(train, stats, numClasses, l2, fitOpts);
    const state: LinearProbeState = { dim: train.dim, numClasses, ...stats, ...fit, chosenL2: l2 };
    const s = val && val.n > 0 ? scoreProbe(state, val) : { accuracy: Number.NaN, loss: Number.NaN };
    const score = { l2, valAccuracy: s.accuracy, valLoss: s.loss };
    l2Scores.push(score);
    const better =
      !best ||
      score.valAccuracy > best.score.valAccuracy ||
      (score.valAccuracy === best.score.valAccuracy &&
        (score.valLoss < best.score.valLoss || (score.valLoss === best.score.valLoss && l2 > best.score.l2)));
    if (better) best = { state, score };
  }
  const chosen = best!;
  if (opts.refit && val && val.n > 0) {
    const all = concatLabelled(train, val);
    const allStats = columnStats(all);
    const fit = await fitSoftmax(all, allStats, numClasses, chosen.score.l2, fitOpts);
    return makeProbe(
      { dim: all.dim, numClasses, ...allStats, ...fit, chosenL2: chosen.score.l2 },
      { valAccuracy: chosen.score.valAccuracy, l2Scores, trainRows: all.n },
    );
  }
  return makeProbe(chosen.state, { valAccuracy: chosen.score.valAccuracy, l2Scores, trainRows: train.n });
}
