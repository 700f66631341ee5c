/** One decoded video frame: 8-bit RGB, row-major HWC (`data.length === width * height * 3`). */
export interface RgbFrame {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Mono audio decoded from a file, at a fixed sample rate. */
export interface AudioClip {
  /** Mono samples (multi-channel audio is downmixed; stereo becomes the mean of L and R). */
  samples: Float32Array;
  sampleRate: number;
  /** The start that was asked for, in seconds from the start of the file (may be negative: zeros lead). */
  startSec: number;
  /** `samples.length / sampleRate`. */
  durationSec: number;
  /** Samples that are zeros because they lie outside the file (before its start or after its end). */
  paddedSamples: number;
  /** True when the file's audio ended more than 1 ms before the requested end (the tail is zero-padded). */
  truncated: boolean;
}

/** What {@link probeMedia} reports about a file. */
export interface MediaInfo {
  path: string;
  /** Container duration in seconds (the longest stream when the container gives none). */
  durationSec: number;
  /** The first video stream that is not cover art, or null. */
  video: { width: number; height: number; fps: number; codec: string; frames?: number } | null;
  /** The first audio stream, or null. */
  audio: { sampleRate: number; channels: number; codec: string } | null;
  /** ffmpeg's demuxer name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "wav". */
  formatName: string;
  sizeBytes: number;
}

/**
 * The size of decoded frames: an exact `{ width, height }` (the frame is stretched to it), or
 * `{ shortSide }` (aspect kept; the shorter side becomes `shortSide`, the other is rounded).
 */
export type FrameSize = { width: number; height: number } | { shortSide: number };

/** Options every decoding call takes. */
export interface MediaCallOptions {
  /** Kill ffmpeg and fail with reason "timeout" after this many ms (default 60000; not counting time queued for the pool). */
  timeoutMs?: number;
}

/** Video file extensions (lower case, with the dot): what `data scan` takes from a folder, and part of what `embed` takes. */
export const VIDEO_EXTENSIONS: readonly string[] = [
  ".mp4",
  ".m4v",
  ".mkv",
  ".webm",
  ".mov",
  ".avi",
  ".mpg",
  ".mpeg",
  ".flv",
  ".wmv",
  ".ogv",
  ".3gp",
  ".ts",
];
