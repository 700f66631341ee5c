import { MediaError } from "./errors";
import { checkInputFile, runFfprobe } from "./ffmpeg";
import type { MediaCallOptions, MediaInfo } from "./types";

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  sample_rate?: string;
  channels?: number;
  duration?: string;
  disposition?: { attached_pic?: number };
}

interface ProbeOutput {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string; size?: string };
}

/** "30000/1001" → 29.97; "0/0" or junk → 0. */
function parseRational(text: string | undefined): number {
  if (!text) return 0;
  const [a, b] = text.split("/");
  const num = Number(a);
  const den = b === undefined ? 1 : Number(b);
  return Number.isFinite(num) && Number.isFinite(den) && den !== 0 ? num / den : 0;
}

const num = (text: string | number | undefined): number | undefined => {
  const v = typeof text === "number" ? text : text === undefined ? Number.NaN : Number(text);
  return Number.isFinite(v) ? v : undefined;
};

/**
 * Reads a file's container and stream facts with ffprobe (one process, killed after `timeoutMs`).
 * Fails with a {@link MediaError} for a missing or empty file, or one ffprobe cannot read
 * ("corrupt"). A file with neither video nor audio fails with reason "empty".
 *
 * ffprobe runs through runFfprobe (the media launcher), not fluent-ffmpeg: fluent-ffmpeg's `ffprobe()`
 * gives no handle on its process, so it could not be killed on timeout.
 */
export async function probeMedia(path: string, opts: MediaCallOptions = {}): Promise<MediaInfo> {
  const sizeBytes = await checkInputFile(path);
  const stdout = await runFfprobe(path, ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"], opts.timeoutMs);
  let parsed: ProbeOutput;
  try {
    parsed = JSON.parse(stdout) as ProbeOutput;
  } catch (err) {
    throw new MediaError("probing: ffprobe printed output that is not JSON", { subject: path, reason: "corrupt", cause: err });
  }
  const streams = parsed.streams ?? [];
  const v = streams.find((s) => s.codec_type === "video" && !s.disposition?.attached_pic);
  const a = streams.find((s) => s.codec_type === "audio");
  if (!v && !a) throw new MediaError("probing: the file has no video or audio stream", { subject: path, reason: "empty" });
  const streamMax = Math.max(0, ...streams.map((s) => num(s.duration) ?? 0));
  const durationSec = num(parsed.format?.duration) ?? streamMax;
  const frames = num(v?.nb_frames);
  return {
    path,
    durationSec,
    video: v
      ? {
          width: v.width ?? 0,
          height: v.height ?? 0,
          fps: parseRational(v.avg_frame_rate) || parseRational(v.r_frame_rate),
          codec: v.codec_name ?? "unknown",
          ...(frames !== undefined ? { frames } : {}),
        }
      : null,
    audio: a ? { sampleRate: num(a.sample_rate) ?? 0, channels: a.channels ?? 0, codec: a.codec_name ?? "unknown" } : null,
    formatName: parsed.format?.format_name ?? "unknown",
    sizeBytes,
  };
}
