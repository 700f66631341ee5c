/** ProgressBar: a progress display of the steps ({@link createProgress}). */
import { createProgress, type Progress } from "../progress";
import type { FitResult, StepInfo, Trainer, TrainerCallback } from "../trainer";
import type { MetricsLogger } from "./metrics-logger";

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Where the rows come from: the bar is updated with each row this logger writes. */
  metrics: MetricsLogger;
  /** A line printed when training starts (e.g. which engine trains, and why). */
  intro?: string;
}

/**
 * Shows the steps done with the latest row's loss, accuracy and samples/s and the best validation
 * accuracy (a bar on a TTY where the `l3kit` command installed one, plain lines otherwise;
 * `L3KIT_QUIET=1` silences it). Put it after its {@link MetricsLogger} in the callback list.
 */
export class ProgressBar implements TrainerCallback {
  private bar: Progress | null = null;

  constructor(private readonly opts: ProgressBarOptions) {}

  onTrainStart(trainer: Trainer): void {
    this.bar = createProgress({ total: trainer.config.steps, label: "train", unit: "steps" });
    if (this.opts.intro) this.bar.log(this.opts.intro);
  }

  onStepEnd(trainer: Trainer, info: StepInfo): void {
    const row = this.opts.metrics.last;
    if (!this.bar || row?.step !== info.step) return;
    this.bar.update(info.step, {
      loss: row.loss,
      acc: row.trainAccuracy,
      ...(trainer.best ? { "val acc": trainer.best.valAccuracy } : {}),
      "samples/s": Math.round(row.samplesPerSec),
    });
  }

  onTrainEnd(_trainer: Trainer, _result: FitResult): void {
    this.bar?.stop();
  }
}
