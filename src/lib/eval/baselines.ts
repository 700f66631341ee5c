/**
 * Hand-made baseline extractors over manifest rows (decoding through `media`): MFCC statistics of
 * 1 s audio windows and colour histograms of one frame per second — the features every probe is
 * reported beside, ready for {@link runProbeProtocol}'s `baselines`.
 */
import { type FrameSize, readAudio, readFrames } from "../media";
import { ConfigError } from "../util";
import { type ColorHistogramOptions, colorHistogramFeatures, type EvalMfccOptions, windowedMfccStats } from "./handmade";
import type { FeatureExtractor } from "./protocol";

/** Options of {@link mfccStatsExtractor}. */
export interface MfccExtractorOptions extends EvalMfccOptions {
  /** Decode rate in Hz. Default 22050 (librosa's default). */
  sampleRate?: number;
  /** Window and hop in seconds. Default 1 and 1 (L³'s ESC-50 protocol averages over 1 s windows). */
  windowSec?: number;
  hopSec?: number;
}

/** MFCC statistics (2·nMfcc-d, 40 by default) per window of a row's audio; decode errors propagate (the protocol skips the row). */
export function mfccStatsExtractor(opts: MfccExtractorOptions = {}): FeatureExtractor {
  const sampleRate = opts.sampleRate ?? 22050;
  return async (row) => {
    const clip = await readAudio(row.path, { sampleRate });
    return windowedMfccStats(clip.samples, sampleRate, opts);
  };
}

/**
 * The times of `k` evenly spaced windows over a clip: one per `everySec` (default 1 s) at the window
 * centres (0.5, 1.5, …), at least one (the middle of clips shorter than a window).
 */
export function windowCentres(durationSec: number, everySec = 1): number[] {
  if (!(everySec > 0)) throw new ConfigError(`everySec must be > 0, got ${everySec}`, { subject: "windowCentres" });
  const k = Math.floor(durationSec / everySec);
  if (!(k >= 1)) return [Math.max(0, durationSec / 2)];
  return Array.from({ length: k }, (_, i) => (i + 0.5) * everySec);
}

/** Options of {@link colorHistogramExtractor}. */
export interface ColorHistogramExtractorOptions extends ColorHistogramOptions {
  /** Bins per channel. Default 8. */
  bins?: number;
  /** Decoded frame size. Default `{ shortSide: 128 }` (histograms barely depend on it). */
  size?: FrameSize;
  /** One frame per this many seconds (window centres). Default 1. */
  everySec?: number;
}

/** Colour histograms of one frame per second of a row's video (k×bins³ joint, or k×3·bins per channel). */
export function colorHistogramExtractor(opts: ColorHistogramExtractorOptions = {}): FeatureExtractor {
  const bins = opts.bins ?? 8;
  const size = opts.size ?? { shortSide: 128 };
  return async (row) => {
    const times = windowCentres(row.durationSec, opts.everySec ?? 1);
    const frames = await readFrames(row.path, times, size);
    const hists = frames.map((f) => colorHistogramFeatures(f, bins, opts));
    const dim = hists[0]!.length;
    const features = new Float32Array(hists.length * dim);
    hists.forEach((h, i) => {
      features.set(h, i * dim);
    });
    return { features, k: hists.length, dim };
  };
}
