/** Learning-rate schedule: linear warm-up, then constant, cosine or step decay. */
export interface LrSchedule {
  /** Peak learning rate (paper: 1e-4). */
  lr: number;
  /** Steps of linear warm-up from 0 to `lr`. */
  warmupSteps?: number;
  kind?: "constant" | "cosine" | "step";
  /** Cosine: total steps (decays to `minLr` at `totalSteps`). */
  totalSteps?: number;
  minLr?: number;
  /** Step decay: multiply by `gamma` every `stepSize` steps. */
  stepSize?: number;
  gamma?: number;
}

/** The learning rate at a 0-based step. */
export function learningRateAt(s: LrSchedule, step: number): number {
  const warm = s.warmupSteps ?? 0;
  if (warm > 0 && step < warm) return (s.lr * (step + 1)) / warm;
  const kind = s.kind ?? "constant";
  if (kind === "cosine") {
    const total = Math.max(1, (s.totalSteps ?? step + 1) - warm);
    const p = Math.min(1, (step - warm) / total);
    const min = s.minLr ?? 0;
    return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * p));
  }
  if (kind === "step") {
    const size = Math.max(1, s.stepSize ?? 1000);
    return s.lr * (s.gamma ?? 0.1) ** Math.floor((step - warm) / size);
  }
  return s.lr;
}
