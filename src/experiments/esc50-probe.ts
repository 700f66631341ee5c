/**
 * `esc50-probe`: the paper's ESC-50 evaluation — audio features of the frozen audio tower (the last
 * conv's raw output, conv4_2, max-pooled to a grid: 6144-d for the paper model), a linear classifier, scores averaged over
 * 1 s windows, 5-fold cross-validation (mean ± std) — beside random weights and MFCC statistics.
 */
import { createHash } from "node:crypto";
import type { ManifestRow } from "../lib/data";
import { mfccStatsExtractor, modelFeatureExtractor, runProbeProtocol } from "../lib/eval";
import type { TableRow } from "../lib/results";
import { EXPERIMENT_TRAIN, type TrainSection } from "./avc-train";
import {
  CHECKPOINT_HELP,
  CI_QUICK_TRAINING,
  DEFAULT_DATA,
  type DataSection,
  type ModelSection,
  PROBE_FEATURES,
  PROBE_LAYER_HELP,
  PROBE_LAYERS,
  prepareDataset,
  SECTION_CHOICES,
  TRAIN_HELP,
  withEvalModel,
  writeEvalResults,
} from "./common";
import type { Experiment } from "./types";

export interface Esc50ProbeConfig {
  [key: string]: unknown;
  profile: string;
  seed: number;
  seeds: number;
  checkpoint: string;
  model: ModelSection;
  data: DataSection;
  train: TrainSection;
  probe: {
    feature: (typeof PROBE_FEATURES)[number];
    layer: (typeof PROBE_LAYERS)[number];
    folds: number;
    epochs: number;
    labelsPerClass: number;
    [key: string]: string | number;
  };
}

/** Rows without a `fold` (e.g. the synthetic benchmark) get one from a hash of their id. */
export function withFolds(rows: readonly ManifestRow[], folds: number): ManifestRow[] {
  return rows.map((r) =>
    r.fold !== undefined ? r : { ...r, fold: 1 + (createHash("sha256").update(r.id).digest().readUInt32BE(0) % folds) },
  );
}

export const esc50Probe: Experiment<Esc50ProbeConfig & { [key: string]: never }> = {
  name: "esc50-probe",
  summary: "ESC-50 protocol: audio-tower features, linear probe, 5-fold cross-validation (default: synthetic)",
  description:
    "The paper's environmental-sound evaluation: the frozen audio tower's last conv (conv4_2, before batch norm and ReLU, as L³ and OpenL3; probe.layer=relu for after them) max-pooled to a grid (paper: 4×3×512 = 6144-d) for every 1 s window, a linear classifier per fold (L2 chosen on the next fold), window scores averaged per clip, accuracy mean ± std over the 5 official folds; beside the same network with random weights and MFCC statistics. Point it at ESC-50 with --set data.manifest=<manifest from `l3kit data esc50`>; the synthetic benchmark (default) gets folds from a hash of the clip id.",
  defaults: {
    profile: "default",
    seed: 0,
    seeds: 1,
    checkpoint: "",
    model: { preset: "tiny", fusion: "concat" },
    data: { ...DEFAULT_DATA },
    train: { ...EXPERIMENT_TRAIN, steps: 1200 },
    probe: { feature: "grid", layer: "conv", folds: 5, epochs: 100, labelsPerClass: 0 },
  } as never,
  profiles: {
    ci: { ...CI_QUICK_TRAINING, "data.synthClips": 30, "probe.epochs": 20 },
  },
  choices: { ...SECTION_CHOICES, "probe.feature": PROBE_FEATURES, "probe.layer": PROBE_LAYERS },
  help: {
    ...TRAIN_HELP,
    checkpoint: CHECKPOINT_HELP,
    "data.manifest": "an ESC-50 manifest (rows with fold 1–5) from `l3kit data esc50`; empty: the synthetic benchmark",
    "probe.labelsPerClass": "train each probe (and choose its L2) on at most this many labelled clips per class (0: all)",
    "probe.feature": "grid: the last map max-pooled (paper: 6144-d); embedding: global max pool (512-d)",
    "probe.layer": PROBE_LAYER_HELP,
  },
  async run(ctx) {
    const config = ctx.config as unknown as Esc50ProbeConfig;
    const { log } = ctx;
    const seed = ctx.seeds[0] as number;
    const data = await prepareDataset(config.data, log);
    return withEvalModel(ctx, config, async ({ model, source, training, randomWeights }) => {
      const random = randomWeights();
      const { feature, layer } = config.probe;
      const rows = withFolds(data.manifest.rows, config.probe.folds);
      log(`probe: audio features of ${rows.length} clips, ${config.probe.folds}-fold cross-validation`);
      const r = await runProbeProtocol({
        rows,
        extract: modelFeatureExtractor(model, { tower: "audio", feature, layer }),
        baselines: {
          "random-weights": modelFeatureExtractor(random, { tower: "audio", feature, layer }),
          "mfcc-stats": mfccStatsExtractor(),
        },
        split: { folds: config.probe.folds },
        seed,
        epochs: config.probe.epochs,
        ...(config.probe.labelsPerClass > 0 ? { labelsPerClass: config.probe.labelsPerClass } : {}),
      });
      const table: TableRow[] = r.table.map((t) => ({
        features: t.features,
        baseline: t.baseline,
        dim: t.dim,
        accuracy: t.accuracy,
        std: t.std,
        folds: t.folds,
        skipped: t.skipped,
      }));
      log(`probe: ${r.table.map((t) => `${t.features} ${t.accuracy.toFixed(3)} ± ${t.std.toFixed(3)}`).join(", ")}`);
      return writeEvalResults(ctx, {
        experiment: "esc50-probe",
        config,
        model: { source, training },
        data,
        table,
        title: "ESC-50 protocol (audio features, 5-fold CV)",
        notes: [
          "Clip accuracy, mean ± sample std over folds; paper: L³ 79.3% on ESC-50 (SoundNet 74.2%, human 81.3%).",
          ...(config.probe.labelsPerClass > 0
            ? [`Label-scarce: each probe trained on at most ${config.probe.labelsPerClass} labelled clips per class.`]
            : []),
        ],
      });
    });
  },
};
