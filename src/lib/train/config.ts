/**
 * The training run's config: hyper-parameters and bookkeeping as plain data (stored in
 * checkpoints), its defaults and its validation. Imports nothing from the loop, so the checkpoint
 * code and the trainer can both depend on it.
 */
import { z } from "zod";
import { choiceSchema, configFields, intSchema, numberSchema, parseConfig, schemaDefaults, withDefaults } from "../util";
import { TRAIN_DEVICES, TRAIN_ENGINES } from "./engine";

/** Every valid {@link AvcPairing}. */
export const AVC_PAIRINGS = ["sampled", "in-batch"] as const;

/** How training pairs are made: the paper's sampled 50/50 pairs, or in-batch negatives ({@link inBatchPairs}). */
export type AvcPairing = (typeof AVC_PAIRINGS)[number];

/** Every valid {@link LrScheduleName}. */
export const LR_SCHEDULES = ["constant", "cosine"] as const;

/** The learning-rate schedule after warm-up: constant, or cosine decay to zero at the last step. */
export type LrScheduleName = (typeof LR_SCHEDULES)[number];

/**
 * The fields of a training config, each with its default, check and help text. {@link TRAIN_CONFIG}
 * adds the checks that span fields; {@link trainConfigSchema} derives a schema with other defaults.
 */
export const TRAIN_FIELDS = z.object({
  steps: intSchema(1).default(1000).describe("optimizer steps in all"),
  batchSize: intSchema(1).default(16).describe("pairs per step"),
  microBatches: intSchema(1).default(1).describe("gradient accumulation: each step's batch is split into this many micro-batches"),
  pairing: choiceSchema(AVC_PAIRINGS)
    .default("sampled")
    .describe(
      "sampled (the paper): independently drawn pairs, half positives; in-batch: every drawn pair is a positive and each frame is also scored against the audio of `negatives` other batch entries (validation always uses sampled 50/50 pairs)",
    ),
  negatives: intSchema(1).default(1).describe("in-batch negatives per frame (with pairing in-batch; at most batch/microBatches − 1)"),
  lr: numberSchema("a positive number", (v) => v > 0 && Number.isFinite(v))
    .default(1e-4)
    .describe("peak learning rate (paper: 1e-4)"),
  warmupSteps: intSchema(0).default(0).describe("steps of linear learning-rate warm-up"),
  schedule: choiceSchema(LR_SCHEDULES)
    .default("constant")
    .describe("the learning rate after warm-up: constant, or cosine decay to zero at the last step"),
  weightDecay: numberSchema(">= 0", (v) => v >= 0)
    .default(1e-5)
    .describe("L2 weight decay λ on kernels, as Keras' l2(λ) (gradient 2λw); paper: 1e-5"),
  seed: numberSchema("a number").default(0).describe("seed of data order and augmentation (the model's init seed is the model's own)"),
  pairsPerEpoch: intSchema(0)
    .default(0)
    .describe("pairs per epoch (rounded up to a multiple of the batch size); 0: one pair per sample or clip"),
  evalEvery: intSchema(0).default(100).describe("validate every N steps (and at the end); 0: only at the end"),
  valPairs: intSchema(0).default(256).describe("fixed validation pairs (seeded by valSeed)"),
  valSeed: numberSchema("a number").default(1234).describe("seed of the validation pairs"),
  checkpointEvery: intSchema(0).default(200).describe("write a checkpoint every N steps (and at the end); 0: only at the end"),
  keepLast: intSchema(1).default(2).describe("periodic checkpoints kept (the best is kept apart)"),
  earlyStoppingPatience: intSchema(0).default(0).describe("stop after this many evaluations without improvement; 0: never"),
  maxSeconds: numberSchema(">= 0", (v) => v >= 0)
    .default(0)
    .describe(
      "a time guard: stop (with a checkpoint) after this many seconds of training; 0: no limit. Training length is steps; the experiments mark a run this guard stops early as cut short",
    ),
  logEvery: intSchema(1).default(10).describe("write a metrics row every N steps"),
  prefetch: intSchema(1).default(2).describe("batches prepared ahead"),
  concurrency: intSchema(1).default(4).describe("pairs decoded at once"),
  engine: choiceSchema(TRAIN_ENGINES)
    .default("auto")
    .describe("which engine computes the steps: auto picks one (resolveTrainEngine), or onnx / tfjs"),
  device: choiceSchema(TRAIN_DEVICES).default("cpu").describe("where the onnx engine computes: cpu or webgpu"),
});

/** Hyper-parameters and bookkeeping of a training run (all plain data; stored in checkpoints): {@link TRAIN_FIELDS}'s type. */
export type TrainAvcConfig = z.output<typeof TRAIN_FIELDS>;

/** The checks that span fields: in-batch pairs need 2 pairs per micro-batch, and the batch must split into micro-batches. */
function checkCombination(c: TrainAvcConfig, ctx: z.RefinementCtx): void {
  if (c.pairing === "in-batch" && c.batchSize / c.microBatches < 2)
    ctx.addIssue({
      code: "custom",
      path: ["batchSize"],
      message: `in-batch negatives need at least 2 pairs per micro-batch, got ${c.batchSize / c.microBatches}`,
    });
  else if (c.batchSize % c.microBatches !== 0)
    ctx.addIssue({
      code: "custom",
      path: ["microBatches"],
      message: `batch size ${c.batchSize} is not divisible into ${c.microBatches} micro-batches`,
    });
}

/** A training config schema with other defaults and help texts (e.g. an experiment's), and the checks across fields. */
export function trainConfigSchema(defaults: Partial<TrainAvcConfig> = {}, help: Record<string, string> = {}) {
  return withDefaults(TRAIN_FIELDS, defaults, help).superRefine(checkCombination);
}

/** The training config: every field, its default and check, and the checks across fields. */
export const TRAIN_CONFIG = TRAIN_FIELDS.superRefine(checkCombination);

/** Defaults: the paper's optimizer settings, CPU-sized batch. */
export const DEFAULT_TRAIN_CONFIG: TrainAvcConfig = schemaDefaults(TRAIN_FIELDS);

/** The training keys with a fixed set of values, and those values: read from {@link TRAIN_FIELDS}' enums. */
export const TRAIN_CHOICES: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  configFields(TRAIN_FIELDS).flatMap((f) => (f.choices ? [[f.key, f.choices]] : [])),
);

/** Checks a config before anything runs; throws a ConfigError naming `train.<key>` and the cause. */
export function validateTrainConfig(c: TrainAvcConfig): void {
  parseConfig(TRAIN_CONFIG, c, "train");
}
