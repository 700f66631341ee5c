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
import { spawn } from "node:child_process";
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
  const fail = (message: string, reason: MediaErrorReason, cause?: unknown) => new MediaError(message, { subject: file, reason, cause });
  const bad = (message: string) => new ConfigError(message, { subject: file });
  const { width, height, fps } = opts;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2 || width % 2 || height % 2) {
    throw bad(`frame size must be even integers >= 2 (yuv420p), got ${width}x${height}`);
  }
  if (!(fps > 0) || !Number.isFinite(fps)) throw bad(`fps must be > 0, got ${fps}`);
  if (opts.audio && !(opts.audio.sampleRate > 0)) throw bad(`audio sampleRate must be > 0, got ${opts.audio.sampleRate}`);
  const frameBytes = width * height * 3;
  try {
    await fsp.mkdir(path.dirname(file), { recursive: true });
  } catch (err) {
    throw writeError(path.dirname(file), err, "cannot create the folder");
  }
  const tmp = tempPathFor(file);
  const hasAudio = !!opts.audio && opts.audio.samples.length > 0;
  const args = encodeVideoArgs({ ...opts, hasAudio, sampleRate: opts.audio?.sampleRate, output: tmp });
  const ffmpeg = ffmpegPaths().ffmpeg;
  const child = spawn(ffmpeg, args, { stdio: ["pipe", "ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 20000) stderr += d.toString();
  });
  const stdin = child.stdin!;
  const audioPipe = child.stdio[3] as NodeJS.WritableStream & { destroy?: () => void };
  // EPIPE on a pipe means ffmpeg died; the exit code and stderr tell why.
  stdin.on("error", () => {});
  (audioPipe as unknown as NodeJS.EventEmitter)?.on?.("error", () => {});

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", (err) => reject(fail(`could not start ffmpeg (${ffmpeg}): ${err.message}`, "no-ffmpeg", err)));
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, opts.timeoutMs ?? 120000);

  // A pipe ffmpeg has closed (it died: a full disk, bad input) emits no more 'drain' or 'close', so a
  // write to it must not wait for them, or the encode would hang with nothing left to wake it.
  const gone = (stream: NodeJS.WritableStream) => {
    const w = stream as NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean };
    return w.destroyed === true || w.writableEnded === true;
  };
  const write = (stream: NodeJS.WritableStream, chunk: Uint8Array) =>
    new Promise<void>((resolve) => {
      if (gone(stream)) resolve();
      else if (stream.write(chunk) || gone(stream)) resolve();
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

  let frames = 0;
  let inputError: unknown;
  const feedVideo = (async () => {
    try {
      for await (const frame of asAsync(opts.frames)) {
        if (frame.length !== frameBytes)
          throw bad(`frame ${frames} has ${frame.length} bytes, expected ${frameBytes} (${width}x${height} rgb24)`);
        if (child.exitCode !== null || child.signalCode !== null) break;
        await write(stdin, frame);
        frames++;
      }
    } catch (err) {
      inputError = err;
      child.kill("SIGKILL");
    } finally {
      stdin.end();
    }
  })();
  const feedAudio = (async () => {
    if (!hasAudio || !audioPipe) return;
    const s = opts.audio!.samples;
    const bytes = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
    const chunk = 1 << 16;
    for (let o = 0; o < bytes.length; o += chunk) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      await write(audioPipe, bytes.subarray(o, Math.min(bytes.length, o + chunk)));
    }
    audioPipe.end();
  })();

  let result: { code: number | null; signal: NodeJS.Signals | null };
  try {
    await Promise.all([feedVideo, feedAudio]);
    result = await exited;
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (!inputError && !timedOut && frames === 0) {
    await fsp.rm(tmp, { force: true });
    throw bad("no frames to encode");
  }
  if (inputError || timedOut || result.code !== 0) {
    await fsp.rm(tmp, { force: true });
    if (inputError) throw inputError;
    if (timedOut) throw fail(`ffmpeg timed out after ${opts.timeoutMs ?? 120000} ms`, "timeout");
    throw fail(`ffmpeg failed (exit ${result.code ?? result.signal}): ${stderr.trim() || "no message"}`, "ffmpeg-failed");
  }
  // ffmpeg exits 0 when writing the trailer fails (a full disk): its messages and the file decide.
  const complaint = ffmpegComplaint(stderr);
  try {
    if (complaint) {
      const disk = /no space left|disk quota/i.test(complaint);
      throw fail(
        `ffmpeg exited 0 but reported an error${disk ? " (the disk is full)" : ""}: ${complaint}`,
        disk ? "truncated" : "ffmpeg-failed",
      );
    }
    await verifyEncodedVideo(tmp, {
      frames,
      fps,
      width,
      height,
      audioSec: hasAudio ? opts.audio!.samples.length / opts.audio!.sampleRate : 0,
      subject: file,
    });
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    if (err instanceof MediaError) throw err;
    throw fail(`could not move the encoded file into place: ${(err as Error).message}`, "ffmpeg-failed", err);
  }
  const { size } = await fsp.stat(file);
  return { path: file, frames, bytes: size, audioSamples: hasAudio ? opts.audio!.samples.length : 0 };
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
