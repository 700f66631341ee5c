/**
 * `avc-train`: trains an L³-Net on Audio-Visual Correspondence and reports its validation AVC
 * accuracy. The default is the paper's optimizer on the synthetic benchmark with the `tiny` preset.
 */
import * as path from "node:path";
import { z } from "zod";
import { buildL3Net, countL3Params } from "../lib/models";
import { writeResults } from "../lib/results";
import { withDefaults } from "../lib/util";
import {
  DATA_SECTION,
  MODEL_SECTION,
  modelConfigOf,
  prepareCache,
  prepareDataset,
  recipeLine,
  runKeys,
  runProvenance,
  summarizeTraining,
  type TrainingRecord,
  trainingRecord,
  trainOnCache,
  trainSection,
} from "./common";
import { defineExperiment } from "./define";

/** avc-train's config. */
export const AVC_TRAIN_CONFIG = z.object({
  ...runKeys(1),
  model: MODEL_SECTION,
  data: withDefaults(DATA_SECTION, {}, { manifest: "a manifest of real data (empty: the synthetic benchmark)" }),
  train: trainSection(
    {},
    {
      microBatches: "gradient accumulation (e.g. paper on wasm: batch 16 as 8 micro-batches of 2)",
      pairing: "in-batch: negatives from the other pairs of the batch; sampled: the paper's 50/50 pairs",
      negatives: "in-batch negatives per frame (at most batch − 1)",
      lr: "peak learning rate (paper: 1e-4; --set profile=paper for the paper's settings)",
    },
  ),
});

export type AvcTrainConfig = z.output<typeof AVC_TRAIN_CONFIG>;

export { EXPERIMENT_TRAIN } from "./common";

/** The paper's optimizer and pairs (Adam 1e-4, L2 1e-5, sampled 50/50 pairs) at a CPU-sized batch, as `--set profile=paper` overrides. */
export const PAPER_TRAIN = {
  "train.pairing": "sampled",
  "train.lr": 1e-4,
  "train.weightDecay": 1e-5,
  "train.schedule": "constant",
  "train.warmupSteps": 0,
  "train.batchSize": 16,
  "train.steps": 4000,
} as const;

export const avcTrain = defineExperiment({
  name: "avc-train",
  summary: "train an L³-Net on audio-visual correspondence (default: tiny on the synthetic benchmark)",
  description:
    "Trains an L³-Net (preset and fusion head from `model`) with Adam on the AVC task: a frame and 1 s of audio, from the same moment of one video (positive) or from two videos (negative). Batches come from a pre-decoded sample cache; validation AVC accuracy on fixed seeded pairs is logged to metrics.jsonl with the training loss and accuracy. Checkpoints are written atomically; --resume continues an interrupted run exactly.",
  schema: AVC_TRAIN_CONFIG,
  profiles: {
    ci: {
      "data.synthProfile": "tiny",
      "data.synthClips": 24,
      "data.perClip": 4,
      "train.batchSize": 16,
      "train.steps": 20,
      "train.evalEvery": 10,
      "train.valPairs": 32,
      "train.checkpointEvery": 10,
    },
    small: { "data.synthClips": 300, "train.steps": 600 },
    paper: { ...PAPER_TRAIN },
  },
  async run(ctx) {
    const { config, log } = ctx;
    const modelConfig = modelConfigOf(config.model);
    const data = await prepareDataset(config.data, log);
    const cache = await prepareCache(config.data, data, modelConfig, log);
    const rows: Array<Record<string, string | number | null>> = [];
    const trainings: TrainingRecord[] = [];
    for (const seed of ctx.seeds) {
      const out = ctx.seeds.length > 1 ? path.join(ctx.out, `seed-${seed}`) : ctx.out;
      const model = buildL3Net(modelConfig, { seed });
      try {
        const r = await trainOnCache({ model, cache, out, train: config.train, seed, resume: ctx.resume, signal: ctx.signal, log });
        trainings.push(trainingRecord(`seed ${seed}`, r, config.train, log));
        rows.push({
          seed,
          preset: modelConfig.name,
          fusion: modelConfig.fusion,
          params: countL3Params(modelConfig).trainable,
          steps: r.steps,
          valAccuracy: r.final.valAccuracy,
          bestValAccuracy: r.best?.valAccuracy ?? null,
          bestStep: r.best?.step ?? null,
          trainLoss: r.final.loss,
        });
        if (r.stoppedBy === "signal") break;
      } finally {
        model.dispose();
      }
    }
    const { engine, cutShort } = summarizeTraining(trainings);
    const provenance = runProvenance(ctx, { experiment: "avc-train", config, engine, cutShort, manifest: data.manifestPath });
    const recipe = recipeLine({
      preset: modelConfig.name,
      fusion: modelConfig.fusion,
      train: config.train,
      engine,
      seeds: ctx.seeds,
      threads: ctx.backend.threads,
    });
    const written = await writeResults({
      dir: ctx.out,
      table: rows,
      provenance,
      recipe,
      title: "AVC training",
      resultsRoot: ctx.resultsRoot,
    });
    const summary = `avc-train: results in ${path.relative(process.cwd(), ctx.out)}/table.md`;
    return { out: ctx.out, files: written.files, summary, engine, cutShort };
  },
});
