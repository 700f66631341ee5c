/**
 * `l3kit data cache`: CLI strings → {@link buildSampleCache}'s typed options, with a progress bar
 * (cli-progress on a TTY, plain lines otherwise) and a printed summary.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as cliProgress from "cli-progress";
import { buildSampleCache, type CacheBuildResult, type CacheProgress, loadManifest, parseShardSpec, shardPartDir } from "../lib/data";
import type { FrameSize } from "../lib/media";
import { ConfigError, checkWritableDir } from "../lib/util";
import { formatDuration } from "./shared";

/**
 * Options of `l3kit data cache` (strings are accepted for numbers, as a CLI parser gives them).
 * `npm run data -- cache --manifest M --out DIR --per-clip K [--frame-size 256] ...`
 */
export interface CacheCommandOptions {
  /** Manifest (JSONL) to cache. */
  manifest: string;
  /** Output folder of the cache. */
  out: string;
  /** Samples per clip. */
  perClip: number | string;
  /**
   * Stored frame size: a number N — the short side resized to N, aspect kept (default 256: the
   * paper's `resizeTo`; use the model's) — or "WxH", every frame stretched to exactly W×H.
   */
  frameSize?: string | number | FrameSize;
  /** Default 48000. */
  sampleRate?: number | string;
  /** Default 1. */
  audioSec?: number | string;
  /** Default 0. */
  seed?: number | string;
  /** "float32" (default, exact, fastest reads) or "int16" (smaller: 246 KB instead of 342 KB per 224×224 sample). */
  audioFormat?: string;
  /** Default 32. */
  clipsPerShard?: number | string;
  /** Parallel clip decodes (default 2). */
  concurrency?: number | string;
  /** Only rows of this split. */
  split?: string;
  /** Only the first N rows (after the split filter). */
  limit?: number | string;
  /** "auto" (default: a bar on a TTY, lines otherwise), "bar", "lines" or "none". */
  progress?: "auto" | "bar" | "lines" | "none";
  /** Where progress goes (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Where the final summary goes (default: a line on stdout). */
  log?: (line: string) => void;
  /**
   * `i/N`: decode only the clips of shard i of N (by a hash of the clip id) into `<out>/parts/<i>-of-<N>/`;
   * `l3kit data merge <out>` joins the N parts into the cache a one-process build writes.
   */
  shard?: string;
}

function num(v: number | string | undefined, key: string, fallback?: number): number {
  if (v === undefined || v === "") {
    if (fallback === undefined) throw new ConfigError("is required", { subject: key });
    return fallback;
  }
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`expected a number, got '${v}'`, { subject: key });
  return n;
}

/**
 * Parses a stored frame size: "256" or 256 → `{ shortSide: 256 }` (aspect kept, the default),
 * "320x240" → `{ width: 320, height: 240 }` (stretched to exactly that size).
 */
export function parseCacheFrameSize(v: CacheCommandOptions["frameSize"]): FrameSize {
  if (v === undefined) return { shortSide: 256 };
  if (typeof v === "object") return v;
  const m = String(v)
    .trim()
    .match(/^(\d+)(?:\s*[xX×]\s*(\d+))?$/);
  if (!m)
    throw new ConfigError(`expected a short side such as 256 (aspect kept) or WIDTHxHEIGHT such as 320x240 (stretched), got '${v}'`, {
      subject: "frameSize",
    });
  return m[2] ? { width: Number(m[1]), height: Number(m[2]) } : { shortSide: Number(m[1]) };
}

/** Rate (clips/s, over the clips decoded in this run) and ETA of a progress report. */
export function cacheRate(p: CacheProgress): { rate: number; etaSec: number } {
  const fresh = p.clipsDone - p.clipsResumed;
  const rate = p.elapsedSec > 0 ? fresh / p.elapsedSec : 0;
  return { rate, etaSec: rate > 0 ? (p.clipsTotal - p.clipsDone) / rate : Number.POSITIVE_INFINITY };
}

/**
 * Builds (or resumes) a sample cache from a manifest file and shows progress: a cli-progress bar
 * with clips/s and ETA on a TTY, plain lines (at most every 5 s and at each shard) otherwise.
 */
export async function cacheCommand(opts: CacheCommandOptions): Promise<CacheBuildResult> {
  // Before the manifest is read or any clip decoded: the output must be a writable folder.
  if (!opts.out) throw new ConfigError("is required", { subject: "--out" });
  const shard = opts.shard === undefined ? undefined : parseShardSpec(opts.shard);
  const out = shard ? path.join(opts.out, shardPartDir(shard)) : opts.out;
  await checkWritableDir(out, "--out");
  const manifest = await loadManifest(opts.manifest);
  let rows = manifest.rows;
  if (opts.split) rows = rows.filter((r) => r.split === opts.split);
  const limit = opts.limit === undefined ? undefined : num(opts.limit, "limit");
  if (limit !== undefined) rows = rows.slice(0, limit);
  if (rows.length === 0)
    throw new ConfigError(`no rows to cache${opts.split ? ` in split '${opts.split}'` : ""}`, { subject: opts.manifest });
  const hash =
    opts.split || limit !== undefined
      ? createHash("sha256")
          .update(`${manifest.hash}|split=${opts.split ?? ""}|limit=${limit ?? ""}`)
          .digest("hex")
      : manifest.hash;
  const audioFormat = opts.audioFormat ?? "float32";
  if (audioFormat !== "int16" && audioFormat !== "float32") {
    throw new ConfigError(`must be int16 or float32, got '${audioFormat}'`, { subject: "audioFormat" });
  }

  const stream = opts.stream ?? process.stderr;
  const mode = opts.progress ?? "auto";
  const useBar = mode === "bar" || (mode === "auto" && stream.isTTY === true);
  const useLines = mode === "lines" || (mode === "auto" && !useBar);
  let bar: cliProgress.SingleBar | null = null;
  let lastLine = 0;

  const onProgress = (p: CacheProgress) => {
    const { rate, etaSec } = cacheRate(p);
    if (useBar) {
      const payload = { rate: rate.toFixed(2), eta: formatDuration(etaSec), skipped: p.skipped, samples: p.samplesDone };
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            stream,
            format:
              "cache |{bar}| {percentage}% | {value}/{total} clips | {rate} clips/s | ETA {eta} | {samples} samples | {skipped} skipped",
            hideCursor: true,
            // forced bar on a non-TTY stream: print the bar as a line every 2 s instead of nothing
            noTTYOutput: stream.isTTY !== true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.clipsTotal, p.clipsDone, payload);
      } else bar.update(p.clipsDone, payload);
    } else if (useLines) {
      const now = Date.now();
      const atShard = p.id === undefined;
      if (atShard || now - lastLine >= 5000 || p.clipsDone === p.clipsTotal) {
        lastLine = now;
        const pct = p.clipsTotal ? ((100 * p.clipsDone) / p.clipsTotal).toFixed(1) : "100.0";
        stream.write(
          `cache: ${p.clipsDone}/${p.clipsTotal} clips (${pct}%), shard ${p.shardsDone}/${p.shardsTotal}, ${rate.toFixed(2)} clips/s, ETA ${formatDuration(etaSec)}, ${p.skipped} skipped` +
            (p.clipsResumed ? `, ${p.clipsResumed} resumed` : "") +
            "\n",
        );
      }
    }
  };

  let result: CacheBuildResult;
  try {
    result = await buildSampleCache({
      manifest: { rows, file: manifest.file, hash },
      out,
      partition: shard,
      perClip: num(opts.perClip, "perClip"),
      frameSize: parseCacheFrameSize(opts.frameSize),
      sampleRate: num(opts.sampleRate, "sampleRate", 48000),
      audioSec: num(opts.audioSec, "audioSec", 1),
      seed: opts.seed ?? 0,
      audioFormat,
      clipsPerShard: num(opts.clipsPerShard, "clipsPerShard", 32),
      concurrency: num(opts.concurrency, "concurrency", 2),
      onProgress,
    });
  } finally {
    (bar as cliProgress.SingleBar | null)?.stop();
  }
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  log(
    `cache ${result.dir}: ${result.clips} clips, ${result.samples} samples, ${result.skipped.length} skipped, ` +
      `${result.shardsBuilt} shards built, ${result.shardsResumed} resumed, ${result.seconds.toFixed(1)} s`,
  );
  for (const s of result.skipped.slice(0, 20)) log(`  skipped ${s.id} (${s.reason}): ${s.message}`);
  if (result.skipped.length > 20) log(`  ... and ${result.skipped.length - 20} more (see index.json)`);
  if (shard) log(`shard ${shard.index}/${shard.count} done; when all ${shard.count} are, join them: l3kit data merge ${opts.out}`);
  return result;
}
