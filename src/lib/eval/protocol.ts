/**
 * Probe protocols over any feature extractor: features are extracted once per manifest row (k
 * windows/frames × dim), a linear probe is trained per split or fold, and clip-level accuracy is
 * measured by averaging window probabilities over each clip. Baselines (random-weights network,
 * hand-made features) are run beside the features under test with the same splits and seeds.
 */
import type { ManifestRow } from "../data/types";
import { ConfigError, errorMessage, L3kitError, mapPool, Rng } from "../util";
import { argmaxRows, averageByGroup, type ClassificationMetrics, classificationMetrics, foldMeanStd } from "./metrics";
import { type L2Score, type LabelledFeatures, trainLinearProbe } from "./probe";

/** Features of one manifest row: k windows (1 s of audio, or frames) × dim, row-major. */
export interface ProbeFeatures {
  features: Float32Array;
  k: number;
  dim: number;
}

/** Turns a manifest row into features; may throw for a bad file (the row is then skipped and reported). */
export type FeatureExtractor = (row: ManifestRow) => Promise<ProbeFeatures>;

/** A row left out of a probe, and why. */
export interface SkippedRow {
  id: string;
  /** e.g. "no-label", "unknown-label", "no-fold", "bad-features", or the extractor error's reason. */
  reason: string;
  message: string;
}

/** How rows are split: by the manifest's `split` field (train/val/test) or by its `fold` field (cross-validation). */
export type ProbeSplit = "manifest" | { folds: number };

/** Options of {@link runProbeProtocol}. */
export interface ProbeProtocolOptions {
  rows: readonly ManifestRow[];
  /** The features under test. */
  extract: FeatureExtractor;
  /** Name of `extract` in the results. Default "model". */
  name?: string;
  /**
   * Baselines run beside it with the same protocol — required, at least one (e.g. the same network
   * with random weights, colour histograms, MFCC statistics). A baseline may also be the result of an
   * earlier run of this protocol on the same rows and split (it is reported as it is): baselines that
   * do not depend on the model under test are then fitted once, not once per model.
   */
  baselines: Record<string, FeatureExtractor | ProbeFeatureResult>;
  /**
   * "manifest": train on split "train", choose L2 on "val" (or on a held-out 20% of train clips when
   * there is no val row), test on "test". `{ folds: F }`: rows carry `fold` 1…F (ESC-50: 5); each fold is
   * the test set once, the next fold (cyclically) chooses L2, and the probe is then refitted on all
   * F−1 training folds.
   */
  split: ProbeSplit;
  /**
   * Label-scarce probing: train (and choose L2) on at most this many labelled clips per class, drawn
   * with `seed` from the training (and validation) rows; the test rows are all used. ESC-50's folds
   * give 32 training clips per class; fewer labels show how much the features, not the labels, carry.
   * Default: every labelled clip.
   */
  labelsPerClass?: number;
  /** Class names (index = class id). Default: sorted distinct labels of the rows. */
  classNames?: readonly string[];
  l2Grid?: readonly number[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number | string;
  /** Rows extracted at once. Default 2. */
  concurrency?: number;
  /** Called after each row is extracted. */
  onProgress?: (p: { features: string; done: number; total: number }) => void;
}

/** The result of one train/test split. */
export interface ProbeFoldResult {
  /** "manifest" or the test fold number. */
  fold: string | number;
  /** Fold that chose L2 (cross-validation only). */
  valFold?: number;
  /** Clip-level top-1 accuracy on the test rows (window probabilities averaged per clip). */
  accuracy: number;
  /** Top-1 accuracy of single windows. */
  windowAccuracy: number;
  /** Clip-level metrics (per-class recall, confusion matrix). */
  metrics: ClassificationMetrics;
  chosenL2: number;
  valAccuracy: number;
  l2Scores: L2Score[];
  trainClips: number;
  testClips: number;
  /** The labels-per-class limit in force (absent: every labelled clip). */
  labelsPerClass?: number;
}

/** The results of one feature extractor. */
export interface ProbeFeatureResult {
  /** The extractor's name. */
  features: string;
  /** True for the baselines. */
  baseline: boolean;
  /** Feature dimension. */
  dim: number;
  folds: ProbeFoldResult[];
  /** Mean and sample std of clip accuracy over folds (std 0 for a single split). */
  accuracy: { mean: number; std: number; n: number };
  /** Rows without usable features or labels. */
  skipped: SkippedRow[];
}

/** The result of {@link runProbeProtocol}: the features under test first, then each baseline. */
export interface ProbeProtocolResult {
  split: "manifest" | "folds";
  classNames: string[];
  results: ProbeFeatureResult[];
  /** One flat row per feature set, ready for a results table. */
  table: Array<{ features: string; baseline: boolean; accuracy: number; std: number; folds: number; dim: number; skipped: number }>;
}

function checkFeatures(f: ProbeFeatures): string | null {
  if (!f || !(f.features instanceof Float32Array)) return "features must be a Float32Array";
  if (!(Number.isInteger(f.k) && f.k >= 1 && Number.isInteger(f.dim) && f.dim >= 1)) return `bad shape k=${f.k}, dim=${f.dim}`;
  if (f.features.length !== f.k * f.dim) return `${f.features.length} values for ${f.k}×${f.dim}`;
  for (let i = 0; i < f.features.length; i++)
    if (!Number.isFinite(f.features[i]!)) return `non-finite value at window ${Math.floor(i / f.dim)}`;
  return null;
}

interface Extracted {
  row: ManifestRow;
  cls: number;
  f: ProbeFeatures;
}

/** Runs an extractor over rows: failures are caught and reported, never thrown. */
async function extractAll(
  name: string,
  rows: readonly { row: ManifestRow; cls: number }[],
  extract: FeatureExtractor,
  opts: Pick<ProbeProtocolOptions, "concurrency" | "onProgress">,
): Promise<{ ok: Extracted[]; skipped: SkippedRow[]; dim: number }> {
  let done = 0;
  const got = await mapPool(rows, opts.concurrency ?? 2, async ({ row, cls }) => {
    let out: Extracted | SkippedRow;
    try {
      const f = await extract(row);
      const bad = checkFeatures(f);
      out = bad ? { id: row.id, reason: "bad-features", message: bad } : { row, cls, f };
    } catch (err) {
      out = { id: row.id, reason: err instanceof L3kitError ? err.reason : "extract-failed", message: errorMessage(err) };
    }
    done++;
    opts.onProgress?.({ features: name, done, total: rows.length });
    return out;
  });
  const ok: Extracted[] = [];
  const skipped: SkippedRow[] = [];
  let dim = 0;
  for (const g of got) {
    if ("f" in g) {
      if (dim === 0) dim = g.f.dim;
      if (g.f.dim !== dim) skipped.push({ id: g.row.id, reason: "bad-features", message: `dim ${g.f.dim} ≠ ${dim} of earlier rows` });
      else ok.push(g);
    } else skipped.push(g);
  }
  return { ok, skipped, dim };
}

/**
 * At most `n` items of each class, drawn without replacement with a seeded shuffle of the items
 * sorted by id, so the draw does not depend on extraction order and is the same for every feature set.
 */
function limitPerClass(items: readonly Extracted[], n: number | undefined, seed: string): Extracted[] {
  if (n === undefined) return [...items];
  const sorted = [...items].sort((a, b) => (a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0));
  const taken = new Map<number, number>();
  return new Rng(seed).shuffle(sorted).filter((e) => {
    const c = taken.get(e.cls) ?? 0;
    if (c >= n) return false;
    taken.set(e.cls, c + 1);
    return true;
  });
}

function stack(items: readonly Extracted[], dim: number): LabelledFeatures {
  const n = items.reduce((a, e) => a + e.f.k, 0);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  const groupIds: string[] = [];
  let r = 0;
  for (const e of items) {
    x.set(e.f.features, r * dim);
    for (let i = 0; i < e.f.k; i++) {
      y[r + i] = e.cls;
      groupIds.push(e.row.id);
    }
    r += e.f.k;
  }
  return { x, n, dim, y, groupIds };
}

async function runOne(
  name: string,
  baseline: boolean,
  extract: FeatureExtractor,
  labelled: readonly { row: ManifestRow; cls: number }[],
  preSkipped: SkippedRow[],
  classNames: string[],
  opts: ProbeProtocolOptions,
): Promise<ProbeFeatureResult> {
  const numClasses = classNames.length;
  const { ok, skipped, dim } = await extractAll(name, labelled, extract, opts);
  const allSkipped = [...preSkipped, ...skipped];
  const probeOpts = {
    numClasses,
    l2Grid: opts.l2Grid,
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    learningRate: opts.learningRate,
    seed: opts.seed ?? 0,
  };
  const folds: ProbeFoldResult[] = [];

  const evaluate = async (
    trainItems: Extracted[],
    valItems: Extracted[] | undefined,
    testItems: Extracted[],
    fold: string | number,
    valFold?: number,
  ) => {
    if (trainItems.length === 0)
      throw new ConfigError(`no training rows with features`, { subject: `${name} fold ${fold}`, reason: "empty-split" });
    if (testItems.length === 0)
      throw new ConfigError(`no test rows with features`, { subject: `${name} fold ${fold}`, reason: "empty-split" });
    const limit = opts.labelsPerClass;
    const drawSeed = `${opts.seed ?? 0}:labels:${fold}`;
    trainItems = limitPerClass(trainItems, limit, `${drawSeed}:train`);
    if (valItems) valItems = limitPerClass(valItems, limit, `${drawSeed}:val`);
    const probe = await trainLinearProbe({
      ...probeOpts,
      train: stack(trainItems, dim),
      ...(valItems?.length ? { val: stack(valItems, dim) } : {}),
      refit: valFold !== undefined,
    });
    const test = stack(testItems, dim);
    const proba = probe.predictProba(test.x);
    const windowAccuracy = classificationMetrics(test.y, argmaxRows(proba, numClasses), numClasses).accuracy;
    const avg = averageByGroup(proba, numClasses, test.groupIds!);
    const metrics = classificationMetrics(
      avg.firstIndex.map((i) => test.y[i]!),
      argmaxRows(avg.values, numClasses),
      numClasses,
      classNames,
    );
    folds.push({
      fold,
      ...(valFold !== undefined ? { valFold } : {}),
      accuracy: metrics.accuracy,
      windowAccuracy,
      metrics,
      chosenL2: probe.chosenL2,
      valAccuracy: probe.valAccuracy,
      l2Scores: probe.l2Scores,
      trainClips: trainItems.length + (valFold !== undefined ? (valItems?.length ?? 0) : 0),
      testClips: testItems.length,
      ...(limit !== undefined ? { labelsPerClass: limit } : {}),
    });
  };

  if (opts.split === "manifest") {
    const by = (s: string) => ok.filter((e) => e.row.split === s);
    const val = by("val");
    await evaluate(by("train"), val.length ? val : undefined, by("test"), "manifest");
  } else {
    const foldIds = [...new Set(ok.map((e) => e.row.fold!))].sort((a, b) => a - b);
    for (let i = 0; i < foldIds.length; i++) {
      const testFold = foldIds[i]!;
      const valFold = foldIds[(i + 1) % foldIds.length]!;
      await evaluate(
        ok.filter((e) => e.row.fold !== testFold && e.row.fold !== valFold),
        ok.filter((e) => e.row.fold === valFold),
        ok.filter((e) => e.row.fold === testFold),
        testFold,
        valFold,
      );
    }
  }
  return { features: name, baseline, dim, folds, accuracy: foldMeanStd(folds.map((f) => f.accuracy)), skipped: allSkipped };
}

/**
 * Trains and tests linear probes on the features of `extract` and of every baseline, with the same
 * rows, splits and seeds: Kinetics-Sounds / synthetic benchmark (`split: "manifest"`) or ESC-50
 * (`split: { folds: 5 }`, mean ± std over folds). Rows whose features cannot be extracted, or that lack
 * a label (or fold), are skipped and listed, never fatal.
 */
export async function runProbeProtocol(opts: ProbeProtocolOptions): Promise<ProbeProtocolResult> {
  const name = opts.name ?? "model";
  const baselineNames = Object.keys(opts.baselines ?? {});
  if (baselineNames.length === 0) {
    throw new ConfigError("at least one baseline is required (random-weights network, hand-made features)", {
      subject: "runProbeProtocol.baselines",
    });
  }
  if (baselineNames.includes(name))
    throw new ConfigError(`baseline name "${name}" clashes with the features under test`, { subject: "runProbeProtocol.baselines" });
  const folds = opts.split === "manifest" ? 0 : opts.split.folds;
  if (opts.split !== "manifest" && !(Number.isInteger(folds) && folds >= 3)) {
    throw new ConfigError(`folds must be an integer ≥ 3 (one to test, one to choose L2, the rest to train), got ${folds}`, {
      subject: "runProbeProtocol.split",
    });
  }
  const lpc = opts.labelsPerClass;
  if (lpc !== undefined && !(Number.isInteger(lpc) && lpc >= 1))
    throw new ConfigError(`labelsPerClass must be an integer ≥ 1, got ${lpc}`, { subject: "runProbeProtocol.labelsPerClass" });
  const classNames = opts.classNames
    ? [...opts.classNames]
    : [...new Set(opts.rows.map((r) => r.label).filter((l): l is string => typeof l === "string"))].sort();
  if (classNames.length < 2) throw new ConfigError(`need at least 2 classes, got ${classNames.length}`, { subject: "runProbeProtocol" });
  const classIndex = new Map(classNames.map((c, i) => [c, i]));

  const preSkipped: SkippedRow[] = [];
  const labelled: { row: ManifestRow; cls: number }[] = [];
  for (const row of opts.rows) {
    if (row.label === undefined) preSkipped.push({ id: row.id, reason: "no-label", message: "row has no label" });
    else if (!classIndex.has(row.label))
      preSkipped.push({ id: row.id, reason: "unknown-label", message: `label "${row.label}" is not in classNames` });
    else if (folds && !(Number.isInteger(row.fold) && row.fold! >= 1 && row.fold! <= folds)) {
      preSkipped.push({ id: row.id, reason: "no-fold", message: `fold ${row.fold} is not in 1…${folds}` });
    } else if (!folds && !["train", "val", "test"].includes(row.split)) {
      preSkipped.push({ id: row.id, reason: "unknown-split", message: `split "${row.split}" is not train/val/test` });
    } else labelled.push({ row, cls: classIndex.get(row.label)! });
  }
  if (folds) {
    const present = new Set(labelled.map((l) => l.row.fold));
    if (present.size !== folds)
      throw new ConfigError(`rows cover folds {${[...present].sort()}}, expected 1…${folds}`, { subject: "runProbeProtocol.split" });
  }

  const results: ProbeFeatureResult[] = [];
  results.push(await runOne(name, false, opts.extract, labelled, preSkipped, classNames, opts));
  for (const b of baselineNames) {
    const given = opts.baselines[b]!;
    results.push(
      typeof given === "function"
        ? await runOne(b, true, given, labelled, preSkipped, classNames, opts)
        : { ...given, features: b, baseline: true },
    );
  }
  return {
    split: opts.split === "manifest" ? "manifest" : "folds",
    classNames,
    results,
    table: results.map((r) => ({
      features: r.features,
      baseline: r.baseline,
      accuracy: r.accuracy.mean,
      std: r.accuracy.std,
      folds: r.folds.length,
      dim: r.dim,
      skipped: r.skipped.length,
    })),
  };
}

/**
 * An extractor that concatenates the features of several extractors window by window (e.g. vision +
 * audio → "both" for Kinetics-Sounds). All must give the same number of windows k for a row.
 */
export function concatFeatureExtractors(...extractors: FeatureExtractor[]): FeatureExtractor {
  if (extractors.length === 0) throw new ConfigError("no extractors to concatenate", { subject: "concatFeatureExtractors" });
  return async (row) => {
    const parts = await Promise.all(extractors.map((e) => e(row)));
    const k = parts[0]!.k;
    if (parts.some((p) => p.k !== k)) {
      throw new L3kitError(`window counts differ: ${parts.map((p) => p.k).join(" vs ")}`, { subject: row.id, reason: "window-mismatch" });
    }
    const dim = parts.reduce((a, p) => a + p.dim, 0);
    const features = new Float32Array(k * dim);
    for (let w = 0; w < k; w++) {
      let o = w * dim;
      for (const p of parts) {
        features.set(p.features.subarray(w * p.dim, (w + 1) * p.dim), o);
        o += p.dim;
      }
    }
    return { features, k, dim };
  };
}

/**
 * An extractor that remembers each row's features (by row id), so several protocol runs over the
 * same rows — full and label-scarce probes, a label-efficiency sweep — extract once.
 */
export function memoizeFeatureExtractor(extract: FeatureExtractor): FeatureExtractor {
  const seen = new Map<string, Promise<ProbeFeatures>>();
  return (row) => {
    let p = seen.get(row.id);
    if (!p) {
      p = extract(row);
      seen.set(row.id, p);
    }
    return p;
  };
}

/** One probe accuracy of {@link probeLabelEfficiency}: a feature set at a labels-per-class budget. */
export interface LabelEfficiencyResult {
  features: string;
  baseline: boolean;
  labelsPerClass: number;
  /** Mean over folds (one split: its accuracy). */
  accuracy: number;
  std: number;
}

/**
 * Runs {@link runProbeProtocol} at each labels-per-class budget, extracting every feature set once:
 * the label-efficiency curve of the features under test beside their baselines (plot it with
 * `labelEfficiencyFigure`). Each budget draws its clips with the same seed for every feature set.
 */
export async function probeLabelEfficiency(
  opts: Omit<ProbeProtocolOptions, "labelsPerClass">,
  labelsPerClass: readonly number[],
): Promise<{ points: LabelEfficiencyResult[]; runs: ProbeProtocolResult[] }> {
  if (labelsPerClass.length === 0)
    throw new ConfigError("give at least one labels-per-class budget", { subject: "probeLabelEfficiency.labelsPerClass" });
  const baselines: ProbeProtocolOptions["baselines"] = {};
  for (const [k, b] of Object.entries(opts.baselines ?? {})) baselines[k] = typeof b === "function" ? memoizeFeatureExtractor(b) : b;
  const shared = { ...opts, extract: memoizeFeatureExtractor(opts.extract), baselines };
  const points: LabelEfficiencyResult[] = [];
  const runs: ProbeProtocolResult[] = [];
  for (const n of labelsPerClass) {
    const r = await runProbeProtocol({ ...shared, labelsPerClass: n });
    runs.push(r);
    for (const t of r.table)
      points.push({ features: t.features, baseline: t.baseline, labelsPerClass: n, accuracy: t.accuracy, std: t.std });
  }
  return { points, runs };
}
