/** TimeGuard: ends a run when its time budget is spent. */
import type { StopRequest, Trainer, TrainerCallback } from "../trainer";

/**
 * Stops the run once {@link Trainer.elapsedSec} (summed over resumed invocations) reaches
 * `maxSeconds` (0: no limit). The run ends like its last step: a last metrics row, a validation
 * pass and a checkpoint.
 */
export class TimeGuard implements TrainerCallback {
  constructor(readonly maxSeconds: number) {}

  shouldStop(trainer: Trainer): StopRequest | null {
    return this.maxSeconds > 0 && trainer.elapsedSec >= this.maxSeconds ? { reason: "time" } : null;
  }
}
