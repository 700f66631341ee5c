/**
 * The pre-decoded sample cache: `perClip` (frame, audio window) samples of every clip of a manifest
 * in binary shards with a JSON index, read back by positioned reads.
 *
 * Frames are stored as the paper's pipeline needs them before its crop: by default the short side
 * is resized to the model's `resizeTo` and the aspect is kept (a 320×568 portrait video → 256×454),
 * so training's random crop can land anywhere on the frame and evaluation's centre crop is exactly
 * the one the direct decoding paths (probes, localization, `embed`) take. Storing centre-cropped
 * squares instead would be smaller, but would confine the random crops to the centre square.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, promises as fsp, openSync, readFileSync, readSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type FrameSize, type RgbFrame, readSamples } from "../media";
import {
  ConfigError,
  checkWritableDir,
  errorMessage,
  L3kitError,
  Pool,
  Rng,
  removeStaleTempFiles,
  tempPathFor,
  writeError,
  writeFileAtomic,
  writeJsonAtomic,
} from "../util";
import type { LoadedPair, PairSource, PairSourceOrigin } from "./batches";
import { manifestHash } from "./manifest";
import type { AvcClip, AvcPair } from "./sampler";
import { type ShardSpec, shardOfId } from "./shard";
import type { ManifestRow } from "./types";

/** Settings that define a sample cache's content (a rerun with other settings is refused). */
export interface SampleCacheConfig {
  /** Samples (frame + audio window) per clip. */
  perClip: number;
  /**
   * Stored frame size: `{ shortSide }` (the short side resized to it, aspect kept: use the model's
   * `resizeTo`, e.g. 256 for 224 crops) or `{ width, height }` (every frame stretched to exactly
   * that size, whatever its aspect: only for sources already that size).
   */
  frameSize: FrameSize;
  sampleRate: number;
  /** Audio window length in seconds, centred on each sample time. */
  audioSec: number;
  seed: number | string;
  /**
   * "float32" (default) is exact and the fastest to read; "int16" halves the audio bytes (a sample
   * of a 224×224 frame + 1 s at 48 kHz: 246 KB instead of 342 KB) at a quantisation step of 1/32767
   * and about 3× the read cost.
   */
  audioFormat: "int16" | "float32";
  clipsPerShard: number;
}

/** A clip the cache could not decode (or that has no audio). */
export interface CacheSkip {
  rowIndex: number;
  id: string;
  path: string;
  reason: string;
  message: string;
}

/** A clip in a shard: its samples are consecutive, at `times`. */
export interface CacheShardClip {
  rowIndex: number;
  id: string;
  durationSec: number;
  label?: string;
  split: string;
  times: number[];
  /** Width and height of this clip's stored frames (every sample of a clip has the same size). */
  frame: [number, number];
}

/** One finished shard. */
export interface CacheShard {
  file: string;
  /** Manifest rows [start, end) this shard covers. */
  rows: [number, number];
  clips: CacheShardClip[];
  numSamples: number;
  bytes: number;
  skipped: CacheSkip[];
}

/**
 * The cache format this l3kit writes and reads. 1: every frame stretched to one fixed size (a fixed
 * sample stride); 2: frames keep their aspect, so their size is recorded per clip.
 */
export const SAMPLE_CACHE_VERSION = 2;

/** The JSON index (`index.json`) of a sample cache. */
export interface SampleCacheIndex {
  kind: "l3kit-sample-cache";
  version: typeof SAMPLE_CACHE_VERSION;
  manifest: { file?: string; hash: string; rows: number };
  config: SampleCacheConfig;
  /** Audio samples per sample; a sample's bytes are its frame (padded to 4 bytes), then its audio. */
  audioSamples: number;
  headerBytes: number;
  /** One entry per planned shard; null until it is written. */
  shards: Array<CacheShard | null>;
  complete: boolean;
  /**
   * Set in a part of a sharded build (`--shard i/N`): its shard files hold only the clips whose id
   * hashes to shard `index` of `count` ({@link shardOfId}); `data merge` joins the parts. A part is
   * not a cache: {@link openSampleCache} refuses it.
   */
  partition?: ShardSpec;
  /** Written by older versions; the index has no timestamps now, so equal builds give equal bytes. */
  updatedAt?: string;
}

/** Progress of a cache build. */
export interface CacheProgress {
  clipsDone: number;
  clipsTotal: number;
  /** Clips found already cached when the build started (resume). */
  clipsResumed: number;
  samplesDone: number;
  shardsDone: number;
  shardsTotal: number;
  skipped: number;
  /** The clip just finished (undefined for the initial call). */
  id?: string;
  elapsedSec: number;
}

/** Options of {@link buildSampleCache}. */
export interface BuildSampleCacheOptions extends Partial<Omit<SampleCacheConfig, "perClip" | "frameSize" | "sampleRate">> {
  /** The clips: manifest rows (paths absolute, as `loadManifest` gives them) or a manifest object. */
  manifest: { rows: readonly ManifestRow[]; file?: string; hash?: string } | readonly ManifestRow[];
  /** Output folder (created). */
  out: string;
  perClip: number;
  /** See {@link SampleCacheConfig.frameSize}: `{ shortSide: resizeTo }` for a model's training and evaluation. */
  frameSize: FrameSize;
  /** Default 48000. */
  sampleRate?: number;
  /** Parallel clip decodes (default 2). */
  concurrency?: number;
  onProgress?: (p: CacheProgress) => void;
  /** Decoder (default media's readSamples); injectable for other backends and tests. */
  decode?: typeof readSamples;
  /** Decode only the clips of this shard ({@link shardOfId}) and mark the index as a part (see {@link SampleCacheIndex.partition}). */
  partition?: ShardSpec;
}

/** What {@link buildSampleCache} did. */
export interface CacheBuildResult {
  dir: string;
  index: SampleCacheIndex;
  shardsBuilt: number;
  shardsResumed: number;
  clips: number;
  samples: number;
  skipped: CacheSkip[];
  seconds: number;
}

const MAGIC = "L3KCACHE";
/** Bytes of a shard file's header. */
const HEADER_BYTES = 32;

/** Name of shard `i`'s file. */
function shardFile(i: number): string {
  return `shard-${String(i).padStart(5, "0")}.bin`;
}

/**
 * Sample times for one clip: `perClip` instants spread over the clip (one uniform draw in each of
 * `perClip` equal strata of [w/2, duration − w/2]), seeded by the cache seed and the clip id.
 */
export function cacheSampleTimes(id: string, durationSec: number, perClip: number, audioSec: number, seed: number | string): number[] {
  const rng = new Rng(`${seed}|cache-times|${id}`);
  const lo = audioSec / 2;
  const hi = durationSec - audioSec / 2;
  const out: number[] = [];
  for (let k = 0; k < perClip; k++) {
    const u = rng.next();
    out.push(hi > lo ? lo + ((k + u) / perClip) * (hi - lo) : durationSec / 2);
  }
  return out;
}

/**
 * Pre-decodes `perClip` (frame, audio) samples of every clip into binary shards with a JSON index.
 * Shards and the index are written atomically; a rerun with the same settings resumes (finished
 * shards are skipped); clips that fail to decode are skipped and listed in the index.
 */
export async function buildSampleCache(opts: BuildSampleCacheOptions): Promise<CacheBuildResult> {
  const t0 = Date.now();
  const rows: readonly ManifestRow[] = Array.isArray(opts.manifest)
    ? (opts.manifest as readonly ManifestRow[])
    : (opts.manifest as { rows: readonly ManifestRow[] }).rows;
  const m = Array.isArray(opts.manifest) ? {} : (opts.manifest as { file?: string; hash?: string });
  const config: SampleCacheConfig = {
    perClip: opts.perClip,
    frameSize:
      "shortSide" in opts.frameSize
        ? { shortSide: opts.frameSize.shortSide }
        : { width: opts.frameSize.width, height: opts.frameSize.height },
    sampleRate: opts.sampleRate ?? 48000,
    audioSec: opts.audioSec ?? 1,
    seed: opts.seed ?? 0,
    audioFormat: opts.audioFormat ?? "float32",
    clipsPerShard: opts.clipsPerShard ?? 32,
  };
  checkConfig(config);
  const dir = path.resolve(opts.out);
  const audioSamples = Math.round(config.audioSec * config.sampleRate);
  const numShards = Math.ceil(rows.length / config.clipsPerShard);
  const hash = m.hash ?? manifestHash(rows);
  const indexFile = path.join(dir, "index.json");

  // Before any decoding: the folder must be writable and belong to these settings (claimed now if new).
  await checkWritableDir(dir, "out");
  await claimCacheFolder(dir, config, { hash, rows: rows.length }, numShards);
  await removeStaleTempFiles(dir);
  const partition = opts.partition ? { index: opts.partition.index, count: opts.partition.count } : undefined;
  const index = openOrCreateIndex(dir, config, { file: m.file, hash, rows: rows.length }, numShards, audioSamples, partition);
  const mine = (row: ManifestRow) => !partition || shardOfId(row.id, partition.count) === partition.index;
  const rowsTotal = partition ? rows.filter(mine).length : rows.length;

  // Shards recorded as done whose file is missing or has the wrong size are rebuilt.
  let shardsResumed = 0;
  let clipsResumed = 0;
  index.shards.forEach((s, i) => {
    if (!s) return;
    const file = path.join(dir, s.file);
    if (existsSync(file) && statSync(file).size === s.bytes) {
      shardsResumed++;
      clipsResumed += rows.slice(s.rows[0], s.rows[1]).filter(mine).length;
    } else index.shards[i] = null;
  });

  const decode = opts.decode ?? readSamples;
  const pool = new Pool(opts.concurrency ?? 2);
  const progress: CacheProgress = {
    clipsDone: clipsResumed,
    clipsTotal: rowsTotal,
    clipsResumed,
    samplesDone: index.shards.reduce((s, x) => s + (x?.numSamples ?? 0), 0),
    shardsDone: shardsResumed,
    shardsTotal: numShards,
    skipped: index.shards.reduce((s, x) => s + (x?.skipped.length ?? 0), 0),
    elapsedSec: 0,
  };
  opts.onProgress?.({ ...progress });
  let shardsBuilt = 0;

  for (let s = 0; s < numShards; s++) {
    if (index.shards[s]) continue;
    const start = s * config.clipsPerShard;
    const end = Math.min(rows.length, start + config.clipsPerShard);
    const results = await Promise.all(
      rows.slice(start, end).flatMap((row, j) =>
        mine(row)
          ? [
              pool.run(async () => {
                const res = await decodeClip(row, start + j, config, audioSamples, decode);
                progress.clipsDone++;
                if ("skip" in res) progress.skipped++;
                else progress.samplesDone += res.clip.times.length;
                progress.elapsedSec = (Date.now() - t0) / 1000;
                opts.onProgress?.({ ...progress, id: row.id });
                return res;
              }),
            ]
          : [],
      ),
    );
    const good = results.flatMap((r) => ("skip" in r ? [] : [r]));
    const numSamples = good.reduce((n, r) => n + r.clip.times.length, 0);
    const buf = encodeShard(good, numSamples, config, audioSamples);
    const file = shardFile(s);
    await writeFileAtomic(path.join(dir, file), buf);
    index.shards[s] = {
      file,
      rows: [start, end],
      clips: good.map((r) => r.clip),
      numSamples,
      bytes: buf.length,
      skipped: results.flatMap((r) => ("skip" in r ? [r.skip] : [])),
    };
    index.complete = index.shards.every((x) => x !== null);
    await writeJsonAtomic(indexFile, index);
    shardsBuilt++;
    progress.shardsDone++;
    progress.elapsedSec = (Date.now() - t0) / 1000;
    opts.onProgress?.({ ...progress });
  }
  if (!index.complete || numShards === 0) {
    index.complete = true;
    await writeJsonAtomic(indexFile, index);
  }
  const done = index.shards as CacheShard[];
  return {
    dir,
    index,
    shardsBuilt,
    shardsResumed,
    clips: done.reduce((n, s) => n + s.clips.length, 0),
    samples: done.reduce((n, s) => n + s.numSamples, 0),
    skipped: done.flatMap((s) => s.skipped),
    seconds: (Date.now() - t0) / 1000,
  };
}

/** The file that records which settings a cache folder belongs to (written once, when the first build starts). */
export const CACHE_SETTINGS_FILE = "cache-settings.json";

/** Contents of {@link CACHE_SETTINGS_FILE}. */
export interface CacheSettingsRecord {
  kind: "l3kit-sample-cache-settings";
  version: typeof SAMPLE_CACHE_VERSION;
  /** SHA-256 of version, config, manifest hash, rows and shards: equal fingerprints build equal bytes. */
  fingerprint: string;
  config: SampleCacheConfig;
  manifest: { hash: string; rows: number };
  shards: number;
  createdAt: string;
  /** The process that claimed the folder (`pid@host`), for the error a later builder gets. */
  createdBy: string;
}

/** The fingerprint of a cache's settings (see {@link CacheSettingsRecord.fingerprint}). */
export function cacheFingerprint(config: SampleCacheConfig, manifest: { hash: string; rows: number }, shards: number): string {
  return createHash("sha256")
    .update(JSON.stringify({ version: SAMPLE_CACHE_VERSION, config, manifest: { hash: manifest.hash, rows: manifest.rows }, shards }))
    .digest("hex");
}

/**
 * Makes `dir` belong to one set of cache settings: the first builder writes {@link CACHE_SETTINGS_FILE}
 * with an exclusive create (a hard link of a complete temp file, so a reader never sees half of it);
 * a later builder with the same fingerprint goes on (builders with the same settings write the same
 * bytes, so they may share the folder), one with other settings fails at once with a ConfigError
 * naming both. A folder with an index but no settings file (built before the file existed) is
 * checked against its index instead (see openOrCreateIndex) and claimed.
 */
async function claimCacheFolder(
  dir: string,
  config: SampleCacheConfig,
  manifest: { hash: string; rows: number },
  shards: number,
): Promise<void> {
  const file = path.join(dir, CACHE_SETTINGS_FILE);
  const fingerprint = cacheFingerprint(config, manifest, shards);
  if (!existsSync(file) && existsSync(path.join(dir, "index.json"))) {
    // an older cache: its index must agree before the folder is claimed for these settings
    openOrCreateIndex(dir, config, { hash: manifest.hash, rows: manifest.rows }, shards, 0);
  }
  const record: CacheSettingsRecord = {
    kind: "l3kit-sample-cache-settings",
    version: SAMPLE_CACHE_VERSION,
    fingerprint,
    config,
    manifest: { hash: manifest.hash, rows: manifest.rows },
    shards,
    createdAt: new Date().toISOString(),
    createdBy: `${process.pid}@${os.hostname()}`,
  };
  const tmp = tempPathFor(file);
  try {
    await fsp.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
    await fsp.link(tmp, file);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw writeError(file, err);
  } finally {
    await fsp.rm(tmp, { force: true }).catch(() => {});
  }
  let there: CacheSettingsRecord;
  try {
    there = JSON.parse(await fsp.readFile(file, "utf8")) as CacheSettingsRecord;
  } catch (err) {
    throw new L3kitError(`cannot read the cache's settings: ${errorMessage(err)}; delete the folder and build again`, {
      subject: file,
      reason: "bad-cache",
      cause: err,
    });
  }
  if (there.fingerprint === fingerprint) return;
  const diff = settingsDiff(there, record);
  throw new ConfigError(
    `this cache folder belongs to different settings (claimed by ${there.createdBy ?? "?"} at ${there.createdAt ?? "?"}): ${diff}. ` +
      "Use another --out folder, or delete this one to rebuild it with the new settings",
    { subject: dir, reason: "cache-mismatch" },
  );
}

/** "seed: 0 there, 1 asked; perClip: …" for the keys two settings records differ in. */
function settingsDiff(there: CacheSettingsRecord, asked: CacheSettingsRecord): string {
  const out: string[] = [];
  const a = (there.config ?? {}) as unknown as Record<string, unknown>;
  const b = asked.config as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.push(`${k}: ${JSON.stringify(a[k])} there, ${JSON.stringify(b[k])} asked`);
  }
  if (there.manifest?.hash !== asked.manifest.hash || there.manifest?.rows !== asked.manifest.rows)
    out.push(
      `manifest: ${there.manifest?.hash?.slice(0, 12)} (${there.manifest?.rows} rows) there, ${asked.manifest.hash.slice(0, 12)} (${asked.manifest.rows} rows) asked`,
    );
  if (there.version !== asked.version) out.push(`cache format: ${there.version} there, ${asked.version} asked`);
  return out.join("; ") || "the fingerprints differ";
}

/**
 * The index of the cache in `dir` when one is there with the same settings and manifest (to
 * resume), a fresh one when none is; a ConfigError when another cache is there, an L3kitError
 * when it is of another format (see {@link readIndex}).
 */
function openOrCreateIndex(
  dir: string,
  config: SampleCacheConfig,
  manifest: SampleCacheIndex["manifest"],
  numShards: number,
  audioSamples: number,
  partition?: ShardSpec,
): SampleCacheIndex {
  if (!existsSync(path.join(dir, "index.json"))) {
    return {
      kind: "l3kit-sample-cache",
      version: SAMPLE_CACHE_VERSION,
      manifest,
      config,
      audioSamples,
      headerBytes: HEADER_BYTES,
      shards: new Array(numShards).fill(null),
      complete: false,
      ...(partition ? { partition } : {}),
    };
  }
  const index = readIndex(dir);
  delete index.updatedAt;
  const same =
    JSON.stringify(index.config) === JSON.stringify(config) &&
    index.manifest.hash === manifest.hash &&
    index.shards.length === numShards &&
    JSON.stringify(index.partition ?? null) === JSON.stringify(partition ?? null);
  if (!same) {
    throw new ConfigError(
      "a cache with different settings or another manifest is already there; use a new folder or delete it " +
        `(there: ${JSON.stringify(index.config)}, manifest ${index.manifest.hash.slice(0, 12)}; asked: ${JSON.stringify(config)}, manifest ${manifest.hash.slice(0, 12)})`,
      { subject: dir, reason: "cache-mismatch" },
    );
  }
  return index;
}

/** A shard file's bytes: the header, then each sample's frame (padded to 4 bytes) and audio window. */
function encodeShard(
  good: ReadonlyArray<{ clip: CacheShardClip; frames: RgbFrame[]; audio: Float32Array[] }>,
  numSamples: number,
  config: SampleCacheConfig,
  audioSamples: number,
): Uint8Array {
  const audioBytes = audioSamples * (config.audioFormat === "int16" ? 2 : 4);
  const bytes = good.reduce((n, r) => n + r.clip.times.length * (frameStride(r.clip.frame) + audioBytes), HEADER_BYTES);
  const buf = new Uint8Array(bytes);
  writeHeader(buf, numSamples, config, audioSamples);
  let off = HEADER_BYTES;
  for (const r of good) {
    for (let i = 0; i < r.frames.length; i++) {
      buf.set((r.frames[i] as RgbFrame).data, off);
      off += frameStride(r.clip.frame);
      writeAudio(buf, off, r.audio[i] as Float32Array, config.audioFormat);
      off += audioBytes;
    }
  }
  return buf;
}

function checkConfig(c: SampleCacheConfig): void {
  const posInt = (v: number, key: string) => {
    if (!(Number.isInteger(v) && v > 0)) throw new ConfigError(`must be a positive integer, got ${v}`, { subject: key });
  };
  posInt(c.perClip, "perClip");
  if ("shortSide" in c.frameSize) posInt(c.frameSize.shortSide, "frameSize.shortSide");
  else {
    posInt(c.frameSize.width, "frameSize.width");
    posInt(c.frameSize.height, "frameSize.height");
  }
  posInt(c.sampleRate, "sampleRate");
  posInt(c.clipsPerShard, "clipsPerShard");
  if (!(c.audioSec > 0)) throw new ConfigError(`must be > 0, got ${c.audioSec}`, { subject: "audioSec" });
  if (c.audioFormat !== "int16" && c.audioFormat !== "float32") {
    throw new ConfigError(`must be "int16" or "float32", got ${String(c.audioFormat)}`, { subject: "audioFormat" });
  }
}

async function decodeClip(
  row: ManifestRow,
  rowIndex: number,
  config: SampleCacheConfig,
  audioSamples: number,
  decode: typeof readSamples,
): Promise<{ skip: CacheSkip } | { clip: CacheShardClip; frames: RgbFrame[]; audio: Float32Array[] }> {
  const skip = (reason: string, message: string) => ({ skip: { rowIndex, id: row.id, path: row.path, reason, message } });
  if (!row.hasAudio) return skip("no-audio-stream", "the manifest says the clip has no audio");
  if (!(row.durationSec > 0)) return skip("zero-duration", `duration is ${row.durationSec}`);
  const times = cacheSampleTimes(row.id, row.durationSec, config.perClip, config.audioSec, config.seed);
  try {
    const { frames, audio } = await decode(row.path, times, {
      size: config.frameSize,
      sampleRate: config.sampleRate,
      audioSec: config.audioSec,
    });
    if (frames.length !== times.length || audio.length !== times.length) {
      return skip("decode-failed", `asked for ${times.length} samples, got ${frames.length} frames and ${audio.length} audio windows`);
    }
    const first = frames[0] as RgbFrame;
    const size = config.frameSize;
    if (
      "shortSide" in size
        ? Math.min(first.width, first.height) !== size.shortSide
        : first.width !== size.width || first.height !== size.height
    ) {
      return skip("decode-failed", `frame is ${first.width}x${first.height}, expected ${JSON.stringify(size)}`);
    }
    for (const f of frames) {
      if (f.width !== first.width || f.height !== first.height || f.data.length !== f.width * f.height * 3)
        return skip(
          "decode-failed",
          `frames of one clip differ in size (${first.width}x${first.height} and ${f.width}x${f.height}, ${f.data.length} bytes)`,
        );
    }
    const clip: CacheShardClip = {
      rowIndex,
      id: row.id,
      durationSec: row.durationSec,
      split: row.split,
      times,
      frame: [first.width, first.height],
    };
    if (row.label !== undefined) clip.label = row.label;
    return { clip, frames, audio: audio.map((a) => fitLength(a.samples, audioSamples)) };
  } catch (err) {
    const reason = err instanceof L3kitError && err.reason !== "error" ? err.reason : "decode-failed";
    return skip(reason, errorMessage(err));
  }
}

function fitLength(a: Float32Array, n: number): Float32Array {
  if (a.length === n) return a;
  const out = new Float32Array(n);
  out.set(a.length > n ? a.subarray(0, n) : a);
  return out;
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Bytes of a stored frame of size [w, h], padded to 4 so the audio after it is aligned. */
function frameStride([w, h]: readonly [number, number]): number {
  return align4(w * h * 3);
}

/** Writes a shard file's header (magic, format, sample count, frame size, audio length and format). */
function writeHeader(buf: Uint8Array, numSamples: number, c: SampleCacheConfig, audioSamples: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  for (let i = 0; i < MAGIC.length; i++) buf[i] = MAGIC.charCodeAt(i);
  dv.setUint32(8, SAMPLE_CACHE_VERSION, true);
  dv.setUint32(12, numSamples, true);
  // aspect kept: (short side, 0); stretched: (width, height)
  dv.setUint32(16, "shortSide" in c.frameSize ? c.frameSize.shortSide : c.frameSize.width, true);
  dv.setUint32(20, "shortSide" in c.frameSize ? 0 : c.frameSize.height, true);
  dv.setUint32(24, audioSamples, true);
  dv.setUint32(28, c.audioFormat === "int16" ? 1 : 0, true);
}

function writeAudio(buf: Uint8Array, off: number, a: Float32Array, format: "int16" | "float32"): void {
  if (format === "float32") {
    new Float32Array(buf.buffer, buf.byteOffset + off, a.length).set(a);
    return;
  }
  const out = new Int16Array(buf.buffer, buf.byteOffset + off, a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i] as number;
    out[i] = Math.round(Math.min(1, Math.max(-1, v)) * 32767);
  }
}

/** Reads and checks a cache folder's `index.json` (any format error named). */
function readIndex(dir: string): SampleCacheIndex {
  const file = path.join(dir, "index.json");
  let index: SampleCacheIndex;
  try {
    index = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new L3kitError(`cannot read cache index: ${errorMessage(err)}`, { subject: file, reason: "bad-cache", cause: err });
  }
  if (index?.kind !== "l3kit-sample-cache") throw new L3kitError("not an l3kit sample cache index", { subject: file, reason: "bad-cache" });
  if ((index.version as number) === 1) {
    const fs = (index.config as { frameSize?: { width?: number; height?: number } }).frameSize;
    throw new L3kitError(
      `this sample cache was built by an older l3kit (cache format 1), which stretched every frame to ${fs?.width}x${fs?.height} ` +
        "whatever the video's aspect; frames are now stored with their aspect kept (short side resized). " +
        "Delete the folder and build the cache again",
      { subject: dir, reason: "old-cache" },
    );
  }
  if (index.version !== SAMPLE_CACHE_VERSION) {
    throw new L3kitError(`unsupported sample cache format ${index.version} (this l3kit reads format ${SAMPLE_CACHE_VERSION})`, {
      subject: file,
      reason: "bad-cache",
    });
  }
  return index;
}

/**
 * The format version of the sample cache in `dir` (see {@link SAMPLE_CACHE_VERSION}), or null when
 * there is none or its index cannot be read. Lets a caller that manages its own cache folders
 * rebuild an old one instead of failing.
 */
export function sampleCacheVersion(dir: string): number | null {
  try {
    const index = JSON.parse(readFileSync(path.join(dir, "index.json"), "utf8")) as { kind?: string; version?: unknown };
    return index?.kind === "l3kit-sample-cache" && typeof index.version === "number" ? index.version : null;
  } catch {
    return null;
  }
}

/** A clip of an opened cache: a sampler clip (with `times` and `firstSample`) plus where it came from. */
export interface CacheClip extends AvcClip {
  times: number[];
  firstSample: number;
  /** Row index in the manifest the cache was built from. */
  rowIndex: number;
  split: string;
  label?: string;
}

/** One cached sample. */
export interface CacheSample {
  /** Index into the cache's `clips`. */
  clipIndex: number;
  id: string;
  t: number;
  frame: RgbFrame;
  audio: Float32Array;
}

export interface OpenSampleCacheOptions {
  /** Open an unfinished cache (only its finished shards are visible). Default false. */
  allowPartial?: boolean;
  /** Open file descriptors kept (LRU). Default 32. */
  maxOpenFiles?: number;
}

/** The clips of `clips` in `split`, loading through `cache` (pairs address its samples globally). */
function cacheSubset(cache: SampleCache, clips: readonly CacheClip[], split: string, splits: readonly string[] = []): PairSource {
  const mine = clips.filter((c) => c.split === split);
  if (mine.length === clips.length && clips === cache.clips) return cache;
  const taken = [...splits, split];
  return {
    clips: mine,
    loadPair: (pair) => cache.loadPair(pair),
    subset: (s) => cacheSubset(cache, mine, s, taken),
    origin: { ...cache.origin, splits: taken },
  };
}

/** Opens a pair source from its {@link PairSourceOrigin} (e.g. in a worker thread): the same clips, in the same order. */
export function reopenPairSource(origin: PairSourceOrigin): PairSource {
  let source: PairSource = openSampleCache(origin.dir, { allowPartial: origin.allowPartial });
  for (const split of origin.splits) source = source.subset(split);
  return source;
}

/**
 * Random access to a built cache: each read is one positioned read (`pread`) of exactly the bytes
 * needed, through an LRU of open shard files, so any sample of a cache of any size costs the same.
 */
export class SampleCache implements PairSource {
  readonly index: SampleCacheIndex;
  /** This cache as plain data, to open it again in a worker thread. */
  readonly origin: PairSourceOrigin;
  readonly clips: CacheClip[] = [];
  readonly numSamples: number;
  /** The stored frame size as configured (`{ shortSide }`: each clip's frames keep their aspect; see {@link getFrame}). */
  readonly frameSize: FrameSize;
  readonly sampleRate: number;
  readonly audioSamples: number;
  private readonly audioBytes: number;
  private readonly shardOf: Int32Array;
  private readonly shardFiles: string[] = [];
  private readonly sampleClip: Int32Array;
  private readonly sampleT: Float64Array;
  /** Byte position of each sample in its shard file. */
  private readonly samplePos: Float64Array;
  /** Stored frame [width, height] of each clip. */
  private readonly clipFrame: Array<readonly [number, number]> = [];
  private readonly fds = new Map<number, number>();
  private readonly maxOpen: number;

  constructor(
    readonly dir: string,
    opts: OpenSampleCacheOptions = {},
  ) {
    this.index = readIndex(dir);
    if (this.index.partition)
      throw new L3kitError(
        `this is shard ${this.index.partition.index} of ${this.index.partition.count} of a sharded cache build, not a cache: join the shards with \`l3kit data merge ${path.dirname(path.dirname(dir))}\``,
        { subject: dir, reason: "cache-part" },
      );
    this.origin = { kind: "sample-cache", dir, allowPartial: opts.allowPartial === true, splits: [] };
    if (!this.index.complete && !opts.allowPartial) {
      throw new L3kitError("cache is not complete (run the build again to finish it, or pass allowPartial)", {
        subject: dir,
        reason: "incomplete-cache",
      });
    }
    this.maxOpen = opts.maxOpenFiles ?? 32;
    this.frameSize = this.index.config.frameSize;
    this.sampleRate = this.index.config.sampleRate;
    this.audioSamples = this.index.audioSamples;
    this.audioBytes = this.audioSamples * (this.index.config.audioFormat === "int16" ? 2 : 4);
    let total = 0;
    const shards = this.index.shards.filter((s): s is CacheShard => s !== null);
    for (const s of shards) {
      this.shardFiles.push(checkShardFile(path.join(dir, s.file), s, this.index));
      for (const c of s.clips) {
        const clip: CacheClip = {
          id: c.id,
          durationSec: c.durationSec,
          hasAudio: true,
          times: c.times,
          firstSample: total,
          rowIndex: c.rowIndex,
          split: c.split,
        };
        if (c.label !== undefined) clip.label = c.label;
        this.clips.push(clip);
        this.clipFrame.push(c.frame);
        total += c.times.length;
      }
    }
    this.numSamples = total;
    this.shardOf = new Int32Array(total);
    this.sampleClip = new Int32Array(total);
    this.sampleT = new Float64Array(total);
    this.samplePos = new Float64Array(total);
    let k = 0;
    let ci = 0;
    shards.forEach((s, si) => {
      let pos = HEADER_BYTES;
      for (const c of s.clips) {
        const stride = frameStride(c.frame) + this.audioBytes;
        for (const t of c.times) {
          this.shardOf[k] = si;
          this.sampleClip[k] = ci;
          this.sampleT[k] = t;
          this.samplePos[k] = pos;
          pos += stride;
          k++;
        }
        ci++;
      }
    });
  }

  /** Clips skipped at build time. */
  get skipped(): CacheSkip[] {
    return this.index.shards.flatMap((s) => s?.skipped ?? []);
  }

  /** Where sample `i` comes from. */
  sampleInfo(i: number): { clipIndex: number; id: string; t: number } {
    this.check(i);
    const clipIndex = this.sampleClip[i] as number;
    return { clipIndex, id: (this.clips[clipIndex] as CacheClip).id, t: this.sampleT[i] as number };
  }

  /** Sample `i` (0 ≤ i < numSamples): its frame and its audio window as float32 in [-1, 1]. */
  getSample(i: number): CacheSample {
    const [width, height] = this.frameDims(i);
    const stride = frameStride([width, height]);
    const bytes = this.read(i, 0, stride + this.audioBytes);
    const frame: RgbFrame = { width, height, data: bytes.subarray(0, width * height * 3) };
    const audio = this.decodeAudio(bytes, stride);
    return { ...this.sampleInfo(i), frame, audio };
  }

  /** Only the frame of sample `i` (reads only its bytes): short side = the cache's `shortSide`, aspect kept. */
  getFrame(i: number): RgbFrame {
    const [width, height] = this.frameDims(i);
    const data = this.read(i, 0, width * height * 3);
    return { width, height, data };
  }

  /** Only the audio window of sample `i`. */
  getAudio(i: number): Float32Array {
    return this.decodeAudio(this.read(i, frameStride(this.frameDims(i)), this.audioBytes), 0);
  }

  /** Stored [width, height] of sample `i`'s frame. */
  private frameDims(i: number): readonly [number, number] {
    this.check(i);
    return this.clipFrame[this.sampleClip[i] as number] as readonly [number, number];
  }

  /** Loads a pair drawn from `clips` (pairs carry `sample` indices). */
  loadPair(pair: AvcPair): LoadedPair {
    const fs = pair.frame.sample;
    const as = pair.audio.sample;
    if (fs === undefined || as === undefined) {
      throw new L3kitError("pair has no cache sample index: draw it from a sampler over cache.clips", {
        subject: this.dir,
        reason: "bad-pair",
      });
    }
    if (fs === as) {
      const s = this.getSample(fs);
      return { frame: s.frame, audio: s.audio };
    }
    return { frame: this.getFrame(fs), audio: this.getAudio(as) };
  }

  /**
   * The clips of one split as a pair source (this cache itself when every clip is in it). Cache
   * pairs address samples, not clip positions, so the subset loads through this cache unchanged.
   */
  subset(split: string): PairSource {
    return cacheSubset(this, this.clips, split);
  }

  /** Closes the open shard files. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private check(i: number): void {
    if (!(Number.isInteger(i) && i >= 0 && i < this.numSamples)) {
      throw new RangeError(`sample index ${i} outside [0, ${this.numSamples}) in cache ${this.dir}`);
    }
  }

  private read(i: number, offset: number, length: number): Uint8Array {
    this.check(i);
    const shard = this.shardOf[i] as number;
    const fd = this.fd(shard);
    // a fresh, non-zeroed buffer of its own (byteOffset 0, so typed views on it are aligned)
    const out = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
    const pos = (this.samplePos[i] as number) + offset;
    let got = 0;
    while (got < length) {
      const n = readSync(fd, out, got, length - got, pos + got);
      if (n === 0) throw new L3kitError(`shard ends early at sample ${i}`, { subject: this.shardFiles[shard], reason: "truncated" });
      got += n;
    }
    return out;
  }

  private fd(shard: number): number {
    const cached = this.fds.get(shard);
    if (cached !== undefined) {
      this.fds.delete(shard);
      this.fds.set(shard, cached);
      return cached;
    }
    if (this.fds.size >= this.maxOpen) {
      const [oldest, fd] = this.fds.entries().next().value as [number, number];
      closeSync(fd);
      this.fds.delete(oldest);
    }
    const file = this.shardFiles[shard] as string;
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch (err) {
      throw new L3kitError(`cannot open shard: ${errorMessage(err)}`, { subject: file, reason: "missing", cause: err });
    }
    this.fds.set(shard, fd);
    return fd;
  }

  private decodeAudio(bytes: Uint8Array, off: number): Float32Array {
    const n = this.audioSamples;
    if (this.index.config.audioFormat === "float32") return new Float32Array(bytes.buffer, bytes.byteOffset + off, n);
    const src = new Int16Array(bytes.buffer, bytes.byteOffset + off, n);
    const out = new Float32Array(n);
    out.set(src); // native int16 → float32 conversion, then one scaling pass (≈1.5× faster than one JS loop)
    const k = 1 / 32767;
    for (let i = 0; i < n; i++) out[i] = (out[i] as number) * k;
    return out;
  }
}

/**
 * Checks a shard file against its index entry before any read (size, magic, format, sample count
 * and audio length in the header), so a damaged or foreign shard fails at open, naming the file,
 * not with "ends early" somewhere in training. Returns the path.
 */
function checkShardFile(file: string, s: CacheShard, index: SampleCacheIndex): string {
  const bad = (why: string, reason = "bad-cache") =>
    new L3kitError(`${why}; delete the cache folder and build it again`, { subject: file, reason });
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new L3kitError(`shard listed in index.json cannot be opened: ${errorMessage(err)}`, {
      subject: file,
      reason: "missing",
      cause: err,
    });
  }
  if (size !== s.bytes) throw bad(`shard is ${size} bytes, index.json says ${s.bytes}`, "truncated");
  const head = Buffer.alloc(HEADER_BYTES);
  const fd = openSync(file, "r");
  try {
    readSync(fd, head, 0, HEADER_BYTES, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString("latin1", 0, MAGIC.length) !== MAGIC) throw bad("not an l3kit cache shard (bad magic)");
  const version = head.readUInt32LE(8);
  const numSamples = head.readUInt32LE(12);
  const audioSamples = head.readUInt32LE(24);
  const int16 = head.readUInt32LE(28) === 1;
  if (version !== SAMPLE_CACHE_VERSION) throw bad(`shard is cache format ${version}, index.json says ${SAMPLE_CACHE_VERSION}`);
  if (numSamples !== s.numSamples) throw bad(`shard holds ${numSamples} samples, index.json says ${s.numSamples}`);
  if (audioSamples !== index.audioSamples || int16 !== (index.config.audioFormat === "int16"))
    throw bad(
      `shard's audio (${audioSamples} ${int16 ? "int16" : "float32"} samples) differs from index.json's (${index.audioSamples} ${index.config.audioFormat})`,
    );
  return file;
}

/** Opens a sample cache folder written by {@link buildSampleCache}. */
export function openSampleCache(dir: string, opts: OpenSampleCacheOptions = {}): SampleCache {
  return new SampleCache(path.resolve(dir), opts);
}

/** What `cache-merge.ts` (`data merge`) needs of this module; not part of the public API. */
export const sampleCacheInternals = { readIndex, shardFile, frameStride, writeHeader, claimCacheFolder, HEADER_BYTES };
