/**
 * The training run's config: hyper-parameters and bookkeeping as plain data (stored in
 * checkpoints), its defaults and its validation. Imports nothing from the loop, so the checkpoint
 * code and the trainer can both depend on it.
 */
import { ConfigError } from "../util";
import { TRAIN_DEVICES, TRAIN_ENGINES, type TrainDevice, type TrainEngineName } from "./engine";

/** Every valid {@link AvcPairing}. */
export const AVC_PAIRINGS = ["sampled", "in-batch"] as const;

/** How training pairs are made: the paper's sampled 50/50 pairs, or in-batch negatives ({@link inBatchPairs}). */
export type AvcPairing = (typeof AVC_PAIRINGS)[number];

/** Every valid {@link LrScheduleName}. */
export const LR_SCHEDULES = ["constant", "cosine"] as const;

/** The learning-rate schedule after warm-up: constant, or cosine decay to zero at the last step. */
export type LrScheduleName = (typeof LR_SCHEDULES)[number];

/** Hyper-parameters and bookkeeping of a training run (all plain data; stored in checkpoints). */
export interface TrainAvcConfig {
  /** Optimizer steps in all. */
  steps: number;
  /** Pairs per step. */
  batchSize: number;
  /** Gradient accumulation: each step's batch is split into this many micro-batches. */
  microBatches: number;
  /**
   * `sampled` (the paper): independently drawn pairs, half positives. `in-batch`: every drawn pair is
   * a positive and each frame is also scored against the audio of `negatives` other batch entries,
   * so each tower pass yields more scored pairs (validation always uses sampled 50/50 pairs).
   */
  pairing: AvcPairing;
  /** In-batch negatives per frame (with `pairing: "in-batch"`; at most batch/microBatches − 1). */
  negatives: number;
  /** Peak learning rate (paper: 1e-4). */
  lr: number;
  warmupSteps: number;
  schedule: LrScheduleName;
  /** L2 weight decay λ on kernels, as Keras' l2(λ) (gradient 2λw). Paper: 1e-5. */
  weightDecay: number;
  /** Seed of data order and augmentation (the model's init seed is the model's own). */
  seed: number;
  /** Pairs per epoch (rounded up to a multiple of the batch size); 0: one pair per sample or clip. */
  pairsPerEpoch: number;
  /** Validate every N steps (and at the end); 0: only at the end. */
  evalEvery: number;
  /** Fixed validation pairs (seeded by `valSeed`). */
  valPairs: number;
  valSeed: number;
  /** Write a checkpoint every N steps (and at the end); 0: only at the end. */
  checkpointEvery: number;
  /** Periodic checkpoints kept (the best is kept apart). */
  keepLast: number;
  /** Stop after this many evaluations without improvement; 0: never. */
  earlyStoppingPatience: number;
  /**
   * A time guard: stop (with a checkpoint) after this many seconds of training; 0: no limit. Training
   * length is `steps`; the experiments mark a run this guard stops early as cut short.
   */
  maxSeconds: number;
  /** Write a metrics row every N steps. */
  logEvery: number;
  /** Batches prepared ahead. */
  prefetch: number;
  /** Pairs decoded at once. */
  concurrency: number;
  /** Which engine computes the steps: `auto` picks one ({@link resolveTrainEngine}), or `onnx` / `tfjs`. */
  engine: TrainEngineName;
  /** Where the onnx engine computes: `cpu` or `webgpu`. */
  device: TrainDevice;
}

/** Defaults: the paper's optimizer settings, CPU-sized batch. */
export const DEFAULT_TRAIN_CONFIG: TrainAvcConfig = {
  steps: 1000,
  batchSize: 16,
  microBatches: 1,
  pairing: "sampled",
  negatives: 1,
  lr: 1e-4,
  warmupSteps: 0,
  schedule: "constant",
  weightDecay: 1e-5,
  seed: 0,
  pairsPerEpoch: 0,
  evalEvery: 100,
  valPairs: 256,
  valSeed: 1234,
  checkpointEvery: 200,
  keepLast: 2,
  earlyStoppingPatience: 0,
  maxSeconds: 0,
  logEvery: 10,
  prefetch: 2,
  concurrency: 4,
  engine: "auto",
  device: "cpu",
};

/**
 * The training keys with a fixed set of values, and those values. Declared once: read by
 * {@link validateTrainConfig} and by the experiments' config check (which also suggests the nearest value).
 */
export const TRAIN_CHOICES = {
  pairing: AVC_PAIRINGS,
  schedule: LR_SCHEDULES,
  engine: TRAIN_ENGINES,
  device: TRAIN_DEVICES,
} as const satisfies Partial<Record<keyof TrainAvcConfig, readonly string[]>>;

/** Throws a ConfigError naming `train.<key>` unless its value is one of {@link TRAIN_CHOICES}. */
function checkChoices(c: TrainAvcConfig): void {
  for (const [key, allowed] of Object.entries(TRAIN_CHOICES) as Array<[keyof TrainAvcConfig, readonly string[]]>) {
    const v = c[key];
    if (typeof v !== "string" || !allowed.includes(v))
      throw new ConfigError(`must be one of ${allowed.map((a) => `'${a}'`).join(", ")}, got ${JSON.stringify(v)}`, {
        subject: `train.${key}`,
      });
  }
}

/** Checks a config before anything runs; throws a ConfigError naming the key. */
export function validateTrainConfig(c: TrainAvcConfig): void {
  const posInt = (k: keyof TrainAvcConfig, min = 1) => {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min)
      throw new ConfigError(`must be an integer >= ${min}, got ${JSON.stringify(v)}`, { subject: `train.${k}` });
  };
  posInt("steps");
  posInt("batchSize");
  posInt("microBatches");
  posInt("valPairs", 0);
  posInt("evalEvery", 0);
  posInt("checkpointEvery", 0);
  posInt("keepLast");
  posInt("earlyStoppingPatience", 0);
  posInt("logEvery");
  posInt("prefetch");
  posInt("concurrency");
  posInt("warmupSteps", 0);
  posInt("pairsPerEpoch", 0);
  posInt("negatives");
  checkChoices(c);
  if (c.pairing === "in-batch" && c.batchSize / c.microBatches < 2)
    throw new ConfigError(`in-batch negatives need at least 2 pairs per micro-batch, got ${c.batchSize / c.microBatches}`, {
      subject: "train.batchSize",
    });
  if (c.batchSize % c.microBatches !== 0) {
    throw new ConfigError(`batch size ${c.batchSize} is not divisible into ${c.microBatches} micro-batches`, {
      subject: "train.microBatches",
    });
  }
  if (!(c.lr > 0 && Number.isFinite(c.lr))) throw new ConfigError(`must be a positive number, got ${c.lr}`, { subject: "train.lr" });
  if (!(c.weightDecay >= 0)) throw new ConfigError(`must be >= 0, got ${c.weightDecay}`, { subject: "train.weightDecay" });
  if (!(c.maxSeconds >= 0)) throw new ConfigError(`must be >= 0, got ${c.maxSeconds}`, { subject: "train.maxSeconds" });
}
