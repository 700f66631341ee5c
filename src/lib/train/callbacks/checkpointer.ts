/** Checkpointer: periodic checkpoints with pruning, a checkpoint at the end, and the `best` one. */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { listCheckpoints, pruneCheckpoints } from "../checkpoint";
import type { Evaluation, StepInfo, Trainer, TrainerCallback } from "../trainer";

/** Options of {@link Checkpointer}. */
export interface CheckpointerOptions {
  /** The checkpoints folder. */
  dir: string;
  /** Write a checkpoint every N steps; 0: only at the end. */
  every: number;
  /** Periodic checkpoints kept (the best is kept apart). */
  keepLast: number;
  /** Called with each periodic checkpoint written. */
  onCheckpoint?: (dir: string, step: number) => void | Promise<void>;
}

/** The folder name of a periodic checkpoint. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, "0")}`;
}

/**
 * Writes `step-NNNNNNNN` checkpoints every `every` steps and at the step the run ends (whatever
 * ends it), keeps the newest `keepLast`, and rewrites `best` whenever validation accuracy improves.
 * Runs after the other callbacks, so each checkpoint holds their state of the same step.
 */
export class Checkpointer implements TrainerCallback {
  readonly runLast = true;
  /** The `best` checkpoint folder, once there is one. */
  bestDir: string | null = null;

  constructor(private readonly opts: CheckpointerOptions) {}

  async onTrainStart(trainer: Trainer): Promise<void> {
    await fsp.mkdir(this.opts.dir, { recursive: true });
    if (trainer.best) this.bestDir = path.join(this.opts.dir, "best");
  }

  async onEvaluate(trainer: Trainer, evaluation: Evaluation): Promise<void> {
    if (evaluation.improved) this.bestDir = await trainer.saveCheckpoint(this.opts.dir, "best");
  }

  async onStepEnd(trainer: Trainer, info: StepInfo): Promise<void> {
    if (!((this.opts.every > 0 && info.step % this.opts.every === 0) || info.final)) return;
    const dir = await trainer.saveCheckpoint(this.opts.dir, checkpointName(info.step));
    await pruneCheckpoints(this.opts.dir, this.opts.keepLast);
    await this.opts.onCheckpoint?.(dir, info.step);
  }

  /** The periodic checkpoints on disk now (after pruning), oldest first. */
  async existing(): Promise<string[]> {
    return (await listCheckpoints(this.opts.dir)).map((c) => c.dir);
  }
}
