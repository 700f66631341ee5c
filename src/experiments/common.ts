/**
 * Pieces every experiment shares: the dataset (the synthetic benchmark by default, generated on
 * demand into a cache folder, or a real manifest), the sample cache sized for the model, the model
 * config, and result provenance.
 */
import { existsSync, rmSync } from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import {
  buildSampleCache,
  generateSynthDataset,
  loadManifest,
  type Manifest,
  openSampleCache,
  type PairSource,
  SAMPLE_CACHE_VERSION,
  sampleCacheVersion,
  type SampleCache,
  type SynthProfileName,
} from "../lib/data";
import { randomWeightsModel } from "../lib/eval";
import { EMBEDDING_LAYERS, FUSION_KINDS, L3_PRESET_NAMES, type L3Net, type L3NetConfig, resolveL3Config } from "../lib/models";
import { type CutShortRecord, collectProvenance, type EngineRecord, type Provenance, type TableRow, writeResults } from "../lib/results";
import type { TrainAvcResult } from "../lib/train";
import { DEFAULT_TRAIN_CONFIG, type TrainAvcConfig, trainConfigSchema } from "../lib/train/config";
import { createProgress, type Progress } from "../lib/train/progress";
import { ConfigError, choiceSchema, intSchema, L3kitError, numberSchema, schemaDefaults, textSchema, withDefaults } from "../lib/util";
import type { ConfigValue, ExperimentContext, ExperimentResult } from "./types";

/** The features a probe experiment can read from a tower (`probe.feature`). */
export const PROBE_FEATURES = ["embedding", "grid"] as const;

/** The layer a probe experiment's features pool (`probe.layer`; see EMBEDDING_LAYERS). */
export const PROBE_LAYERS = EMBEDDING_LAYERS;

/** `--help` text of `probe.layer`. */
export const PROBE_LAYER_HELP =
  "conv: the last conv's raw output (conv4_2, before batch norm and ReLU), as L³ and OpenL3 pool; relu: the same after batch norm and ReLU (what the fusion head reads)";

/** `--help` texts of the training keys every training experiment shares (over the library's own). */
export const TRAIN_HELP: Record<string, string> = {
  steps: "training length: results depend on steps, never on the wall clock",
  maxSeconds:
    "time guard in seconds (0: none). If it stops training before train.steps, the table and provenance are marked cut short and the command exits non-zero unless --allow-partial",
  engine:
    "what computes the steps (--engine): auto picks tfjs on tfjs-node-gpu when installed, else onnx when onnxruntime-node loads, else the best tfjs backend",
  device: "where the onnx engine computes",
};

/** What one training run adds to its experiment's provenance: the engine and, if a time guard stopped it early, where. */
export interface TrainingRecord {
  /** A label of the run (e.g. `seed 0`, `avol-seed1`). */
  run: string;
  engine: { name: string; reason: string };
  cutShort: CutShortRecord | null;
}

/**
 * The record of a finished {@link trainAvc} run, with `train` its config (configured `steps`, the
 * `maxSeconds` guard). Logs a clear line when the time guard cut it short.
 */
export function trainingRecord(
  run: string,
  r: TrainAvcResult,
  train: { steps: number; maxSeconds: number },
  log: (line: string) => void,
): TrainingRecord {
  const cut = r.stoppedBy === "time" ? { step: r.steps, steps: train.steps, reason: `train.maxSeconds = ${train.maxSeconds} s` } : null;
  if (cut)
    log(
      `time guard: training${run ? ` (${run})` : ""} stopped at step ${cut.step} of ${cut.steps} after train.maxSeconds = ${train.maxSeconds} s; the results will be marked as cut short`,
    );
  return { run, engine: { ...r.engine }, cutShort: cut };
}

/**
 * A run's engine and cut-short records for provenance, from its training runs: one engine record
 * when they all used the same engine (each run listed when not), and the cut-short runs with the
 * earliest step (null when none was cut short; no engine when nothing was trained).
 */
export function summarizeTraining(records: readonly TrainingRecord[]): { engine: EngineRecord | null; cutShort: CutShortRecord | null } {
  const first = records[0];
  if (!first) return { engine: null, cutShort: null };
  const same = records.every((r) => r.engine.name === first.engine.name && r.engine.reason === first.engine.reason);
  const engine: EngineRecord = same
    ? { ...first.engine }
    : {
        name: [...new Set(records.map((r) => r.engine.name))].join("+"),
        reason: "the training runs used different engines (runs)",
        runs: records.map((r) => ({ run: r.run, ...r.engine })),
      };
  const cut = records.filter((r) => r.cutShort);
  const firstCut = cut[0]?.cutShort;
  if (!firstCut) return { engine, cutShort: null };
  if (records.length === 1) return { engine, cutShort: firstCut };
  const runs = cut.map((r) => ({ run: r.run, step: (r.cutShort as CutShortRecord).step, steps: (r.cutShort as CutShortRecord).steps }));
  return { engine, cutShort: { ...firstCut, step: Math.min(...runs.map((r) => r.step)), runs } };
}

/** The training keys a recipe line names. */
export type RecipeTrain = Pick<
  import("../lib/train").TrainAvcConfig,
  "steps" | "batchSize" | "microBatches" | "pairing" | "negatives" | "lr" | "warmupSteps" | "schedule" | "weightDecay"
>;

/** Whether a training config is the paper's optimizer and pairs (Adam 1e-4 constant, L2 1e-5, sampled 50/50 pairs). */
export function isPaperRecipe(t: RecipeTrain): boolean {
  return t.pairing === "sampled" && t.lr === 1e-4 && t.weightDecay === 1e-5 && t.schedule === "constant";
}

/**
 * The header line of a results table: the recipe its numbers come from — preset and fusion head(s),
 * pairs, optimizer, schedule, steps, engine, seeds and threads — and, unless it is the paper's
 * optimizer and pairs, that it is l3kit's fast recipe whose numbers must not be set beside the paper's
 * 74% / 78%. A model loaded from a checkpoint is named instead of a training recipe.
 */
export function recipeLine(args: {
  preset: string;
  /** The fusion head, or several (an ablation). */
  fusion: string | readonly string[];
  /** The training config, or null when the model was loaded. */
  train: RecipeTrain | null;
  /** The checkpoint the model was loaded from (with `train: null`). */
  checkpoint?: string;
  engine: { name: string } | null;
  seeds: readonly number[];
  threads?: number;
}): string {
  const heads = typeof args.fusion === "string" ? `${args.fusion} head` : `${args.fusion.join(", ")} heads`;
  const run = `seed${args.seeds.length === 1 ? "" : "s"} ${args.seeds.join(", ")}${args.threads ? `, ${args.threads} threads` : ""}`;
  const t = args.train;
  if (!t)
    return `\`${args.preset}\` L³-Net, ${heads}, loaded from ${args.checkpoint ?? "a checkpoint"} (its training recipe is that run's); ${run}.`;
  const pairs =
    t.pairing === "in-batch"
      ? `in-batch negatives (${Math.min(t.negatives, t.batchSize / t.microBatches - 1)} per frame)` // capped as inBatchPairs does
      : "sampled 50/50 pairs (the paper's pairs)";
  const schedule = `${t.warmupSteps ? `${t.warmupSteps} warm-up steps, ` : ""}${t.schedule === "cosine" ? "cosine decay" : "constant lr"}`;
  const base = `\`${args.preset}\` L³-Net, ${heads}; ${t.steps} steps of batch ${t.batchSize}, ${pairs}, Adam lr ${t.lr} (${schedule}), L2 ${t.weightDecay}; engine ${args.engine?.name ?? "?"}, ${run}.`;
  return isPaperRecipe(t)
    ? `${base} The paper's optimizer and pairs, at a CPU-sized batch and length (the paper: batch 256, about 2 days).`
    : `${base} l3kit's fast recipe, not the paper's (Adam 1e-4, L2 1e-5, sampled 50/50 pairs, batch 256): do not set these numbers beside the paper's 74% / 78% AVC accuracy.`;
}

/** The synthetic benchmark's profiles (`data.synthProfile`), in the order of the data module's SYNTH_PROFILES. */
export const SYNTH_PROFILE_NAMES = ["tiny", "default", "realistic"] as const satisfies readonly SynthProfileName[];

/** The data section of an experiment config: a manifest of real data, or the synthetic benchmark's size, profile and seed. */
export const DATA_SECTION = z.object({
  manifest: textSchema("a file path (empty: the synthetic benchmark)")
    .default("")
    .describe("a manifest (JSONL) of real data; empty: the synthetic benchmark"),
  synthClips: intSchema(1, Number.POSITIVE_INFINITY).default(1500).describe("synthetic benchmark: number of clips"),
  synthClasses: intSchema(2, 1000).default(10).describe("synthetic benchmark: number of classes"),
  synthProfile: choiceSchema(SYNTH_PROFILE_NAMES)
    .default("default")
    .describe(
      "synthetic benchmark profile: tiny (64×64, objects ≈7%), default (128×128, objects ≈7%), realistic (64×64, sounding objects 15–40% of the frame)",
    ),
  synthSeed: numberSchema("a number").default(1).describe("synthetic benchmark: seed"),
  cacheRoot: textSchema("a folder path")
    .min(1, { error: (iss) => `must be a folder path, got ${JSON.stringify(iss.input)}` })
    .default(".cache/l3kit")
    .describe("where generated datasets and sample caches are kept (reused across runs)"),
  perClip: intSchema(1, Number.POSITIVE_INFINITY).default(16).describe("samples pre-decoded per clip"),
});

/** The data section of an experiment config ({@link DATA_SECTION}). */
export type DataSection = z.output<typeof DATA_SECTION>;

/** Defaults of the data section: the synthetic benchmark's default profile. */
export const DEFAULT_DATA: DataSection = schemaDefaults(DATA_SECTION);

/** The model section of an experiment config: a preset and a fusion head. */
export const MODEL_SECTION = z.object({
  preset: choiceSchema(L3_PRESET_NAMES)
    .default("tiny")
    .describe("L³-Net preset: paper, lite (widths ÷4, 112 px, 64 mels) or tiny (widths ÷8, 64 px, 32 mels)"),
  fusion: choiceSchema(FUSION_KINDS).default("concat").describe("fusion head: concat (L³), euclidean (AVE-Net), cosine, avol (AVOL-Net)"),
});

/** The model section of an experiment config ({@link MODEL_SECTION}). */
export type ModelSection = z.output<typeof MODEL_SECTION>;

/**
 * Training defaults for experiments: a recipe for learning fast on two CPU cores — Adam 2e-3 with warm-up and cosine decay, L2 1e-4, batches of 32 with 31
 * in-batch negatives per frame (each tower pass scores 32× more pairs than sampled pairs). On the
 * synthetic benchmark (1,500 clips, wasm, 2 cores) the tiny net passes 0.75 validation AVC
 * accuracy after ≈ 3.5 minutes and ends at ≈ 0.78 (2,400 steps, ≈ 11 minutes); sampled pairs peaked at
 * ≈ 0.70 in 15 minutes. Training length is set in steps; `maxSeconds` is only a guard (0: none), and
 * a run it cuts short is marked as such. `--set profile=paper` gives the paper's settings (avc-train's PAPER_TRAIN).
 */
export const EXPERIMENT_TRAIN: TrainAvcConfig = {
  ...DEFAULT_TRAIN_CONFIG,
  steps: 2400,
  batchSize: 32,
  pairing: "in-batch",
  negatives: 31,
  lr: 2e-3,
  warmupSteps: 100,
  schedule: "cosine",
  weightDecay: 1e-4,
  evalEvery: 250,
  valPairs: 1024,
  checkpointEvery: 500,
  maxSeconds: 0,
};

/** The training section of an experiment config: {@link EXPERIMENT_TRAIN} with `overrides`, {@link TRAIN_HELP} with `help`. */
export function trainSection(overrides: Partial<TrainAvcConfig> = {}, help: Record<string, string> = {}) {
  return trainConfigSchema({ ...EXPERIMENT_TRAIN, ...overrides }, { ...TRAIN_HELP, ...help });
}

/** The training section of an experiment config. */
export type TrainSection = TrainAvcConfig;

/** The keys every experiment has: its profile, its first seed and how many seeds. */
export function runKeys(seeds = 1) {
  return {
    profile: textSchema().default("default").describe("named overrides (--set profile=NAME; see Profiles)"),
    seed: numberSchema("a number").default(0).describe("the first seed (--seed)"),
    seeds: intSchema(1).default(seeds).describe("how many seeds: seed, seed+1, … (--seeds)"),
  };
}

/**
 * `ci` profile overrides shared by the experiments that train a model: the tiny synthetic benchmark
 * and a few training steps, so that a CI run takes seconds.
 */
export const CI_QUICK_TRAINING: Partial<Record<string, ConfigValue>> = {
  "data.synthProfile": "tiny",
  "data.synthClips": 24,
  "data.perClip": 4,
  "train.batchSize": 16,
  "train.steps": 6,
  "train.evalEvery": 3,
  "train.valPairs": 16,
  "train.checkpointEvery": 3,
};

/** Resolves the model section into a full config (ConfigError for unknown presets or heads). */
export function modelConfigOf(m: Pick<ModelSection, "preset"> & { fusion: string }): L3NetConfig {
  return resolveL3Config({ preset: m.preset, fusion: m.fusion });
}

/** The dataset an experiment runs on. */
export interface PreparedData {
  manifest: Manifest;
  manifestPath: string;
  synthetic: boolean;
}

/**
 * Loads the configured manifest, or generates (or reuses) the synthetic benchmark. Fails before
 * any training with a clear error for a missing manifest or one without audio.
 */
export async function prepareDataset(data: DataSection, log: (line: string) => void): Promise<PreparedData> {
  let manifestPath: string;
  let synthetic = false;
  if (data.manifest) {
    manifestPath = path.resolve(data.manifest);
    if (!existsSync(manifestPath))
      throw new ConfigError(`manifest not found: ${manifestPath}`, { subject: "data.manifest", reason: "missing" });
  } else {
    synthetic = true;
    const profile = data.synthProfile;
    const out = path.resolve(data.cacheRoot, "synth", `${profile}-k${data.synthClasses}-n${data.synthClips}-seed${data.synthSeed}`);
    manifestPath = path.join(out, "manifest.jsonl");
    if (!existsSync(path.join(out, "metadata.json"))) {
      log(
        `data: generating the synthetic benchmark (${data.synthClips} clips, ${data.synthClasses} classes, ${profile} profile) into ${path.relative(process.cwd(), out)}`,
      );
      const progress = stepProgress("data: synth", "clips", log);
      const r = await generateSynthDataset({
        out,
        clips: data.synthClips,
        classes: data.synthClasses,
        seed: data.synthSeed,
        profile,
        onProgress: (p) => progress.update(p.done, p.total),
      }).finally(() => progress.stop());
      log(`data: ${r.rows.length} clips in ${r.elapsedSec.toFixed(1)} s (${r.clipsPerSec.toFixed(1)} clips/s)`);
    }
  }
  const manifest = await loadManifest(manifestPath);
  if (!manifest.rows.some((r) => r.hasAudio))
    throw new ConfigError("the manifest has no clip with an audio track: AVC needs audio", { subject: manifestPath, reason: "no-audio" });
  return { manifest, manifestPath, synthetic };
}

/**
 * Builds (or resumes, or reuses) the sample cache of a manifest at the model's input sizes: frames
 * with the short side resized to the model's `resizeTo` and their aspect kept (a 320×568 video →
 * 256×454 for the paper model), so that training takes its random crop from the whole frame and
 * evaluation's centre crop equals what the direct decoding paths (probes, localization, `embed`)
 * compute. A cache of an older format in the same folder (format 1 stretched every frame to a
 * square) is rebuilt, with a line in the log.
 */
export async function prepareCache(
  data: DataSection,
  prepared: PreparedData,
  model: L3NetConfig,
  log: (line: string) => void,
): Promise<SampleCache> {
  const side = model.vision.frontEnd.resizeTo;
  const sampleRate = model.audio.frontEnd.sampleRate;
  const dir = path.resolve(data.cacheRoot, "samples", `${prepared.manifest.hash.slice(0, 12)}-${side}px-${sampleRate}hz-k${data.perClip}`);
  const version = sampleCacheVersion(dir);
  if (version !== null && version !== SAMPLE_CACHE_VERSION) {
    log(
      `data: ${path.relative(process.cwd(), dir)} holds a sample cache of format ${version}${version === 1 ? " (frames stretched to a square)" : ""}; rebuilding it (format ${SAMPLE_CACHE_VERSION}: short side ${side}, aspect kept)`,
    );
    rmSync(dir, { recursive: true, force: true });
  }
  if (!existsSync(path.join(dir, "index.json")) || !openSampleCache(dir, { allowPartial: true }).index.complete) {
    log(`data: pre-decoding ${data.perClip} samples per clip into ${path.relative(process.cwd(), dir)}`);
    const progress = stepProgress("data: cache", "clips", log);
    const r = await buildSampleCache({
      manifest: prepared.manifest,
      out: dir,
      perClip: data.perClip,
      frameSize: { shortSide: side },
      sampleRate,
      audioSec: model.audio.frontEnd.durationSec,
      seed: 0,
      onProgress: (p) => progress.update(p.clipsDone, p.clipsTotal),
    }).finally(() => progress.stop());
    log(
      `data: ${r.samples} samples from ${r.clips} clips in ${r.seconds.toFixed(1)} s${r.skipped.length ? `; ${r.skipped.length} clip(s) skipped` : ""}`,
    );
    for (const s of r.skipped) log(`data: skipped ${s.path}: ${s.reason} ${s.message}`);
  }
  return openSampleCache(dir);
}

/**
 * Progress of a long data step: a bar (with ETA) when stderr is a terminal and L3KIT_QUIET is not
 * set, else a `log` line at most every 5 s and at the end.
 */
export function stepProgress(
  label: string,
  unit: string,
  log: (line: string) => void,
): { update(done: number, total: number): void; stop(): void } {
  let bar: Progress | null = null;
  let last = 0;
  const tty = process.stderr.isTTY === true && process.env.L3KIT_QUIET !== "1";
  return {
    update(done, total) {
      if (tty) {
        bar ??= createProgress({ total, label, unit });
        bar.update(done);
        return;
      }
      const now = Date.now();
      if (now - last > 5000 || done === total) {
        last = now;
        log(`${label} ${done}/${total} ${unit}`);
      }
    },
    stop: () => bar?.stop(),
  };
}

/**
 * Trains `model` on a sample cache's train split, validating on its val split (`train` with `seed`),
 * in `out` (resumable), and logs the summary and any skipped clip: the training step every
 * experiment shares.
 */
export async function trainOnCache(args: {
  model: L3Net;
  cache: SampleCache;
  out: string;
  train: Partial<TrainAvcConfig>;
  seed: number;
  resume: boolean;
  signal: AbortSignal;
  log: (line: string) => void;
}): Promise<TrainAvcResult> {
  const { trainAvc, formatTrainSummary } = require("../lib/train") as typeof import("../lib/train");
  const { log } = args;
  const r = await trainAvc({
    model: args.model,
    train: splitOf(args.cache, "train"),
    val: splitOf(args.cache, "val"),
    out: args.out,
    config: { ...args.train, seed: args.seed },
    resume: args.resume,
    signal: args.signal,
    onSkip: (c) => log(`skipped clip ${c.id}: ${c.reason} ${c.message}`),
  });
  log(formatTrainSummary(r));
  return r;
}

/**
 * A run's provenance ({@link collectProvenance}) with its backend, start time and (unless `seeds`)
 * seeds from `ctx`; `tfBackend: false` leaves the tfjs backend out of the record (the evaluation
 * experiments record only name and threads).
 */
export function runProvenance(
  ctx: Pick<ExperimentContext<object>, "backend" | "seeds" | "startedAt">,
  args: {
    experiment: string;
    config: unknown;
    engine: EngineRecord | null;
    cutShort: CutShortRecord | null;
    manifest: string;
    seeds?: number[];
    tfBackend?: boolean;
  },
): Provenance {
  const { name, threads, tfBackend } = ctx.backend;
  return collectProvenance({
    experiment: args.experiment,
    config: args.config,
    seeds: args.seeds ?? ctx.seeds,
    backend: args.tfBackend === false ? { name, threads } : { name, threads, tfBackend },
    engine: args.engine,
    cutShort: args.cutShort,
    manifest: args.manifest,
    startedAt: ctx.startedAt,
  });
}

/** A split of a cache as a pair source; fails with a clear error when the split is empty. */
export function splitOf(cache: SampleCache, split: string): PairSource {
  const src = cache.subset(split);
  if (src.clips.length === 0) throw new ConfigError(`no clips in split '${split}' of the dataset`, { subject: "data" });
  return src;
}

/** `--help` text of the evaluation experiments' `checkpoint` key (see obtainModel). */
export const CHECKPOINT_HELP = "a trained model (…/checkpoints/best); empty: train one on the synthetic benchmark first";

/**
 * The keys every evaluation experiment has: its run keys, the checkpoint to evaluate, and the model,
 * data and training (1,200 steps) that make one when no checkpoint is given; `model` and `data`
 * give other defaults, `dataHelp` other help texts of the data keys.
 */
export function evalModelKeys(
  opts: { model?: Partial<ModelSection>; data?: Partial<DataSection>; dataHelp?: Record<string, string> } = {},
) {
  return {
    ...runKeys(1),
    checkpoint: textSchema("a folder path (empty: train one)").default("").describe(CHECKPOINT_HELP),
    model: withDefaults(MODEL_SECTION, opts.model ?? {}),
    data: withDefaults(DATA_SECTION, opts.data ?? {}, opts.dataHelp),
    train: trainSection({ steps: 1200 }),
  };
}

/** The first keys of a probe experiment's `probe` section: the feature (its default and help differ) and the layer it pools. */
export function probeFeatureKeys(feature: (typeof PROBE_FEATURES)[number], help: string) {
  return {
    feature: choiceSchema(PROBE_FEATURES).default(feature).describe(help),
    layer: choiceSchema(PROBE_LAYERS).default("conv").describe(PROBE_LAYER_HELP),
  };
}

/** The last keys of a probe experiment's `probe` section: epochs and labels per class. */
export const PROBE_TRAINING_KEYS = {
  epochs: intSchema(1).default(100).describe("epochs of each probe's logistic regression"),
  labelsPerClass: intSchema(0)
    .default(0)
    .describe("train each probe (and choose its L2) on at most this many labelled clips per class (0: all)"),
};

/**
 * The model an evaluation experiment probes: loaded from `checkpoint` when given (a training
 * checkpoint folder such as `…/checkpoints/best`, or a saved model), else trained here on the
 * synthetic benchmark with `train` (into `<out>/train`, resumable) so the experiment runs end to end.
 * `training` records the engine and whether the time guard cut the training short (null when loaded).
 */
export async function obtainModel(args: {
  checkpoint: string;
  model: ModelSection;
  data: DataSection;
  train: Partial<import("../lib/train").TrainAvcConfig> & { steps: number; maxSeconds: number };
  seed: number;
  out: string;
  resume: boolean;
  signal: AbortSignal;
  log: (line: string) => void;
}): Promise<{
  model: import("../lib/models").L3Net;
  source: string;
  training: TrainingRecord | null;
  /** The dataset the model was trained on here (null when it was loaded). */
  pretraining: PreparedData | null;
}> {
  const { loadModel, buildL3Net } = require("../lib/models") as typeof import("../lib/models");
  if (args.checkpoint) {
    const model = await loadModel(path.resolve(args.checkpoint));
    args.log(`model: loaded ${args.checkpoint} (${model.config.name}, ${model.config.fusion})`);
    return { model, source: path.resolve(args.checkpoint), training: null, pretraining: null };
  }
  const config = modelConfigOf(args.model);
  const synth = { ...args.data, manifest: "" };
  const data = await prepareDataset(synth, args.log);
  const cache = await prepareCache(synth, data, config, args.log);
  const model = buildL3Net(config, { seed: args.seed });
  args.log("model: no checkpoint given — training one on the synthetic benchmark first");
  const r = await trainOnCache({ ...args, model, cache, out: path.join(args.out, "train") });
  if (r.stoppedBy === "signal") {
    model.dispose();
    throw new L3kitError("interrupted while training the model to evaluate; rerun with --resume to continue", {
      subject: args.out,
      reason: "interrupted",
    });
  }
  return { model, source: path.join(args.out, "train"), training: trainingRecord("", r, args.train, args.log), pretraining: data };
}

/** The config keys an evaluation experiment's model comes from (see obtainModel). */
export type EvalModelConfig = Pick<Parameters<typeof obtainModel>[0], "checkpoint" | "model" | "data" | "train">;

/** What an evaluation experiment probes. */
export interface EvalModel {
  model: L3Net;
  /** The checkpoint loaded or the folder trained into (provenance's `checkpointUsed`). */
  source: string;
  /** The training run that made the model here (engine, cut short or not); null when it was loaded. */
  training: TrainingRecord | null;
  /** The dataset that training ran on (its train split fitted, its val split validated); null when the model was loaded. */
  pretraining: PreparedData | null;
  /** The same network with random weights, for baselines: built on first call, disposed with the model. */
  randomWeights: () => L3Net;
}

/**
 * Obtains an evaluation experiment's model (see obtainModel) and runs `body` with it, so that every
 * experiment disposes the model, and its random-weights twin, however `body` ends.
 */
export async function withEvalModel<T>(
  ctx: Omit<ExperimentContext<object>, "config">,
  config: EvalModelConfig,
  body: (m: EvalModel) => Promise<T>,
): Promise<T> {
  const { model, source, training, pretraining } = await obtainModel({
    checkpoint: config.checkpoint,
    model: config.model,
    data: config.data,
    train: config.train,
    seed: ctx.seeds[0] as number,
    out: ctx.out,
    resume: ctx.resume,
    signal: ctx.signal,
    log: ctx.log,
  });
  let random: L3Net | undefined;
  const randomWeights = () => {
    random ??= randomWeightsModel(model);
    return random;
  };
  try {
    return await body({ model, source, training, pretraining, randomWeights });
  } finally {
    random?.dispose();
    model.dispose();
  }
}

/**
 * Writes an evaluation experiment's table with provenance that records which model was evaluated
 * (`checkpointUsed`: results from a checkpoint and from a fresh training run must not be confused),
 * the engine that trained it, and whether the time guard cut that training short.
 */
export async function writeEvalResults(
  ctx: Omit<ExperimentContext<object>, "config">,
  args: {
    experiment: string;
    config: { model: ModelSection; train: RecipeTrain };
    model: Pick<EvalModel, "source" | "training">;
    data: PreparedData;
    table: TableRow[];
    title: string;
    notes: string[];
    /** Extra provenance fields (e.g. which clips pretrained the model and which were probed). */
    provenanceExtra?: Record<string, unknown>;
  },
): Promise<ExperimentResult> {
  const { source, training } = args.model;
  const { engine, cutShort } = training
    ? summarizeTraining([training])
    : { engine: { name: "none", reason: `no training in this run: the model was loaded from ${source}` }, cutShort: null };
  const provenance = runProvenance(ctx, {
    experiment: args.experiment,
    config: { ...args.config, checkpointUsed: source },
    seeds: [ctx.seeds[0] as number],
    engine,
    cutShort,
    manifest: args.data.manifestPath,
    tfBackend: false,
  });
  const cfg = args.config;
  const recipe = recipeLine({
    preset: cfg.model.preset,
    fusion: cfg.model.fusion,
    train: training ? cfg.train : null,
    checkpoint: source,
    engine,
    seeds: [ctx.seeds[0] as number],
    threads: ctx.backend.threads,
  });
  const written = await writeResults({
    dir: ctx.out,
    table: args.table,
    provenance: { ...provenance, ...args.provenanceExtra },
    recipe,
    title: args.title,
    resultsRoot: ctx.resultsRoot,
    notes: args.notes,
  });
  return {
    out: ctx.out,
    files: written.files,
    summary: `${args.experiment}: ${path.relative(process.cwd(), ctx.out) || "."}/table.md`,
    engine,
    cutShort,
  };
}
