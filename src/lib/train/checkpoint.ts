import { existsSync, promises as fsp } from "node:fs";
import * as path from "node:path";
import type { AvcSamplerState } from "../data";
import { type L3Net, loadWeightsInto, readModelWeights, saveModel } from "../models";
import { errorMessage, L3kitError, tempPathFor, writeError, writeJsonAtomic } from "../util";
import { loadBundle, saveBundle, type TensorBundle } from "./bundle";
import type { TrainAvcConfig } from "./config";
import type { AdamState } from "./optimizer";

/** The trainer's state in a checkpoint (`trainer.json`); with the model and optimizer it resumes a run exactly. */
export interface CheckpointState {
  step: number;
  epoch: number;
  pairsPerEpoch: number;
  sampler: AvcSamplerState;
  best: { step: number; valAccuracy: number } | null;
  elapsedSec: number;
  config: TrainAvcConfig;
  /** Each Trainer callback's own state ({@link TrainerCallback.stateDict}), by its state key. */
  callbacks?: Record<string, unknown>;
  /** Checkpoints written before callbacks kept their own state: the early-stopping count (now `callbacks["early-stopping"]`). */
  evalsSinceBest?: number;
  /** Checkpoints written before callbacks kept their own state: the metrics window's sums (now `callbacks.metrics`). */
  window?: { loss: number; accuracy: number; n: number; samples: number; seconds: number };
}

/**
 * Writes a checkpoint folder `<root>/<name>/` atomically: everything goes into a temp folder which
 * is renamed into place (an existing folder of that name is swapped out, then removed), and
 * `latest.json` is updated last. The folder holds the model (loadable by `loadModel`),
 * `optimizer.bin` and `trainer.json`. The checkpoint is engine-neutral: the model's weights (an engine
 * that keeps its own copy syncs them into the model first) and the optimizer state by the model's
 * parameter names and layouts.
 */
export async function saveCheckpoint(
  root: string,
  name: string,
  model: L3Net,
  optimizer: AdamState,
  state: CheckpointState,
): Promise<string> {
  const final = path.join(root, name);
  const tmp = tempPathFor(path.join(root, name));
  try {
    await fsp.mkdir(tmp, { recursive: true });
    await saveModel(model, tmp, { step: state.step, epoch: state.epoch, best: state.best });
    const bundle: TensorBundle = {};
    for (const [k, v] of Object.entries(optimizer.m)) bundle[`m/${k}`] = v;
    for (const [k, v] of Object.entries(optimizer.v)) bundle[`v/${k}`] = v;
    await saveBundle(path.join(tmp, "optimizer.bin"), bundle);
    await writeJsonAtomic(path.join(tmp, "trainer.json"), { ...state, optimizerStep: optimizer.step });
    let old: string | null = null;
    if (existsSync(final)) {
      old = `${tmp}.old`;
      await fsp.rename(final, old);
    }
    await fsp.rename(tmp, final);
    if (old) await fsp.rm(old, { recursive: true, force: true });
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
    const e = writeError(final, err, "cannot write the checkpoint");
    // a file of the temp folder failed: name the checkpoint (and the file) instead of the temp path
    if (e.subject?.startsWith(tmp))
      throw new L3kitError(`cannot write the checkpoint (${path.relative(tmp, e.subject)}): ${e.message.slice(e.subject.length + 2)}`, {
        subject: final,
        reason: e.reason,
        cause: err,
      });
    throw e;
  }
  if (name !== "best") await writeJsonAtomic(path.join(root, "latest.json"), { name, step: state.step });
  return final;
}

/** Periodic checkpoints (`step-*`) in a folder, oldest first. */
export async function listCheckpoints(root: string): Promise<Array<{ dir: string; step: number }>> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return [];
  }
  return names
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ dir: path.join(root, m[0]), step: Number(m[1]) }))
    .sort((a, b) => a.step - b.step);
}

/** Removes all but the newest `keep` periodic checkpoints (the `best` folder is separate). */
export async function pruneCheckpoints(root: string, keep: number): Promise<void> {
  const all = await listCheckpoints(root);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await fsp.rm(c.dir, { recursive: true, force: true });
}

/** The folder of the latest complete checkpoint, or null. */
export async function readLatestCheckpoint(root: string): Promise<string | null> {
  try {
    const latest = JSON.parse(await fsp.readFile(path.join(root, "latest.json"), "utf8")) as { name: string };
    const dir = path.join(root, latest.name);
    if (existsSync(path.join(dir, "trainer.json"))) return dir;
  } catch {}
  // latest.json missing or stale: fall back to the newest complete step folder
  const all = (await listCheckpoints(root)).filter((c) => existsSync(path.join(c.dir, "trainer.json")));
  return all.length ? (all[all.length - 1] as { dir: string }).dir : null;
}

/**
 * Why the checkpoint in `dir` cannot be resumed from, or null when it is intact: `trainer.json`
 * parses and has a step, `model.json` and the weights check out (size and SHA-256), and
 * `optimizer.bin` decodes. Reads the files; changes nothing.
 */
export async function checkpointProblem(dir: string): Promise<string | null> {
  const file = path.join(dir, "trainer.json");
  try {
    let st: Partial<CheckpointState>;
    try {
      st = JSON.parse(await fsp.readFile(file, "utf8")) as Partial<CheckpointState>;
    } catch (err) {
      return `${file}: ${err instanceof SyntaxError ? `not valid JSON (${err.message})` : errorMessage(err)}`;
    }
    if (typeof st?.step !== "number") return `${file}: no step recorded`;
    await readModelWeights(dir);
    await loadBundle(path.join(dir, "optimizer.bin"));
    return null;
  } catch (err) {
    return errorMessage(err);
  }
}

/** The step a checkpoint folder holds (from `trainer.json`), or null when it cannot be read. */
async function checkpointStep(dir: string): Promise<number | null> {
  try {
    const st = JSON.parse(await fsp.readFile(path.join(dir, "trainer.json"), "utf8")) as { step?: unknown };
    return typeof st.step === "number" ? st.step : null;
  } catch {
    return null;
  }
}

/**
 * The newest intact checkpoint in `root` other than `except` (periodic ones, newest first, then
 * `best`), with its step, or null when there is none.
 */
export async function newestIntactCheckpoint(root: string, except?: string): Promise<{ dir: string; step: number } | null> {
  const candidates = (await listCheckpoints(root)).reverse().map((c) => c.dir);
  candidates.push(path.join(root, "best"));
  for (const dir of candidates) {
    if (except && path.resolve(dir) === path.resolve(except)) continue;
    if (!existsSync(dir)) continue;
    if ((await checkpointProblem(dir)) !== null) continue;
    const step = await checkpointStep(dir);
    if (step !== null) return { dir, step };
  }
  return null;
}

/**
 * Makes the checkpoint `dir` the one a resume continues from: it must be intact; the periodic
 * checkpoints of its folder with a later step are renamed `<name>.superseded-<time>` (kept, never
 * read again) and `latest.json` is pointed at `dir`. Returns its step. Used by `--resume-from DIR`.
 */
export async function rollBackToCheckpoint(dir: string): Promise<number> {
  const abs = path.resolve(dir);
  const problem = existsSync(abs) ? await checkpointProblem(abs) : "no such folder";
  if (problem !== null) throw new L3kitError(`cannot resume from this checkpoint: ${problem}`, { subject: abs, reason: "bad-checkpoint" });
  const step = (await checkpointStep(abs)) as number;
  const root = path.dirname(abs);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  for (const c of await listCheckpoints(root)) {
    if (c.step > step && path.resolve(c.dir) !== abs) await fsp.rename(c.dir, `${c.dir}.superseded-${stamp}`);
  }
  await writeJsonAtomic(path.join(root, "latest.json"), { name: path.basename(abs), step });
  return step;
}

/**
 * Loads a checkpoint's weights into `model`; returns the trainer state and the optimizer state (for
 * {@link TrainingEngine.setOptimizerState}, which re-reads the parameters from the model).
 */
export async function restoreCheckpoint(
  dir: string,
  model: L3Net,
): Promise<{ state: CheckpointState & { optimizerStep: number }; optimizer: AdamState }> {
  let state: CheckpointState & { optimizerStep: number };
  try {
    state = JSON.parse(await fsp.readFile(path.join(dir, "trainer.json"), "utf8"));
  } catch (err) {
    throw new L3kitError(`cannot read trainer state: ${(err as Error).message}`, { subject: dir, reason: "bad-checkpoint", cause: err });
  }
  await loadWeightsInto(model, dir);
  const bundle = await loadBundle(path.join(dir, "optimizer.bin"));
  const m: Record<string, { shape: number[]; data: Float32Array }> = {};
  const v: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, e] of Object.entries(bundle)) {
    if (k.startsWith("m/")) m[k.slice(2)] = e;
    else if (k.startsWith("v/")) v[k.slice(2)] = e;
  }
  return { state, optimizer: { step: state.optimizerStep, m, v } };
}
