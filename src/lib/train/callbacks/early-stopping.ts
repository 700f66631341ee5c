/** EarlyStopping: ends a run after a number of validation passes without a new best. */
import type { Evaluation, StopRequest, TrainerCallback } from "../trainer";

/**
 * Counts validation passes since the best validation accuracy and stops the run when the count
 * reaches `patience` (0: never; the count is kept anyway, so a resumed run may turn it on). Its
 * state is the count.
 */
export class EarlyStopping implements TrainerCallback {
  readonly stateKey = "early-stopping";
  /** Validation passes since the best one. */
  evalsSinceBest = 0;

  constructor(readonly patience: number) {}

  onEvaluate(_trainer: unknown, evaluation: Evaluation): void {
    this.evalsSinceBest = evaluation.improved ? 0 : this.evalsSinceBest + 1;
  }

  shouldStop(): StopRequest | null {
    // The last validation row is already written: end at once.
    return this.patience > 0 && this.evalsSinceBest >= this.patience ? { reason: "early-stopping", flush: false } : null;
  }

  stateDict(): { evalsSinceBest: number } {
    return { evalsSinceBest: this.evalsSinceBest };
  }

  loadStateDict(state: unknown): void {
    this.evalsSinceBest = (state as { evalsSinceBest?: number } | undefined)?.evalsSinceBest ?? 0;
  }
}
