/**
 * The synthetic audio-visual benchmark generator: K sounding-object classes, one sounding object
 * and 0–2 silent distractors per clip, rendered and synthesised in Node and encoded to H.264/AAC
 * mp4 with a bounded pool of ffmpeg processes. Writes `manifest.jsonl`, `clips.jsonl`,
 * `metadata.json` and `README.md` into the dataset folder.
 */
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encodeVideo, verifyEncodedVideo } from "../../media/encode";
import {
  ConfigError,
  errorMessage,
  exists,
  L3kitError,
  mapPool,
  Rng,
  removeStaleTempFiles,
  writeError,
  writeFileAtomic,
  writeJsonAtomic,
} from "../../util";
import { saveManifest } from "../manifest";
import { findShardParts, type ShardSpec, shardOfId, shardPartDir } from "../shard";
import type { BoxFrame, ManifestRow } from "../types";
import { synthKnownAnswers } from "./baselines";
import { synthClasses } from "./classes";
import {
  createSynthClipRenderer,
  planSynthClip,
  type SynthClipSpec,
  type SynthOcclusion,
  type SynthRenderConfig,
  synthClipId,
  synthesizeSynthClipAudio,
} from "./clip";
import type { SynthMetadata, SynthParams, SynthProfileName } from "./metadata";
import { synthReadme } from "./readme";

export type { SynthMetadata, SynthParams, SynthProfileName } from "./metadata";

/** Bumped whenever the same seed would give different clips. */
export const SYNTH_GENERATOR_VERSION = "1.0.0";

/**
 * `tiny`: 64×64, 8 fps, 3 s — tests and CI (the models' tiny preset crops 64×64 directly).
 * `default`: 128×128, 12 fps, 6 s — experiments: resize-short-side 73 → crop 64 for the tiny model,
 * native 128 → random crop 112 for lite.
 * In both, objects are small (boxes about 7% of the frame), so cIoU@0.5 with median binarisation
 * (half the map predicted) cannot exceed ≈0.14 and reads 0.
 * `realistic`: as `tiny` (64×64, 8 fps, 3 s), with objects of the size sounding objects have in
 * Flickr-SoundNet's annotations: the sounding object's box covers 15–40% of the frame (every object,
 * distractors included, is drawn at that size, so size does not tell which one sounds); cIoU reads
 * there. The quickstart and the localization experiment use it.
 */
export const SYNTH_PROFILES: Record<
  SynthProfileName,
  { width: number; height: number; fps: number; durationSec: number; objectRadius?: [number, number] }
> = {
  tiny: { width: 64, height: 64, fps: 8, durationSec: 3 },
  default: { width: 128, height: 128, fps: 12, durationSec: 6 },
  realistic: { width: 64, height: 64, fps: 8, durationSec: 3, objectRadius: [0.22, 0.3] },
};

/** Split proportions (stratified by class). */
export const SYNTH_SPLITS: Record<"train" | "val" | "test", number> = { train: 0.7, val: 0.15, test: 0.15 };

/** Progress of a generation run. */
export interface SynthProgress {
  done: number;
  total: number;
  /** Clips reused from an earlier run into the same folder with the same parameters. */
  reused: number;
  /** Clips found damaged on resume (size, hash or probe) and made again. */
  repaired: number;
  elapsedSec: number;
  clipsPerSec: number;
  /** Seconds left at the current rate (NaN before the first clip). */
  etaSec: number;
  /** Id of the clip just finished. */
  id: string;
}

/** Options of {@link generateSynthDataset}. */
export interface SynthDatasetOptions {
  /** Dataset folder (created). */
  out: string;
  /** Number of clips. */
  clips: number;
  seed: number | string;
  /** Number of classes K (≥ 2; default 10). */
  classes?: number;
  /** Profile giving size, fps and duration (default "default"); the fields below override it. */
  profile?: SynthProfileName;
  durationSec?: number;
  size?: { width: number; height: number };
  fps?: number;
  /** Audio sample rate (default 48000). */
  sampleRate?: number;
  /** Clips made at once (ffmpeg processes). Default: the number of CPU cores, at least 2. */
  concurrency?: number;
  /** x264 CRF (default 18) and preset (default "fast"). */
  crf?: number;
  preset?: string;
  /**
   * Start over: delete the folder's clips and dataset files first. Without it, a folder made with the
   * same parameters is resumed (its finished clips are kept) and any other non-empty folder is refused.
   */
  overwrite?: boolean;
  onProgress?: (p: SynthProgress) => void;
  /**
   * Called for each clip found damaged on resume (it is made again): its file and what was wrong.
   * Default: a line on stderr, so a repair is never silent.
   */
  onRepair?: (repair: SynthRepair) => void;
  /**
   * Make only the clips of this shard (by a hash of the clip id), into `<out>/parts/<i>-of-<N>/`;
   * {@link mergeSynthParts} joins the N parts into the dataset one process writes.
   */
  shard?: ShardSpec;
}

/** A clip of an earlier run that failed its check on resume and was made again. */
export interface SynthRepair {
  id: string;
  file: string;
  reason: string;
}

/** Per-clip generation facts, one line each in `clips.jsonl`. */
export interface SynthClipInfo {
  id: string;
  index: number;
  split: string;
  classIndex: number;
  label: string;
  distractors: string[];
  occlusion: SynthOcclusion;
  /** Mean over frames of the hidden fraction of the sounding object. */
  soundingOccluded: number;
  snrDb: number;
  gainDb: number;
  f0: number;
  rate: number;
  clippedSamples: number;
}

/** What {@link generateSynthDataset} returns. */
export interface SynthDatasetResult {
  out: string;
  manifestPath: string;
  metadataPath: string;
  rows: ManifestRow[];
  clips: SynthClipInfo[];
  metadata: SynthMetadata;
  elapsedSec: number;
  clipsPerSec: number;
  /** Clips of an earlier run that failed their check and were made again. */
  repairs: SynthRepair[];
}

/** The box definition written to metadata and README. */
export const SYNTH_BOX_DEFINITION =
  "Boxes are normalised [x1, y1, x2, y2] (x right, y down) of the pixel-aligned rectangle around every pixel the object covers, even partly (anti-aliased edge), before occlusion (an occluded object keeps its full box), clipped to the frame. One BoxFrame per video frame; frame f shows t = f / fps and is displayed during [t, t + 1/fps).";

/** Resolves and validates options into dataset parameters (throws ConfigError naming the key). */
export function resolveSynthParams(opts: Omit<SynthDatasetOptions, "out" | "onProgress" | "concurrency" | "overwrite">): SynthParams {
  const profileName = opts.profile ?? "default";
  const profile = SYNTH_PROFILES[profileName];
  if (!profile)
    throw new ConfigError(`unknown profile '${profileName}' (expected ${Object.keys(SYNTH_PROFILES).join(", ")})`, { subject: "profile" });
  const width = opts.size?.width ?? profile.width;
  const height = opts.size?.height ?? profile.height;
  const fps = opts.fps ?? profile.fps;
  const durationSec = opts.durationSec ?? profile.durationSec;
  const sampleRate = opts.sampleRate ?? 48000;
  const classes = opts.classes ?? 10;
  const check = (ok: boolean, key: string, msg: string) => {
    if (!ok) throw new ConfigError(msg, { subject: key });
  };
  check(Number.isInteger(opts.clips) && opts.clips >= 1, "clips", `must be an integer >= 1, got ${opts.clips}`);
  check(
    (typeof opts.seed === "number" && Number.isFinite(opts.seed)) || (typeof opts.seed === "string" && opts.seed.length > 0),
    "seed",
    `must be a finite number or a non-empty string, got ${opts.seed}`,
  );
  check(Number.isInteger(classes) && classes >= 2 && classes <= 1000, "classes", `must be an integer in [2, 1000], got ${classes}`);
  for (const [k, v] of [
    ["size.width", width],
    ["size.height", height],
  ] as const) {
    check(Number.isInteger(v) && v >= 16 && v <= 4096 && v % 2 === 0, k, `must be an even integer in [16, 4096] (yuv420p), got ${v}`);
  }
  check(Number.isFinite(fps) && fps >= 1 && fps <= 120, "fps", `must be in [1, 120], got ${fps}`);
  check(
    Number.isFinite(durationSec) && durationSec >= 1 && durationSec <= 600,
    "durationSec",
    `must be in [1, 600] seconds, got ${durationSec}`,
  );
  check(Math.round(durationSec * fps) >= 1, "durationSec", "gives no frames");
  check(
    Number.isInteger(sampleRate) && sampleRate >= 8000 && sampleRate <= 192000,
    "sampleRate",
    `must be an integer in [8000, 192000], got ${sampleRate}`,
  );
  const crf = opts.crf ?? 18;
  check(Number.isFinite(crf) && crf >= 0 && crf <= 51, "crf", `must be in [0, 51], got ${crf}`);
  const custom = opts.size !== undefined || opts.fps !== undefined || opts.durationSec !== undefined;
  return {
    generator: "l3kit-synth",
    version: SYNTH_GENERATOR_VERSION,
    seed: opts.seed,
    clips: opts.clips,
    classes,
    profile: custom ? "custom" : profileName,
    width,
    height,
    fps,
    durationSec,
    sampleRate,
    // Only profiles with their own object size record one, so tiny/default parameters (and folders) stay as they were.
    ...(profile.objectRadius ? { objectRadius: [...profile.objectRadius] as [number, number] } : {}),
    crf,
    preset: opts.preset ?? "fast",
    splits: { ...SYNTH_SPLITS },
  };
}

/** Balanced class assignment: clip i gets class order[i], each class ⌊N/K⌋ or ⌈N/K⌉ clips, seeded shuffle. */
export function synthClassAssignment(clips: number, classes: number, seed: number | string): number[] {
  const order = Array.from({ length: clips }, (_, i) => i % classes);
  return new Rng(`l3kit-synth:${seed}:classes`).shuffle(order);
}

/**
 * Stratified split assignment: clips are listed class by class (seeded order of classes and of clips
 * inside a class), and position p of that list goes to the split furthest behind its quota
 * (ratio · (p + 1) − assigned so far). Every prefix of the list, so every class and the whole set,
 * follows the ratios to within about one clip; the totals are exact to within one clip per split.
 */
export function synthSplitAssignment(
  classOf: readonly number[],
  seed: number | string,
  ratios: Record<string, number> = SYNTH_SPLITS,
): string[] {
  const rng = new Rng(`l3kit-synth:${seed}:splits`);
  const byClass = new Map<number, number[]>();
  classOf.forEach((c, i) => {
    const list = byClass.get(c);
    if (list) list.push(i);
    else byClass.set(c, [i]);
  });
  const names = Object.keys(ratios);
  const total = Object.values(ratios).reduce((a, b) => a + b, 0);
  const frac = names.map((n) => (ratios[n] as number) / total);
  const assigned = names.map(() => 0);
  const out = new Array<string>(classOf.length);
  let p = 0;
  for (const c of rng.shuffle([...byClass.keys()].sort((a, b) => a - b))) {
    for (const i of rng.shuffle(byClass.get(c) as number[])) {
      p++;
      let best = 0;
      let bestDeficit = -Infinity;
      names.forEach((_, k) => {
        const deficit = (frac[k] as number) * p - (assigned[k] as number);
        if (deficit > bestDeficit + 1e-12) {
          bestDeficit = deficit;
          best = k;
        }
      });
      assigned[best] = (assigned[best] as number) + 1;
      out[i] = names[best] as string;
    }
  }
  return out;
}

/**
 * The journal of finished clips: one `{ id, bytes, sha256 }` line appended as each clip is encoded
 * and checked, so that a resumed run can tell an intact clip from a damaged one.
 */
export const SYNTH_SUMS_FILE = "clip-sums.jsonl";

const MANAGED = ["manifest.jsonl", "clips.jsonl", "metadata.json", "README.md", "synth-config.json", SYNTH_SUMS_FILE];

/** The size and SHA-256 of a file. */
async function fileSum(file: string): Promise<{ bytes: number; sha256: string }> {
  const data = await fsp.readFile(file);
  return { bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") };
}

/** The journal's records by clip id (a torn last line, from a crash, is ignored). */
async function readSums(file: string): Promise<Map<string, { bytes: number; sha256: string }>> {
  const sums = new Map<string, { bytes: number; sha256: string }>();
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch {
    return sums;
  }
  for (const line of text.split("\n")) {
    try {
      const r = JSON.parse(line) as { id?: unknown; bytes?: unknown; sha256?: unknown };
      if (typeof r.id === "string" && typeof r.bytes === "number" && typeof r.sha256 === "string")
        sums.set(r.id, { bytes: r.bytes, sha256: r.sha256 });
    } catch {}
  }
  return sums;
}

/**
 * Why an existing clip cannot be reused, or null when it is intact: its size and hash must match
 * the journal; a clip the journal lacks (the run died between the rename and the journal line) is
 * probed instead (streams, size, frame count and duration).
 */
async function checkExistingClip(
  file: string,
  recorded: { bytes: number; sha256: string } | undefined,
  spec: SynthClipSpec,
  sampleRate: number,
): Promise<{ problem: string | null; sum?: { bytes: number; sha256: string } }> {
  if (recorded) {
    const sum = await fileSum(file);
    if (sum.bytes !== recorded.bytes) return { problem: `its size is ${sum.bytes} bytes, ${recorded.bytes} were written` };
    if (sum.sha256 !== recorded.sha256) return { problem: "its SHA-256 differs from the one recorded when it was written" };
    return { problem: null };
  }
  try {
    await verifyEncodedVideo(file, {
      frames: spec.frames,
      fps: spec.fps,
      width: spec.width,
      height: spec.height,
      audioSec: Math.round(spec.durationSec * sampleRate) / sampleRate,
    });
  } catch (err) {
    return { problem: `${errorMessage(err).replace(`${file}: `, "")} (no record of it in ${SYNTH_SUMS_FILE})` };
  }
  return { problem: null, sum: await fileSum(file) };
}

async function prepareFolder(out: string, params: SynthParams, overwrite: boolean): Promise<void> {
  await fsp.mkdir(out, { recursive: true });
  const cfgFile = path.join(out, "synth-config.json");
  // `parts/`: the shards of a sharded generation, being merged into this folder
  const entries = (await fsp.readdir(out)).filter((e) => !e.startsWith(".") && e !== "parts");
  if (await exists(cfgFile)) {
    const old = JSON.parse(await fsp.readFile(cfgFile, "utf8")) as SynthParams;
    if (!overwrite && JSON.stringify(old) === JSON.stringify(params)) return; // resume: finished clips are reused
    if (!overwrite) {
      throw new ConfigError("holds a synthetic dataset made with other parameters; choose another folder or pass overwrite", {
        subject: out,
        reason: "dataset-exists",
      });
    }
  } else if (entries.length > 0 && !overwrite) {
    throw new ConfigError("is not empty and holds no synthetic dataset; choose an empty folder or pass overwrite", {
      subject: out,
      reason: "not-empty",
    });
  }
  if (overwrite) {
    await fsp.rm(path.join(out, "clips"), { recursive: true, force: true });
    for (const f of MANAGED) await fsp.rm(path.join(out, f), { force: true });
  }
  await writeJsonAtomic(cfgFile, params);
}

/** Makes one clip: plan, audio, frames (and boxes); encodes unless `reuse`. */
export async function makeSynthClip(
  spec: SynthClipSpec,
  file: string,
  opts: { reuse?: boolean; crf?: number; preset?: string } = {},
): Promise<{ boxes: BoxFrame[]; soundingOccluded: number; clippedSamples: number; bytes: number }> {
  const audio = synthesizeSynthClipAudio(spec);
  const renderer = createSynthClipRenderer(spec, audio.envelopes);
  const boxes: BoxFrame[] = [];
  let occ = 0;
  function* frames(): Generator<Uint8Array> {
    for (let f = 0; f < spec.frames; f++) {
      const fr = renderer.frame(f);
      boxes.push(fr.boxes);
      occ += fr.soundingOccluded;
      yield fr.rgb;
    }
  }
  let bytes = 0;
  if (opts.reuse) {
    for (const _ of frames());
    bytes = (await fsp.stat(file)).size;
  } else {
    const res = await encodeVideo({
      path: file,
      width: spec.width,
      height: spec.height,
      fps: spec.fps,
      frames: frames(),
      audio: { samples: audio.samples, sampleRate: audio.sampleRate },
      crf: opts.crf,
      preset: opts.preset,
    });
    bytes = res.bytes;
  }
  return { boxes, soundingOccluded: Math.round((occ / spec.frames) * 1e4) / 1e4, clippedSamples: audio.clipped, bytes };
}

/**
 * Generates the synthetic benchmark into `opts.out`. Deterministic: the same parameters and seed
 * give the same manifest bytes and the same decoded pixels and samples. Re-running into the same
 * folder with the same parameters reuses the clips already written (resume).
 */
export async function generateSynthDataset(opts: SynthDatasetOptions): Promise<SynthDatasetResult> {
  const params = resolveSynthParams(opts);
  if (opts.shard) throw new ConfigError("use generateSynthShard for one shard", { subject: "shard" });
  const out = path.resolve(opts.out);
  await prepareFolder(out, params, opts.overwrite ?? false);
  const made = await makeSynthClips(out, params, opts);
  return writeSynthDataset(out, params, made);
}

/** What {@link makeSynthClips} made: rows (paths relative to the folder) and clip facts, in clip order, and timing. */
interface SynthClipsMade {
  rows: ManifestRow[];
  clips: SynthClipInfo[];
  elapsedSec: number;
  reused: number;
  repairs: SynthRepair[];
  bytes: number;
}

/** One shard's part (`synth-part.json` in `<out>/parts/<i>-of-<N>/`): what {@link mergeSynthParts} joins. */
export interface SynthPart extends SynthClipsMade {
  kind: "l3kit-synth-part";
  shard: ShardSpec;
  params: SynthParams;
}

/** The file of a synthetic-benchmark shard's part. */
export const SYNTH_PART_FILE = "synth-part.json";

/**
 * Makes the clips of one shard (`opts.shard`, by a hash of the clip id) into `<out>/parts/<i>-of-<N>/`
 * (resumable like a whole dataset) and writes its {@link SYNTH_PART_FILE} last, atomically.
 */
export async function generateSynthShard(opts: SynthDatasetOptions & { shard: ShardSpec }): Promise<{ dir: string; part: SynthPart }> {
  const params = resolveSynthParams(opts);
  const dir = path.join(path.resolve(opts.out), shardPartDir(opts.shard));
  await prepareFolder(dir, params, opts.overwrite ?? false);
  const made = await makeSynthClips(dir, params, opts);
  const part: SynthPart = { kind: "l3kit-synth-part", shard: { index: opts.shard.index, count: opts.shard.count }, params, ...made };
  await writeJsonAtomic(path.join(dir, SYNTH_PART_FILE), part);
  return { dir, part };
}

/**
 * Joins the N parts of a sharded generation in `out` (see {@link generateSynthShard}): moves their
 * clips into `out/clips/`, and writes the manifest, clips.jsonl, metadata and README one process
 * would write (the same bytes), then removes `out/parts` unless `keepParts`.
 */
export async function mergeSynthParts(out: string, opts: { keepParts?: boolean } = {}): Promise<SynthDatasetResult> {
  const root = path.resolve(out);
  const parts = await findShardParts(root);
  const loaded: SynthPart[] = [];
  for (const p of parts) {
    const file = path.join(p.dir, SYNTH_PART_FILE);
    if (!(await exists(file)))
      throw new L3kitError(`has no ${SYNTH_PART_FILE}: this shard's generation has not finished; run it again (it resumes), then merge`, {
        subject: p.dir,
        reason: "bad-part",
      });
    const part = JSON.parse(await fsp.readFile(file, "utf8")) as SynthPart;
    if (part.kind !== "l3kit-synth-part" || part.shard?.index !== p.spec.index || part.shard?.count !== p.spec.count)
      throw new L3kitError(`${SYNTH_PART_FILE} is not shard ${p.spec.index}/${p.spec.count}'s`, { subject: p.dir, reason: "bad-part" });
    if (JSON.stringify(part.params) !== JSON.stringify((loaded[0] ?? part).params))
      throw new ConfigError("this shard was made with other parameters than shard 0; make it again", {
        subject: p.dir,
        reason: "mismatch",
      });
    loaded.push(part);
  }
  const params = (loaded[0] as SynthPart).params;
  await prepareFolder(root, params, false);
  await fsp.mkdir(path.join(root, "clips"), { recursive: true });
  const sums: string[] = [];
  for (const [k, part] of loaded.entries()) {
    const dir = (parts[k] as { dir: string }).dir;
    for (const row of part.rows) {
      const from = path.join(dir, row.path);
      const to = path.join(root, row.path);
      if (await exists(from)) await fsp.rename(from, to);
      else if (!(await exists(to))) throw new L3kitError(`clip ${row.id} is missing (${from})`, { subject: dir, reason: "missing-clip" });
    }
    const journal = await fsp.readFile(path.join(dir, SYNTH_SUMS_FILE), "utf8").catch(() => "");
    sums.push(...journal.split("\n").filter((l) => l.trim()));
  }
  await writeFileAtomic(path.join(root, SYNTH_SUMS_FILE), sums.length ? `${sums.sort().join("\n")}\n` : "");
  const pairs = loaded.flatMap((p) => p.rows.map((row, j) => ({ row, info: p.clips[j] as SynthClipInfo })));
  pairs.sort((a, b) => a.info.index - b.info.index);
  if (pairs.length !== params.clips)
    throw new L3kitError(`the parts hold ${pairs.length} clips, the dataset has ${params.clips}`, {
      subject: root,
      reason: "missing-clip",
    });
  const result = await writeSynthDataset(root, params, {
    rows: pairs.map((p) => p.row),
    clips: pairs.map((p) => p.info),
    elapsedSec: Math.max(...loaded.map((p) => p.elapsedSec)),
    reused: loaded.reduce((n, p) => n + p.reused, 0),
    repairs: loaded.flatMap((p) => p.repairs),
    bytes: loaded.reduce((n, p) => n + p.bytes, 0),
  });
  if (!opts.keepParts) await fsp.rm(path.join(root, "parts"), { recursive: true, force: true });
  return result;
}

/** Makes (or reuses, checked) every clip of the dataset in `out`, or of `opts.shard` only. */
async function makeSynthClips(out: string, params: SynthParams, opts: SynthDatasetOptions): Promise<SynthClipsMade> {
  const shard = opts.shard;
  const mine = (index: number) => !shard || shardOfId(synthClipId(index), shard.count) === shard.index;
  const concurrency = opts.concurrency ?? Math.max(2, os.availableParallelism?.() ?? os.cpus().length);
  if (!(Number.isInteger(concurrency) && concurrency >= 1))
    throw new ConfigError(`must be an integer >= 1, got ${concurrency}`, { subject: "concurrency" });
  const classes = synthClasses(params.classes);
  const classOf = synthClassAssignment(params.clips, params.classes, params.seed);
  const splitOf = synthSplitAssignment(classOf, params.seed, params.splits);
  const cfg: SynthRenderConfig = {
    width: params.width,
    height: params.height,
    fps: params.fps,
    durationSec: params.durationSec,
    sampleRate: params.sampleRate,
    ...(params.objectRadius ? { objectRadius: params.objectRadius } : {}),
  };
  // Temp files of runs that died (a killed ffmpeg's `.clip-….mp4.<pid>…tmp`) are removed.
  await removeStaleTempFiles(out);
  await removeStaleTempFiles(path.join(out, "clips"));
  const sumsFile = path.join(out, SYNTH_SUMS_FILE);
  const sums = await readSums(sumsFile);
  const record = async (id: string, sum: { bytes: number; sha256: string }) => {
    try {
      await fsp.appendFile(sumsFile, `${JSON.stringify({ id, ...sum })}\n`);
    } catch (err) {
      throw writeError(sumsFile, err);
    }
  };
  const repairs: SynthRepair[] = [];
  const onRepair =
    opts.onRepair ?? ((r: SynthRepair) => process.stderr.write(`synth: ${r.file}: damaged (${r.reason}); making it again\n`));
  const start = Date.now();
  let done = 0;
  let reused = 0;
  let totalBytes = 0;
  const total = classOf.filter((_, i) => mine(i)).length;
  const all = await mapPool(classOf, concurrency, async (classIndex, i) => {
    if (!mine(i)) return null;
    const spec = planSynthClip(cfg, classes, params.seed, i, classIndex);
    const rel = `clips/${spec.id}.mp4`;
    const file = path.join(out, rel);
    let reuse = await exists(file);
    if (reuse) {
      // A clip of an earlier run is reused only when it is intact; a damaged one is made again, loudly.
      const check = await checkExistingClip(file, sums.get(spec.id), spec, params.sampleRate);
      if (check.problem) {
        const repair = { id: spec.id, file, reason: check.problem };
        repairs.push(repair);
        onRepair(repair);
        await fsp.rm(file, { force: true });
        reuse = false;
      } else if (check.sum) await record(spec.id, check.sum);
    }
    const made = await makeSynthClip(spec, file, { reuse, crf: params.crf, preset: params.preset });
    if (!reuse) await record(spec.id, await fileSum(file));
    totalBytes += made.bytes;
    done++;
    if (reuse) reused++;
    if (opts.onProgress) {
      const elapsedSec = (Date.now() - start) / 1000;
      const rate = elapsedSec > 0 ? done / elapsedSec : 0;
      opts.onProgress({
        done,
        total,
        reused,
        repaired: repairs.length,
        elapsedSec,
        clipsPerSec: rate,
        etaSec: rate > 0 ? (total - done) / rate : Number.NaN,
        id: spec.id,
      });
    }
    const row: ManifestRow = {
      id: spec.id,
      path: rel,
      split: splitOf[i] as string,
      label: spec.label,
      durationSec: params.durationSec,
      fps: params.fps,
      hasAudio: true,
      boxes: made.boxes,
    };
    const info: SynthClipInfo = {
      id: spec.id,
      index: i,
      split: splitOf[i] as string,
      classIndex,
      label: spec.label,
      distractors: spec.objects.slice(1).map((o) => o.label),
      occlusion: spec.occlusion,
      soundingOccluded: made.soundingOccluded,
      snrDb: spec.snrDb,
      gainDb: spec.gainDb,
      f0: spec.objects[0]?.sound.f0 ?? 0,
      rate: spec.objects[0]?.sound.rate ?? 0,
      clippedSamples: made.clippedSamples,
    };
    return { row, info };
  });
  const results = all.filter((r): r is { row: ManifestRow; info: SynthClipInfo } => r !== null);
  return {
    rows: results.map((r) => r.row),
    clips: results.map((r) => r.info),
    elapsedSec: (Date.now() - start) / 1000,
    reused,
    repairs,
    bytes: totalBytes,
  };
}

/** Writes a dataset's manifest, clips.jsonl, metadata.json and README.md from its clips (all of them, in clip order). */
async function writeSynthDataset(out: string, params: SynthParams, made: SynthClipsMade): Promise<SynthDatasetResult> {
  const { rows, clips, elapsedSec, reused, repairs } = made;
  const totalBytes = made.bytes;
  const classes = synthClasses(params.classes);
  const manifestPath = path.join(out, "manifest.jsonl");
  await saveManifest(
    manifestPath,
    rows.map((r) => ({ ...r, path: path.join(out, r.path) })),
  );
  await writeFileAtomic(path.join(out, "clips.jsonl"), clips.map((c) => JSON.stringify(c)).join("\n") + "\n");

  const counts: Record<string, Record<string, number>> = {};
  for (const c of classes) counts[c.name] = { train: 0, val: 0, test: 0, all: 0 };
  for (const r of rows) {
    const cc = counts[r.label as string] as Record<string, number>;
    cc[r.split] = (cc[r.split] ?? 0) + 1;
    cc.all = (cc.all ?? 0) + 1;
  }
  const occlusion: Record<SynthOcclusion, number> = { none: 0, occluder: 0, distractor: 0, border: 0 };
  for (const c of clips) occlusion[c.occlusion]++;
  const metadata: SynthMetadata = {
    params,
    classes,
    counts,
    occlusion,
    answers: synthKnownAnswers(
      rows,
      classes.map((c) => c.name),
      params.seed,
    ),
    boxDefinition: SYNTH_BOX_DEFINITION,
    files: { manifest: "manifest.jsonl", clips: "clips.jsonl", readme: "README.md", videos: "clips/" },
    stats: {
      elapsedSec: Math.round(elapsedSec * 1000) / 1000,
      clipsPerSec: Math.round((params.clips / Math.max(elapsedSec, 1e-9)) * 1000) / 1000,
      reused,
      repaired: repairs.length,
      bytes: totalBytes,
    },
  };
  // Timing facts change from run to run; keep metadata.json deterministic and report them separately.
  const metadataPath = path.join(out, "metadata.json");
  const { stats: _stats, ...stable } = metadata;
  await writeJsonAtomic(metadataPath, stable);
  await writeFileAtomic(path.join(out, "README.md"), synthReadme(metadata));
  return {
    out,
    manifestPath,
    metadataPath,
    rows,
    clips,
    metadata,
    elapsedSec,
    clipsPerSec: params.clips / Math.max(elapsedSec, 1e-9),
    repairs,
  };
}
