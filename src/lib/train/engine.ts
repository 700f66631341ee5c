/**
 * The training engine seam: what the Trainer asks of whatever computes a step. An engine owns its
 * copy of the parameters, batch-norm statistics and Adam moments, in whatever layout it runs fastest;
 * the Trainer and its callbacks only see plain numbers, and checkpoints only see the model's names
 * and layouts (so a checkpoint written by one engine resumes on another).
 */
import type { AvcBatch } from "../data";
import type { AdamState } from "./optimizer";

/** Which engine trains: `auto` picks one ({@link resolveTrainEngine}), or name it. */
export type TrainEngineName = "auto" | "onnx" | "tfjs";

/** Every valid {@link TrainEngineName}. */
export const TRAIN_ENGINES = ["auto", "onnx", "tfjs"] as const satisfies readonly TrainEngineName[];

/** Where the onnx engine computes: onnxruntime's CPU provider, or its WebGPU provider where an adapter exists. */
export type TrainDevice = "cpu" | "webgpu";

/** Every valid {@link TrainDevice}. */
export const TRAIN_DEVICES = ["cpu", "webgpu"] as const satisfies readonly TrainDevice[];

/** How a step turns a batch into scored pairs (from the training config). */
export interface EngineStepConfig {
  /** Gradient accumulation: the batch is split into this many micro-batches. */
  microBatches: number;
  /** `sampled` (the batch's own 50/50 pairs) or `in-batch` (every pair a positive, plus K negatives per frame). */
  pairing: "sampled" | "in-batch";
  /** In-batch negatives per frame. */
  negatives: number;
  /** L2 weight decay λ on kernels (gradient 2λw, as Keras' l2(λ)). */
  weightDecay: number;
}

/** A step's batch loss and accuracy (balanced with in-batch pairing). */
export interface StepResult {
  loss: number;
  accuracy: number;
}

/** Mean loss and accuracy over validation batches (inference mode). */
export interface EvalTotals {
  loss: number;
  accuracy: number;
  n: number;
}

/**
 * An engine: runs optimizer steps and evaluations. The model passed at creation is the source of
 * the initial parameters and the place {@link TrainingEngine.syncModel} writes them back to.
 */
export interface TrainingEngine {
  /** The engine that runs. */
  readonly name: "onnx" | "tfjs";
  /** Why this engine, and how it runs (e.g. "onnxruntime-node 1.30.0, cpu, 2 threads"). */
  readonly reason: string;
  /** One optimizer step on a batch at learning rate `lr` (Adam with bias correction, L2 decay on kernels). */
  step(batch: AvcBatch, lr: number): Promise<StepResult>;
  /** Loss and accuracy on prepared batches with their own labels, inference mode (moving BN statistics). */
  evaluate(batches: readonly AvcBatch[]): Promise<EvalTotals>;
  /** Writes the engine's parameters and BN statistics into the model (nothing to do when the engine trains the model's own variables). */
  syncModel(): Promise<void>;
  /** The optimizer state, by the model's parameter names and in its layouts. */
  getOptimizerState(): Promise<AdamState>;
  /** Restores the optimizer state, and re-reads the parameters from the model (after a checkpoint was loaded into it). */
  setOptimizerState(state: AdamState): Promise<void>;
  /** Frees the engine's resources (sessions, moment tensors); the model is not touched. */
  dispose(): Promise<void>;
}

/** Options of `createTrainingEngine`. */
export interface EngineOptions {
  /** `auto` (default), `onnx` or `tfjs`. */
  engine?: TrainEngineName;
  /** onnx engine's execution provider (default `cpu`). */
  device?: TrainDevice;
  /** onnxruntime intra-op threads (default `L3KIT_THREADS` or all cores). */
  threads?: number;
}
