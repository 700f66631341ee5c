/**
 * `esc50-probe`: the paper's ESC-50 evaluation — audio features of the frozen audio tower (the last
 * conv's raw output, conv4_2, max-pooled to a grid: 6144-d for the paper model), a linear classifier, scores averaged over
 * 1 s windows, 5-fold cross-validation (mean ± std) — beside random weights and MFCC statistics.
 */
import * as path from "node:path";
import { z } from "zod";
import type { ManifestRow } from "../lib/data";
import { foldForId } from "../lib/data/split";
import { mfccStatsExtractor, modelFeatureExtractor, runProbeProtocol } from "../lib/eval";
import type { TableRow } from "../lib/results";
import { ConfigError, intSchema, L3kitError } from "../lib/util";
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

/** esc50-probe's config. */
export const ESC50_PROBE_CONFIG = z.object({
  ...evalModelKeys({
    dataHelp: {
      manifest:
        "an ESC-50 manifest (rows with fold 1–5) from `l3kit data esc50`; empty: the synthetic benchmark's test split (its train and val splits pretrain the encoder)",
    },
  }),
  probe: z.object({
    ...probeFeatureKeys("grid", "grid: the last map max-pooled (paper: 6144-d); embedding: global max pool (512-d)"),
    folds: intSchema(3).default(5).describe("cross-validation folds (ESC-50: its 5 official folds)"),
    ...PROBE_TRAINING_KEYS,
  }),
});

export type Esc50ProbeConfig = z.output<typeof ESC50_PROBE_CONFIG>;

/** The clips that pretrained the encoder and the clips probed, as provenance records them. */
export interface ProbeClipRecord {
  pretraining: {
    /** Where the pretraining clips came from. */
    source: string;
    /** The splits of that dataset the training saw: train (fitted) and val (validation); null when unknown (a loaded checkpoint). */
    splits: string[] | null;
    count: number | null;
    ids: string[] | null;
  };
  probed: { source: string; splits: string[]; count: number; ids: string[] };
  /**
   * True when no probed clip was seen in pretraining (checked by id and by file), null when the
   * pretraining clips are unknown (a loaded checkpoint: make sure it was not trained on these clips).
   */
  disjoint: boolean | null;
}

/**
 * The clips `esc50-probe` probes, disjoint from the clips that pretrained the encoder, and the record
 * of both. When the encoder was trained here on the very dataset being probed (the synthetic
 * benchmark by default), its train split was fitted and its val split chose the checkpoint, so only
 * the test split is probed (cross-validated in folds). A model trained on the synthetic benchmark and
 * probed on another manifest (ESC-50) sees disjoint clips as they are. A loaded checkpoint's
 * pretraining clips are unknown: every row is probed and `disjoint` is null.
 */
export function esc50ProbeClips(args: {
  rows: readonly ManifestRow[];
  /** The probed manifest's path. */
  manifest: string;
  /** The rows of the dataset the encoder was trained on here (null: the model was loaded). */
  pretraining: { rows: readonly ManifestRow[]; manifest: string } | null;
  /** The loaded checkpoint, when `pretraining` is null. */
  checkpoint?: string;
}): { rows: ManifestRow[]; record: ProbeClipRecord } {
  const splitsOf = (rows: readonly ManifestRow[]) => [...new Set(rows.map((r) => r.split))].sort();
  const idsOf = (rows: readonly ManifestRow[]) => rows.map((r) => r.id);
  if (!args.pretraining) {
    const rows = [...args.rows];
    return {
      rows,
      record: {
        pretraining: {
          source: `checkpoint ${args.checkpoint ?? "?"} (its training clips are not known here)`,
          splits: null,
          count: null,
          ids: null,
        },
        probed: { source: args.manifest, splits: splitsOf(rows), count: rows.length, ids: idsOf(rows) },
        disjoint: null,
      },
    };
  }
  const seenSplits = ["train", "val"];
  const seen = args.pretraining.rows.filter((r) => seenSplits.includes(r.split));
  const same = path.resolve(args.pretraining.manifest) === path.resolve(args.manifest);
  const rows = same ? args.rows.filter((r) => !seenSplits.includes(r.split)) : [...args.rows];
  const seenIds = new Set(seen.map((r) => (same ? r.id : `${r.id}\u0000${path.resolve(r.path)}`)));
  const seenPaths = new Set(seen.map((r) => path.resolve(r.path)));
  const overlap = rows.filter((r) => seenPaths.has(path.resolve(r.path)) || (same && seenIds.has(r.id)));
  if (overlap.length)
    throw new L3kitError(
      `${overlap.length} probe clip(s) were seen in pretraining (e.g. ${overlap[0]?.id}); probe clips must be disjoint from pretraining clips`,
      { subject: "esc50-probe", reason: "probe-pretraining-overlap" },
    );
  if (rows.length === 0)
    throw new ConfigError("no clip is left to probe once the pretraining clips (splits train and val) are set aside", {
      subject: "data",
      reason: "no-probe-clips",
    });
  return {
    rows,
    record: {
      pretraining: { source: args.pretraining.manifest, splits: seenSplits, count: seen.length, ids: idsOf(seen) },
      probed: { source: args.manifest, splits: splitsOf(rows), count: rows.length, ids: idsOf(rows) },
      disjoint: true,
    },
  };
}

/** Rows without a `fold` (e.g. the synthetic benchmark) get one from a hash of their id. */
export function withFolds(rows: readonly ManifestRow[], folds: number): ManifestRow[] {
  return rows.map((r) => (r.fold !== undefined ? r : { ...r, fold: foldForId(r.id, folds) }));
}

export const esc50Probe = defineExperiment({
  name: "esc50-probe",
  summary: "ESC-50 protocol: audio-tower features, linear probe, 5-fold cross-validation (default: synthetic)",
  description:
    "The paper's environmental-sound evaluation: the frozen audio tower's last conv (conv4_2, before batch norm and ReLU, as L³ and OpenL3; probe.layer=relu for after them) max-pooled to a grid (paper: 4×3×512 = 6144-d) for every 1 s window, a linear classifier per fold (L2 chosen on the next fold), window scores averaged per clip, accuracy mean ± std over the 5 official folds; beside the same network with random weights and MFCC statistics. Probe clips are disjoint from the clips that pretrained the encoder: trained here on the synthetic benchmark (the default), its train split was fitted and its val split chose the checkpoint, so only its test split is probed, in folds from a hash of the clip id; provenance.json lists both (probeClips). Point it at ESC-50 with --set data.manifest=<manifest from `l3kit data esc50`>.",
  schema: ESC50_PROBE_CONFIG,
  profiles: {
    // 60 clips of 3 classes: its test split (9 clips, never seen in pretraining) is probed in 3 folds.
    ci: { ...CI_QUICK_TRAINING, "data.synthClips": 60, "data.synthClasses": 3, "probe.folds": 3, "probe.epochs": 20 },
  },
  async run(ctx) {
    const { config, log } = ctx;
    const seed = ctx.seeds[0] as number;
    const data = await prepareDataset(config.data, log);
    return withEvalModel(ctx, config, async ({ model, source, training, randomWeights, pretraining }) => {
      const random = randomWeights();
      const { feature, layer } = config.probe;
      const clips = esc50ProbeClips({
        rows: data.manifest.rows,
        manifest: data.manifestPath,
        pretraining: training && pretraining ? { rows: pretraining.manifest.rows, manifest: pretraining.manifestPath } : null,
        checkpoint: source,
      });
      const rows = withFolds(clips.rows, config.probe.folds);
      log(
        `probe: audio features of ${rows.length} clips (${clips.record.probed.splits.join(", ")}), ${config.probe.folds}-fold cross-validation; ${
          clips.record.disjoint
            ? `disjoint from the ${clips.record.pretraining.count} pretraining clips`
            : "pretraining clips unknown (loaded checkpoint)"
        }`,
      );
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
        title: `ESC-50 protocol (audio features, ${config.probe.folds}-fold CV)`,
        provenanceExtra: { probeClips: clips.record },
        notes: [
          "Clip accuracy, mean ± sample std over folds; paper: L³ 79.3% on ESC-50 (SoundNet 74.2%, human 81.3%).",
          clips.record.disjoint
            ? `Probed clips: ${clips.record.probed.count} (${clips.record.probed.splits.join(", ")} of ${path.basename(path.dirname(clips.record.probed.source))}), none of them among the ${clips.record.pretraining.count} clips that pretrained the encoder (${clips.record.pretraining.splits?.join(" and ")} of ${path.basename(path.dirname(clips.record.pretraining.source))}); both lists are in provenance.json (probeClips).`
            : `The encoder was loaded from ${source}: its pretraining clips are not known here, so make sure they are not the probed ones (${clips.record.probed.count} clips, listed in provenance.json).`,
          ...(config.probe.labelsPerClass > 0
            ? [`Label-scarce: each probe trained on at most ${config.probe.labelsPerClass} labelled clips per class.`]
            : []),
        ],
      });
    });
  },
});
