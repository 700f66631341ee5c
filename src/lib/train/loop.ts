/**
 * The AVC training preset: {@link trainAvc} wires a {@link Trainer} (the step loop around a
 * {@link TrainingEngine}) with the standard callbacks — metrics.jsonl, atomic checkpoints with exact
 * resume, early stopping, a time budget, graceful stop on a signal, progress — and notebook hooks.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import type { AvcTransforms, PairSource, SkippedClip } from "../data";
import type { L3Net } from "../models";
import { ConfigError, removeStaleTempFiles, writeFileAtomic } from "../util";
import {
  Checkpointer,
  EarlyStopping,
  type EvalResult,
  MetricsLogger,
  type MetricsRow,
  ProgressBar,
  SignalHandler,
  TimeGuard,
} from "./callbacks";
import { rollBackToCheckpoint } from "./checkpoint";
import { DEFAULT_TRAIN_CONFIG, type TrainAvcConfig, validateTrainConfig } from "./config";
import { createTrainingEngine } from "./create-engine";
import type { TrainingEngine } from "./engine";
import { assertUsableSource, type FitResult, Trainer, type TrainerCallback } from "./trainer";

export type { EvalResult, MetricsRow } from "./callbacks";
export { type AvcPairing, DEFAULT_TRAIN_CONFIG, type TrainAvcConfig, validateTrainConfig } from "./config";
export { evaluateBatches, type TrainStepOptions, trainStep } from "./step";

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
  /**
   * With `resume`: continue from this checkpoint folder of `out/checkpoints` instead of the latest
   * (the CLI's `--resume-from DIR`); later periodic checkpoints are set aside ({@link rollBackToCheckpoint}).
   */
  resumeFrom?: string;
  /** Lines about the run (e.g. the step a resume continued from). Default: stderr, silent with `progress: false` or L3KIT_QUIET=1. */
  log?: (line: string) => void;
  callbacks?: TrainCallbacks;
  /** More Trainer callbacks (e.g. a custom stop rule or logger); they run after the standard ones, before the checkpointer. */
  trainerCallbacks?: TrainerCallback[];
  /** Train with this engine instead of creating one from `config.engine` / `config.device` (the caller disposes it). */
  engine?: TrainingEngine;
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
  /** "steps", "early-stopping", "time", "signal", or the reason a custom callback gave ({@link StopRequest}). */
  stoppedBy: "steps" | "early-stopping" | "time" | "signal" | (string & {});
  final: { loss: number; trainAccuracy: number; valAccuracy: number | null; valLoss: number | null };
  best: { step: number; valAccuracy: number } | null;
  /** Training samples per second over this invocation (excluding validation). */
  samplesPerSec: number;
  /** Seconds of training, summed over resumed invocations. */
  elapsedSec: number;
  /** The periodic checkpoints that exist at the end (after pruning), oldest first. */
  checkpoints: string[];
  bestCheckpoint: string | null;
  skipped: SkippedClip[];
  resumedFrom: number | null;
  /** The engine that trained, and why it was chosen. */
  engine: { name: TrainingEngine["name"]; reason: string };
}

/** The clips of one split of a pair source: `source.subset(split)` (kept for existing callers). */
export function splitSource(source: PairSource, split: string): PairSource {
  return source.subset(split);
}

/** The standard callbacks of {@link trainAvc}, in call order (the checkpointer runs last). */
function standardCallbacks(
  cfg: TrainAvcConfig,
  opts: TrainAvcOptions,
  out: string,
  engine: TrainingEngine,
): { callbacks: TrainerCallback[]; metrics: MetricsLogger; checkpointer: Checkpointer } {
  const cb = opts.callbacks;
  const metrics = new MetricsLogger({
    file: path.join(out, "metrics.jsonl"),
    logEvery: cfg.logEvery,
    onRow: cb?.onStep,
    onEval: cb?.onEval,
  });
  const checkpointer = new Checkpointer({
    dir: path.join(out, "checkpoints"),
    every: cfg.checkpointEvery,
    keepLast: cfg.keepLast,
    onCheckpoint: cb?.onCheckpoint,
  });
  const callbacks: TrainerCallback[] = [
    // Stop rules first: the first to ask names the stop (a signal before the time budget before early stopping).
    new SignalHandler(opts.signal),
    new TimeGuard(cfg.maxSeconds),
    new EarlyStopping(cfg.earlyStoppingPatience),
    metrics,
    ...(opts.progress === false ? [] : [new ProgressBar({ metrics, intro: `training on ${engine.name}: ${engine.reason}` })]),
    ...(cb?.onEpochEnd ? [{ onEpochEnd: (t: Trainer, epoch: number) => cb.onEpochEnd?.(epoch, t.step) }] : []),
    ...(opts.trainerCallbacks ?? []),
    checkpointer,
  ];
  return { callbacks, metrics, checkpointer };
}

/** trainAvc's log when the caller gives none: stderr, silent without progress or with L3KIT_QUIET=1. */
function defaultLog(opts: TrainAvcOptions): (line: string) => void {
  return (line) => {
    if (opts.progress !== false && process.env.L3KIT_QUIET !== "1") process.stderr.write(`${line}\n`);
  };
}

/** `resumeFrom`: sets aside the checkpoints of `ckptDir` after the given one (which must be one of them). */
async function rollBackForResume(opts: TrainAvcOptions, ckptDir: string, log: (line: string) => void): Promise<void> {
  if (!opts.resume) throw new ConfigError("is given without resume", { subject: "resumeFrom" });
  const from = path.resolve(opts.resumeFrom as string);
  if (path.dirname(from) !== ckptDir)
    throw new ConfigError(`${from} is not a checkpoint of this run (its checkpoints are in ${ckptDir})`, { subject: "resumeFrom" });
  const step = await rollBackToCheckpoint(from);
  log(`resume: continuing from ${from} (step ${step}); later checkpoints were set aside`);
}

/** trainAvc's result: the trainer's fit, the last metrics row, the checkpoints kept and the engine. */
async function trainResult(
  out: string,
  fit: FitResult,
  metrics: MetricsLogger,
  checkpointer: Checkpointer,
  engine: TrainingEngine,
): Promise<TrainAvcResult> {
  const last = metrics.last;
  return {
    out,
    steps: fit.steps,
    epochs: fit.epochs,
    stoppedBy: fit.stoppedBy,
    final: {
      loss: last?.loss ?? Number.NaN,
      trainAccuracy: last?.trainAccuracy ?? Number.NaN,
      valAccuracy: last?.valAccuracy ?? null,
      valLoss: last?.valLoss ?? null,
    },
    best: fit.best,
    samplesPerSec: fit.samplesPerSec,
    elapsedSec: Math.round(fit.elapsedSec * 10) / 10,
    checkpoints: await checkpointer.existing(),
    bestCheckpoint: checkpointer.bestDir,
    skipped: fit.skipped,
    resumedFrom: fit.resumedFrom,
    engine: { name: engine.name, reason: engine.reason },
  };
}

/**
 * Trains an L³-Net on Audio-Visual Correspondence. Resumable: with `resume`, continues from the
 * latest checkpoint in `out` and ends with the same weights and metrics as an uninterrupted run of
 * the same seed and engine (optimizer state, sampler state, step and every callback's state are in
 * the checkpoint; augmentation draws depend only on seed, epoch and position).
 */
export async function trainAvc(opts: TrainAvcOptions): Promise<TrainAvcResult> {
  const cfg: TrainAvcConfig = { ...DEFAULT_TRAIN_CONFIG, ...opts.config };
  validateTrainConfig(cfg);
  const { model } = opts;
  assertUsableSource(opts.train, "training");
  const out = path.resolve(opts.out);
  const ckptDir = path.join(out, "checkpoints");
  await fsp.mkdir(ckptDir, { recursive: true });
  // Debris of killed runs (`.step-….<pid>….tmp` folders, `.best.…tmp`, `.latest.json.…tmp`) is cleared.
  await removeStaleTempFiles(out);
  await removeStaleTempFiles(ckptDir);
  const log = opts.log ?? defaultLog(opts);
  if (opts.resumeFrom !== undefined) await rollBackForResume(opts, ckptDir, log);
  const { microBatches, pairing, negatives, weightDecay } = cfg;
  const engine =
    opts.engine ??
    (await createTrainingEngine(model, { microBatches, pairing, negatives, weightDecay }, { engine: cfg.engine, device: cfg.device }));
  try {
    const { callbacks, metrics, checkpointer } = standardCallbacks(cfg, opts, out, engine);
    const { train, val, transforms, onSkip } = opts;
    const trainer = new Trainer({ model, engine, config: cfg, train, val, transforms, callbacks, onSkip });
    if (opts.resume) {
      const from = await trainer.resume(ckptDir);
      log(
        from === null
          ? `resume: no checkpoint in ${ckptDir}; starting at step 0`
          : `resume: resumed from step ${trainer.resumedFrom} of ${cfg.steps} (${from})`,
      );
    }
    const result = await trainResult(out, await trainer.fit(), metrics, checkpointer, engine);
    await writeFileAtomic(path.join(out, "summary.json"), `${JSON.stringify({ ...result, config: cfg }, null, 2)}\n`);
    return result;
  } finally {
    if (!opts.engine) await engine.dispose();
  }
}

/** A one-paragraph text summary of a run. */
export function formatTrainSummary(r: TrainAvcResult): string {
  const val = r.final.valAccuracy === null ? "" : `, val AVC accuracy ${r.final.valAccuracy.toFixed(3)}`;
  const best = r.best ? ` (best ${r.best.valAccuracy.toFixed(3)} at step ${r.best.step})` : "";
  return `trained ${r.steps} steps (${r.epochs} epoch${r.epochs === 1 ? "" : "s"}, stopped by ${r.stoppedBy}) in ${r.elapsedSec} s at ${r.samplesPerSec.toFixed(1)} samples/s: loss ${r.final.loss.toFixed(4)}, train accuracy ${r.final.trainAccuracy.toFixed(3)}${val}${best}${r.skipped.length ? `; ${r.skipped.length} clip(s) skipped` : ""}. Run folder: ${r.out}`;
}
