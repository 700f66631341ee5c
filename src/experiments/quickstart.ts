/**
 * `quickstart`: the README's main job. Builds the synthetic benchmark (cached), trains a `tiny`
 * L³-Net on AVC, then reports AVC accuracy, linear probes (with baselines) and localization (with
 * baselines) in one table, and writes plots (learning curves, localization overlays).
 */
import * as path from "node:path";
import { z } from "zod";
import { buildL3Net, countL3Params } from "../lib/models";
import { writeResults } from "../lib/results";
import { readMetricsJsonl } from "../lib/train";
import { withDefaults } from "../lib/util";
import type { TableRow } from "../lib/results";
import { escapeHtml, learningCurves, localizationOverlay, saveHtml, tableHtml } from "../lib/viz";
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
  trainingRecord,
  trainOnCache,
  trainSection,
} from "./common";
import { defineExperiment } from "./define";
import { EVAL_SECTION, evalRow, evaluateSuite, localizationExamples } from "./evaluate";

/** quickstart's config. */
export const QUICKSTART_CONFIG = z.object({
  ...runKeys(1),
  // AVOL: its similarity map is the localization (the concat head's Grad-CAM only ties the
  // vision-only map). 1,500 clips of the fast-to-render realistic profile (tiny's 64×64, 8 fps, 3 s,
  // with sounding objects of 15–40% of the frame, so that cIoU reads; fewer clips overfit: 600
  // default clips peaked at 0.73), 8 samples each, and 1,500 steps: about 10 minutes on 2 cores
  // with the onnx engine, data generation included.
  model: withDefaults(MODEL_SECTION, { fusion: "avol" }),
  data: withDefaults(
    DATA_SECTION,
    { synthClips: 1500, synthProfile: "realistic", perClip: 8 },
    {
      synthProfile:
        "synthetic benchmark profile: realistic (64×64, sounding objects 15–40% of the frame, so cIoU reads), tiny (same size, objects ≈7%), default (128×128, objects ≈7%)",
    },
  ),
  train: trainSection(
    { steps: 1500, evalEvery: 250, valPairs: 512, checkpointEvery: 500, maxSeconds: 0 },
    { lr: "peak learning rate of the in-batch recipe (the paper's 1e-4 with sampled pairs learns far slower)" },
  ),
  // 16 annotated instants per test clip (3,600 items): with 4, the pointing game's margin over the
  // vision-only map moved by up to ±0.05 between models that differ only in rounding or seed; with 16
  // the same models' margins stay within +0.12 to +0.19.
  eval: withDefaults(
    EVAL_SECTION,
    { locPerClip: 16 },
    {
      avcPairs: "fixed test pairs for AVC accuracy",
      locPerClip: "annotated instants per test clip for localization",
      probeLabelsPerClass:
        "also probe with this many labelled clips per class (0: skip): label efficiency, where random features fall behind",
    },
  ),
});

export type QuickstartConfig = z.output<typeof QUICKSTART_CONFIG>;

export const quickstart = defineExperiment({
  name: "quickstart",
  summary: "synthetic benchmark → train tiny L³-Net → AVC accuracy, probes, localization, table and plots (~10 min on 2 cores)",
  description:
    "The end-to-end tour: generates the synthetic audio-visual benchmark (once; it is cached), pre-decodes samples, trains a tiny L³-Net on audio-visual correspondence for a fixed number of steps, then evaluates it on the test split: AVC accuracy and ROC AUC, linear probes of the frozen vision and audio towers with every training label and with a few per class (beside the same network with random weights and hand-made features), and sound-source localization — pointing game and cIoU under the published protocol (eval.locProtocol), on the realistic profile's sounding objects of 15–40% of the frame — beside the vision-only map and a centre prior. Writes table.{csv,md,json} (table.md: the recipe, then metrics × model, random weights, hand-made), provenance.json, metrics.jsonl and plots.html (the table first).",
  schema: QUICKSTART_CONFIG,
  profiles: {
    ci: {
      "data.synthProfile": "tiny",
      "data.synthClips": 30,
      "data.perClip": 4,
      "train.batchSize": 16,
      "train.steps": 12,
      "train.evalEvery": 6,
      "train.valPairs": 32,
      "train.checkpointEvery": 6,
      "eval.avcPairs": 64,
      "eval.locPerClip": 1,
      "eval.probeEpochs": 30,
    },
  },
  async run(ctx) {
    const { config, log } = ctx;
    const seed = ctx.seeds[0] as number;
    const modelConfig = modelConfigOf(config.model);
    const data = await prepareDataset(config.data, log);
    const cache = await prepareCache(config.data, data, modelConfig, log);
    const model = buildL3Net(modelConfig, { seed });
    try {
      const train = await trainOnCache({
        model,
        cache,
        out: ctx.out,
        train: config.train,
        seed,
        resume: ctx.resume,
        signal: ctx.signal,
        log,
      });
      if (train.stoppedBy === "signal") {
        log("quickstart: interrupted; rerun with --resume to continue");
        return { out: ctx.out, files: [], summary: "quickstart: interrupted (rerun with --resume)" };
      }
      const { engine, cutShort } = summarizeTraining([trainingRecord("", train, config.train, log)]);
      const evalResult = await evaluateSuite(model, { cache, rows: data.manifest.rows, settings: config.eval, log });
      const row = {
        preset: modelConfig.name,
        fusion: modelConfig.fusion,
        params: countL3Params(modelConfig).trainable,
        steps: train.steps,
        valAvcAccuracy: train.best?.valAccuracy ?? null,
        ...evalRow(evalResult),
      };
      // Plots: learning curves and a few localization overlays.
      const figs: import("../lib/viz").Displayable[] = [
        learningCurves(await readMetricsJsonl(path.join(ctx.out, "metrics.jsonl")), { title: "AVC training" }),
      ];
      for (const ex of await localizationExamples(model, data.manifest.rows, 4)) {
        figs.push(
          localizationOverlay({
            frame: ex.frame,
            map: ex.map,
            boxes: ex.sounding,
            distractors: ex.distractors,
            title: `${ex.id} at ${ex.t.toFixed(2)} s`,
          }),
        );
      }
      const recipe = recipeLine({
        preset: modelConfig.name,
        fusion: modelConfig.fusion,
        train: config.train,
        engine,
        seeds: [seed],
        threads: ctx.backend.threads,
      });
      const layout = quickstartTable(row, config.eval.probeLabelsPerClass);
      // The table first, under its recipe, then the curves and the overlays.
      await saveHtml(
        [`<p><b>Recipe:</b> ${escapeHtml(recipe)}</p>`, tableHtml(layout, { decimals: 3, caption: "On the test split" }), ...figs],
        path.join(ctx.out, "plots.html"),
        { title: "l3kit quickstart" },
      );
      const provenance = runProvenance(ctx, {
        experiment: "quickstart",
        config,
        seeds: [seed],
        engine,
        cutShort,
        manifest: data.manifestPath,
      });
      const written = await writeResults({
        dir: ctx.out,
        table: [row],
        markdownTable: layout,
        provenance,
        recipe,
        title: "l3kit quickstart",
        resultsRoot: ctx.resultsRoot,
        notes: [
          "AVC: fixed test pairs, 50% positives (chance 0.5). Probes: logistic regression on frozen tower features, L2 chosen on val; baselines: random weights, hand-made features.",
          ...(config.eval.probeLabelsPerClass
            ? [
                `${config.eval.probeLabelsPerClass} labels per class (the *ProbeFewLabels* columns of table.csv): the same probes trained (and L2 chosen) on ${config.eval.probeLabelsPerClass} labelled clips per class, tested on the whole test split.`,
              ]
            : []),
          `Localization (${config.eval.locProtocol} protocol: ${config.eval.locProtocol === "published" ? "boxes as annotated, every item scored, as hche11's code and EZ-VSL" : "boxes moved into the centre crop, items outside it dropped"}): pointing game, cIoU@0.5 and cIoU AUC of the audio-conditioned map; baselines: the vision-only map (the model's map without audio) and a centre prior (hand-made); distractor pointing: share of maps peaking on a silent distractor.`,
          "table.csv and table.json hold the same numbers as one machine-readable row.",
        ],
      });
      const rel = path.relative(process.cwd(), ctx.out) || ".";
      return {
        out: ctx.out,
        files: [...written.files, path.join(ctx.out, "plots.html")],
        summary: `quickstart: ${formatSummary(row)}\nTable: ${rel}/table.md; plots: ${rel}/plots.html`,
        engine,
        cutShort,
      };
    } finally {
      model.dispose();
    }
  },
});

function formatSummary(r: Record<string, string | number | null>): string {
  const f = (v: string | number | null) => (typeof v === "number" ? v.toFixed(3) : "n/a");
  return `AVC accuracy ${f(r.avcAccuracy)} (AUC ${f(r.avcAuc)}); vision probe ${f(r.visionProbe)} vs random ${f(r.visionProbeRandom)}; audio probe ${f(r.audioProbe)} vs random ${f(r.audioProbeRandom)}${
    r.audioProbeFewLabels != null
      ? `; with few labels: vision ${f(r.visionProbeFewLabels)} vs random ${f(r.visionProbeFewLabelsRandom)}, audio ${f(r.audioProbeFewLabels)} vs random ${f(r.audioProbeFewLabelsRandom)}`
      : ""
  }; pointing ${f(r.pointing)} (vision-only ${f(r.pointingVisionOnly)}, centre ${f(r.pointingCenter)})`;
}

/**
 * The quickstart's results laid out for reading: one row per metric, columns model, random weights
 * and hand-made (colour histograms and MFCC statistics for the probes, the centre prior for
 * localization); the vision-only map (the model's map without audio) has rows of its own.
 * `table.csv` keeps the one machine-readable row this is made from.
 */
export function quickstartTable(r: Record<string, string | number | null>, labelsPerClass: number): TableRow[] {
  const num = (k: string) => (typeof r[k] === "number" ? (r[k] as number) : null);
  const line = (metric: string, model: string, random?: string, handmade?: string): TableRow => ({
    metric,
    model: num(model),
    "random weights": random ? num(random) : null,
    "hand-made": handmade ? num(handmade) : null,
  });
  const rows: TableRow[] = [
    line("AVC accuracy (test pairs, chance 0.5)", "avcAccuracy"),
    line("AVC ROC AUC", "avcAuc"),
    line("validation AVC accuracy (best)", "valAvcAccuracy"),
    line("vision probe, all labels (hand-made: colour histogram)", "visionProbe", "visionProbeRandom", "visionProbeHandmade"),
    line("audio probe, all labels (hand-made: MFCC statistics)", "audioProbe", "audioProbeRandom", "audioProbeHandmade"),
  ];
  if (labelsPerClass > 0)
    rows.push(
      line(
        `vision probe, ${labelsPerClass} labels per class`,
        "visionProbeFewLabels",
        "visionProbeFewLabelsRandom",
        "visionProbeFewLabelsHandmade",
      ),
      line(
        `audio probe, ${labelsPerClass} labels per class`,
        "audioProbeFewLabels",
        "audioProbeFewLabelsRandom",
        "audioProbeFewLabelsHandmade",
      ),
    );
  rows.push(
    line("pointing game (hand-made: centre prior)", "pointing", undefined, "pointingCenter"),
    line("pointing game, vision-only map", "pointingVisionOnly"),
    line("cIoU@0.5 (hand-made: centre prior)", "ciou05", undefined, "ciou05Center"),
    line("cIoU@0.5, vision-only map", "ciou05VisionOnly"),
    line("cIoU AUC (hand-made: centre prior)", "ciouAuc", undefined, "ciouAucCenter"),
    line("distractor pointing (lower is better)", "distractorPointing"),
  );
  return rows;
}
