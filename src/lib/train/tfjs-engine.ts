/**
 * The tfjs training engine: the model's own tfjs variables, trained in place by {@link trainStep}
 * and the serialisable {@link Adam}. Runs on whichever tfjs backend is active (tensorflow-gpu,
 * tensorflow, wasm with l3kit's training kernels, or cpu).
 */
import * as tf from "@tensorflow/tfjs";
import type { L3Net } from "../models";
import type { EngineStepConfig, TrainingEngine } from "./engine";
import { Adam, type AdamState } from "./optimizer";
import { evaluateBatches, trainStep } from "./step";

/** A {@link TrainingEngine} over the model's tfjs variables. */
export class TfjsTrainingEngine implements TrainingEngine {
  readonly name = "tfjs" as const;
  readonly reason: string;
  /** The optimizer (exposed for tests and notebooks). */
  readonly optimizer: Adam;

  constructor(
    private readonly model: L3Net,
    private readonly cfg: EngineStepConfig,
    reason?: string,
  ) {
    this.optimizer = new Adam({ weightDecay: 2 * cfg.weightDecay });
    this.reason = reason ?? `tfjs backend "${tf.getBackend()}"`;
  }

  async step(batch: Parameters<TrainingEngine["step"]>[0], lr: number) {
    return trainStep(this.model, this.optimizer, batch, lr, {
      microBatches: this.cfg.microBatches,
      pairing: this.cfg.pairing,
      negatives: this.cfg.negatives,
    });
  }

  async evaluate(batches: Parameters<TrainingEngine["evaluate"]>[0]) {
    return evaluateBatches(this.model, batches);
  }

  async syncModel(): Promise<void> {
    // the model's variables are the engine's parameters
  }

  getOptimizerState(): Promise<AdamState> {
    return this.optimizer.getState();
  }

  async setOptimizerState(state: AdamState): Promise<void> {
    this.optimizer.setState(state);
  }

  async dispose(): Promise<void> {
    this.optimizer.dispose();
  }
}
