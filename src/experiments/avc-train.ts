/**
 * `avc-train`: trains an L³-Net on Audio-Visual Correspondence and reports its validation AVC
 * accuracy. The default is the paper's optimizer on the synthetic benchmark with the `tiny` preset.
 */
import * as path from "node:path";
import { buildL3Net, countL3Params } from "../lib/models";
import { collectProvenance, writeResults } from "../lib/results";
import { DEFAULT_TRAIN_CONFIG, formatTrainSummary, type TrainAvcConfig, trainAvc } from "../lib/train";
import { DEFAULT_DATA, type DataSection, type ModelSection, modelConfigOf, prepareCache, prepareDataset, splitOf } from "./common";
import type { Experiment } from "./types";

export interface AvcTrainConfig {
  [key: string]: string | number | DataSection | ModelSection | TrainSection;
  profile: string;
  seed: number;
  seeds: number;
  model: ModelSection;
  data: DataSection;
  train: TrainSection;
}

/** The training section: {@link TrainAvcConfig} as plain config values. */
export type TrainSection = { [K in keyof TrainAvcConfig]: TrainAvcConfig[K] } & { [key: string]: string | number };

/** Training defaults for experiments: the paper's optimizer, a CPU-sized batch and a 15-minute budget. */
export const EXPERIMENT_TRAIN: TrainSection = {
  ...DEFAULT_TRAIN_CONFIG,
  steps: 4000,
  batchSize: 16,
  lr: 1e-4,
  evalEvery: 200,
  valPairs: 512,
  checkpointEvery: 500,
  maxSeconds: 900,
};

export const avcTrain: Experiment<AvcTrainConfig> = {
  name: "avc-train",
  summary: "train an L³-Net on audio-visual correspondence (default: tiny on the synthetic benchmark)",
  description:
    "Trains an L³-Net (preset and fusion head from `model`) with Adam on the AVC task: a frame and 1 s of audio, from the same moment of one video (positive) or from two videos (negative). Batches come from a pre-decoded sample cache; validation AVC accuracy on fixed seeded pairs is logged to metrics.jsonl with the training loss and accuracy. Checkpoints are written atomically; --resume continues an interrupted run exactly.",
  defaults: {
    profile: "default",
    seed: 0,
    seeds: 1,
    model: { preset: "tiny", fusion: "concat" },
    data: { ...DEFAULT_DATA },
    train: { ...EXPERIMENT_TRAIN },
  },
  profiles: {
    ci: {
      "data.synthProfile": "tiny",
      "data.synthClips": 24,
      "data.perClip": 4,
      "train.steps": 20,
      "train.evalEvery": 10,
      "train.valPairs": 32,
      "train.checkpointEvery": 10,
      "train.maxSeconds": 0,
    },
    small: { "data.synthClips": 120, "train.steps": 600, "train.maxSeconds": 240, "train.lr": 1e-3 },
  },
  help: {
    "model.preset": "paper | lite | tiny",
    "model.fusion": "concat | euclidean | cosine | avol",
    "data.manifest": "a manifest of real data (empty: the synthetic benchmark)",
    "train.maxSeconds": "training time budget (0: none); a checkpoint is written when it runs out",
    "train.microBatches": "gradient accumulation (e.g. paper on wasm: batch 16 as 8 micro-batches of 2)",
  },
  async run(ctx) {
    const { config, log } = ctx;
    const modelConfig = modelConfigOf(config.model);
    const data = await prepareDataset(config.data, log);
    const cache = await prepareCache(config.data, data, modelConfig, log);
    const rows: Array<Record<string, string | number | null>> = [];
    for (const seed of ctx.seeds) {
      const out = ctx.seeds.length > 1 ? path.join(ctx.out, `seed-${seed}`) : ctx.out;
      const model = buildL3Net(modelConfig, { seed });
      try {
        const r = await trainAvc({
          model,
          train: splitOf(cache, "train"),
          val: splitOf(cache, "val"),
          out,
          config: { ...config.train, seed },
          resume: ctx.resume,
          signal: ctx.signal,
          onSkip: (c) => log(`skipped clip ${c.id}: ${c.reason} ${c.message}`),
        });
        log(formatTrainSummary(r));
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
    const provenance = collectProvenance({
      experiment: "avc-train",
      config,
      seeds: ctx.seeds,
      backend: { name: ctx.backend.name, threads: ctx.backend.threads, tfBackend: ctx.backend.tfBackend },
      manifest: data.manifestPath,
      startedAt: ctx.startedAt,
    });
    const written = await writeResults({ dir: ctx.out, table: rows, provenance, title: "AVC training", resultsRoot: ctx.resultsRoot });
    return { out: ctx.out, files: written.files, summary: `avc-train: results in ${path.relative(process.cwd(), ctx.out)}/table.md` };
  },
};
