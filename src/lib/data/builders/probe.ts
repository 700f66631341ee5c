import { promises as fsp } from "node:fs";
import { type MediaInfo, probeMedia, readAudio, readFrames } from "../../media";
import { errorMessage, L3kitError, mapPool } from "../../util";

/** A file a builder could not use, with why. */
export interface DatasetBuildIssue {
  /** The media file (absolute), or the annotation file and line. */
  path: string;
  /** Manifest id the file would have had, when known. */
  id?: string;
  /** Machine-readable: "empty", "missing", "corrupt", "no-video-stream", "no-audio-stream", "zero-duration", ... */
  reason: string;
  message: string;
}

/** Progress of a builder: `done` of `total` files handled. */
export interface DatasetBuildProgress {
  done: number;
  total: number;
  path: string;
  ok: boolean;
}

/** The probe function used by builders (injectable so tests and other backends can swap it). */
export type MediaProbeFn = (path: string) => Promise<MediaInfo>;

/** What every dataset builder takes besides its own inputs: how files are probed, how many at once, and progress. */
export interface BuilderRunOptions {
  probeFn?: MediaProbeFn;
  /** Files probed at once. */
  concurrency?: number;
  onProgress?: (p: DatasetBuildProgress) => void;
}

export interface MediaCheckOptions {
  /** Files with no video stream are errors (default true). */
  requireVideo?: boolean;
  /** Files with no audio stream are errors (default false: they are kept with hasAudio false). */
  requireAudio?: boolean;
  probe?: MediaProbeFn;
  /**
   * Also decode a frame and a little audio near the end of the file (default false): catches files
   * whose header is intact but whose data was cut short (e.g. an interrupted download of a
   * "faststart" mp4), which probing alone cannot see. Costs about two short ffmpeg runs per file.
   */
  verifyDecode?: boolean;
}

/**
 * Probes one file and checks it is usable; never throws for a bad file, returns the issue instead.
 */
export async function probeMediaChecked(
  file: string,
  opts: MediaCheckOptions = {},
): Promise<{ info: MediaInfo } | { issue: DatasetBuildIssue }> {
  const bad = (reason: string, message: string) => ({ issue: { path: file, reason, message } });
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return bad("not-a-file", "not a regular file");
    if (st.size === 0) return bad("empty", "file is empty (0 bytes)");
  } catch (err) {
    return bad("missing", `cannot stat file: ${errorMessage(err)}`);
  }
  let info: MediaInfo;
  try {
    info = await (opts.probe ?? probeMedia)(file);
  } catch (err) {
    const reason = err instanceof L3kitError ? err.reason : "probe-failed";
    return bad(reason === "error" ? "probe-failed" : reason, errorMessage(err));
  }
  if ((opts.requireVideo ?? true) && !info.video) return bad("no-video-stream", "no video stream");
  if (opts.requireAudio && !info.audio) return bad("no-audio-stream", "no audio stream");
  if (!(Number.isFinite(info.durationSec) && info.durationSec > 0)) return bad("zero-duration", `duration is ${info.durationSec}`);
  if (opts.verifyDecode) {
    const t = Math.max(0, info.durationSec - 0.25);
    try {
      if (info.video) await readFrames(file, [t], { width: 16, height: 16 });
      if (info.audio)
        await readAudio(file, { startSec: Math.max(0, info.durationSec - 0.3), durationSec: 0.2, sampleRate: 8000, minSec: 0.1 });
    } catch (err) {
      const reason = err instanceof L3kitError && err.reason !== "error" ? err.reason : "decode-failed";
      return bad(reason, `probe is fine but decoding near the end fails: ${errorMessage(err)}`);
    }
  }
  return { info };
}

/** Probes many files with bounded concurrency; results in input order. */
export async function probeMediaMany(
  files: readonly string[],
  opts: MediaCheckOptions & { concurrency?: number; onProgress?: (p: DatasetBuildProgress) => void },
): Promise<Array<{ info: MediaInfo } | { issue: DatasetBuildIssue }>> {
  let done = 0;
  return mapPool(files, opts.concurrency ?? 4, async (file) => {
    const res = await probeMediaChecked(file, opts);
    done++;
    opts.onProgress?.({ done, total: files.length, path: file, ok: "info" in res });
    return res;
  });
}
