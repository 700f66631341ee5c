/**
 * Video writing: the only code in l3kit that runs ffmpeg to write media (used by the synthetic
 * benchmark). Raw rgb24 frames go to ffmpeg's stdin and f32le mono audio goes through a second pipe
 * (fd 3), so nothing touches the disk except the output, which is written under a temp name and
 * renamed into place when ffmpeg succeeds and the file checks out ({@link verifyEncodedVideo}): ffmpeg
 * can exit 0 after failing to write the file's end ("Error writing trailer … No space left on
 * device"), so its exit code alone is not trusted.
 *
 * The output is H.264 (libx264, yuv420p, one encoder thread) + AAC mono in an mp4 with `+faststart`.
 * With `-bitexact` flags and no metadata, the same frames and samples give the same bytes.
 */
import { type MediaProcess, spawnMedia } from "./launcher";
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { ConfigError, errorMessage, tempPathFor, writeError } from "../util";
import { MediaError, type MediaErrorReason } from "./errors";
import { ffmpegPaths } from "./ffmpeg";
import { probeMedia } from "./probe";
import type { MediaInfo } from "./types";

/** Options of {@link encodeVideo}. */
export interface EncodeVideoOptions {
  /** Output .mp4 path (folders are created). */
  path: string;
  /** Frame width and height in pixels (even numbers: yuv420p). */
  width: number;
  height: number;
  /** Frames per second (integer or rational like 30000/1001 given as a number). */
  fps: number;
  /** Frames, each `width * height * 3` bytes of rgb24, row-major HWC. */
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Mono audio in [-1, 1]; encoded as AAC at its sample rate (48 kHz for l3kit). */
  audio?: { samples: Float32Array; sampleRate: number };
  /** x264 constant rate factor (0–51, lower is better). Default 18. */
  crf?: number;
  /** x264 preset. Default "fast". */
  preset?: string;
  /** Keyframe interval in frames (short GOPs make seeking cheap). Default: one per second. */
  gop?: number;
  /** AAC bit rate in bit/s. Default 128000. */
  audioBitrate?: number;
  /** Kill ffmpeg and fail after this many ms. Default 120000. */
  timeoutMs?: number;
}

/** What {@link encodeVideo} wrote. */
export interface EncodeVideoResult {
  path: string;
  frames: number;
  bytes: number;
  audioSamples: number;
}

/** The ffmpeg arguments {@link encodeVideo} uses (exported for inspection and tests). */
export function encodeVideoArgs(
  opts: Omit<EncodeVideoOptions, "frames" | "audio" | "path"> & { hasAudio: boolean; sampleRate?: number; output: string },
): string[] {
  const gop = opts.gop ?? Math.max(1, Math.round(opts.fps));
  const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"];
  args.push("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${opts.width}x${opts.height}`, "-framerate", String(opts.fps), "-i", "pipe:0");
  if (opts.hasAudio) args.push("-f", "f32le", "-ar", String(opts.sampleRate), "-ac", "1", "-i", "pipe:3");
  args.push("-map", "0:v:0");
  if (opts.hasAudio) args.push("-map", "1:a:0");
  args.push(
    "-c:v",
    "libx264",
    "-preset",
    opts.preset ?? "fast",
    "-crf",
    String(opts.crf ?? 18),
    "-pix_fmt",
    "yuv420p",
    "-g",
    String(gop),
    "-keyint_min",
    String(gop),
    "-sc_threshold",
    "0",
    "-threads",
    "1",
    "-flags:v",
    "+bitexact",
  );
  if (opts.hasAudio)
    args.push(
      "-c:a",
      "aac",
      "-b:a",
      String(opts.audioBitrate ?? 128000),
      "-ac",
      "1",
      "-ar",
      String(opts.sampleRate),
      "-flags:a",
      "+bitexact",
    );
  args.push("-fflags", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", opts.output);
  return args;
}

async function* asAsync(frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const f of frames) yield f;
}

/**
 * Encodes rgb24 frames (and optional mono audio) into an H.264/AAC mp4, atomically (temp name, then
 * rename). Deterministic: the same input gives the same file. Errors name the output file and give
 * ffmpeg's message.
 */
export async function encodeVideo(opts: EncodeVideoOptions): Promise<EncodeVideoResult> {
  const file = opts.path;
  const frameBytes = checkEncodeOptions(opts);
  try {
    await fsp.mkdir(path.dirname(file), { recursive: true });
  } catch (err) {
    throw writeError(path.dirname(file), err, "cannot create the folder");
  }
  const tmp = tempPathFor(file);
  const audio = opts.audio && opts.audio.samples.length > 0 ? opts.audio : null;
  const args = encodeVideoArgs({ ...opts, hasAudio: audio !== null, sampleRate: opts.audio?.sampleRate, output: tmp });
  const timeoutMs = opts.timeoutMs ?? 120000;
  const enc = startEncoder(args, file, timeoutMs);
  let fed: FedFrames;
  let exit: EncoderExit;
  try {
    [fed] = await Promise.all([feedFrames(enc, opts, frameBytes), feedAudio(enc, audio?.samples ?? null)]);
    exit = await enc.exited;
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  } finally {
    enc.stopTimer();
  }
  await rejectFailedRun(tmp, file, { fed, exit, timedOut: enc.timedOut(), stderr: enc.stderr(), timeoutMs });
  const audioSec = audio ? audio.samples.length / audio.sampleRate : 0;
  const { width, height, fps } = opts;
  await keepIfIntact(tmp, file, enc.stderr(), { frames: fed.frames, fps, width, height, audioSec, subject: file });
  const { size } = await fsp.stat(file);
  return { path: file, frames: fed.frames, bytes: size, audioSamples: audio ? audio.samples.length : 0 };
}

/** Checks the frame size, frame rate and sample rate; returns the bytes of one rgb24 frame. */
function checkEncodeOptions(opts: EncodeVideoOptions): number {
  const bad = (message: string) => new ConfigError(message, { subject: opts.path });
  const { width, height, fps } = opts;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2 || width % 2 || height % 2) {
    throw bad(`frame size must be even integers >= 2 (yuv420p), got ${width}x${height}`);
  }
  if (!(fps > 0) || !Number.isFinite(fps)) throw bad(`fps must be > 0, got ${fps}`);
  if (opts.audio && !(opts.audio.sampleRate > 0)) throw bad(`audio sampleRate must be > 0, got ${opts.audio.sampleRate}`);
  return width * height * 3;
}

/** How ffmpeg ended. */
interface EncoderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running ffmpeg: its two input pipes, its stderr so far, how it ends, and its kill timer. */
interface Encoder {
  child: MediaProcess;
  stdin: NodeJS.WritableStream;
  audioPipe: NodeJS.WritableStream | null;
  exited: Promise<EncoderExit>;
  stderr(): string;
  timedOut(): boolean;
  stopTimer(): void;
}

/** Starts ffmpeg with frames on stdin and audio on fd 3; it is killed after `timeoutMs`. */
function startEncoder(args: string[], file: string, timeoutMs: number): Encoder {
  const ffmpeg = ffmpegPaths().ffmpeg;
  const child = spawnMedia(ffmpeg, args, ["write", "ignore", "read", "write"]);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 20000) stderr += d.toString();
  });
  const stdin = child.stdin!;
  const audioPipe = child.stdio[3] as NodeJS.WritableStream | null;
  // EPIPE on a pipe means ffmpeg died; the exit code and stderr tell why.
  stdin.on("error", () => {});
  (audioPipe as unknown as NodeJS.EventEmitter)?.on?.("error", () => {});
  const exited = new Promise<EncoderExit>((resolve, reject) => {
    child.on("error", (err) =>
      reject(new MediaError(`could not start ffmpeg (${ffmpeg}): ${err.message}`, { subject: file, reason: "no-ffmpeg", cause: err })),
    );
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  return { child, stdin, audioPipe, exited, stderr: () => stderr, timedOut: () => timedOut, stopTimer: () => clearTimeout(timer) };
}

function running(child: MediaProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Writes a chunk and waits until the pipe takes more. A pipe ffmpeg has closed (it died: a full
 * disk, bad input) emits no more 'drain' or 'close', so a write to it must not wait for them, or
 * the encode would hang with nothing left to wake it.
 */
function writeToPipe(stream: NodeJS.WritableStream, chunk: Uint8Array): Promise<void> {
  const gone = () => {
    const w = stream as NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean };
    return w.destroyed === true || w.writableEnded === true;
  };
  return new Promise<void>((resolve) => {
    if (gone()) resolve();
    else if (stream.write(chunk) || gone()) resolve();
    else {
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.once("drain", done);
      stream.once("close", done);
    }
  });
}

/** Frames written, and the error that stopped the input (a bad frame, a failing iterator). */
interface FedFrames {
  frames: number;
  error?: unknown;
}

/** Writes the frames to ffmpeg's stdin (checking each one's size) and closes it; a bad input kills ffmpeg. */
async function feedFrames(enc: Encoder, opts: EncodeVideoOptions, frameBytes: number): Promise<FedFrames> {
  let frames = 0;
  try {
    for await (const frame of asAsync(opts.frames)) {
      if (frame.length !== frameBytes)
        throw new ConfigError(`frame ${frames} has ${frame.length} bytes, expected ${frameBytes} (${opts.width}x${opts.height} rgb24)`, {
          subject: opts.path,
        });
      if (!running(enc.child)) break;
      await writeToPipe(enc.stdin, frame);
      frames++;
    }
  } catch (error) {
    enc.child.kill("SIGKILL");
    return { frames, error };
  } finally {
    enc.stdin.end();
  }
  return { frames };
}

/** Writes the samples (f32le) to ffmpeg's audio pipe in 64 KiB chunks and closes it. */
async function feedAudio(enc: Encoder, samples: Float32Array | null): Promise<void> {
  const pipe = enc.audioPipe;
  if (!samples || !pipe) return;
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const chunk = 1 << 16;
  for (let o = 0; o < bytes.length; o += chunk) {
    if (!running(enc.child)) break;
    await writeToPipe(pipe, bytes.subarray(o, Math.min(bytes.length, o + chunk)));
  }
  pipe.end();
}

/** Removes the temp file and throws when the input failed, nothing was written, ffmpeg timed out or failed. */
async function rejectFailedRun(
  tmp: string,
  file: string,
  run: { fed: FedFrames; exit: EncoderExit; timedOut: boolean; stderr: string; timeoutMs: number },
): Promise<void> {
  const { fed, exit, timedOut } = run;
  if (fed.error === undefined && !timedOut && fed.frames === 0) {
    await fsp.rm(tmp, { force: true });
    throw new ConfigError("no frames to encode", { subject: file });
  }
  if (fed.error === undefined && !timedOut && exit.code === 0) return;
  await fsp.rm(tmp, { force: true });
  if (fed.error !== undefined) throw fed.error;
  if (timedOut) throw new MediaError(`ffmpeg timed out after ${run.timeoutMs} ms`, { subject: file, reason: "timeout" });
  throw new MediaError(`ffmpeg failed (exit ${exit.code ?? exit.signal}): ${run.stderr.trim() || "no message"}`, {
    subject: file,
    reason: "ffmpeg-failed",
  });
}

/**
 * Renames the temp file into place when ffmpeg reported no error and the file checks out
 * ({@link verifyEncodedVideo}); ffmpeg exits 0 when writing the trailer fails (a full disk), so its
 * messages and the file decide. Otherwise removes it and throws a {@link MediaError}.
 */
async function keepIfIntact(tmp: string, file: string, stderr: string, expect: ExpectedVideo): Promise<void> {
  const complaint = ffmpegComplaint(stderr);
  try {
    if (complaint) {
      const disk = /no space left|disk quota/i.test(complaint);
      throw new MediaError(`ffmpeg exited 0 but reported an error${disk ? " (the disk is full)" : ""}: ${complaint}`, {
        subject: file,
        reason: disk ? "truncated" : "ffmpeg-failed",
      });
    }
    await verifyEncodedVideo(tmp, expect);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    if (err instanceof MediaError) throw err;
    throw new MediaError(`could not move the encoded file into place: ${(err as Error).message}`, {
      subject: file,
      reason: "ffmpeg-failed",
      cause: err,
    });
  }
}

/** The error lines of ffmpeg's stderr (it runs with `-loglevel error`, so every line is one), or "". */
export function ffmpegComplaint(stderr: string): string {
  return stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join("; ")
    .slice(0, 2000);
}

/** What an encoded video must hold ({@link verifyEncodedVideo}). */
export interface ExpectedVideo {
  /** Video frames written. */
  frames: number;
  fps: number;
  width: number;
  height: number;
  /** Seconds of audio written (0: the file must have no audio stream). */
  audioSec: number;
  /** The name errors give the file (default: its path). */
  subject?: string;
}

/**
 * Checks an encoded mp4 with ffprobe: it opens (a file whose end was never written has no `moov`
 * atom), has one video stream of the expected size and, when audio was written, an audio stream,
 * and lasts as long as the frames and audio written (within two frames and 0.1 s; the frame count
 * must match exactly where the container records it). Throws a {@link MediaError} ("corrupt" or
 * "truncated") naming the file and what differs.
 */
export async function verifyEncodedVideo(file: string, expect: ExpectedVideo): Promise<MediaInfo> {
  const subject = expect.subject ?? file;
  const bad = (message: string, reason: MediaErrorReason, cause?: unknown) =>
    new MediaError(`the encoded file is damaged: ${message}`, { subject, reason, cause });
  let info: MediaInfo;
  try {
    info = await probeMedia(file);
  } catch (err) {
    const reason = err instanceof MediaError && err.reason === "truncated" ? "truncated" : "corrupt";
    throw bad(errorMessage(err).replace(`${file}: `, ""), reason, err);
  }
  if (!info.video) throw bad("it has no video stream", "corrupt");
  if (info.video.width !== expect.width || info.video.height !== expect.height)
    throw bad(`its video is ${info.video.width}x${info.video.height}, expected ${expect.width}x${expect.height}`, "corrupt");
  if (expect.audioSec > 0 && !info.audio) throw bad("it has no audio stream, but audio was written", "corrupt");
  if (expect.audioSec <= 0 && info.audio) throw bad("it has an audio stream, but no audio was written", "corrupt");
  if (info.video.frames !== undefined && info.video.frames !== expect.frames)
    throw bad(`it holds ${info.video.frames} video frames, ${expect.frames} were written`, "truncated");
  const want = Math.max(expect.frames / expect.fps, expect.audioSec);
  const tol = 2 / expect.fps + 0.1;
  if (!(Math.abs(info.durationSec - want) <= tol))
    throw bad(`it lasts ${info.durationSec.toFixed(3)} s, expected ${want.toFixed(3)} s`, "truncated");
  return info;
}
