/**
 * The evaluation suite experiments share: AVC accuracy/AUC on fixed test pairs, linear probes of the
 * frozen towers (with the random-weights and hand-made baselines beside them) and sound-source
 * localization (with the vision-only map and the centre prior beside it).
 * Probe features come from the pre-decoded sample cache, so no clip is decoded twice.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ManifestRow, SampleCache } from "../lib/data";
import {
  colorHistogramFeatures,
  DEFAULT_LOCALIZATION_PROTOCOL,
  evaluateAvc,
  evaluateLocalization,
  type FeatureExtractor,
  fixedAvcPairSource,
  LOCALIZATION_PROTOCOLS,
  type LocalizationReport,
  manifestLocalizationSource,
  memoizeFeatureExtractor,
  mfccStatsFeatures,
  type ProbeFeatureResult,
  type ProbeProtocolResult,
  randomWeightsModel,
  runProbeProtocol,
  towerFeatureExtractor,
} from "../lib/eval";
import { computeAudioInput, computeFrameInput, type L3Net } from "../lib/models";
import { boolSchema, choiceSchema, intSchema, L3kitError, numberSchema, parseConfig } from "../lib/util";
import { splitOf } from "./common";

/** The name of each tower's hand-made probe baseline in the probe results. */
const HANDMADE_BASELINE = { vision: "colour-histogram", audio: "mfcc-stats" } as const;

/** `--help` text of the localization protocol keys (`eval.locProtocol`, `loc.protocol`). */
export const LOC_PROTOCOL_HELP =
  "published: boxes as annotated on the full frame, laid on the crop's map unadjusted, every item scored (hche11's test.py, as EZ-VSL reports); l3kit: boxes moved into the centre crop, items with no sounding box inside it dropped";

/** Which evaluations to run and how large (an experiment's `eval` section). */
export const EVAL_SECTION = z.object({
  avcPairs: intSchema(0).default(512).describe("fixed AVC pairs from the test split (0: skip)"),
  probes: boolSchema().default(true).describe("run the vision and audio probes"),
  locPerClip: intSchema(0).default(4).describe("annotated instants per test clip for localization (0: skip; needs boxes in the manifest)"),
  locProtocol: choiceSchema(LOCALIZATION_PROTOCOLS).default(DEFAULT_LOCALIZATION_PROTOCOL).describe(LOC_PROTOCOL_HELP),
  probeEpochs: intSchema(1).default(30).describe("epochs of each probe's logistic regression"),
  /*
   * On a benchmark whose classes any spectral feature separates, the full-label probes sit near
   * 100 % for random weights too; few labels show what the features, not the labels, carry.
   */
  probeLabelsPerClass: intSchema(0)
    .default(5)
    .describe("also run every probe label-scarce, on at most this many labelled clips per class (0: skip)"),
  seed: numberSchema("a number").default(0).describe("seed of the evaluation pairs and probes"),
});

/** Which evaluations to run and how large ({@link EVAL_SECTION}). */
export type EvalSettings = z.output<typeof EVAL_SECTION>;

/**
 * Checks evaluation settings given in code (an experiment's config is checked by its schema when it
 * is resolved), so that a bad value fails at once with the key named instead of after training.
 */
export function checkEvalSettings(settings: EvalSettings): void {
  parseConfig(EVAL_SECTION, settings, "eval");
}

/** The suite's typed results. */
export interface EvalSuiteResult {
  avc: { accuracy: number; auc: number; n: number } | null;
  probes: { vision: ProbeProtocolResult; audio: ProbeProtocolResult } | null;
  /** The same probes with `probeLabelsPerClass` labelled clips per class. */
  fewLabelProbes: { vision: ProbeProtocolResult; audio: ProbeProtocolResult; labelsPerClass: number } | null;
  localization: LocalizationReport | null;
}

/** A cache clip's samples, by manifest id. */
function samplesById(cache: SampleCache): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const c of cache.clips)
    m.set(
      c.id,
      c.times.map((_, i) => c.firstSample + i),
    );
  return m;
}

/**
 * Probe feature extractors over cached samples: each clip's K pre-decoded frames / audio windows
 * through one tower (k = K windows per clip; the protocol averages over them).
 */
export function cacheTowerExtractor(
  cache: SampleCache,
  model: L3Net,
  tower: "vision" | "audio",
  feature: "grid" | "embedding" = "embedding",
): FeatureExtractor {
  const byId = samplesById(cache);
  const cfg = model.config;
  return towerFeatureExtractor(model, {
    tower,
    feature,
    inputs: async (row: ManifestRow) => {
      const idx = byId.get(row.id);
      if (!idx?.length)
        throw new L3kitError("not in the sample cache (skipped when it was built?)", { subject: row.id, reason: "not-cached" });
      if (tower === "vision") {
        const s = cfg.vision.frontEnd.size;
        const data = new Float32Array(idx.length * s * s * 3);
        idx.forEach((i, j) => {
          data.set(computeFrameInput(cfg, cache.getFrame(i)), j * s * s * 3);
        });
        return tf.tensor4d(data, [idx.length, s, s, 3]);
      }
      const first = computeAudioInput(cfg, cache.getAudio(idx[0] as number));
      const data = new Float32Array(idx.length * first.length);
      idx.forEach((i, j) => {
        data.set(j === 0 ? first : computeAudioInput(cfg, cache.getAudio(i)), j * first.length);
      });
      const shape = model.graph.nodes.find((n) => n.name === model.graph.outputs.audio)?.shape as number[];
      return tf.tensor4d(data, [idx.length, shape[0] as number, shape[1] as number, 1]);
    },
  });
}

/** Hand-made baseline features over cached samples: colour histograms (vision) or MFCC statistics (audio). */
export function cacheHandmadeExtractor(cache: SampleCache, tower: "vision" | "audio"): FeatureExtractor {
  const byId = samplesById(cache);
  return async (row) => {
    const idx = byId.get(row.id);
    if (!idx?.length) throw new L3kitError("not in the sample cache", { subject: row.id, reason: "not-cached" });
    const feats = idx.map((i) =>
      tower === "vision" ? colorHistogramFeatures(cache.getFrame(i), 8) : mfccStatsFeatures(cache.getAudio(i), cache.sampleRate),
    );
    const dim = (feats[0] as Float32Array).length;
    const out = new Float32Array(feats.length * dim);
    feats.forEach((f, j) => {
      out.set(f, j * dim);
    });
    return { features: out, k: feats.length, dim };
  };
}

/**
 * Probe baseline results kept across {@link evaluateSuite} calls, by tower and baseline name. The
 * baselines (the random-weights network, hand-made features) do not depend on the trained weights or
 * the fusion head, so models that share tower configs and data (an ablation over heads and seeds)
 * fit them once.
 */
export type ProbeBaselineCache = Map<string, ProbeFeatureResult>;

/** Runs the evaluation suite on the test split (probes train on train, choose L2 on val). */
export async function evaluateSuite(
  model: L3Net,
  ctx: {
    cache: SampleCache;
    rows: readonly ManifestRow[];
    settings: EvalSettings;
    log: (line: string) => void;
    /** Reuse (and fill) baseline results; only for models with the same tower configs, on the same data. */
    baselineCache?: ProbeBaselineCache;
  },
): Promise<EvalSuiteResult> {
  const { cache, rows, settings, log, baselineCache } = ctx;
  const result: EvalSuiteResult = { avc: null, probes: null, fewLabelProbes: null, localization: null };
  if (settings.avcPairs > 0) {
    const ev = await evaluateAvc(model, fixedAvcPairSource(model, splitOf(cache, "test"), settings.avcPairs, settings.seed));
    result.avc = { accuracy: ev.accuracy, auc: ev.auc, n: ev.n };
    log(`eval: AVC accuracy ${ev.accuracy.toFixed(3)}, AUC ${ev.auc.toFixed(3)} on ${ev.n} test pairs`);
  }
  if (settings.probes && rows.some((r) => r.label !== undefined)) {
    // Built only when a random-weights baseline is not already in the cache.
    let random: L3Net | undefined;
    const randomModel = (): L3Net => {
      random ??= randomWeightsModel(model);
      return random;
    };
    try {
      const few = settings.probeLabelsPerClass ?? 0;
      const probe = async (tower: "vision" | "audio") => {
        const handmade = HANDMADE_BASELINE[tower];
        // Features are extracted once and shared by the full-label and the label-scarce probe.
        const modelFeatures = memoizeFeatureExtractor(cacheTowerExtractor(cache, model, tower));
        let randomExtractor: FeatureExtractor | undefined;
        const randomFeatures = memoizeFeatureExtractor((row) => {
          randomExtractor ??= cacheTowerExtractor(cache, randomModel(), tower);
          return randomExtractor(row);
        });
        const handmadeFeatures = memoizeFeatureExtractor(cacheHandmadeExtractor(cache, tower));
        const run = async (labelsPerClass: number | undefined) => {
          const key = (name: string) => `${tower}/${name}/${labelsPerClass ?? "all"}/${JSON.stringify(model.config[tower])}`;
          const r = await runProbeProtocol({
            rows,
            name: "model",
            extract: modelFeatures,
            baselines: {
              "random-weights": baselineCache?.get(key("random-weights")) ?? randomFeatures,
              [handmade]: baselineCache?.get(key(handmade)) ?? handmadeFeatures,
            },
            split: "manifest",
            seed: settings.seed,
            epochs: settings.probeEpochs,
            ...(labelsPerClass ? { labelsPerClass } : {}),
          });
          for (const res of r.results) if (res.baseline) baselineCache?.set(key(res.features), res);
          const what = labelsPerClass ? `${tower} probe, ${labelsPerClass} labels per class` : `${tower} probe`;
          log(`eval: ${what}: ${r.table.map((t) => `${t.features} ${t.accuracy.toFixed(3)}`).join(", ")}`);
          return r;
        };
        return { full: await run(undefined), few: few > 0 ? await run(few) : null };
      };
      const vision = await probe("vision");
      const audio = await probe("audio");
      result.probes = { vision: vision.full, audio: audio.full };
      if (vision.few && audio.few) result.fewLabelProbes = { vision: vision.few, audio: audio.few, labelsPerClass: few };
    } finally {
      random?.dispose();
    }
  }
  const testWithBoxes = rows.filter((r) => r.split === "test" && r.boxes?.length);
  if (settings.locPerClip > 0 && testWithBoxes.length > 0) {
    const rep = await evaluateLocalization(
      model,
      manifestLocalizationSource(model, testWithBoxes, { perClip: settings.locPerClip, protocol: settings.locProtocol }),
    );
    result.localization = rep;
    log(
      `eval: localization (${rep.method}, ${rep.protocol} protocol) pointing ${rep.audioConditioned.pointing.toFixed(3)} (vision-only ${rep.visionOnly.pointing.toFixed(3)}, centre ${rep.centerPrior.pointing.toFixed(3)}), cIoU@0.5 ${rep.audioConditioned.successAt05.toFixed(3)} (vision-only ${rep.visionOnly.successAt05.toFixed(3)}, centre ${rep.centerPrior.successAt05.toFixed(3)})${rep.dropped.length ? `; ${rep.dropped.length} item(s) dropped by the protocol` : ""}`,
    );
  }
  return result;
}

/**
 * `{tower}Probe{suffix}`, `…Random{suffix}` and `…Handmade{suffix}` accuracies of one set of vision
 * and audio probes (null where it did not run), vision first.
 */
function probeColumns(
  probes: { vision: ProbeProtocolResult; audio: ProbeProtocolResult } | null,
  suffix: string,
): Record<string, number | null> {
  const accuracy = (p: ProbeProtocolResult | undefined, name: string) => p?.table.find((t) => t.features === name)?.accuracy ?? null;
  const cols: Record<string, number | null> = {};
  for (const tower of ["vision", "audio"] as const) {
    cols[`${tower}Probe${suffix}`] = accuracy(probes?.[tower], "model");
    cols[`${tower}Probe${suffix}Random`] = accuracy(probes?.[tower], "random-weights");
    cols[`${tower}Probe${suffix}Handmade`] = accuracy(probes?.[tower], HANDMADE_BASELINE[tower]);
  }
  return cols;
}

/** The suite's headline numbers as one flat table row. */
export function evalRow(r: EvalSuiteResult): Record<string, number | null> {
  return {
    avcAccuracy: r.avc?.accuracy ?? null,
    avcAuc: r.avc?.auc ?? null,
    ...probeColumns(r.probes, ""),
    ...probeColumns(r.fewLabelProbes, "FewLabels"),
    pointing: r.localization?.audioConditioned.pointing ?? null,
    ciou05: r.localization?.audioConditioned.successAt05 ?? null,
    ciouAuc: r.localization?.audioConditioned.auc ?? null,
    pointingVisionOnly: r.localization?.visionOnly.pointing ?? null,
    pointingCenter: r.localization?.centerPrior.pointing ?? null,
    ciou05VisionOnly: r.localization?.visionOnly.successAt05 ?? null,
    ciou05Center: r.localization?.centerPrior.successAt05 ?? null,
    ciouAucVisionOnly: r.localization?.visionOnly.auc ?? null,
    ciouAucCenter: r.localization?.centerPrior.auc ?? null,
    distractorPointing: r.localization?.audioConditioned.distractorPointing ?? null,
    locItems: r.localization?.audioConditioned.n ?? null,
    locDropped: r.localization ? r.localization.dropped.length : null,
  };
}

/** A few localization examples to plot: the model's input frame, its audio-conditioned map and the boxes. */
export interface LocalizationExample {
  id: string;
  t: number;
  frame: { width: number; height: number; data: Uint8Array };
  map: { width: number; height: number; data: Float32Array };
  sounding: import("../lib/data").Box[];
  distractors: import("../lib/data").Box[];
}

/** The first `n` annotated test instants (one per clip) with their audio-conditioned maps. */
export async function localizationExamples(model: L3Net, rows: readonly ManifestRow[], n: number): Promise<LocalizationExample[]> {
  const { localizationMaps } = require("../lib/eval") as typeof import("../lib/eval");
  const test = rows.filter((r) => r.split === "test" && r.boxes?.length).slice(0, n);
  if (!test.length) return [];
  const src = manifestLocalizationSource(model, test, { perClip: 1 });
  const batch = await src.load(src.items);
  try {
    const maps = await localizationMaps(model, batch, { method: "auto" });
    const [b, h, w] = batch.frames.shape;
    const pixels = await batch.frames.mul(255).round().clipByValue(0, 255).data();
    return Array.from({ length: b }, (_, i) => {
      const item = src.items[i] as { row: ManifestRow; frame: { t: number } };
      const target = batch.targets?.[i] as { sounding: import("../lib/data").Box[]; distractors?: import("../lib/data").Box[] };
      return {
        id: item.row.id,
        t: item.frame.t,
        frame: { width: w, height: h, data: Uint8Array.from(pixels.subarray(i * h * w * 3, (i + 1) * h * w * 3)) },
        map: maps[i] as { width: number; height: number; data: Float32Array },
        sounding: target.sounding,
        distractors: target.distractors ?? [],
      };
    });
  } finally {
    tf.dispose([batch.frames, batch.audio]);
  }
}
