/**
 * `ablation-fusion`: trains every fusion head (concat = L³, euclidean = AVE-Net, cosine, avol =
 * AVOL-Net) on the same data, budget and seeds, evaluates each (AVC accuracy, vision and audio
 * probes, localization) and reports one table: mean ± std over seeds, parameter count and training
 * time per head. Each (head, seed) cell is saved when it finishes; `--resume` skips finished cells
 * and continues an interrupted one from its last checkpoint.
 */
import { existsSync, promises as fsp } from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import type { SampleCache } from "../lib/data";
import { buildL3Net, countL3Params, FUSION_KINDS, L3_PRESET_NAMES } from "../lib/models";
import { meanStd, type TableRow, writeResults } from "../lib/results";
import { choiceSchema, withDefaults, writeJsonAtomic } from "../lib/util";
import { ablationBars, saveHtml } from "../lib/viz";
import {
  CI_QUICK_TRAINING,
  DATA_SECTION,
  modelConfigOf,
  type PreparedData,
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
import { EVAL_SECTION, evalRow, evaluateSuite, type ProbeBaselineCache } from "./evaluate";
import type { CellContext, CellOutcome, CellPlan, CellSpec, ExperimentContext, ExperimentResult } from "./types";

/** ablation-fusion's config. */
export const ABLATION_CONFIG = z.object({
  ...runKeys(3),
  preset: choiceSchema(L3_PRESET_NAMES).default("tiny").describe("preset of both towers; the heads vary"),
  heads: z
    .array(choiceSchema(FUSION_KINDS))
    .default([...FUSION_KINDS])
    .describe("fusion heads to compare"),
  data: withDefaults(DATA_SECTION, { synthClips: 600 }),
  train: trainSection(
    { steps: 500, evalEvery: 250, valPairs: 512, checkpointEvery: 250, maxSeconds: 0 },
    { steps: "the training budget of every cell (steps, not seconds, so that reruns give identical numbers)" },
  ),
  eval: withDefaults(
    EVAL_SECTION,
    { avcPairs: 512, locPerClip: 2, probeEpochs: 20, probeLabelsPerClass: 5 },
    { probeLabelsPerClass: "also probe with this many labelled clips per class (0: skip); the *_probe_few columns" },
  ),
});

export type AblationConfig = z.output<typeof ABLATION_CONFIG>;

/** What one finished (head, seed) cell recorded (`cell.json`), as it is checked when it comes back from a worker. */
const AblationCellSchema = z.object({
  head: z.string(),
  seed: z.number().int(),
  params: z.number(),
  steps: z.number(),
  trainSec: z.number(),
  bestValAccuracy: z.number().nullable(),
  metrics: z.record(z.string(), z.number().nullable()),
  /** The engine that trained the cell, and whether the time guard cut it short (absent in cells of older versions). */
  training: z
    .object({
      run: z.string(),
      engine: z.object({ name: z.string(), reason: z.string() }),
      cutShort: z.object({ step: z.number(), steps: z.number(), reason: z.string() }).nullable(),
    })
    .optional(),
});

/** What one finished (head, seed) cell recorded (`cell.json`). */
export type AblationCell = z.output<typeof AblationCellSchema>;

/** The metrics the table reports, with their column names. */
const REPORTED: Array<[keyof ReturnType<typeof evalRow>, string]> = [
  ["avcAccuracy", "avc_accuracy"],
  ["avcAuc", "avc_auc"],
  ["visionProbe", "vision_probe"],
  ["audioProbe", "audio_probe"],
  ["visionProbeFewLabels", "vision_probe_few"],
  ["audioProbeFewLabels", "audio_probe_few"],
  ["pointing", "pointing"],
  ["ciou05", "ciou_0.5"],
  ["distractorPointing", "distractor_pointing"],
];

export const ablationFusion = defineExperiment({
  name: "ablation-fusion",
  summary: "train every fusion head (concat, euclidean, cosine, avol) on the same data, budget and seeds; one table",
  description:
    "Compares L³'s concat head with AVE-Net's euclidean head, a cosine head and AVOL-Net's localization head: each is trained for the same number of steps on the same data with the same seeds, then evaluated on the test split (AVC accuracy and AUC, linear probes of the frozen vision and audio towers with every training label and with a few per class, pointing game and cIoU@0.5 of the audio-conditioned map). The table gives mean ± std over seeds, the trainable parameter count and the training time. Finished (head, seed) cells are kept in cells/; --resume skips them.",
  schema: ABLATION_CONFIG,
  profiles: {
    ci: {
      seeds: 1,
      ...CI_QUICK_TRAINING,
      "eval.avcPairs": 32,
      "eval.locPerClip": 1,
      "eval.probeEpochs": 30,
    },
  },
  async run(ctx) {
    const { config, log } = ctx;
    const prepared = await prepareAblation(config, log);
    const cellsDir = path.join(ctx.out, "cells");
    if (!ctx.resume && existsSync(cellsDir)) {
      log(`ablation: starting over (no --resume): removing ${path.relative(process.cwd(), cellsDir)}`);
      await fsp.rm(cellsDir, { recursive: true, force: true });
    }
    const outcomes: CellOutcome<AblationCell>[] = [];
    const list = listCells(config, ctx.seeds);
    for (const [i, cell] of list.entries()) {
      const dir = path.join(cellsDir, cell.key);
      const done = await readFinishedCell(dir);
      if (done) {
        outcomes.push({ cell, ok: true, result: done });
        log(`ablation: [${i + 1}/${list.length}] ${cell.label}: finished earlier, skipped`);
        continue;
      }
      log(`ablation: [${i + 1}/${list.length}] ${cell.label}`);
      const result = await runAblationCell({ ...ctx, config }, prepared, cell, dir, ctx.resume);
      if (!result) {
        log("ablation: interrupted; rerun with --resume to continue");
        return { out: ctx.out, files: [], summary: "ablation-fusion: interrupted (rerun with --resume)" };
      }
      await writeJsonAtomic(path.join(dir, "cell.json"), result);
      outcomes.push({ cell, ok: true, result });
    }
    return finishAblation(ctx, prepared, outcomes);
  },
  cells: ablationCellPlan(),
});

/** What every cell of an ablation shares: the dataset, its sample cache and the probes' baselines. */
interface AblationPrepared {
  data: PreparedData;
  cache: SampleCache;
  /** The probes' baselines (random weights, hand-made features) are the same for every head and seed. */
  baselineCache: ProbeBaselineCache;
}

/** The cell folder's finished `cell.json`, or null when there is none or the time guard cut it short. */
async function readFinishedCell(dir: string): Promise<AblationCell | null> {
  const cellFile = path.join(dir, "cell.json");
  if (!existsSync(cellFile)) return null;
  // A damaged cell.json (a run killed while writing it by an older version) counts as unfinished: the cell runs again.
  const done = AblationCellSchema.safeParse(JSON.parse(await fsp.readFile(cellFile, "utf8")));
  return done.success && !done.data.training?.cutShort ? done.data : null;
}

/** Makes the dataset and the sample cache every cell trains on. */
async function prepareAblation(config: AblationConfig, log: (line: string) => void): Promise<AblationPrepared> {
  const modelConfig = modelConfigOf({ preset: config.preset, fusion: config.heads[0] ?? "concat" });
  const data = await prepareDataset(config.data, log);
  const cache = await prepareCache(config.data, data, modelConfig, log);
  return { data, cache, baselineCache: new Map() };
}

/** The (head, seed) of a cell key `<head>-seed<seed>`. */
function cellOf(key: string): { head: string; seed: number } {
  const m = /^(.+)-seed(-?\d+)$/.exec(key);
  if (!m) throw new Error(`not an ablation cell: ${key}`);
  return { head: m[1] as string, seed: Number(m[2]) };
}

/** Trains and evaluates one (head, seed) cell in `dir`; null when the signal stopped it (resumable). */
async function runAblationCell(
  ctx: CellContext<AblationConfig>,
  prepared: AblationPrepared,
  spec: CellSpec,
  dir: string,
  resume: boolean,
): Promise<AblationCell | null> {
  const { config, log } = ctx;
  const { head, seed } = cellOf(spec.key);
  const { data, cache, baselineCache } = prepared;
  const modelConfig = modelConfigOf({ preset: config.preset, fusion: head });
  const model = buildL3Net(modelConfig, { seed });
  try {
    const train = await trainOnCache({ model, cache, out: dir, train: config.train, seed, resume, signal: ctx.signal, log });
    if (train.stoppedBy === "signal") return null;
    const ev = await evaluateSuite(model, {
      cache,
      rows: data.manifest.rows,
      settings: config.eval,
      log,
      baselineCache,
    });
    return {
      head,
      seed,
      params: countL3Params(modelConfig).trainable,
      steps: train.steps,
      trainSec: train.elapsedSec,
      bestValAccuracy: train.best?.valAccuracy ?? null,
      metrics: evalRow(ev),
      training: trainingRecord(`${head}-seed${seed}`, train, config.train, log),
    };
  } finally {
    model.dispose();
  }
}

/** The ablation's cells: every head × every seed, in table order. */
function listCells(config: AblationConfig, seeds: readonly number[]): CellSpec[] {
  return config.heads.flatMap((head) => seeds.map((seed) => ({ key: `${head}-seed${seed}`, label: `${head} seed ${seed}` })));
}

/** The ablation as independent (head, seed) cells, for `--queue`. */
function ablationCellPlan(): CellPlan<AblationConfig, AblationCell, AblationPrepared> {
  return {
    list: listCells,
    prepare: (ctx) => prepareAblation(ctx.config, ctx.log),
    run: runAblationCell,
    parseResult(value, cell) {
      const r = AblationCellSchema.safeParse(value);
      if (!r.success) throw new Error(`the result of cell ${cell.key} is not an ablation cell: ${z.prettifyError(r.error)}`);
      const { head, seed } = cellOf(cell.key);
      if (r.data.head !== head || r.data.seed !== seed)
        throw new Error(`the result of cell ${cell.key} is for ${r.data.head} seed ${r.data.seed}`);
      return r.data;
    },
    finish: finishAblation,
  };
}

/**
 * Writes the ablation's table (mean ± std over the finished seeds of each head), timing, plot,
 * provenance and index. A failed cell (a queue run finishes the rest) adds a `failed_seeds` column
 * naming the seeds that failed, a note with each error, and `failedCells` in provenance.
 */
async function finishAblation(
  ctx: ExperimentContext<AblationConfig>,
  prepared: AblationPrepared,
  outcomes: readonly CellOutcome<AblationCell>[],
): Promise<ExperimentResult> {
  const { config } = ctx;
  const heads = config.heads;
  const { data } = prepared;
  const cells = outcomes.flatMap((o) => (o.ok ? [o.result] : []));
  const failedCells = outcomes.flatMap((o) => (o.ok ? [] : [{ cell: o.cell.key, error: o.error }]));
  const { table, timing, bars } = aggregateCells(heads, cells);
  if (failedCells.length)
    for (const row of table)
      row.failed_seeds = failedCells
        .map((f) => cellOf(f.cell))
        .filter((c) => c.head === row.head)
        .map((c) => c.seed)
        .join(" ");
  await saveHtml(
    [ablationBars(bars, { title: `Fusion heads (${config.preset}, ${ctx.seeds.length} seed(s), mean ± std)` })],
    path.join(ctx.out, "plots.html"),
    { title: "ablation-fusion" },
  );
  const { engine, cutShort } = summarizeTraining(cells.flatMap((c) => (c.training ? [c.training] : [])));
  const provenance = runProvenance(ctx, { experiment: "ablation-fusion", config, engine, cutShort, manifest: data.manifestPath });
  const recipe = recipeLine({
    preset: config.preset,
    fusion: heads,
    train: config.train,
    engine,
    seeds: ctx.seeds,
    threads: ctx.backend.threads,
  });
  const written = await writeResults({
    dir: ctx.out,
    table,
    provenance: { ...provenance, ...(failedCells.length ? { failedCells } : {}) },
    recipe,
    title: "Fusion-head ablation",
    extra: { timing },
    resultsRoot: ctx.resultsRoot,
    notes: [
      `Localization: ${config.eval.locProtocol} protocol (${config.eval.locProtocol === "published" ? "boxes as annotated, every item scored, as hche11's code and EZ-VSL" : "boxes moved into the centre crop, items outside it dropped"}).`,
      `Every head: ${config.train.steps} steps of batch ${config.train.batchSize} (${config.train.pairing} pairs${config.train.pairing === "in-batch" ? `, ${Math.min(config.train.negatives, config.train.batchSize / config.train.microBatches - 1)} negatives per frame` : ""}), lr ${config.train.lr}, the same data and seeds (${ctx.seeds.join(", ")}); metrics on the test split, mean ± std over seeds.`,
      ...baselineNote(cells, config.eval.probeLabelsPerClass),
      "Training time is wall-clock, so it is kept out of table.csv (which reruns reproduce byte for byte) and reported in timing.csv.",
      ...failedCells.map((f) => `FAILED: cell ${f.cell} (its seed is left out of the head's mean; see failed_seeds): ${f.error}`),
    ],
  });
  return {
    out: ctx.out,
    files: [...written.files, path.join(ctx.out, "plots.html")],
    summary: `ablation-fusion: ${path.relative(process.cwd(), ctx.out) || "."}/table.md\n${(
      await fsp.readFile(path.join(ctx.out, "table.md"), "utf8")
    )
      .split("\n")
      .filter((l) => l.startsWith("|"))
      .join("\n")}`,
    engine,
    cutShort,
    ...(failedCells.length ? { failedCells } : {}),
  };
}

/** A bar of the ablation plot: one metric of one head, mean ± std over seeds. */
type Bar = { group: string; metric: string; mean: number; std: number };

/** The table (one row per head: mean ± std over seeds), the timing table and the plot's bars, from finished cells. */
function aggregateCells(heads: readonly string[], cells: readonly AblationCell[]): { table: TableRow[]; timing: TableRow[]; bars: Bar[] } {
  const table: TableRow[] = [];
  const timing: TableRow[] = [];
  const bars: Bar[] = [];
  for (const head of heads) {
    const mine = cells.filter((c) => c.head === head);
    const row: TableRow = { head, params: mine[0]?.params ?? null, steps: mine[0]?.steps ?? null, seeds: mine.length };
    for (const [key, col] of REPORTED) {
      const vals = mine.map((c) => c.metrics[key]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
      if (!vals.length) {
        row[col] = null;
        continue;
      }
      const ms = meanStd(vals, 3);
      row[col] = ms.text;
      if (["avcAccuracy", "visionProbe", "audioProbe", "pointing"].includes(key))
        bars.push({ group: head, metric: col, mean: ms.mean, std: ms.std });
    }
    table.push(row);
    timing.push({
      head,
      train_seconds: meanStd(
        mine.map((c) => c.trainSec),
        1,
      ).text,
    });
  }
  return { table, timing, bars };
}

/** The probe baselines, the same for every head and seed, as a note under the table. */
function baselineNote(cells: readonly AblationCell[], labelsPerClass: number): string[] {
  const m = cells[0]?.metrics;
  const f = (v: number | null | undefined) => (typeof v === "number" ? v.toFixed(3) : "n/a");
  if (!m || (m.visionProbeRandom == null && m.audioProbeRandom == null)) return [];
  const notes = [
    `Probe baselines (the same for every head): vision — random weights ${f(m.visionProbeRandom)}, colour histogram ${f(m.visionProbeHandmade)}; audio — random weights ${f(m.audioProbeRandom)}, MFCC statistics ${f(m.audioProbeHandmade)}.`,
  ];
  if (m.visionProbeFewLabelsRandom != null || m.audioProbeFewLabelsRandom != null)
    notes.push(
      `\`*_probe_few\`: the same probes trained on ${labelsPerClass} labelled clips per class; baselines: vision — random weights ${f(m.visionProbeFewLabelsRandom)}, colour histogram ${f(m.visionProbeFewLabelsHandmade)}; audio — random weights ${f(m.audioProbeFewLabelsRandom)}, MFCC statistics ${f(m.audioProbeFewLabelsHandmade)}.`,
    );
  return notes;
}
