/** SignalHandler: ends a run when an AbortSignal fires (SIGINT, SIGTERM, a notebook's stop button). */
import type { StopRequest, TrainerCallback } from "../trainer";

/**
 * Stops the run after the step during which `signal` was aborted, at once: no extra metrics row
 * (the unlogged window goes into the checkpoint the {@link Checkpointer} writes at the end), so
 * `--resume` continues exactly. The run reports `stoppedBy: "signal"`.
 */
export class SignalHandler implements TrainerCallback {
  constructor(readonly signal?: AbortSignal) {}

  shouldStop(): StopRequest | null {
    return this.signal?.aborted ? { reason: "signal", flush: false } : null;
  }
}
