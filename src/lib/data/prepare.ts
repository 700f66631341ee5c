/**
 * {@link openDataset}: the dataset a notebook or script works on — a manifest (yours, or the
 * synthetic benchmark generated once) and its sample cache at a model's input sizes (decoded once) —
 * in one call, reused by every later call with the same settings.
 */
import { existsSync, rmSync } from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../util";
import type { PairSource } from "./batches";
import { buildSampleCache, openSampleCache, SAMPLE_CACHE_VERSION, type SampleCache, sampleCacheVersion } from "./cache";
import { loadManifest, type Manifest } from "./manifest";
import { generateSynthDataset, SYNTH_PROFILES, type SynthProfileName } from "./synth/generate";

/**
 * What a sample cache is decoded for: a model's frame side and audio window. A resolved
 * `L3NetConfig` (`resolveL3Config("tiny")`) has these fields. (`frontEnd` is optional here only so
 * that the config's type fits under `strict: false` too, as notebooks compile; it is checked.)
 */
export interface CacheInputs {
  vision: { frontEnd?: { resizeTo: number } };
  audio: { frontEnd?: { sampleRate: number; durationSec: number } };
}

/** The sizes {@link CacheInputs} gives, once checked. */
interface CacheSizes {
  side: number;
  sampleRate: number;
  audioSec: number;
}

/** The synthetic benchmark {@link openDataset} generates when no manifest is given. */
export interface SynthSettings {
  /** Number of clips (≥ 2). */
  clips: number;
  /** Number of sounding-object classes (default 10). */
  classes?: number;
  /** "tiny" (CI), "default" or "realistic" (default "default"). */
  profile?: SynthProfileName;
  /** Generation seed (default 1, as the experiments). */
  seed?: number;
}

/** Options of {@link openDataset}. */
export interface OpenDatasetOptions {
  /** A manifest of your own (JSONL). Without it, the synthetic benchmark `synth` is used. */
  manifest?: string;
  /** The synthetic benchmark to generate (or reuse) when no manifest is given. */
  synth?: SynthSettings;
  /** The model the sample cache is decoded for (its frame side and audio window): a resolved L3NetConfig. */
  model: CacheInputs;
  /** (frame, audio) samples cached per clip (an integer ≥ 1). */
  perClip: number;
  /** Folder of generated data and caches (default ".cache/l3kit", shared with `npm run experiment`). */
  cacheRoot?: string;
  /** Lines about what is generated or decoded (default: none). */
  log?: (line: string) => void;
}

/** A dataset ready to train and evaluate on: its manifest and its sample cache. */
export interface DatasetHandle {
  manifest: Manifest;
  manifestPath: string;
  /** The synthetic benchmark's folder (its metadata.json holds the known answers); null for your own manifest. */
  synthDir: string | null;
  /** The sample cache: `perClip` pre-decoded (frame, audio) samples per clip at the model's input sizes. */
  cache: SampleCache;
  cacheDir: string;
  /** One split's clips as a pair source (a ConfigError naming the split when it has none). */
  split(name: string): PairSource;
  /** Closes the cache's open files. */
  close(): void;
}

function checkCount(value: unknown, subject: string, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min)
    throw new ConfigError(`must be an integer ≥ ${min}, got ${JSON.stringify(value)}`, { subject, reason: "bad-option" });
  return value;
}

/** Checks every option before anything is generated or decoded; returns the cache's sizes. */
function checkOptions(opts: OpenDatasetOptions): CacheSizes {
  if (typeof opts !== "object" || opts === null) throw new ConfigError("expected an options object", { subject: "openDataset" });
  if (opts.manifest !== undefined && opts.synth !== undefined)
    throw new ConfigError("give either a manifest or synth settings, not both", { subject: "openDataset", reason: "bad-option" });
  if (opts.manifest === undefined && opts.synth === undefined)
    throw new ConfigError("give a manifest file or synth settings (the synthetic benchmark)", {
      subject: "openDataset",
      reason: "bad-option",
    });
  if (opts.manifest !== undefined && (typeof opts.manifest !== "string" || !existsSync(opts.manifest)))
    throw new ConfigError(`manifest not found: ${String(opts.manifest)}`, { subject: "openDataset.manifest", reason: "missing" });
  if (opts.synth) {
    checkCount(opts.synth.clips, "openDataset.synth.clips", 2);
    if (opts.synth.classes !== undefined) checkCount(opts.synth.classes, "openDataset.synth.classes", 2);
    if (opts.synth.profile !== undefined && !Object.hasOwn(SYNTH_PROFILES, opts.synth.profile))
      throw new ConfigError(`must be one of ${Object.keys(SYNTH_PROFILES).join(", ")}, got '${opts.synth.profile}'`, {
        subject: "openDataset.synth.profile",
        reason: "bad-option",
      });
  }
  checkCount(opts.perClip, "openDataset.perClip", 1);
  const v = opts.model?.vision?.frontEnd;
  const a = opts.model?.audio?.frontEnd;
  if (!v || !a || !(v.resizeTo > 0 && a.sampleRate > 0 && a.durationSec > 0))
    throw new ConfigError('expected a resolved model config, e.g. resolveL3Config("tiny")', {
      subject: "openDataset.model",
      reason: "bad-option",
    });
  return { side: v.resizeTo, sampleRate: a.sampleRate, audioSec: a.durationSec };
}

/** The synthetic benchmark's folder under `root`, generated on first use (the experiments' naming, so both share it). */
async function synthManifest(root: string, s: SynthSettings, log: (line: string) => void): Promise<{ dir: string; file: string }> {
  const profile = s.profile ?? "default";
  const classes = s.classes ?? 10;
  const seed = s.seed ?? 1;
  const dir = path.resolve(root, "synth", `${profile}-k${classes}-n${s.clips}-seed${seed}`);
  if (!existsSync(path.join(dir, "metadata.json"))) {
    log(`data: generating the synthetic benchmark (${s.clips} clips, ${classes} classes, ${profile} profile) into ${dir}`);
    const made = await generateSynthDataset({ out: dir, clips: s.clips, classes, seed, profile });
    log(`data: ${made.rows.length} clips in ${made.elapsedSec.toFixed(1)} s`);
  }
  return { dir, file: path.join(dir, "manifest.jsonl") };
}

/** The sample cache of `manifest` at the model's sizes under `root`, decoded on first use (rebuilt when of an older format). */
async function sampleCacheFor(
  root: string,
  manifest: Manifest,
  perClip: number,
  { side, sampleRate, audioSec }: CacheSizes,
  log: (line: string) => void,
): Promise<SampleCache> {
  const dir = path.resolve(root, "samples", `${manifest.hash.slice(0, 12)}-${side}px-${sampleRate}hz-k${perClip}`);
  const version = sampleCacheVersion(dir);
  if (version !== null && version !== SAMPLE_CACHE_VERSION) {
    log(`data: ${dir} holds a sample cache of format ${version}; rebuilding it (format ${SAMPLE_CACHE_VERSION})`);
    rmSync(dir, { recursive: true, force: true });
  }
  if (!existsSync(path.join(dir, "index.json")) || !openSampleCache(dir, { allowPartial: true }).index.complete) {
    log(`data: pre-decoding ${perClip} samples per clip into ${dir}`);
    const built = await buildSampleCache({
      manifest,
      out: dir,
      perClip,
      frameSize: { shortSide: side },
      sampleRate,
      audioSec,
      seed: 0,
    });
    log(`data: ${built.samples} samples from ${built.clips} clips in ${built.seconds.toFixed(1)} s`);
  }
  return openSampleCache(dir);
}

/**
 * Opens a dataset for AVC training and evaluation in one call: loads `manifest` (or generates the
 * synthetic benchmark `synth` under `cacheRoot`, once), and pre-decodes its sample cache at the
 * model's input sizes (once; an interrupted build resumes). Later calls with the same settings — in
 * this notebook, the next one, or `npm run experiment` — reuse both. Options are checked before
 * anything is generated or decoded.
 *
 * ```ts
 * const data = await openDataset({ synth: { clips: 120 }, model: resolveL3Config("tiny"), perClip: 8 });
 * await trainAvc({ model, train: data.split("train"), val: data.split("val"), out: "runs/a" });
 * ```
 */
export async function openDataset(opts: OpenDatasetOptions): Promise<DatasetHandle> {
  const sizes = checkOptions(opts);
  const root = opts.cacheRoot ?? ".cache/l3kit";
  const log = opts.log ?? (() => {});
  const synth = opts.synth ? await synthManifest(root, opts.synth, log) : null;
  const manifestPath = path.resolve(synth ? synth.file : (opts.manifest as string));
  const manifest = await loadManifest(manifestPath);
  if (!manifest.rows.some((r) => r.hasAudio))
    throw new ConfigError("the manifest has no clip with an audio track: AVC needs audio", { subject: manifestPath, reason: "no-audio" });
  const cache = await sampleCacheFor(root, manifest, opts.perClip, sizes, log);
  return {
    manifest,
    manifestPath,
    synthDir: synth?.dir ?? null,
    cache,
    cacheDir: cache.dir,
    split(name: string): PairSource {
      const source = cache.subset(name);
      if (source.clips.length === 0)
        throw new ConfigError(`no clips in split '${name}' of ${manifestPath}`, { subject: "split", reason: "empty-split" });
      return source;
    },
    close: () => cache.close(),
  };
}
