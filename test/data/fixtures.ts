import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import * as path from "node:path";

/** The npm ffmpeg binary (tests only). */
export const ffmpegBin: string = require("@ffmpeg-installer/ffmpeg").path;

/** Luma ramp of the "clock" videos: Y = 16 + LUMA_PER_SEC · t, so a frame tells its own time. */
export const LUMA_PER_SEC = 70;
/** Audio amplitude ramp of the clock videos: a(t) = AMP0 + AMP_PER_SEC · t, so a window's RMS tells its centre. */
export const AMP0 = 0.05;
export const AMP_PER_SEC = 0.1;

export interface ClockVideoOptions {
  durationSec?: number;
  /** Sine frequency (Hz): tells which clip an audio window came from. */
  freq?: number;
  audio?: boolean;
  size?: number;
  fps?: number;
}

/**
 * Writes a small H.264/AAC "clock" video: the frame's grey level and the audio's amplitude both
 * grow linearly with time, so a decoded frame and an audio window each reveal the time they came
 * from, and the sine frequency reveals the clip.
 */
export function makeClockVideo(file: string, opts: ClockVideoOptions = {}): string {
  const d = opts.durationSec ?? 3;
  const size = opts.size ?? 64;
  mkdirSync(path.dirname(file), { recursive: true });
  const args = [
    "-y",
    "-hide_banner",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    `nullsrc=s=${size}x${size}:r=${opts.fps ?? 25}:d=${d},geq=lum='16+T*${LUMA_PER_SEC}':cb=128:cr=128`,
  ];
  if (opts.audio !== false) {
    args.push("-f", "lavfi", "-i", `aevalsrc='(${AMP0}+${AMP_PER_SEC}*t)*sin(2*PI*${opts.freq ?? 440}*t)':s=48000:d=${d}`);
  }
  args.push("-c:v", "libx264", "-pix_fmt", "yuv420p");
  if (opts.audio !== false) args.push("-c:a", "aac", "-b:a", "96k", "-shortest");
  args.push(file);
  execFileSync(ffmpegBin, args, { stdio: ["ignore", "ignore", "pipe"] });
  return file;
}

/**
 * Time estimated from a decoded clock frame (mean RGB of a grey frame). Calibrated on frames
 * decoded by index (n/25 s): within ±0.01 s of the frame's timestamp. The frame shown at t is the
 * last one at or before t, so expect frameTime ∈ [t − 1/fps − 0.01, t + 0.01].
 */
export function frameTime(data: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] as number;
  return ((s / data.length) * 219) / 255 / LUMA_PER_SEC + 0.02;
}

/** Centre time estimated from a 1 s clock audio window (its RMS). */
export function audioTime(samples: Float32Array): number {
  let s = 0;
  for (let i = 0; i < samples.length; i++) s += (samples[i] as number) ** 2;
  const rms = Math.sqrt(s / samples.length);
  return (rms * Math.SQRT2 - AMP0) / AMP_PER_SEC;
}

/** Dominant frequency of a window, from its zero crossings (Hz). */
export function zeroCrossingFreq(samples: Float32Array, sampleRate = 48000): number {
  let n = 0;
  for (let i = 1; i < samples.length; i++) if ((samples[i - 1] as number) < 0 !== (samples[i] as number) < 0) n++;
  return n / 2 / (samples.length / sampleRate);
}
