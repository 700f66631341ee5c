import { L3kitError } from "../util";

/**
 * Reasons a media call fails:
 * - "missing": no such file; "empty": a zero-byte file, or a stream with no samples/frames;
 * - "no-video-stream" / "no-audio-stream": the file has no stream of the kind asked for;
 * - "corrupt": ffmpeg cannot read the file (not media, damaged header, unknown format);
 * - "truncated": the data ends early or is damaged where the request needed it;
 * - "too-short": the file is valid but shorter than the request (a time past the end, `minSec`);
 * - "timeout": ffmpeg ran longer than `timeoutMs` and was killed;
 * - "unreadable": permission denied or not a regular file; "ffmpeg-failed": anything else ffmpeg reports;
 * - "no-ffmpeg": the ffmpeg/ffprobe binary cannot be found or run.
 */
export type MediaErrorReason =
  | "missing"
  | "empty"
  | "no-video-stream"
  | "no-audio-stream"
  | "corrupt"
  | "truncated"
  | "too-short"
  | "timeout"
  | "unreadable"
  | "ffmpeg-failed"
  | "no-ffmpeg";

/** A media file could not be read; the message starts with the file path and says why. */
export class MediaError extends L3kitError {
  declare readonly reason: MediaErrorReason;

  constructor(message: string, opts: { subject?: string; reason: MediaErrorReason; cause?: unknown }) {
    super(message, opts);
    this.name = "MediaError";
  }
}
