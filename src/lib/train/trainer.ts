/**
 * The Trainer: owns the AVC step loop around a {@link TrainingEngine}. It draws batches (with
 * background prefetch), asks the engine for each optimizer step, counts steps and epochs, validates
 * on fixed seeded pairs, and calls its callbacks' hooks; everything else (metrics rows, checkpoints,
 * early stopping, time budget, progress, signals) is a {@link TrainerCallback}.
 *
 * Hooks, in the order they are called:
 *
 * - `onTrainStart(trainer)`: once, after a resume and after the validation set is decoded.
 * - `onEpochEnd(trainer, epoch)`: when the first batch of the next epoch arrives.
 * - `shouldStop(trainer)`: after every step (and again after a validation pass); the first callback
 *   (in list order) that returns a {@link StopRequest} ends the run after this step.
 * - `onEvaluate(trainer, evaluation)`: after a validation pass.
 * - `onStepEnd(trainer, info)`: once per step, after validation and the stop decision.
 * - `onTrainEnd(trainer, result)`: once, when the run ends.
 *
 * Callbacks marked `runLast` (the {@link Checkpointer}) run after the others, so a checkpoint sees
 * every other callback's state of the same step. Each callback's `stateDict()` goes into the
 * checkpoint's `trainer.json` under its state key and is handed back to `loadStateDict` on resume.
 */
import {
  type AvcBatch,
  AvcPairSampler,
  type AvcSamplerState,
  type AvcTransforms,
  avcBatches,
  type PairSource,
  type SkippedClip,
} from "../data";
import type { L3Net } from "../models";
import { ConfigError, L3kitError, yieldToEventLoop } from "../util";
import {
  type CheckpointState,
  checkpointProblem,
  newestIntactCheckpoint,
  readLatestCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
} from "./checkpoint";
import type { TrainAvcConfig } from "./config";
import type { TrainingEngine } from "./engine";
import { learningRateAt } from "./schedule";
import { avcTransforms } from "./transforms";
import { dataWorkerEnabled, workerAvcBatches } from "./worker-batches";

/** A callback's request to end the run after the current step. */
export interface StopRequest {
  /** Reported as the run's `stoppedBy` (e.g. "time", "signal", "early-stopping"). */
  reason: string;
  /**
   * End like the last step (default true): log a metrics row for the partial window and validate.
   * `false` ends at once: no extra row, the window's sums go into the final checkpoint instead (so a
   * resumed run logs exactly the rows an uninterrupted one would).
   */
  flush?: boolean;
}

/** A validation pass's result. */
export interface Evaluation {
  step: number;
  valLoss: number;
  valAccuracy: number;
  /** Validation pairs scored. */
  n: number;
  /** Whether this pass set a new best validation accuracy ({@link Trainer.best}). */
  improved: boolean;
}

/** What `onStepEnd` learns about a step. */
export interface StepInfo {
  /** Steps done, this one included. */
  step: number;
  epoch: number;
  lr: number;
  /** The batch's loss and accuracy. */
  loss: number;
  accuracy: number;
  /** Pairs in the batch. */
  samples: number;
  /** Seconds the engine spent on the step. */
  seconds: number;
  /** Run time when the step ended, before validation (summed over resumed invocations). */
  elapsedSec: number;
  /** The validation pass of this step, if one ran. */
  evaluation: Evaluation | null;
  /** The run ends after this step (last step, or a stop was requested). */
  final: boolean;
}

/** What {@link Trainer.fit} reports. */
export interface FitResult {
  steps: number;
  epochs: number;
  /** "steps", or the reason of the {@link StopRequest} that ended the run. */
  stoppedBy: string;
  best: { step: number; valAccuracy: number } | null;
  /** Training samples per second over this invocation (excluding validation). */
  samplesPerSec: number;
  /** Seconds of training, summed over resumed invocations. */
  elapsedSec: number;
  skipped: SkippedClip[];
  resumedFrom: number | null;
}

/** Hooks called by the {@link Trainer}; every member is optional. Hooks may be async (except `shouldStop`). */
export interface TrainerCallback {
  /** Key of this callback's state in checkpoints (default: its class name); must be unique among stateful callbacks. */
  readonly stateKey?: string;
  /** Run after the other callbacks in every hook (checkpointing). */
  readonly runLast?: boolean;
  onTrainStart?(trainer: Trainer): void | Promise<void>;
  onEpochEnd?(trainer: Trainer, epoch: number): void | Promise<void>;
  /** Return a request to end the run after this step; null or undefined to go on. */
  shouldStop?(trainer: Trainer): StopRequest | null | undefined;
  onEvaluate?(trainer: Trainer, evaluation: Evaluation): void | Promise<void>;
  onStepEnd?(trainer: Trainer, info: StepInfo): void | Promise<void>;
  onTrainEnd?(trainer: Trainer, result: FitResult): void | Promise<void>;
  /** This callback's state, as plain JSON data, saved in each checkpoint. */
  stateDict?(): unknown;
  /** Restores a state from {@link stateDict} (called on resume, before `onTrainStart`). */
  loadStateDict?(state: unknown): void;
}

/** What a {@link Trainer} trains and with what. */
export interface TrainerOptions {
  model: L3Net;
  /** Computes steps and evaluations; its parameters start from (and sync back to) `model`. */
  engine: TrainingEngine;
  /** A validated config ({@link validateTrainConfig}). */
  config: TrainAvcConfig;
  /** Training pairs' source. */
  train: PairSource;
  /** Validation source; without it (or with `valPairs: 0`) no validation runs. */
  val?: PairSource;
  /** The input pipeline (default: {@link avcTransforms} of the model's config, augmented for training). */
  transforms?: { train: AvcTransforms; eval: AvcTransforms };
  callbacks?: readonly TrainerCallback[];
  /** Called with each clip that failed to decode and was left out. */
  onSkip?: (clip: SkippedClip) => void;
}

/** Throws a ConfigError unless a source has at least 2 clips with audio. */
export function assertUsableSource(source: PairSource, what: "training" | "validation"): void {
  const usable = source.clips.filter((c) => c.hasAudio !== false).length;
  if (usable < 2)
    throw new ConfigError(`${what} needs at least 2 clips with audio, found ${usable}`, {
      subject: what === "training" ? "train data" : "val data",
    });
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

/** A checkpoint's callback states; checkpoints from before callbacks had their own state kept them at the top level. */
function callbackStates(st: CheckpointState): Record<string, unknown> {
  if (st.callbacks) return st.callbacks;
  return {
    ...(st.window ? { metrics: st.window } : {}),
    ...(st.evalsSinceBest !== undefined ? { "early-stopping": { evalsSinceBest: st.evalsSinceBest } } : {}),
  };
}

/**
 * Trains a model on Audio-Visual Correspondence with an engine and callbacks. Resumable exactly:
 * {@link resume} restores weights, optimizer state, step, sampler state, best score and every
 * callback's state; augmentation draws depend only on seed, epoch and position.
 */
export class Trainer {
  readonly model: L3Net;
  readonly engine: TrainingEngine;
  readonly config: TrainAvcConfig;
  /** Pairs per epoch (the config's, or one per usable sample, rounded up to whole batches). */
  readonly pairsPerEpoch: number;
  /** The callbacks in call order (`runLast` ones at the end). */
  readonly callbacks: readonly TrainerCallback[];
  /** Optimizer steps done. */
  step = 0;
  /** The epoch of the latest batch. */
  epoch: number;
  /** The best validation accuracy so far and its step. */
  best: { step: number; valAccuracy: number } | null = null;
  /** The step a resumed run continued from, or null. */
  resumedFrom: number | null = null;
  /** Set when a callback asked to stop ({@link TrainerCallback.shouldStop}). */
  stopRequest: StopRequest | null = null;
  /** Training clips that failed to decode. */
  readonly skipped: SkippedClip[] = [];

  private readonly opts: TrainerOptions;
  private readonly transforms: { train: AvcTransforms; eval: AvcTransforms };
  private sampler: AvcPairSampler;
  private samplerState: AvcSamplerState;
  private valBatches: AvcBatch[] = [];
  private elapsedBefore = 0;
  private t0: number | null = null;
  private trainSec = 0;
  private samplesThisRun = 0;

  constructor(opts: TrainerOptions) {
    const { model, engine, config: cfg } = opts;
    assertUsableSource(opts.train, "training");
    this.opts = opts;
    this.model = model;
    this.engine = engine;
    this.config = cfg;
    this.transforms = opts.transforms ?? {
      train: avcTransforms(model.config, { augment: true }),
      eval: avcTransforms(model.config, { augment: false }),
    };
    const unit = lcm(2, cfg.batchSize);
    this.pairsPerEpoch = Math.max(unit, Math.ceil((cfg.pairsPerEpoch || defaultPairsPerEpoch(opts.train)) / unit) * unit);
    const all = opts.callbacks ?? [];
    this.callbacks = [...all.filter((c) => !c.runLast), ...all.filter((c) => c.runLast)];
    const keys = this.callbacks.filter((c) => c.stateDict).map((c) => this.stateKeyOf(c));
    const dup = keys.find((k, i) => keys.indexOf(k) !== i);
    if (dup)
      throw new ConfigError(`two callbacks keep state under '${dup}'; give each a unique stateKey`, { subject: "trainer callbacks" });
    const positivesOnly = cfg.pairing === "in-batch";
    this.sampler = new AvcPairSampler(opts.train.clips, { seed: cfg.seed, pairsPerEpoch: this.pairsPerEpoch, positivesOnly });
    this.samplerState = this.sampler.state();
    this.epoch = this.sampler.epoch;
  }

  /** Seconds of training so far, summed over resumed invocations. */
  get elapsedSec(): number {
    return this.elapsedBefore + (this.t0 === null ? 0 : (Date.now() - this.t0) / 1000);
  }

  /** Whether validation runs (a validation source and `valPairs` > 0; known once {@link fit} has decoded the pairs). */
  get hasValidation(): boolean {
    return this.valBatches.length > 0;
  }

  private stateKeyOf(cb: TrainerCallback): string {
    return cb.stateKey ?? cb.constructor?.name ?? "callback";
  }

  /** Calls a hook of every callback, in order, awaiting each. */
  private async emit(hook: "onTrainStart" | "onEpochEnd" | "onEvaluate" | "onStepEnd" | "onTrainEnd", ...args: unknown[]): Promise<void> {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as ((t: Trainer, ...a: unknown[]) => void | Promise<void>) | undefined;
      if (fn) await fn.call(cb, this, ...args);
    }
  }

  /**
   * Continues from the latest checkpoint in `dir`, if there is one: weights into the model, the
   * optimizer state into the engine, the trainer's counters and every callback's state. Returns the
   * checkpoint folder, or null (a fresh start). Throws if the checkpoint's data order differs.
   */
  async resume(dir: string): Promise<string | null> {
    const latest = await readLatestCheckpoint(dir);
    if (!latest) return null;
    // A damaged newest checkpoint is refused before anything is loaded, naming the newest intact one.
    const problem = await checkpointProblem(latest);
    if (problem !== null) {
      const intact = await newestIntactCheckpoint(dir, latest);
      throw new L3kitError(
        `cannot resume: the newest checkpoint is damaged (${problem}). ` +
          (intact
            ? `The newest intact checkpoint is ${intact.dir} (step ${intact.step}); resume from it with --resume --resume-from ${intact.dir} (library: trainAvc({ resume: true, resumeFrom: "${intact.dir}" })), which sets the damaged ones aside`
            : "No intact checkpoint is left; start the run again without --resume (or in a new --out folder)"),
        { subject: latest, reason: "bad-checkpoint" },
      );
    }
    const { state: st, optimizer } = await restoreCheckpoint(latest, this.model);
    const cfg = this.config;
    const pairing = st.config.pairing ?? "sampled";
    if (
      st.pairsPerEpoch !== this.pairsPerEpoch ||
      st.config.batchSize !== cfg.batchSize ||
      st.config.seed !== cfg.seed ||
      pairing !== cfg.pairing
    ) {
      throw new ConfigError(
        `cannot resume ${latest}: it was trained with batch ${st.config.batchSize}, seed ${st.config.seed}, ${st.pairsPerEpoch} pairs/epoch, ${pairing} pairs; now ${cfg.batchSize}, ${cfg.seed}, ${this.pairsPerEpoch}, ${cfg.pairing}`,
        { subject: "resume" },
      );
    }
    await this.engine.setOptimizerState(optimizer);
    this.sampler = AvcPairSampler.fromState(this.opts.train.clips, st.sampler);
    this.samplerState = this.sampler.state();
    this.epoch = this.sampler.epoch;
    this.step = st.step;
    this.best = st.best;
    this.elapsedBefore = st.elapsedSec;
    this.resumedFrom = st.step;
    const states = callbackStates(st);
    for (const cb of this.callbacks) {
      const s = states[this.stateKeyOf(cb)];
      if (cb.loadStateDict && s !== undefined) cb.loadStateDict(s);
    }
    return latest;
  }

  /** Everything besides model and optimizer that a checkpoint needs to resume exactly. */
  checkpointState(): CheckpointState {
    const callbacks: Record<string, unknown> = {};
    for (const cb of this.callbacks) if (cb.stateDict) callbacks[this.stateKeyOf(cb)] = cb.stateDict();
    return {
      step: this.step,
      epoch: this.epoch,
      pairsPerEpoch: this.pairsPerEpoch,
      sampler: this.samplerState,
      best: this.best,
      elapsedSec: this.elapsedSec,
      config: this.config,
      callbacks,
    };
  }

  /**
   * Writes an engine-neutral checkpoint `<root>/<name>/`: the engine's parameters synced into the
   * model, the engine's optimizer state, and {@link checkpointState}. Returns its folder.
   */
  async saveCheckpoint(root: string, name: string): Promise<string> {
    await this.engine.syncModel();
    const optimizer = await this.engine.getOptimizerState();
    return saveCheckpoint(root, name, this.model, optimizer, this.checkpointState());
  }

  /** The validation set: fixed seeded pairs, decoded and transformed once, kept in memory. */
  private async prepareValidation(): Promise<void> {
    const { val } = this.opts;
    const cfg = this.config;
    this.valBatches = [];
    if (!val || cfg.valPairs <= 0) return;
    assertUsableSource(val, "validation");
    const pairs = new AvcPairSampler(val.clips, { seed: cfg.valSeed }).fixedPairs(cfg.valPairs, cfg.valSeed);
    for await (const b of avcBatches({
      source: val,
      pairs,
      transform: this.transforms.eval,
      batchSize: Math.min(64, cfg.batchSize * 4),
      concurrency: cfg.concurrency,
      onSkip: this.opts.onSkip,
    })) {
      this.valBatches.push(b);
    }
  }

  /** Trains until the configured steps are done or a callback stops the run. */
  async fit(): Promise<FitResult> {
    const cfg = this.config;
    await this.prepareValidation();
    this.t0 = Date.now();
    await this.emit("onTrainStart");
    const onSkip = (c: SkippedClip) => {
      this.skipped.push(c);
      this.opts.onSkip?.(c);
    };
    const data = this.trainingBatches(onSkip);
    if (this.step < cfg.steps) {
      for await (const batch of data) {
        if (await this.runStep(batch)) break;
      }
    }
    const stop = this.stopRequest;
    const result: FitResult = {
      steps: this.step,
      epochs: this.epoch + 1,
      // A stop that ends like the last step, at the last step, is an ordinary end.
      stoppedBy: stop && !(stop.flush !== false && this.step >= cfg.steps) ? stop.reason : "steps",
      best: this.best,
      samplesPerSec: this.trainSec > 0 ? this.samplesThisRun / this.trainSec : 0,
      elapsedSec: this.elapsedSec,
      skipped: this.skipped,
      resumedFrom: this.resumedFrom,
    };
    // The model holds the trained weights when fit returns, whatever engine computed them.
    await this.engine.syncModel();
    await this.emit("onTrainEnd", result);
    return result;
  }

  /**
   * One endless pipeline from the sampler's (fresh or resumed) state; the sampler itself never
   * moves. Made in a worker thread (the same batches, overlapping the engine's steps) when the
   * source can be reopened there and the transforms are the model's own.
   */
  private trainingBatches(onSkip: (c: SkippedClip) => void): AsyncIterable<AvcBatch> {
    const cfg = this.config;
    const { origin } = this.opts.train;
    if (origin && !this.opts.transforms && dataWorkerEnabled()) {
      const { batchSize, prefetch, concurrency, seed } = cfg;
      const spec = { origin, samplerState: this.sampler.state(), modelConfig: this.model.config, batchSize, prefetch, concurrency, seed };
      return { [Symbol.asyncIterator]: () => workerAvcBatches(spec, onSkip) };
    }
    return avcBatches({
      source: this.opts.train,
      sampler: this.sampler,
      transform: this.transforms.train,
      batchSize: cfg.batchSize,
      prefetch: cfg.prefetch,
      concurrency: cfg.concurrency,
      dropRemainder: true,
      seed: cfg.seed,
      maxBatches: Number.POSITIVE_INFINITY,
      onSkip,
    });
  }

  /** One step and its hooks; true when the run ends after it. */
  private async runStep(batch: AvcBatch): Promise<boolean> {
    const cfg = this.config;
    const batchEpoch = batch.pairs[0]?.epoch ?? this.epoch;
    if (batchEpoch !== this.epoch) {
      await this.emit("onEpochEnd", this.epoch);
      this.epoch = batchEpoch;
    }
    const lr = learningRateAt({ lr: cfg.lr, warmupSteps: cfg.warmupSteps, kind: cfg.schedule, totalSteps: cfg.steps }, this.step);
    const ts = Date.now();
    const r = await this.engine.step(batch, lr);
    const seconds = (Date.now() - ts) / 1000;
    if (!Number.isFinite(r.loss))
      throw new L3kitError(`loss became ${r.loss} at step ${this.step + 1} (lr ${lr}); try a lower learning rate`, {
        subject: "training",
        reason: "diverged",
      });
    this.step++;
    this.trainSec += seconds;
    this.samplesThisRun += batch.size;
    this.samplerState = batch.samplerState as AvcSamplerState;
    // Prefetched batches resolve as microtasks: without this, signals (and a notebook's output) wait.
    await yieldToEventLoop();
    const elapsedSec = this.elapsedSec;
    this.pollStop();
    let evaluation: Evaluation | null = null;
    const flush = this.stopRequest !== null && this.stopRequest.flush !== false;
    if (this.hasValidation && ((cfg.evalEvery > 0 && this.step % cfg.evalEvery === 0) || this.step >= cfg.steps || flush)) {
      evaluation = await this.evaluate();
      this.pollStop();
    }
    const final = this.step >= cfg.steps || this.stopRequest !== null;
    const info: StepInfo = {
      step: this.step,
      epoch: this.epoch,
      lr,
      loss: r.loss,
      accuracy: r.accuracy,
      samples: batch.size,
      seconds,
      elapsedSec,
      evaluation,
      final,
    };
    await this.emit("onStepEnd", info);
    return final;
  }

  /** Asks the callbacks whether to stop (the first request stands). */
  private pollStop(): void {
    if (this.stopRequest) return;
    for (const cb of this.callbacks) {
      const s = cb.shouldStop?.(this);
      if (s) {
        this.stopRequest = { reason: s.reason, flush: s.flush ?? true };
        return;
      }
    }
  }

  /** Validates on the fixed pairs (inference mode), updates {@link best}, calls `onEvaluate`. */
  private async evaluate(): Promise<Evaluation> {
    const r = await this.engine.evaluate(this.valBatches);
    const improved = !this.best || r.accuracy > this.best.valAccuracy;
    if (improved) this.best = { step: this.step, valAccuracy: r.accuracy };
    const evaluation: Evaluation = { step: this.step, valLoss: r.loss, valAccuracy: r.accuracy, n: r.n, improved };
    await this.emit("onEvaluate", evaluation);
    return evaluation;
  }
}
