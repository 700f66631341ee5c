/**
 * `quickstart`: the README's main job. Builds the synthetic benchmark (cached), trains a `tiny`
 * L³-Net on AVC, then reports AVC accuracy, linear probes (with baselines) and localization (with
 * baselines) in one table, and writes plots (learning curves, localization overlays).
 */
import * as path from "node:path";
import { buildL3Net, countL3Params } from "../lib/models";
import { collectProvenance, writeResults } from "../lib/results";
import { formatTrainSummary, trainAvc } from "../lib/train";
import { learningCurves, localizationOverlay, readMetricsJsonl, saveHtml } from "../lib/viz";
import { EXPERIMENT_TRAIN, type TrainSection } from "./avc-train";
import {
  DEFAULT_DATA,
  type DataSection,
  type ModelSection,
  modelConfigOf,
  prepareCache,
  prepareDataset,
  SECTION_CHOICES,
  splitOf,
  summarizeTraining,
  TRAIN_HELP,
  trainingRecord,
} from "./common";
import { checkEvalSettings, type EvalSettings, evalRow, evaluateSuite, localizationExamples } from "./evaluate";
import type { Experiment } from "./types";

export interface QuickstartConfig {
  [key: string]: string | number | DataSection | ModelSection | TrainSection | EvalSettingsSection;
  profile: string;
  seed: number;
  seeds: number;
  model: ModelSection;
  data: DataSection;
  train: TrainSection;
  eval: EvalSettingsSection;
}

type EvalSettingsSection = { [K in keyof EvalSettings]: EvalSettings[K] extends boolean ? boolean : EvalSettings[K] } & {
  [key: string]: number | boolean;
};

export const quickstart: Experiment<QuickstartConfig> = {
  name: "quickstart",
  summary: "synthetic benchmark → train tiny L³-Net → AVC accuracy, probes, localization, table and plots (~10 min)",
  description:
    "The end-to-end tour: generates the synthetic audio-visual benchmark (once; it is cached), pre-decodes samples, trains a tiny L³-Net on audio-visual correspondence for a fixed number of steps, then evaluates it on the test split: AVC accuracy and ROC AUC, linear probes of the frozen vision and audio towers with every training label and with a few per class (beside the same network with random weights and hand-made features), and sound-source localization (beside the vision-only map and a centre prior). Writes table.{csv,md,json}, provenance.json, metrics.jsonl and plots.html.",
  defaults: {
    profile: "default",
    seed: 0,
    seeds: 1,
    // AVOL: its similarity map is the localization (the concat head's Grad-CAM only ties the
    // vision-only map). 1,500 clips of the fast-to-render tiny profile (fewer overfit: 600 default
    // clips peaked at 0.73), 8 samples each, and 1,500 steps fit ≈10 minutes on 2 cores with the onnx
    // engine, data generation included.
    model: { preset: "tiny", fusion: "avol" },
    data: { ...DEFAULT_DATA, synthClips: 1500, synthProfile: "tiny", perClip: 8 },
    train: { ...EXPERIMENT_TRAIN, steps: 1500, evalEvery: 250, valPairs: 512, checkpointEvery: 500, maxSeconds: 0 },
    eval: { avcPairs: 512, probes: true, locPerClip: 4, probeEpochs: 30, probeLabelsPerClass: 5, seed: 0 },
  },
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
  choices: SECTION_CHOICES,
  help: {
    ...TRAIN_HELP,
    "train.lr": "peak learning rate of the in-batch recipe (the paper's 1e-4 with sampled pairs learns far slower)",
    "eval.avcPairs": "fixed test pairs for AVC accuracy",
    "eval.locPerClip": "annotated instants per test clip for localization",
    "eval.probeLabelsPerClass":
      "also probe with this many labelled clips per class (0: skip): label efficiency, where random features fall behind",
  },
  async run(ctx) {
    const { config, log } = ctx;
    const seed = ctx.seeds[0] as number;
    checkEvalSettings(config.eval as EvalSettings);
    const modelConfig = modelConfigOf(config.model);
    const data = await prepareDataset(config.data, log);
    const cache = await prepareCache(config.data, data, modelConfig, log);
    const model = buildL3Net(modelConfig, { seed });
    try {
      const train = await trainAvc({
        model,
        train: splitOf(cache, "train"),
        val: splitOf(cache, "val"),
        out: ctx.out,
        config: { ...config.train, seed },
        resume: ctx.resume,
        signal: ctx.signal,
        onSkip: (c) => log(`skipped clip ${c.id}: ${c.reason} ${c.message}`),
      });
      log(formatTrainSummary(train));
      if (train.stoppedBy === "signal") {
        log("quickstart: interrupted; rerun with --resume to continue");
        return { out: ctx.out, files: [], summary: "quickstart: interrupted (rerun with --resume)" };
      }
      const { engine, cutShort } = summarizeTraining([trainingRecord("", train, config.train, log)]);
      const evalResult = await evaluateSuite(model, { cache, rows: data.manifest.rows, settings: config.eval as EvalSettings, log });
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
      await saveHtml(figs, path.join(ctx.out, "plots.html"), { title: "l3kit quickstart" });
      const provenance = collectProvenance({
        experiment: "quickstart",
        config,
        seeds: [seed],
        backend: { name: ctx.backend.name, threads: ctx.backend.threads, tfBackend: ctx.backend.tfBackend },
        engine,
        cutShort,
        manifest: data.manifestPath,
        startedAt: ctx.startedAt,
      });
      const written = await writeResults({
        dir: ctx.out,
        table: [row],
        provenance,
        title: "l3kit quickstart",
        resultsRoot: ctx.resultsRoot,
        notes: [
          "AVC: fixed test pairs, 50% positives (chance 0.5). Probes: logistic regression on frozen tower features, L2 chosen on val; baselines: random weights, hand-made features.",
          ...(config.eval.probeLabelsPerClass
            ? [
                `*ProbeFewLabels*: the same probes trained (and L2 chosen) on ${config.eval.probeLabelsPerClass} labelled clips per class, tested on the whole test split.`,
              ]
            : []),
          "Localization: pointing game and cIoU@0.5 of the audio-conditioned map; baselines: the vision-only map and a centre prior; distractorPointing: share of maps peaking on a silent distractor.",
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
};

function formatSummary(r: Record<string, string | number | null>): string {
  const f = (v: string | number | null) => (typeof v === "number" ? v.toFixed(3) : "n/a");
  return `AVC accuracy ${f(r.avcAccuracy)} (AUC ${f(r.avcAuc)}); vision probe ${f(r.visionProbe)} vs random ${f(r.visionProbeRandom)}; audio probe ${f(r.audioProbe)} vs random ${f(r.audioProbeRandom)}${
    r.audioProbeFewLabels != null
      ? `; with few labels: vision ${f(r.visionProbeFewLabels)} vs random ${f(r.visionProbeFewLabelsRandom)}, audio ${f(r.audioProbeFewLabels)} vs random ${f(r.audioProbeFewLabelsRandom)}`
      : ""
  }; pointing ${f(r.pointing)} (vision-only ${f(r.pointingVisionOnly)}, centre ${f(r.pointingCenter)})`;
}
