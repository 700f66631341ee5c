/**
 * `l3kit embed`: embeds media files with a saved model ({@link embedVideo}) and writes one output per
 * input (json, npy or npz); a file that cannot be read is reported and skipped.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { encodeNpy, VIDEO_EXTENSIONS } from "../lib/media";
import {
  type EmbedVideoOptions,
  embedVideo,
  type L3Net,
  loadModel,
  resolveEmbeddingLayer,
  resolvePooling,
  type TimedEmbeddings,
} from "../lib/models";
import { encodeNpz } from "../lib/models/npz";
import { ConfigError, checkWritableDir, errorMessage, L3kitError, writeFileAtomic, writeJsonAtomic } from "../lib/util";

/** Output formats of {@link embedCommand}. */
export type EmbedFormat = "json" | "npy" | "npz";

/** Options of {@link embedCommand} (the `l3kit embed` CLI): {@link embedVideo}'s, and the files, model and outputs. */
export interface EmbedCommandOptions extends EmbedVideoOptions {
  files: string[];
  /** A saved model folder (see `saveModel`) or a model already in memory. */
  checkpoint: string | L3Net;
  /** Output folder (created). */
  out: string;
  /**
   * `json`: one `<stem>.json` per input with timestamps and embeddings; `npz`: one `<stem>.npz` with
   * `audio_embedding`, `audio_timestamps`, `vision_embedding`, `vision_timestamps` (as present);
   * `npy`: `<stem>.audio.npy`, `<stem>.audio_timestamps.npy`, `<stem>.vision.npy`, `<stem>.vision_timestamps.npy`.
   * Default json.
   */
  format?: EmbedFormat;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** What {@link embedCommand} did. */
export interface EmbedCommandReport {
  written: Array<{ file: string; outputs: string[]; audioWindows: number; frames: number }>;
  failed: Array<{ file: string; error: string; reason: string }>;
}

/** Extensions `embed` takes from a folder (video, audio and image files; lower case, with the dot). */
export const EMBED_EXTENSIONS: readonly string[] = [
  ...VIDEO_EXTENSIONS,
  ".wav",
  ".mp3",
  ".flac",
  ".ogg",
  ".oga",
  ".m4a",
  ".aac",
  ".opus",
  ".png",
  ".jpg",
  ".jpeg",
  ".bmp",
  ".webp",
];

/**
 * The files `embed` works on: each path that is a file as given, each folder replaced by the media
 * files under it ({@link EMBED_EXTENSIONS}, subfolders included, sorted). A path that does not exist
 * stays in the list (it is then reported as a failed item); a folder with no media file is a ConfigError.
 */
export async function expandEmbedInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const exts = new Set(EMBED_EXTENSIONS);
  for (const input of inputs) {
    const st = await fsp.stat(input).catch(() => null);
    if (!st?.isDirectory()) {
      out.push(input);
      continue;
    }
    const found = (await fsp.readdir(input, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && exts.has(path.extname(e.name).toLowerCase()))
      .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
      .sort();
    if (found.length === 0)
      throw new ConfigError(`holds no media file (${EMBED_EXTENSIONS.join(" ")})`, { subject: input, reason: "no-media" });
    out.push(...found);
  }
  return out;
}

function uniqueStem(file: string, used: Set<string>): string {
  const base = path.basename(file, path.extname(file)) || "media";
  let stem = base;
  for (let i = 2; used.has(stem); i++) stem = `${base}-${i}`;
  used.add(stem);
  return stem;
}

const toRows = (e: TimedEmbeddings): number[][] =>
  Array.from({ length: e.count }, (_, i) => Array.from(e.embeddings.subarray(i * e.dim, (i + 1) * e.dim)));

/**
 * Embeds each file and writes its outputs (atomically) to `out`. A file that cannot be read is reported
 * in `failed` and skipped; the others finish. Outputs are named after the input (`clip.mp4` →
 * `clip.json`; a repeated name gets `-2`, `-3`, …).
 */
export async function embedCommand(opts: EmbedCommandOptions): Promise<EmbedCommandReport> {
  const format = opts.format ?? "json";
  if (!["json", "npy", "npz"].includes(format))
    throw new ConfigError(`unknown format '${format}' (valid: json, npy, npz)`, { subject: "embed", reason: "bad-format" });
  // Before the model loads or any file is read: the output folder must be writable, the inputs known.
  await checkWritableDir(opts.out, "--out");
  const files = await expandEmbedInputs(opts.files);
  const model = typeof opts.checkpoint === "string" ? await loadModel(opts.checkpoint) : opts.checkpoint;
  const log = opts.log ?? (() => {});
  const report: EmbedCommandReport = { written: [], failed: [] };
  const used = new Set<string>();
  try {
    // check the options once, before any file
    resolvePooling(model, "audio", opts.pooling);
    resolvePooling(model, "vision", opts.visionPooling);
    const layer = resolveEmbeddingLayer(opts.layer, model.config.audio);
    for (const file of files) {
      const stem = uniqueStem(file, used);
      try {
        const r = await embedVideo(model, file, {
          hopSec: opts.hopSec,
          frameHopSec: opts.frameHopSec,
          pooling: opts.pooling,
          visionPooling: opts.visionPooling,
          layer,
          batchSize: opts.batchSize,
          engine: opts.engine,
          maxFrames: opts.maxFrames,
        });
        const outputs: string[] = [];
        if (format === "json") {
          const p = path.join(opts.out, `${stem}.json`);
          await writeJsonAtomic(p, {
            file,
            model: {
              name: model.config.name,
              fusion: model.config.fusion,
              checkpoint: typeof opts.checkpoint === "string" ? opts.checkpoint : null,
            },
            layer,
            durationSec: r.durationSec,
            audio: r.audio
              ? { dim: r.audio.dim, hopSec: opts.hopSec ?? 0.1, timestamps: r.audio.timestamps, embeddings: toRows(r.audio) }
              : null,
            vision: r.vision
              ? { dim: r.vision.dim, frameHopSec: opts.frameHopSec ?? 1, timestamps: r.vision.timestamps, embeddings: toRows(r.vision) }
              : null,
          });
          outputs.push(p);
        } else {
          const arrays: Record<string, { data: Float32Array | Float64Array; shape: number[] }> = {};
          for (const [k, e] of [
            ["audio", r.audio],
            ["vision", r.vision],
          ] as const) {
            if (!e) continue;
            arrays[`${k}_embedding`] = { data: e.embeddings, shape: [e.count, e.dim] };
            arrays[`${k}_timestamps`] = { data: Float64Array.from(e.timestamps), shape: [e.count] };
          }
          if (format === "npz") {
            const p = path.join(opts.out, `${stem}.npz`);
            await writeFileAtomic(p, encodeNpz(arrays));
            outputs.push(p);
          } else {
            for (const [name, a] of Object.entries(arrays)) {
              const p = path.join(opts.out, `${stem}.${name.replace("_embedding", "")}.npy`);
              await writeFileAtomic(p, encodeNpy(a.data, a.shape));
              outputs.push(p);
            }
          }
        }
        report.written.push({ file, outputs, audioWindows: r.audio?.count ?? 0, frames: r.vision?.count ?? 0 });
        log(`${file}: ${outputs.map((o) => path.basename(o)).join(", ")}`);
      } catch (err) {
        const reason = err instanceof L3kitError ? err.reason : "error";
        report.failed.push({ file, error: errorMessage(err), reason });
        log(`${file}: skipped (${errorMessage(err)})`);
      }
    }
  } finally {
    if (typeof opts.checkpoint === "string") model.dispose();
  }
  return report;
}
