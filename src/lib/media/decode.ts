/**
 * Decoding: frames at given times and mono audio at a sample rate, streamed from ffmpeg (through
 * fluent-ffmpeg) into Buffers — no temp files.
 *
 * Frames: one ffmpeg run per call. ffmpeg seeks to just before the first time, a `select` filter
 * keeps only the frames in a short window before each requested time, `scale` resizes them and
 * `showinfo` reports each kept frame's exact timestamp on stderr, so the frame shown at time t (the
 * last frame whose timestamp is ≤ t) is picked here, exactly, for any frame rate (VFR included).
 * Audio: `aresample` to the target rate and mono (stereo → mean of L and R; surround → ffmpeg's
 * standard downmix, normalised so it cannot clip), f32le on stdout. `first_pts=0` fills in silence
 * when the audio stream starts after the container's start, so sample i is always at
 * startSec + i / sampleRate on the file's timeline, the same timeline as the frame times.
 */
import * as os from "node:os";
import { ConfigError, integerMessage, integerProblem } from "../util";
import { MediaError } from "./errors";
import { checkInputFile, classifyStderr, runFfmpeg, summarizeErrors } from "./ffmpeg";
import type { AudioClip, FrameSize, MediaCallOptions, RgbFrame } from "./types";

/** Options of {@link readFrames} / {@link readFrame}. */
export interface FrameReadOptions extends MediaCallOptions {
  /**
   * How far before each requested time frames are kept (seconds, default 0.25). When a window
   * holds no frame (a video under 4 fps, a gap, a time past the end), two more runs follow: one
   * that lists every frame's timestamp up to the last time, one that decodes exactly the frames
   * chosen from that list.
   */
  windowSec?: number;
  /**
   * The video's frame rate, when known (e.g. from the manifest): the window becomes 1.5 frame
   * intervals (at most 0.25 s), so fewer frames are scaled and piped. Only a speed hint.
   */
  fps?: number;
  /** Decoder threads per ffmpeg process (default 1: the pool already runs one process per core). */
  threads?: number;
}

/** Options of {@link readAudio}. */
export interface AudioReadOptions extends MediaCallOptions {
  /** Start in **seconds** from the start of the file (default 0). Negative starts lead with zeros. */
  startSec?: number;
  /** Seconds to read; the clip is exactly `round(durationSec * sampleRate)` samples, zero-padded past the end of the file. Omit for the whole file. */
  durationSec?: number;
  /** Output rate in Hz (default 48000). */
  sampleRate?: number;
  /** Fail with reason "too-short" when less than this many seconds of real audio were decoded. */
  minSec?: number;
}

/** Options of {@link readSamples}. */
export interface SampleReadOptions extends MediaCallOptions {
  /** Size of the decoded frames. */
  size: FrameSize;
  /** Audio rate in Hz (48000 for L³). */
  sampleRate: number;
  /** Seconds of audio per sample, centred on each time (default 1). */
  audioSec?: number;
  /** See {@link FrameReadOptions.windowSec}. */
  windowSec?: number;
  /** See {@link FrameReadOptions.fps}. */
  fps?: number;
  /** See {@link FrameReadOptions.threads}. */
  threads?: number;
}

/** Default window before a requested time in which frames are kept. */
export const FRAME_WINDOW_SEC = 0.25;
const TIME_EPS = 1e-6;
/** Extra seconds on both ends of each select window (float rounding in ffmpeg's expression). */
const FRAME_SLACK_SEC = 0.002;

function validateTimes(file: string, times: readonly number[]): void {
  for (const t of times) {
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
      throw new ConfigError(`frame times must be finite numbers >= 0 (seconds), got ${t}`, { subject: file, reason: "bad-time" });
    }
  }
}

function validateSize(file: string, size: FrameSize): void {
  const ok = (v: unknown) => integerProblem(v, 1, 16384) === null;
  if ("shortSide" in size) {
    if (!ok(size.shortSide))
      throw new ConfigError(`frame shortSide ${integerMessage(size.shortSide, 1, 16384)}`, {
        subject: file,
        reason: "bad-size",
      });
  } else if (!ok(size.width) || !ok(size.height)) {
    throw new ConfigError(`frame size must be integers in [1, 16384], got ${size.width}x${size.height}`, {
      subject: file,
      reason: "bad-size",
    });
  }
}

const fmt = (x: number): string => x.toFixed(6);

function scaleFilter(size: FrameSize): string {
  if ("shortSide" in size) {
    const s = size.shortSide;
    return `scale=w='if(lte(iw,ih),${s},-1)':h='if(lte(iw,ih),-1,${s})':flags=bilinear`;
  }
  return `scale=${size.width}:${size.height}:flags=bilinear`;
}

interface DecodedFrame {
  /** Seconds from the start of the file. */
  time: number;
  /** Timestamp in the stream's time base, as the filters see it. */
  pts: number;
  width: number;
  height: number;
  offset: number;
}

interface DecodedVideo {
  frames: DecodedFrame[];
  buf: Buffer;
  seek: number;
  errors: string[];
}

const SHOWINFO_CONFIG = /Parsed_showinfo_\d+ @ [^\]]*\] config in time_base: (\d+)\/(\d+)/;
const SHOWINFO_FRAME = /Parsed_showinfo_\d+ @ [^\]]*\] n:\s*\d+ pts:\s*(-?\d+) .*? s:(\d+)x(\d+)/;

/** Which frames a decoding run keeps. */
type FrameSelection =
  /** those in [t − window, t] for each t (after seeking to just before the first window) */
  | { kind: "windows"; window: number }
  /** every frame up to the last time, reporting timestamps only (no pixels) */
  | { kind: "scan" }
  /** exactly these timestamps (stream time base), from the start of the file */
  | { kind: "pts"; pts: number[] };

/**
 * One ffmpeg run over the video stream: keeps the selected frames, scales them to `size` and pipes
 * them as rgb24 (except for "scan"), and reads each kept frame's timestamp from `showinfo`.
 */
async function decodeVideo(
  file: string,
  times: readonly number[],
  size: FrameSize,
  sel: FrameSelection,
  opts: FrameReadOptions,
): Promise<DecodedVideo> {
  const first = times[0]!;
  const last = times[times.length - 1]!;
  const seek = sel.kind === "windows" ? Math.max(0, Math.floor((first - sel.window) * 1e6) / 1e6) : 0;
  const slack = FRAME_SLACK_SEC;
  const filters: string[] = [];
  if (sel.kind === "windows") {
    const ranges: Array<[number, number]> = [];
    for (const t of times) {
      const lo = Math.max(0, t - sel.window - seek - slack);
      const hi = t - seek + slack;
      const prev = ranges[ranges.length - 1];
      if (prev && lo <= prev[1]) prev[1] = Math.max(prev[1], hi);
      else ranges.push([lo, hi]);
    }
    filters.push(`select='${ranges.map(([lo, hi]) => `between(t,${fmt(lo)},${fmt(hi)})`).join("+")}'`, scaleFilter(size));
  } else if (sel.kind === "pts") {
    filters.push(`select='${sel.pts.map((p) => `eq(pts,${p})`).join("+")}'`, scaleFilter(size));
  } else {
    // timestamps only: a tiny frame keeps showinfo's checksums cheap
    filters.push("scale=8:8:flags=neighbor");
  }
  filters.push("showinfo");
  const readFor = last - seek + 0.05;
  const threads = String(opts.threads ?? 1);
  const run = await runFfmpeg(
    file,
    (cmd) => {
      const input = ["-hide_banner", "-nostdin", "-nostats", "-threads", threads];
      if (seek > 0) input.push("-ss", fmt(seek));
      input.push("-t", fmt(readFor));
      cmd
        .inputOptions(input)
        .outputOptions(["-map", "0:v:0", "-an", "-sn", "-dn", "-vsync", "passthrough", "-pix_fmt", "rgb24", "-loglevel", "info"])
        .videoFilters(filters)
        .format(sel.kind === "scan" ? "null" : "rawvideo");
    },
    { timeoutMs: opts.timeoutMs, what: "reading frames", stream: "video" },
  );
  let tbNum = 0;
  let tbDen = 1;
  const frames: DecodedFrame[] = [];
  let offset = 0;
  for (const line of run.stderr) {
    const f = SHOWINFO_FRAME.exec(line);
    if (f) {
      const pts = Number(f[1]);
      const width = Number(f[2]);
      const height = Number(f[3]);
      frames.push({ time: seek + (pts * tbNum) / tbDen, pts, width, height, offset });
      if (sel.kind !== "scan") offset += width * height * 3;
      continue;
    }
    const c = SHOWINFO_CONFIG.exec(line);
    if (c) {
      tbNum = Number(c[1]);
      tbDen = Number(c[2]);
    }
  }
  if (offset !== run.stdout.length) {
    throw new MediaError(
      `reading frames: ffmpeg sent ${run.stdout.length} bytes for ${frames.length} frames (expected ${offset}); ${summarizeErrors(run.errors)}`,
      { subject: file, reason: "corrupt" },
    );
  }
  return { frames, buf: run.stdout, seek, errors: run.errors };
}

/** Index of the frame shown at t: the last with time ≤ t, or the first when t precedes every frame and `fromStart`; −1 if none. */
function frameAt(frames: readonly DecodedFrame[], t: number, fromStart: boolean): number {
  let lo = 0;
  let hi = frames.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (frames[mid]!.time <= t + TIME_EPS) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best === -1 && fromStart && frames.length > 0 ? 0 : best;
}

/** For the windowed pass: the frame for each time, or null when some window came back empty. */
function pickFromWindows(dec: DecodedVideo, times: readonly number[], window: number): number[] | null {
  const index: number[] = [];
  for (const t of times) {
    const j = frameAt(dec.frames, t, dec.seek === 0);
    if (j < 0) return null;
    const f = dec.frames[j]!;
    // a frame from an earlier window, far before t, means t's own window was empty
    if (f.time <= t + TIME_EPS && t - f.time > window + FRAME_SLACK_SEC + TIME_EPS) return null;
    index.push(j);
  }
  return index;
}

/**
 * The fallback when a window was empty (low or variable frame rate, a gap, or a time past the end):
 * scan every frame's timestamp up to the last time, choose the frame for each time exactly, and
 * decode just those frames. A time more than max(0.25 s, 1.5 frame gaps) after the last frame is
 * past the end of the video: "too-short", or "truncated" when ffmpeg reported damaged data.
 */
async function decodeByScan(
  file: string,
  times: readonly number[],
  size: FrameSize,
  opts: FrameReadOptions,
): Promise<{ dec: DecodedVideo; index: number[] }> {
  const scan = await decodeVideo(file, times, size, { kind: "scan" }, opts);
  const { frames } = scan;
  const damage = classifyStderr(scan.errors);
  if (frames.length === 0) {
    if (damage === "truncated" || damage === "corrupt") {
      throw new MediaError(`reading frames: no frame could be decoded (ffmpeg: ${summarizeErrors(scan.errors)})`, {
        subject: file,
        reason: damage,
      });
    }
    throw new MediaError(`reading frames: the video stream has no frames up to t=${fmt(times[times.length - 1]!)} s`, {
      subject: file,
      reason: "empty",
    });
  }
  let maxGap = 0;
  for (let i = 1; i < frames.length; i++) maxGap = Math.max(maxGap, frames[i]!.time - frames[i - 1]!.time);
  const limit = Math.max(FRAME_WINDOW_SEC, 1.5 * maxGap);
  const chosen = times.map((t) => {
    const j = frameAt(frames, t, true);
    const f = frames[j]!;
    if (t - f.time > limit + TIME_EPS) {
      const damaged = damage === "truncated";
      const why = damaged ? ` (ffmpeg: ${summarizeErrors(scan.errors)})` : "";
      throw new MediaError(`reading frames: no video frame near t=${fmt(t)} s; the last decoded frame is at ${fmt(f.time)} s${why}`, {
        subject: file,
        reason: damaged ? "truncated" : "too-short",
      });
    }
    return f.pts;
  });
  const wanted = [...new Set(chosen)];
  const dec = await decodeVideo(file, times, size, { kind: "pts", pts: wanted }, opts);
  const byPts = new Map(dec.frames.map((f, i) => [f.pts, i]));
  const index = chosen.map((p) => {
    const i = byPts.get(p);
    if (i === undefined)
      throw new MediaError(`reading frames: the frame at pts ${p} did not decode a second time`, { subject: file, reason: "corrupt" });
    return i;
  });
  return { dec, index };
}

/**
 * Decodes the frames shown at each time in `times` (seconds; the last frame whose timestamp is ≤ t,
 * or the first frame when t precedes it), resized to `size`, in one ffmpeg run (two more when a
 * window comes back empty, see {@link FrameReadOptions.windowSec}). Returns exactly one frame per
 * time, in the order given (duplicates allowed; each frame owns its data).
 */
export async function readFrames(path: string, times: number[], size: FrameSize, opts: FrameReadOptions = {}): Promise<RgbFrame[]> {
  validateTimes(path, times);
  validateSize(path, size);
  if (times.length === 0) return [];
  await checkInputFile(path);
  const sorted = [...new Set(times)].sort((a, b) => a - b);
  const window =
    opts.windowSec ?? (opts.fps && opts.fps > 0 ? Math.min(FRAME_WINDOW_SEC, Math.max(0.02, 1.5 / opts.fps)) : FRAME_WINDOW_SEC);
  if (!(window > 0)) throw new ConfigError(`windowSec must be > 0, got ${window}`, { subject: path, reason: "bad-window" });
  let dec = await decodeVideo(path, sorted, size, { kind: "windows", window }, opts);
  let index = pickFromWindows(dec, sorted, window);
  if (!index) ({ dec, index } = await decodeByScan(path, sorted, size, opts));
  const byTime = new Map<number, DecodedFrame>();
  for (const [i, t] of sorted.entries()) byTime.set(t, dec.frames[index[i]!]!);
  return times.map((t) => {
    const f = byTime.get(t)!;
    return { width: f.width, height: f.height, data: new Uint8Array(dec.buf.subarray(f.offset, f.offset + f.width * f.height * 3)) };
  });
}

/** One frame at `timeSec` (see {@link readFrames}). */
export async function readFrame(path: string, timeSec: number, size: FrameSize, opts: FrameReadOptions = {}): Promise<RgbFrame> {
  const [frame] = await readFrames(path, [timeSec], size, opts);
  return frame!;
}

/** Copies little-endian f32 bytes into a fresh, aligned Float32Array. */
export function f32leToFloat32(buf: Uint8Array): Float32Array {
  const n = Math.floor(buf.length / 4);
  const ab = new ArrayBuffer(n * 4);
  if (os.endianness() === "LE") {
    new Uint8Array(ab).set(buf.subarray(0, n * 4));
    return new Float32Array(ab);
  }
  const out = new Float32Array(ab);
  const view = new DataView(buf.buffer, buf.byteOffset, n * 4);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

async function decodeAudio(
  file: string,
  seek: number,
  seconds: number | undefined,
  sampleRate: number,
  timeoutMs: number | undefined,
): Promise<{ samples: Float32Array; errors: string[] }> {
  const run = await runFfmpeg(
    file,
    (cmd) => {
      const input = ["-hide_banner", "-nostdin", "-nostats"];
      if (seek > 0) input.push("-ss", fmt(seek));
      if (seconds !== undefined) input.push("-t", fmt(seconds));
      cmd
        .inputOptions(input)
        .outputOptions(["-map", "0:a:0", "-vn", "-sn", "-dn", "-loglevel", "error"])
        .audioFilters([`aresample=${sampleRate}:ocl=mono:rematrix_maxval=1.0:async=1:first_pts=0`])
        .audioChannels(1)
        .audioFrequency(sampleRate)
        .audioCodec("pcm_f32le")
        .format("f32le");
    },
    { timeoutMs, what: "reading audio", stream: "audio" },
  );
  return { samples: f32leToFloat32(run.stdout), errors: run.errors };
}

function checkAudioOptions(file: string, opts: AudioReadOptions): { start: number; sr: number } {
  const start = opts.startSec ?? 0;
  const sr = opts.sampleRate ?? 48000;
  if (!Number.isFinite(start))
    throw new ConfigError(`startSec must be a finite number of seconds, got ${start}`, { subject: file, reason: "bad-time" });
  if (!Number.isInteger(sr) || sr < 1000 || sr > 768000)
    throw new ConfigError(`sampleRate must be an integer in [1000, 768000], got ${sr}`, { subject: file, reason: "bad-rate" });
  if (opts.durationSec !== undefined && !(opts.durationSec > 0 && Number.isFinite(opts.durationSec))) {
    throw new ConfigError(`durationSec must be > 0, got ${opts.durationSec}`, { subject: file, reason: "bad-duration" });
  }
  return { start, sr };
}

/**
 * Reads mono audio at `sampleRate` (default 48000 Hz) starting at `startSec` **seconds** (not
 * samples). With `durationSec` the clip has exactly `round(durationSec * sampleRate)` samples:
 * samples outside the file are zeros, counted in `paddedSamples`, and `truncated` is set when the
 * file ended early. Without it, the whole file from `startSec` is returned.
 *
 * Fails with a {@link MediaError}: "missing", "empty" (zero bytes, or no audio samples at all),
 * "no-audio-stream", "corrupt", "truncated" (the data is damaged before the requested end),
 * "too-short" (`startSec` past the end, or less real audio than `minSec`), "timeout".
 */
export async function readAudio(path: string, opts: AudioReadOptions = {}): Promise<AudioClip> {
  const { start, sr } = checkAudioOptions(path, opts);
  await checkInputFile(path);
  const lead = start < 0 ? Math.round(-start * sr) : 0;
  const seek = Math.max(0, start);
  const want = opts.durationSec !== undefined ? Math.round(opts.durationSec * sr) : undefined;
  const decodeWant = want !== undefined ? Math.max(0, want - lead) : undefined;
  // a little extra so that resampler rounding never looks like an early end
  const seconds = decodeWant !== undefined ? decodeWant / sr + 0.02 : undefined;
  const { samples: got, errors } = await decodeAudio(path, seek, seconds, sr, opts.timeoutMs);
  const damage = classifyStderr(errors);
  const damaged = damage === "truncated" || damage === "corrupt";
  if (got.length === 0) {
    if (damaged)
      throw new MediaError(`reading audio: no samples could be decoded (ffmpeg: ${summarizeErrors(errors)})`, {
        subject: path,
        reason: damage,
      });
    if (seek === 0) throw new MediaError("reading audio: the audio stream has no samples", { subject: path, reason: "empty" });
    throw new MediaError(`reading audio: startSec ${start} s is at or past the end of the audio`, { subject: path, reason: "too-short" });
  }
  if (damaged && (decodeWant === undefined || got.length < decodeWant)) {
    throw new MediaError(
      `reading audio: the audio data stops at ${(seek + got.length / sr).toFixed(3)} s (ffmpeg: ${summarizeErrors(errors)})`,
      {
        subject: path,
        reason: "truncated",
      },
    );
  }
  const real = decodeWant === undefined ? got.length : Math.min(got.length, decodeWant);
  if (opts.minSec !== undefined && real / sr < opts.minSec) {
    throw new MediaError(`reading audio: only ${(real / sr).toFixed(4)} s of audio from ${start} s, need ${opts.minSec} s`, {
      subject: path,
      reason: "too-short",
    });
  }
  const total = want ?? lead + got.length;
  const samples = new Float32Array(total);
  samples.set(got.subarray(0, real), lead);
  const endPad = total - lead - real;
  return {
    samples,
    sampleRate: sr,
    startSec: start,
    durationSec: total / sr,
    paddedSamples: lead + endPad,
    truncated: endPad > Math.round(0.001 * sr),
  };
}

/**
 * Reads training samples from one file: for each time t (seconds), the frame shown at t and the
 * `audioSec` seconds of audio centred on t, in two ffmpeg runs in all (one for every frame, one for
 * the audio span covering every window), run concurrently. Results are in the order of `times`.
 * Audio windows that reach past either end of the file are zero-padded (see {@link AudioClip}).
 */
export async function readSamples(
  path: string,
  times: number[],
  opts: SampleReadOptions,
): Promise<{ frames: RgbFrame[]; audio: AudioClip[] }> {
  validateTimes(path, times);
  validateSize(path, opts.size);
  const audioSec = opts.audioSec ?? 1;
  if (!(audioSec > 0 && Number.isFinite(audioSec)))
    throw new ConfigError(`audioSec must be > 0, got ${audioSec}`, { subject: path, reason: "bad-duration" });
  const sr = opts.sampleRate;
  if (times.length === 0) return { frames: [], audio: [] };
  const lo = Math.min(...times) - audioSec / 2;
  const n = Math.round(audioSec * sr);
  const lead0 = lo < 0 ? Math.round(-lo * sr) : 0;
  const offsetOf = (t: number) => Math.round((t - audioSec / 2 - lo) * sr);
  const spanSamples = Math.max(...times.map((t) => offsetOf(t) + n));
  const [framesRes, audioRes] = await Promise.allSettled([
    readFrames(path, times, opts.size, { timeoutMs: opts.timeoutMs, windowSec: opts.windowSec, fps: opts.fps, threads: opts.threads }),
    readAudio(path, { startSec: lo, durationSec: spanSamples / sr, sampleRate: sr, timeoutMs: opts.timeoutMs }),
  ]);
  if (framesRes.status === "rejected") throw framesRes.reason;
  if (audioRes.status === "rejected") throw audioRes.reason;
  const span = audioRes.value;
  const validEnd = span.samples.length - (span.paddedSamples - lead0);
  const tol = Math.round(0.001 * sr);
  const audio = times.map((t): AudioClip => {
    const off = offsetOf(t);
    const samples = span.samples.slice(off, off + n);
    const padLead = Math.max(0, Math.min(lead0, off + n) - off);
    const padEnd = Math.max(0, off + n - Math.max(validEnd, off));
    return {
      samples,
      sampleRate: sr,
      startSec: t - audioSec / 2,
      durationSec: n / sr,
      paddedSamples: padLead + padEnd,
      truncated: padEnd > tol,
    };
  });
  return { frames: framesRes.value, audio };
}
