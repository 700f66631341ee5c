import { type RgbFrame, readAudio, readFrames, readSamples } from "../media";
import { ConfigError, errorMessage, L3kitError, Rng } from "../util";
import { Dataset } from "./dataset";
import type { AvcClip, AvcPair, AvcPairSampler, AvcSamplerState } from "./sampler";
import type { ManifestRow } from "./types";

/** A decoded pair: the frame and the audio window (float32, mono). */
export interface LoadedPair {
  frame: RgbFrame;
  audio: Float32Array;
}

/**
 * Where pairs come from: a {@link SampleCache} (pre-decoded) or {@link videoPairSource} (straight from
 * the video files). `clips` is what the sampler draws from; `loadPair` decodes one drawn pair.
 */
export interface PairSource {
  readonly clips: readonly AvcClip[];
  loadPair(pair: AvcPair): LoadedPair | Promise<LoadedPair>;
}

/** A clip failed to decode while loading a pair; `rowIndex` is the clip (index into the source's clips). */
export class ClipLoadError extends L3kitError {
  constructor(
    readonly rowIndex: number,
    readonly clipId: string,
    message: string,
    opts: { subject?: string; reason?: string; cause?: unknown } = {},
  ) {
    super(message, opts);
    this.name = "ClipLoadError";
  }
}

export interface VideoPairSourceOptions {
  /**
   * Decoded frame size (before the frame transform): `{ shortSide: resizeTo }` (e.g. 256 for the
   * paper model) keeps the aspect, as the paper's pipeline does; `{ width, height }` stretches.
   */
  frameSize: { width: number; height: number } | { shortSide: number };
  /** Default 48000. */
  sampleRate?: number;
  /** Audio window (s) centred on the pair time; default 1. */
  audioSec?: number;
}

/** A pair source that decodes each pair from the manifest's video files with ffmpeg. */
export function videoPairSource(rows: readonly ManifestRow[], opts: VideoPairSourceOptions): PairSource {
  const sampleRate = opts.sampleRate ?? 48000;
  const audioSec = opts.audioSec ?? 1;
  const fail = (rowIndex: number, err: unknown): never => {
    const row = rows[rowIndex] as ManifestRow;
    const reason = err instanceof L3kitError && err.reason !== "error" ? err.reason : "decode-failed";
    throw new ClipLoadError(rowIndex, row.id, errorMessage(err), { subject: `clip '${row.id}'`, reason, cause: err });
  };
  const rowOf = (i: number): ManifestRow => {
    const r = rows[i];
    if (!r) throw new RangeError(`pair refers to row ${i}, but the source has ${rows.length} rows`);
    return r;
  };
  return {
    clips: rows,
    async loadPair(pair: AvcPair): Promise<LoadedPair> {
      const fr = rowOf(pair.frame.rowIndex);
      if (pair.frame.rowIndex === pair.audio.rowIndex && pair.frame.t === pair.audio.t) {
        const res = await readSamples(fr.path, [pair.frame.t], { size: opts.frameSize, sampleRate, audioSec }).catch((e) =>
          fail(pair.frame.rowIndex, e),
        );
        return { frame: res.frames[0] as RgbFrame, audio: (res.audio[0] as { samples: Float32Array }).samples };
      }
      const ar = rowOf(pair.audio.rowIndex);
      const [frames, clip] = await Promise.all([
        readFrames(fr.path, [pair.frame.t], opts.frameSize).catch((e) => fail(pair.frame.rowIndex, e)),
        readAudio(ar.path, { startSec: pair.audio.t - audioSec / 2, durationSec: audioSec, sampleRate }).catch((e) =>
          fail(pair.audio.rowIndex, e),
        ),
      ]);
      return { frame: frames[0] as RgbFrame, audio: clip.samples };
    },
  };
}

/** A transform's output: a flat array, optionally with its shape (used for the batch shape). */
export type TransformOutput = Float32Array | { data: Float32Array; shape: readonly number[] };

export interface AvcTransforms {
  /** Frame → float32 H×W×3 (augmentation draws from `rng`). */
  frame: (frame: RgbFrame, rng: Rng) => TransformOutput;
  /** Audio window → float32 bins×frames×1 (e.g. a log spectrogram). */
  audio: (samples: Float32Array, rng: Rng) => TransformOutput;
}

/** A clip left out because it failed to decode (reported once). */
export interface SkippedClip {
  rowIndex: number;
  id: string;
  reason: string;
  message: string;
}

export interface AvcBatchOptions {
  source: PairSource;
  /** Draws the pairs (it advances as batches are produced). Give `pairs` instead for a fixed list. */
  sampler?: AvcPairSampler;
  /** A fixed list of pairs (e.g. from `fixedPairs`), used once, in order. */
  pairs?: readonly AvcPair[];
  transform: AvcTransforms;
  batchSize: number;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** Pairs decoded at once (default 4). */
  concurrency?: number;
  /** Stop after this many batches (default: the rest of the sampler's current epoch). */
  maxBatches?: number;
  /** Leave out a last, smaller batch (default false). */
  dropRemainder?: boolean;
  /** Seed of the augmentation draws (default: the sampler's seed); each pair's draws depend only on it, the epoch and the position. */
  seed?: number | string;
  /** Called once per clip that fails to decode; the clip is excluded and the pair redrawn. */
  onSkip?: (clip: SkippedClip) => void;
  /** Shapes of one transformed frame / audio input, when the transforms return bare arrays (checked against their length). */
  frameShape?: readonly number[];
  audioShape?: readonly number[];
}

/** A batch of AVC inputs as plain typed arrays (the training loop makes the tensors). */
export interface AvcBatch {
  /** B×H×W×3 */
  frames: Float32Array;
  /** B×bins×frames×1 */
  audio: Float32Array;
  labels: Uint8Array;
  pairs: AvcPair[];
  size: number;
  frameShape: number[];
  audioShape: number[];
  /** The sampler state right after this batch's last pair: save it to resume exactly after this batch. */
  samplerState?: AvcSamplerState;
}

interface Prepared {
  pair: AvcPair;
  frame: Float32Array;
  audio: Float32Array;
  frameShape: readonly number[];
  audioShape: readonly number[];
}

/**
 * Batches of AVC pairs with background prefetch: pairs are drawn from the sampler, decoded from the
 * source (up to `concurrency` at once) and transformed, while earlier batches are being consumed.
 * A clip that fails to decode is reported once through `onSkip`, excluded from the sampler, and the
 * pair is redrawn at the same position (same label), so the epoch stays balanced.
 */
export function avcBatches(opts: AvcBatchOptions): Dataset<AvcBatch> {
  const { source, sampler, transform } = opts;
  if (!sampler && !opts.pairs) throw new ConfigError("give a sampler or a list of pairs", { subject: "avcBatches" });
  if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
    throw new ConfigError(`must be an integer >= 1, got ${opts.batchSize}`, { subject: "batchSize" });
  }
  if (sampler && sampler.clips !== source.clips && sampler.clips.length !== source.clips.length) {
    throw new ConfigError("the sampler was made over other clips than the source's (use createPairSampler(source.clips))", {
      subject: "sampler",
    });
  }
  const augSeed = opts.seed ?? sampler?.seed ?? 0;
  const reported = new Set<number>();

  const report = (err: ClipLoadError) => {
    if (reported.has(err.rowIndex)) return;
    reported.add(err.rowIndex);
    opts.onSkip?.({ rowIndex: err.rowIndex, id: err.clipId, reason: err.reason, message: err.message });
  };

  const prepare = async (first: AvcPair): Promise<Prepared | null> => {
    let pair = first;
    for (let attempt = 0; ; attempt++) {
      let loaded: LoadedPair;
      try {
        loaded = await source.loadPair(pair);
      } catch (err) {
        if (!(err instanceof ClipLoadError)) throw err;
        report(err);
        if (!sampler || pair.epoch < 0 || attempt >= 50) return null;
        sampler.exclude(err.rowIndex);
        pair = sampler.pairAt(pair.epoch, pair.index);
        continue;
      }
      const rng = new Rng(`${augSeed}|avc-aug|${pair.epoch}|${pair.index}`);
      const f = unpack(transform.frame(loaded.frame, rng.fork("frame")), opts.frameShape, "frame");
      const a = unpack(transform.audio(loaded.audio, rng.fork("audio")), opts.audioShape, "audio");
      return { pair, frame: f.data, audio: a.data, frameShape: f.shape, audioShape: a.shape };
    }
  };

  const pairStream = (): Iterable<AvcPair> => {
    if (opts.pairs) {
      const list = opts.pairs;
      const n = opts.maxBatches === undefined ? list.length : Math.min(list.length, opts.maxBatches * opts.batchSize);
      return list.slice(0, n);
    }
    const s = sampler as AvcPairSampler;
    return (function* () {
      const total = opts.maxBatches === undefined ? s.remainingInEpoch() || s.pairsPerEpoch : opts.maxBatches * opts.batchSize;
      for (let i = 0; i < total; i++) yield s.next();
    })();
  };

  return Dataset.from(pairStream)
    .mapAsync(prepare, opts.concurrency ?? 4)
    .filter((x): boolean => x !== null)
    .batch(opts.batchSize, { dropRemainder: opts.dropRemainder })
    .map((items) => assemble(items as Prepared[], sampler))
    .prefetch(opts.prefetch ?? 2);
}

function unpack(
  out: TransformOutput,
  shape: readonly number[] | undefined,
  what: string,
): { data: Float32Array; shape: readonly number[] } {
  const data = out instanceof Float32Array ? out : out.data;
  const s = out instanceof Float32Array ? (shape ?? [data.length]) : out.shape;
  const n = s.reduce((a, b) => a * b, 1);
  if (n !== data.length) {
    throw new ConfigError(`${what} transform gave ${data.length} values, but its shape [${s.join(", ")}] holds ${n}`, {
      subject: `transform.${what}`,
    });
  }
  return { data, shape: s };
}

function assemble(items: Prepared[], sampler: AvcPairSampler | undefined): AvcBatch {
  const first = items[0] as Prepared;
  const fLen = first.frame.length;
  const aLen = first.audio.length;
  const B = items.length;
  const frames = new Float32Array(B * fLen);
  const audio = new Float32Array(B * aLen);
  const labels = new Uint8Array(B);
  items.forEach((it, i) => {
    if (it.frame.length !== fLen || it.audio.length !== aLen) {
      throw new ConfigError(
        `transforms must give equal sizes for every pair: got frame ${it.frame.length} / audio ${it.audio.length}, first was ${fLen} / ${aLen}`,
        { subject: "transform" },
      );
    }
    frames.set(it.frame, i * fLen);
    audio.set(it.audio, i * aLen);
    labels[i] = it.pair.label;
  });
  const pairs = items.map((it) => it.pair);
  const batch: AvcBatch = {
    frames,
    audio,
    labels,
    pairs,
    size: B,
    frameShape: [B, ...first.frameShape],
    audioShape: [B, ...first.audioShape],
  };
  const last = pairs[B - 1] as AvcPair;
  if (sampler && last.epoch >= 0) batch.samplerState = { ...sampler.state(), epoch: last.epoch, position: last.index + 1 };
  return batch;
}
