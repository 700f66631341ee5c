/**
 * `localization`: which pixels make the sound. Audio-conditioned maps (AVOL's similarity map, or
 * Grad-CAM of the correspondence score for the other heads) scored against ground-truth boxes with
 * the pointing game and cIoU (success at 0.5 and AUC), beside the vision-only unit map and a centre
 * prior; on the synthetic benchmark also how often the peak falls on a silent distractor.
 */
import * as path from "node:path";
import { z } from "zod";
import { DEFAULT_LOCALIZATION_PROTOCOL, evaluateLocalization, LOCALIZATION_PROTOCOLS, manifestLocalizationSource } from "../lib/eval";
import type { TableRow } from "../lib/results";
import { ConfigError, choiceSchema, intSchema, textSchema } from "../lib/util";
import { localizationOverlay, saveHtml } from "../lib/viz";
import { CI_QUICK_TRAINING, evalModelKeys, prepareDataset, withEvalModel, writeEvalResults } from "./common";
import { defineExperiment } from "./define";
import { LOC_PROTOCOL_HELP, localizationExamples } from "./evaluate";

/** The map `loc.method` scores: auto (AVOL's similarity map for the avol head, Grad-CAM otherwise), similarity or gradcam. */
export const LOCALIZATION_METHODS = ["auto", "similarity", "gradcam"] as const;

/** localization's config. */
export const LOCALIZATION_CONFIG = z.object({
  // Sounding objects of realistic size (15–40% of the frame), so that cIoU reads.
  ...evalModelKeys({ model: { fusion: "avol" }, data: { synthProfile: "realistic" } }),
  loc: z.object({
    perClip: intSchema(1).default(4).describe("annotated instants per clip scored"),
    split: textSchema("a split name").default("test").describe("which split's annotated clips to score ('all' for every split)"),
    method: choiceSchema(LOCALIZATION_METHODS)
      .default("auto")
      .describe("auto: AVOL's similarity map for the avol head, Grad-CAM otherwise"),
    protocol: choiceSchema(LOCALIZATION_PROTOCOLS).default(DEFAULT_LOCALIZATION_PROTOCOL).describe(LOC_PROTOCOL_HELP),
  }),
});

export type LocalizationConfig = z.output<typeof LOCALIZATION_CONFIG>;

export const localization = defineExperiment({
  name: "localization",
  summary: "sound-source localization: pointing game and cIoU of audio-conditioned maps vs vision-only and centre baselines",
  description:
    "Scores localization maps against boxes: the pointing game (is the map's peak in a sounding box?), cIoU success at 0.5 and its AUC over thresholds (Senocak et al.), and on the synthetic benchmark the share of peaks on silent distractors. Audio-conditioned maps (method auto: AVOL's similarity map for the avol head, Grad-CAM of the correspondence logit otherwise) are always reported beside the vision-only unit map and a centre prior. Real annotations come in through a manifest whose rows carry boxes (e.g. VGG-SS boxes attached with the data module's attachBoxes).",
  schema: LOCALIZATION_CONFIG,
  profiles: {
    ci: { ...CI_QUICK_TRAINING, "loc.perClip": 1 },
  },
  async run(ctx) {
    const { config, log } = ctx;
    const data = await prepareDataset(config.data, log);
    const rows = data.manifest.rows.filter((r) => r.boxes?.length && (config.loc.split === "all" || r.split === config.loc.split));
    if (!rows.length) throw new ConfigError(`no clips with boxes in split '${config.loc.split}'`, { subject: "data" });
    return withEvalModel(ctx, config, async ({ model, source, training }) => {
      const method = config.loc.method;
      const protocol = config.loc.protocol;
      const rep = await evaluateLocalization(model, manifestLocalizationSource(model, rows, { perClip: config.loc.perClip, protocol }), {
        method,
      });
      const line = (name: string, m: typeof rep.audioConditioned): TableRow => ({
        map: name,
        pointing: m.pointing,
        ciou_0_5: m.successAt05,
        ciou_auc: m.auc,
        mean_ciou: m.meanCiou,
        distractor_pointing: m.nWithDistractors ? m.distractorPointing : null,
        n: m.n,
        dropped: rep.dropped.length,
      });
      const table = [
        line(`audio-conditioned (${rep.method})`, rep.audioConditioned),
        line("vision-only unit map", rep.visionOnly),
        line("centre prior", rep.centerPrior),
      ];
      log(
        `localization: pointing ${rep.audioConditioned.pointing.toFixed(3)} vs vision-only ${rep.visionOnly.pointing.toFixed(3)} vs centre ${rep.centerPrior.pointing.toFixed(3)}${rep.failed.length ? `; ${rep.failed.length} item(s) failed` : ""}`,
      );
      const examples = await localizationExamples(
        model,
        rows.map((r) => ({ ...r, split: "test" })),
        6,
      );
      await saveHtml(
        examples.map((ex) =>
          localizationOverlay({
            frame: ex.frame,
            map: ex.map,
            boxes: ex.sounding,
            distractors: ex.distractors,
            title: `${ex.id} at ${ex.t.toFixed(2)} s`,
          }),
        ),
        path.join(ctx.out, "plots.html"),
        { title: "l3kit localization" },
      );
      const result = await writeEvalResults(ctx, {
        experiment: "localization",
        config,
        model: { source, training },
        data,
        table,
        title: "Sound-source localization",
        notes: [
          "pointing: share of maps whose peak is inside a sounding box; ciou_0_5: share with cIoU ≥ 0.5; ciou_auc: area under the success curve over thresholds.",
          protocol === "published"
            ? "Protocol published: boxes as annotated on the full frame, laid on the centre crop's map unadjusted, and every item scored, as hche11's test.py (EZ-VSL and its successors report this way)."
            : `Protocol l3kit: boxes moved into the centre crop; ${rep.dropped.length} item(s) with no sounding box inside the crop dropped (dropped column).`,
        ],
      });
      return { ...result, files: [...result.files, path.join(ctx.out, "plots.html")] };
    });
  },
});
