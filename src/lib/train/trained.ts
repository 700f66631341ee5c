/**
 * {@link trainedModel}: an AVC-trained L³-Net for given data and settings, trained once (resumed if
 * it was interrupted) and loaded from its run folder by every later call with the same settings.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { DatasetHandle } from "../data";
import { buildL3Net, type L3Net, type L3NetConfig, type L3NetConfigInput, type L3PresetName, loadModel, resolveL3Config } from "../models";
import { ConfigError, L3kitError } from "../util";
import { type TrainAvcConfig, type TrainAvcResult, type TrainCallbacks, trainAvc } from "./loop";

/** Options of {@link trainedModel}. */
export interface TrainedModelOptions {
  /** The dataset ({@link openDataset}): its `train` split is fitted, its `val` split validates. */
  data: Pick<DatasetHandle, "manifest" | "cacheDir" | "split">;
  /** The network: a preset name, a config, or a partial config over a preset. */
  model: L3PresetName | L3NetConfig | L3NetConfigInput;
  /** Training settings over the defaults of `trainAvc` (`steps` at least). */
  config: Partial<TrainAvcConfig> & { steps: number };
  /** Seed of the initial weights (default `config.seed`, else 0). */
  seed?: number;
  /** The run folder. Default: `<cacheRoot>/runs/<preset>-<fusion>-<hash of data, model and settings>`. */
  out?: string;
  /** Default ".cache/l3kit" (as {@link openDataset}). */
  cacheRoot?: string;
  /** Hooks while training (e.g. live learning curves); not called when the model is reused. */
  callbacks?: TrainCallbacks;
  /** Progress display while training (default false). */
  progress?: boolean;
}

/** What {@link trainedModel} gives. */
export interface TrainedModel {
  /** The model of `checkpoint`: the best validation checkpoint, else the last one. The caller disposes it. */
  model: L3Net;
  checkpoint: string;
  /** The run's summary (as `trainAvc` returned it when it finished). */
  run: TrainAvcResult;
  /** The run folder (metrics.jsonl, checkpoints/, summary.json). */
  out: string;
  /**
   * Whether this call trained (or resumed) the run; false when a finished run was reused. A run the
   * time guard (`config.maxSeconds`) cut short says so in `run.stoppedBy`; the next call resumes it.
   */
  trainedNow: boolean;
}

/** JSON with sorted keys, so that equal settings give equal text whatever their key order. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

function checkOptions(opts: TrainedModelOptions): void {
  if (typeof opts !== "object" || opts === null) throw new ConfigError("expected an options object", { subject: "trainedModel" });
  if (typeof opts.data?.split !== "function" || typeof opts.data.manifest?.hash !== "string")
    throw new ConfigError("expected a dataset from openDataset()", { subject: "trainedModel.data", reason: "bad-option" });
  if (opts.model === undefined) throw new ConfigError("is required (a preset name or a config)", { subject: "trainedModel.model" });
  const steps = opts.config?.steps;
  if (typeof steps !== "number" || !Number.isInteger(steps) || steps < 1)
    throw new ConfigError(`must be an integer ≥ 1, got ${JSON.stringify(steps)}`, {
      subject: "trainedModel.config.steps",
      reason: "bad-option",
    });
  if (opts.seed !== undefined && !Number.isInteger(opts.seed))
    throw new ConfigError(`must be an integer, got ${JSON.stringify(opts.seed)}`, { subject: "trainedModel.seed", reason: "bad-option" });
}

/** The summary of a finished run in `out` (null when there is none, or the run stopped before `steps`). */
function finishedRun(out: string, steps: number): TrainAvcResult | null {
  const file = path.join(out, "summary.json");
  if (!existsSync(file)) return null;
  const run = JSON.parse(readFileSync(file, "utf8")) as TrainAvcResult;
  return run.steps >= steps || run.stoppedBy === "early-stopping" ? run : null;
}

/**
 * Returns a model trained on Audio-Visual Correspondence with the given data and settings. The first
 * call trains it into a run folder named after a hash of the data, the model config and the
 * settings (an interrupted run resumes exactly); every later call with the same settings — this
 * notebook rerun, or the next notebook — loads it from there. Options are checked before anything
 * is built or trained.
 *
 * ```ts
 * const data = await openDataset({ synth: { clips: 120 }, model: resolveL3Config("tiny"), perClip: 8 });
 * const { model, run } = await trainedModel({ data, model: "tiny", config: { steps: 500, evalEvery: 50 } });
 * ```
 */
export async function trainedModel(opts: TrainedModelOptions): Promise<TrainedModel> {
  checkOptions(opts);
  const config = resolveL3Config(opts.model);
  const seed = opts.seed ?? opts.config.seed ?? 0;
  const { maxSeconds: _guard, ...settings } = opts.config; // the time guard does not change the model
  const key = createHash("sha256")
    .update(stableJson({ manifest: opts.data.manifest.hash, cache: path.basename(opts.data.cacheDir), config, settings, seed }))
    .digest("hex")
    .slice(0, 12);
  const out = path.resolve(opts.out ?? path.join(opts.cacheRoot ?? ".cache/l3kit", "runs", `${config.name}-${config.fusion}-${key}`));
  let run = finishedRun(out, opts.config.steps);
  const trainedNow = run === null;
  if (run === null) {
    const fresh = buildL3Net(config, { seed });
    try {
      run = await trainAvc({
        model: fresh,
        train: opts.data.split("train"),
        val: opts.data.split("val"),
        out,
        config: { ...opts.config, seed: opts.config.seed ?? seed },
        resume: true,
        callbacks: opts.callbacks,
        progress: opts.progress ?? false,
      });
    } finally {
      fresh.dispose();
    }
  }
  const checkpoint = run.bestCheckpoint ?? run.checkpoints[run.checkpoints.length - 1];
  if (!checkpoint) throw new L3kitError("the run holds no checkpoint", { subject: out, reason: "no-checkpoint" });
  return { model: await loadModel(checkpoint), checkpoint, run, out, trainedNow };
}
