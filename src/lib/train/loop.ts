/**
 * The AVC training loop: Adam on softmax cross-entropy of correspondence, batches with background
 * prefetch, fixed seeded validation pairs, metrics.jsonl, progress, atomic checkpoints with exact
 * resume, early stopping, a time budget, graceful stop on a signal, and callbacks for notebooks.
 */
import { appendFileSync, existsSync, promises as fsp, readFileSync } from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { type AvcBatch, type AvcPair, AvcPairSampler, type AvcTransforms, avcBatches, type PairSource, type SkippedClip } from "../data";
import type { L3Net } from "../models";
import { ConfigError, L3kitError, writeFileAtomic, yieldToEventLoop } from "../util";
import {
  type CheckpointState,
  listCheckpoints,
  readLatestCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
  pruneCheckpoints,
} from "./checkpoint";
import { Adam } from "./optimizer";
import { inBatchLogits, inBatchLossAndAccuracy, inBatchPairs } from "./pairing";
import { createProgress } from "./progress";
import { learningRateAt } from "./schedule";
import { avcTransforms } from "./transforms";

/** How training pairs are made: the paper's sampled 50/50 pairs, or in-batch negatives ({@link inBatchPairs}). */
export type AvcPairing = "sampled" | "in-batch";

/** Hyper-parameters and bookkeeping of a training run (all plain data; stored in checkpoints). */
export interface TrainAvcConfig {
  /** Optimizer steps in all. */
  steps: number;
  /** Pairs per step. */
  batchSize: number;
  /** Gradient accumulation: each step's batch is split into this many micro-batches. */
  microBatches: number;
  /**
   * `sampled` (the paper): independently drawn pairs, half positives. `in-batch`: every drawn pair is
   * a positive and each frame is also scored against the audio of `negatives` other batch entries,
   * so each tower pass yields more scored pairs (validation always uses sampled 50/50 pairs).
   */
  pairing: AvcPairing;
  /** In-batch negatives per frame (with `pairing: "in-batch"`; at most batch/microBatches − 1). */
  negatives: number;
  /** Peak learning rate (paper: 1e-4). */
  lr: number;
  warmupSteps: number;
  schedule: "constant" | "cosine";
  /** L2 weight decay λ on kernels, as Keras' l2(λ) (gradient 2λw). Paper: 1e-5. */
  weightDecay: number;
  /** Seed of data order and augmentation (the model's init seed is the model's own). */
  seed: number;
  /** Pairs per epoch (rounded up to a multiple of the batch size); 0: one pair per sample or clip. */
  pairsPerEpoch: number;
  /** Validate every N steps (and at the end); 0: only at the end. */
  evalEvery: number;
  /** Fixed validation pairs (seeded by `valSeed`). */
  valPairs: number;
  valSeed: number;
  /** Write a checkpoint every N steps (and at the end); 0: only at the end. */
  checkpointEvery: number;
  /** Periodic checkpoints kept (the best is kept apart). */
  keepLast: number;
  /** Stop after this many evaluations without improvement; 0: never. */
  earlyStoppingPatience: number;
  /** Stop (with a checkpoint) after this many seconds of training; 0: no limit. */
  maxSeconds: number;
  /** Write a metrics row every N steps. */
  logEvery: number;
  /** Batches prepared ahead. */
  prefetch: number;
  /** Pairs decoded at once. */
  concurrency: number;
}

/** Defaults: the paper's optimizer settings, CPU-sized batch. */
export const DEFAULT_TRAIN_CONFIG: TrainAvcConfig = {
  steps: 1000,
  batchSize: 16,
  microBatches: 1,
  pairing: "sampled",
  negatives: 1,
  lr: 1e-4,
  warmupSteps: 0,
  schedule: "constant",
  weightDecay: 1e-5,
  seed: 0,
  pairsPerEpoch: 0,
  evalEvery: 100,
  valPairs: 256,
  valSeed: 1234,
  checkpointEvery: 200,
  keepLast: 2,
  earlyStoppingPatience: 0,
  maxSeconds: 0,
  logEvery: 10,
  prefetch: 2,
  concurrency: 4,
};

/** One line of metrics.jsonl. Validation fields appear on evaluation rows. */
export interface MetricsRow {
  step: number;
  epoch: number;
  loss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  lr: number;
  samplesPerSec: number;
  elapsedSec: number;
}

/** Result of a validation pass. */
export interface EvalResult {
  step: number;
  valLoss: number;
  valAccuracy: number;
  n: number;
}

/** Hooks called during training (e.g. live learning curves in a notebook). May be async. */
export interface TrainCallbacks {
  onStep?: (row: MetricsRow) => void | Promise<void>;
  onEval?: (result: EvalResult, row: MetricsRow) => void | Promise<void>;
  onEpochEnd?: (epoch: number, step: number) => void | Promise<void>;
  onCheckpoint?: (dir: string, step: number) => void | Promise<void>;
}

/** What {@link trainAvc} needs besides the config. */
export interface TrainAvcOptions {
  model: L3Net;
  /** Training pairs' source (a sample cache or a video source, restricted to the training split). */
  train: PairSource;
  /** Validation source; without it no validation runs. */
  val?: PairSource;
  /** The run folder: metrics.jsonl, checkpoints/ and summary.json go here. */
  out: string;
  config?: Partial<TrainAvcConfig>;
  /** Continue from the latest checkpoint in `out` (a fresh start when there is none). */
  resume?: boolean;
  callbacks?: TrainCallbacks;
  /** Aborting saves a checkpoint and returns (`stoppedBy: "signal"`). */
  signal?: AbortSignal;
  /** Override the input pipeline (default: {@link avcTransforms} of the model's config). */
  transforms?: { train: AvcTransforms; eval: AvcTransforms };
  /** Progress display (default true; L3KIT_QUIET=1 silences it). */
  progress?: boolean;
  /** Called with each clip that failed to decode and was left out. */
  onSkip?: (clip: SkippedClip) => void;
}

/** What a finished (or stopped) run reports. */
export interface TrainAvcResult {
  out: string;
  steps: number;
  epochs: number;
  stoppedBy: "steps" | "early-stopping" | "time" | "signal";
  final: { loss: number; trainAccuracy: number; valAccuracy: number | null; valLoss: number | null };
  best: { step: number; valAccuracy: number } | null;
  /** Training samples per second over this invocation (excluding validation). */
  samplesPerSec: number;
  /** Seconds of training, summed over resumed invocations. */
  elapsedSec: number;
  checkpoints: string[];
  bestCheckpoint: string | null;
  skipped: SkippedClip[];
  resumedFrom: number | null;
}

/** Checks a config before anything runs; throws a ConfigError naming the key. */
export function validateTrainConfig(c: TrainAvcConfig): void {
  const posInt = (k: keyof TrainAvcConfig, min = 1) => {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min)
      throw new ConfigError(`must be an integer >= ${min}, got ${JSON.stringify(v)}`, { subject: `train.${k}` });
  };
  posInt("steps");
  posInt("batchSize");
  posInt("microBatches");
  posInt("valPairs", 0);
  posInt("evalEvery", 0);
  posInt("checkpointEvery", 0);
  posInt("keepLast");
  posInt("earlyStoppingPatience", 0);
  posInt("logEvery");
  posInt("prefetch");
  posInt("concurrency");
  posInt("warmupSteps", 0);
  posInt("pairsPerEpoch", 0);
  posInt("negatives");
  if (c.pairing !== "sampled" && c.pairing !== "in-batch")
    throw new ConfigError(`must be 'sampled' or 'in-batch', got '${c.pairing}'`, { subject: "train.pairing" });
  if (c.pairing === "in-batch" && c.batchSize / c.microBatches < 2)
    throw new ConfigError(`in-batch negatives need at least 2 pairs per micro-batch, got ${c.batchSize / c.microBatches}`, {
      subject: "train.batchSize",
    });
  if (c.batchSize % c.microBatches !== 0) {
    throw new ConfigError(`batch size ${c.batchSize} is not divisible into ${c.microBatches} micro-batches`, {
      subject: "train.microBatches",
    });
  }
  if (!(c.lr > 0 && Number.isFinite(c.lr))) throw new ConfigError(`must be a positive number, got ${c.lr}`, { subject: "train.lr" });
  if (!(c.weightDecay >= 0)) throw new ConfigError(`must be >= 0, got ${c.weightDecay}`, { subject: "train.weightDecay" });
  if (!(c.maxSeconds >= 0)) throw new ConfigError(`must be >= 0, got ${c.maxSeconds}`, { subject: "train.maxSeconds" });
  if (c.schedule !== "constant" && c.schedule !== "cosine")
    throw new ConfigError(`must be 'constant' or 'cosine', got '${c.schedule}'`, { subject: "train.schedule" });
}

/** Restricts a pair source to the clips of one split (cache clips and manifest rows both carry `split`). */
export function splitSource(source: PairSource, split: string): PairSource {
  const clips = source.clips.filter((c) => (c as { split?: string }).split === split);
  if (clips.length === source.clips.length) return source;
  const rows = clips.map((c) => source.clips.indexOf(c));
  return {
    clips,
    // Cache pairs address samples globally; video pairs address rows, which must be mapped back.
    loadPair: (pair: AvcPair) =>
      source.loadPair(
        pair.frame.sample !== undefined
          ? pair
          : {
              ...pair,
              frame: { ...pair.frame, rowIndex: rows[pair.frame.rowIndex] as number },
              audio: { ...pair.audio, rowIndex: rows[pair.audio.rowIndex] as number },
            },
      ),
  };
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a * b) / gcd(a, b);
}

/** Usable clips' sample count: every pre-decoded time of a cache, or one per clip. */
function defaultPairsPerEpoch(source: PairSource): number {
  let n = 0;
  for (const c of source.clips) if (c.hasAudio !== false) n += c.times?.length ?? 1;
  return n;
}

/** A batch's tensors. */
function batchTensors(b: { frames: Float32Array; audio: Float32Array; frameShape: number[]; audioShape: number[] }): {
  frames: tf.Tensor4D;
  audio: tf.Tensor4D;
} {
  return {
    frames: tf.tensor4d(b.frames, b.frameShape as [number, number, number, number]),
    audio: tf.tensor4d(b.audio, b.audioShape as [number, number, number, number]),
  };
}

/** Mean loss and accuracy of the model on prepared batches (inference mode). */
export function evaluateBatches(model: L3Net, batches: readonly AvcBatch[]): { loss: number; accuracy: number; n: number } {
  let lossSum = 0;
  let correct = 0;
  let n = 0;
  for (const b of batches) {
    const [loss, acc] = tf.tidy(() => {
      const { frames, audio } = batchTensors(b);
      const out = model.forward({ frames, audio }, { training: false });
      const r = model.lossAndAccuracy(Array.from(b.labels), out.logits);
      return [r.loss.dataSync()[0] as number, r.accuracy.dataSync()[0] as number];
    });
    lossSum += loss * b.size;
    correct += acc * b.size;
    n += b.size;
  }
  return { loss: n ? lossSum / n : Number.NaN, accuracy: n ? correct / n : Number.NaN, n };
}

/** How {@link trainStep} turns a batch into scored pairs. */
export interface TrainStepOptions {
  /** Gradient accumulation: the batch is split into this many micro-batches (default 1). */
  microBatches?: number;
  /**
   * `sampled` (default, the paper): the batch's own 50/50 pairs. `in-batch`: every pair of the batch
   * is a positive, and each frame is also scored against the audio of `negatives` other pairs of its
   * (micro-)batch ({@link inBatchPairs}).
   */
  pairing?: AvcPairing;
  /** In-batch negatives per frame (default 1; capped at the micro-batch size − 1). */
  negatives?: number;
}

/**
 * One optimizer step on a batch: forward in training mode, softmax cross-entropy, gradients
 * (accumulated over micro-batches), Adam. Everything runs inside one `tf.tidy`, so no tensor
 * survives a step except the variables themselves. The loss and accuracy returned are the batch's
 * (with in-batch pairing: weighted so that positives and negatives count half each).
 */
export function trainStep(
  model: L3Net,
  optimizer: Adam,
  batch: AvcBatch,
  lr: number,
  opts: TrainStepOptions = {},
): { loss: number; accuracy: number } {
  const microBatches = opts.microBatches ?? 1;
  const inBatch = opts.pairing === "in-batch";
  const named = model.namedVariables().filter((v) => v.trainable);
  const vars: Record<string, tf.Variable> = {};
  const byTfName = new Map<string, string>();
  for (const v of named) {
    vars[v.name] = v.variable;
    byTfName.set(v.variable.name, v.name);
  }
  const decay = new Set(named.filter((v) => v.role === "kernel").map((v) => v.name));
  const B = batch.size;
  const mb = B / microBatches;
  if (!Number.isInteger(mb))
    throw new ConfigError(`batch of ${B} does not split into ${microBatches} micro-batches`, { subject: "train.microBatches" });
  return tf.tidy(() => {
    const { frames, audio } = batchTensors(batch);
    const labels = tf.tensor1d(Array.from(batch.labels), "int32");
    let sum: Record<string, tf.Tensor> = {};
    let lossSum = 0;
    let correct = 0;
    for (let k = 0; k < microBatches; k++) {
      const f = microBatches === 1 ? frames : frames.slice([k * mb, 0, 0, 0], [mb, -1, -1, -1]);
      const a = microBatches === 1 ? audio : audio.slice([k * mb, 0, 0, 0], [mb, -1, -1, -1]);
      const y = microBatches === 1 ? labels : labels.slice([k * mb], [mb]);
      const pairs = inBatch
        ? inBatchPairs(
            batch.pairs.slice(k * mb, (k + 1) * mb).map((p) => p.frame.id),
            opts.negatives ?? 1,
          )
        : null;
      let accuracy: tf.Scalar | null = null;
      const { value, grads } = tf.variableGrads(
        () => {
          if (pairs) {
            const r = inBatchLossAndAccuracy(inBatchLogits(model, f, a, pairs), pairs);
            accuracy = tf.keep(r.accuracy);
            return r.loss;
          }
          const out = model.forward({ frames: f, audio: a }, { training: true });
          const r = model.lossAndAccuracy(y, out.logits);
          accuracy = tf.keep(r.accuracy);
          return r.loss;
        },
        named.map((v) => v.variable),
      );
      lossSum += (value.dataSync()[0] as number) * mb;
      const acc = accuracy as unknown as tf.Scalar;
      correct += (acc.dataSync()[0] as number) * mb;
      acc.dispose(); // kept out of variableGrads' own tidy, so freed here
      const next: Record<string, tf.Tensor> = {};
      for (const [tfName, g] of Object.entries(grads)) {
        const name = byTfName.get(tfName);
        if (!name) continue;
        next[name] = sum[name] ? tf.add(sum[name] as tf.Tensor, g) : g;
      }
      sum = next;
    }
    if (microBatches > 1) for (const k of Object.keys(sum)) sum[k] = tf.div(sum[k] as tf.Tensor, microBatches);
    optimizer.apply(vars, sum, lr, decay);
    return { loss: lossSum / B, accuracy: correct / B };
  });
}

function readMetrics(file: string): MetricsRow[] {
  if (!existsSync(file)) return [];
  const rows: MetricsRow[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as MetricsRow);
    } catch {
      // a line cut by a crash: dropped, it will be recomputed
    }
  }
  return rows;
}

/**
 * Trains an L³-Net on Audio-Visual Correspondence. Resumable: with `resume`, continues from the
 * latest checkpoint in `out` and ends with the same weights and metrics as an uninterrupted run of
 * the same seed and backend (optimizer state, sampler state and step are in the checkpoint;
 * augmentation draws depend only on seed, epoch and position).
 */
export async function trainAvc(opts: TrainAvcOptions): Promise<TrainAvcResult> {
  const cfg: TrainAvcConfig = { ...DEFAULT_TRAIN_CONFIG, ...opts.config };
  validateTrainConfig(cfg);
  const { model } = opts;
  const usable = opts.train.clips.filter((c) => c.hasAudio !== false).length;
  if (usable < 2) throw new ConfigError(`training needs at least 2 clips with audio, found ${usable}`, { subject: "train data" });
  const transforms = opts.transforms ?? {
    train: avcTransforms(model.config, { augment: true }),
    eval: avcTransforms(model.config, { augment: false }),
  };
  const unit = lcm(2, cfg.batchSize);
  const pairsPerEpoch = Math.max(unit, Math.ceil((cfg.pairsPerEpoch || defaultPairsPerEpoch(opts.train)) / unit) * unit);

  const out = path.resolve(opts.out);
  const ckptDir = path.join(out, "checkpoints");
  await fsp.mkdir(ckptDir, { recursive: true });
  const metricsFile = path.join(out, "metrics.jsonl");

  const optimizer = new Adam({ weightDecay: 2 * cfg.weightDecay });
  const positivesOnly = cfg.pairing === "in-batch";
  let sampler = new AvcPairSampler(opts.train.clips, { seed: cfg.seed, pairsPerEpoch, positivesOnly });
  let step = 0;
  let best: TrainAvcResult["best"] = null;
  let evalsSinceBest = 0;
  let elapsedBefore = 0;
  let resumedFrom: number | null = null;
  let last: MetricsRow | null = null;
  let resumedWindow: CheckpointState["window"] | null = null;

  if (opts.resume) {
    const latest = await readLatestCheckpoint(ckptDir);
    if (latest) {
      const st = await restoreCheckpoint(latest, model, optimizer);
      const pairing = st.config.pairing ?? "sampled";
      if (
        st.pairsPerEpoch !== pairsPerEpoch ||
        st.config.batchSize !== cfg.batchSize ||
        st.config.seed !== cfg.seed ||
        pairing !== cfg.pairing
      ) {
        throw new ConfigError(
          `cannot resume ${latest}: it was trained with batch ${st.config.batchSize}, seed ${st.config.seed}, ${st.pairsPerEpoch} pairs/epoch, ${pairing} pairs; now ${cfg.batchSize}, ${cfg.seed}, ${pairsPerEpoch}, ${cfg.pairing}`,
          { subject: "resume" },
        );
      }
      sampler = AvcPairSampler.fromState(opts.train.clips, st.sampler);
      step = st.step;
      best = st.best;
      evalsSinceBest = st.evalsSinceBest;
      elapsedBefore = st.elapsedSec;
      resumedFrom = st.step;
      resumedWindow = st.window ?? null;
      // Rows after the checkpoint came from the interrupted run; they are recomputed.
      const kept = readMetrics(metricsFile).filter((r) => r.step <= st.step);
      await writeFileAtomic(metricsFile, kept.map((r) => `${JSON.stringify(r)}\n`).join(""));
      last = kept[kept.length - 1] ?? null;
    }
  }
  if (resumedFrom === null) await writeFileAtomic(metricsFile, "");

  // The validation set: fixed pairs, decoded and transformed once, kept in memory.
  const valBatches: AvcBatch[] = [];
  if (opts.val && cfg.valPairs > 0) {
    const valUsable = opts.val.clips.filter((c) => c.hasAudio !== false).length;
    if (valUsable < 2) throw new ConfigError(`validation needs at least 2 clips with audio, found ${valUsable}`, { subject: "val data" });
    const pairs = new AvcPairSampler(opts.val.clips, { seed: cfg.valSeed }).fixedPairs(cfg.valPairs, cfg.valSeed);
    for await (const b of avcBatches({
      source: opts.val,
      pairs,
      transform: transforms.eval,
      batchSize: Math.min(64, cfg.batchSize * 4),
      concurrency: cfg.concurrency,
      onSkip: opts.onSkip,
    })) {
      valBatches.push(b);
    }
  }

  const skipped: SkippedClip[] = [];
  const onSkip = (c: SkippedClip) => {
    skipped.push(c);
    opts.onSkip?.(c);
  };
  const progress = opts.progress === false ? null : createProgress({ total: cfg.steps, label: "train", unit: "steps" });
  const t0 = Date.now();
  let trainSec = 0;
  let samplesThisRun = 0;
  let windowLoss = resumedWindow?.loss ?? 0;
  let windowAcc = resumedWindow?.accuracy ?? 0;
  let windowN = resumedWindow?.n ?? 0;
  let windowSamples = resumedWindow?.samples ?? 0;
  let windowSec = resumedWindow?.seconds ?? 0;
  let stoppedBy: TrainAvcResult["stoppedBy"] = "steps";
  let lastSamplerState = sampler.state();
  let epoch = sampler.epoch;
  const checkpoints: string[] = (await listCheckpoints(ckptDir)).map((c) => c.dir);
  let bestCheckpoint: string | null = best ? path.join(ckptDir, "best") : null;

  const elapsed = () => elapsedBefore + (Date.now() - t0) / 1000;
  /** Everything besides model and optimizer that a checkpoint needs to resume exactly. */
  const checkpointState = (): CheckpointState => ({
    step,
    epoch,
    pairsPerEpoch,
    sampler: lastSamplerState,
    best,
    evalsSinceBest,
    elapsedSec: elapsed(),
    config: cfg,
    window: { loss: windowLoss, accuracy: windowAcc, n: windowN, samples: windowSamples, seconds: windowSec },
  });
  const writeCheckpoint = async () => {
    const dir = await saveCheckpoint(ckptDir, `step-${String(step).padStart(8, "0")}`, model, optimizer, checkpointState());
    if (!checkpoints.includes(dir)) checkpoints.push(dir);
    await pruneCheckpoints(ckptDir, cfg.keepLast);
    await opts.callbacks?.onCheckpoint?.(dir, step);
    return dir;
  };
  const evaluate = async (row: MetricsRow) => {
    const r = evaluateBatches(model, valBatches);
    row.valLoss = r.loss;
    row.valAccuracy = r.accuracy;
    if (!best || r.accuracy > best.valAccuracy) {
      best = { step, valAccuracy: r.accuracy };
      evalsSinceBest = 0;
      bestCheckpoint = await saveCheckpoint(ckptDir, "best", model, optimizer, checkpointState());
    } else {
      evalsSinceBest++;
    }
    await opts.callbacks?.onEval?.({ step, valLoss: r.loss, valAccuracy: r.accuracy, n: r.n }, row);
  };

  outer: while (step < cfg.steps) {
    const data = avcBatches({
      source: opts.train,
      sampler,
      transform: transforms.train,
      batchSize: cfg.batchSize,
      prefetch: cfg.prefetch,
      concurrency: cfg.concurrency,
      dropRemainder: true,
      seed: cfg.seed,
      onSkip,
    });
    let got = 0;
    for await (const batch of data) {
      got++;
      const batchEpoch = batch.pairs[0]?.epoch ?? epoch;
      if (batchEpoch !== epoch) {
        await opts.callbacks?.onEpochEnd?.(epoch, step);
        epoch = batchEpoch;
      }
      const lr = learningRateAt({ lr: cfg.lr, warmupSteps: cfg.warmupSteps, kind: cfg.schedule, totalSteps: cfg.steps }, step);
      const ts = Date.now();
      const r = trainStep(model, optimizer, batch, lr, { microBatches: cfg.microBatches, pairing: cfg.pairing, negatives: cfg.negatives });
      const dt = (Date.now() - ts) / 1000;
      if (!Number.isFinite(r.loss))
        throw new L3kitError(`loss became ${r.loss} at step ${step + 1} (lr ${lr}); try a lower learning rate`, {
          subject: "training",
          reason: "diverged",
        });
      step++;
      trainSec += dt;
      samplesThisRun += batch.size;
      lastSamplerState = batch.samplerState ?? sampler.state();
      windowLoss += r.loss;
      windowAcc += r.accuracy;
      windowN++;
      windowSamples += batch.size;
      windowSec += dt;
      // Prefetched batches resolve as microtasks: without this, signals (and a notebook's output) wait.
      await yieldToEventLoop();
      const isEval = valBatches.length > 0 && ((cfg.evalEvery > 0 && step % cfg.evalEvery === 0) || step === cfg.steps);
      const timeUp = cfg.maxSeconds > 0 && elapsed() >= cfg.maxSeconds;
      const aborted = opts.signal?.aborted ?? false;
      const finalStep = step === cfg.steps || timeUp || aborted;
      // An interrupted run writes no partial row: the window's sums go into the checkpoint instead,
      // so a resumed run logs exactly the rows an uninterrupted one would.
      if (step % cfg.logEvery === 0 || isEval || step === cfg.steps || (timeUp && !aborted)) {
        const row: MetricsRow = {
          step,
          epoch,
          loss: windowLoss / windowN,
          trainAccuracy: windowAcc / windowN,
          lr,
          samplesPerSec: windowSec > 0 ? windowSamples / windowSec : 0,
          elapsedSec: Math.round(elapsed() * 10) / 10,
        };
        if (isEval || (timeUp && !aborted && valBatches.length > 0)) await evaluate(row);
        appendFileSync(metricsFile, `${JSON.stringify(row)}\n`);
        last = row;
        windowLoss = windowAcc = windowN = windowSamples = windowSec = 0;
        await opts.callbacks?.onStep?.(row);
        progress?.update(step, {
          loss: row.loss,
          acc: row.trainAccuracy,
          ...(best ? { "val acc": (best as { valAccuracy: number }).valAccuracy } : {}),
          "samples/s": Math.round(row.samplesPerSec),
        });
      }
      const early = cfg.earlyStoppingPatience > 0 && evalsSinceBest >= cfg.earlyStoppingPatience;
      if ((cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0) || finalStep || early) await writeCheckpoint();
      if (aborted) stoppedBy = "signal";
      else if (timeUp && step < cfg.steps) stoppedBy = "time";
      else if (early) stoppedBy = "early-stopping";
      if (finalStep || early) break outer;
    }
    if (got === 0 && sampler.remainingInEpoch() === 0 && sampler.pairsPerEpoch < cfg.batchSize) {
      throw new ConfigError(`an epoch has ${sampler.pairsPerEpoch} pairs, fewer than one batch of ${cfg.batchSize}`, {
        subject: "train.batchSize",
      });
    }
  }
  progress?.stop();
  const result: TrainAvcResult = {
    out,
    steps: step,
    epochs: epoch + 1,
    stoppedBy,
    final: {
      loss: last?.loss ?? Number.NaN,
      trainAccuracy: last?.trainAccuracy ?? Number.NaN,
      valAccuracy: last?.valAccuracy ?? null,
      valLoss: last?.valLoss ?? null,
    },
    best,
    samplesPerSec: trainSec > 0 ? samplesThisRun / trainSec : 0,
    elapsedSec: Math.round(elapsed() * 10) / 10,
    checkpoints,
    bestCheckpoint,
    skipped,
    resumedFrom,
  };
  await writeFileAtomic(path.join(out, "summary.json"), `${JSON.stringify({ ...result, config: cfg }, null, 2)}\n`);
  return result;
}

/** A one-paragraph text summary of a run. */
export function formatTrainSummary(r: TrainAvcResult): string {
  const val = r.final.valAccuracy === null ? "" : `, val AVC accuracy ${r.final.valAccuracy.toFixed(3)}`;
  const best = r.best ? ` (best ${r.best.valAccuracy.toFixed(3)} at step ${r.best.step})` : "";
  return `trained ${r.steps} steps (${r.epochs} epoch${r.epochs === 1 ? "" : "s"}, stopped by ${r.stoppedBy}) in ${r.elapsedSec} s at ${r.samplesPerSec.toFixed(1)} samples/s: loss ${r.final.loss.toFixed(4)}, train accuracy ${r.final.trainAccuracy.toFixed(3)}${val}${best}${r.skipped.length ? `; ${r.skipped.length} clip(s) skipped` : ""}. Run folder: ${r.out}`;
}
