/**
 * `kinetics-probe`: linear probes of the frozen vision and audio towers (and both together) on a
 * labelled video dataset with train/val/test splits — Kinetics-Sounds in the paper; the synthetic
 * benchmark's labels by default — beside the same network with random weights and hand-made features.
 */
import { z } from "zod";
import {
  colorHistogramExtractor,
  concatFeatureExtractors,
  type FeatureExtractor,
  mfccStatsExtractor,
  modelFeatureExtractor,
  runProbeProtocol,
} from "../lib/eval";
import type { TableRow } from "../lib/results";
import {
  CI_QUICK_TRAINING,
  evalModelKeys,
  PROBE_TRAINING_KEYS,
  prepareDataset,
  probeFeatureKeys,
  withEvalModel,
  writeEvalResults,
} from "./common";
import { defineExperiment } from "./define";

/** kinetics-probe's config. */
export const KINETICS_PROBE_CONFIG = z.object({
  ...evalModelKeys({
    dataHelp: {
      manifest: "a labelled manifest with train/val/test splits (e.g. from `l3kit data kinetics`); empty: the synthetic benchmark",
    },
  }),
  probe: z.object({
    ...probeFeatureKeys("embedding", "embedding: global max pool (paper 512-d); grid: the last map max-pooled (paper audio 6144-d)"),
    ...PROBE_TRAINING_KEYS,
  }),
});

export type KineticsProbeConfig = z.output<typeof KINETICS_PROBE_CONFIG>;

export const kineticsProbe = defineExperiment({
  name: "kinetics-probe",
  summary: "linear probes (vision, audio, both) of frozen towers on a labelled dataset with splits (Kinetics-Sounds; default: synthetic)",
  description:
    "The paper's Kinetics-Sounds evaluation: features of the frozen towers (one frame and one 1 s audio window per second of each clip) feed a multinomial logistic regression trained on the train split, its L2 strength chosen on val; clip predictions average the windows; top-1 accuracy on test. Vision, audio and both (concatenated), each beside the same network with random weights and hand-made features (colour histograms, MFCC statistics). Point it at real data with --set data.manifest=<manifest from `l3kit data kinetics`> and --set checkpoint=<a trained checkpoint>; without a checkpoint a model is first trained on the synthetic benchmark.",
  schema: KINETICS_PROBE_CONFIG,
  profiles: {
    ci: { ...CI_QUICK_TRAINING, "probe.epochs": 20 },
  },
  async run(ctx) {
    const { config, log } = ctx;
    const seed = ctx.seeds[0] as number;
    const data = await prepareDataset(config.data, log);
    return withEvalModel(ctx, config, async ({ model, source, training, randomWeights }) => {
      const random = randomWeights();
      const { feature, layer } = config.probe;
      const ex = (m: typeof model, tower: "vision" | "audio") => modelFeatureExtractor(m, { tower, feature, layer });
      const sets: Array<{ tower: string; extract: FeatureExtractor; baselines: Record<string, FeatureExtractor> }> = [
        {
          tower: "vision",
          extract: ex(model, "vision"),
          baselines: { "random-weights": ex(random, "vision"), "colour-histogram": colorHistogramExtractor() },
        },
        {
          tower: "audio",
          extract: ex(model, "audio"),
          baselines: { "random-weights": ex(random, "audio"), "mfcc-stats": mfccStatsExtractor() },
        },
        {
          tower: "both",
          extract: concatFeatureExtractors(ex(model, "vision"), ex(model, "audio")),
          baselines: {
            "random-weights": concatFeatureExtractors(ex(random, "vision"), ex(random, "audio")),
            handmade: concatFeatureExtractors(colorHistogramExtractor(), mfccStatsExtractor()),
          },
        },
      ];
      const table: TableRow[] = [];
      for (const s of sets) {
        log(`probe: ${s.tower} features of ${data.manifest.rows.length} clips`);
        const r = await runProbeProtocol({
          rows: data.manifest.rows,
          extract: s.extract,
          baselines: s.baselines,
          split: "manifest",
          seed,
          epochs: config.probe.epochs,
          ...(config.probe.labelsPerClass > 0 ? { labelsPerClass: config.probe.labelsPerClass } : {}),
        });
        for (const t of r.table)
          table.push({ tower: s.tower, features: t.features, baseline: t.baseline, dim: t.dim, accuracy: t.accuracy, skipped: t.skipped });
        log(`probe: ${s.tower}: ${r.table.map((t) => `${t.features} ${t.accuracy.toFixed(3)}`).join(", ")}`);
      }
      return writeEvalResults(ctx, {
        experiment: "kinetics-probe",
        config,
        model: { source, training },
        data,
        table,
        title: "Linear probes (Kinetics-Sounds protocol)",
        notes: [
          "Clip-level top-1 accuracy on the test split; L2 chosen on val; features averaged over one window per second.",
          ...(config.probe.labelsPerClass > 0
            ? [`Label-scarce: each probe trained on at most ${config.probe.labelsPerClass} labelled clips per class.`]
            : []),
        ],
      });
    });
  },
});
