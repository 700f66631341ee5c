import { type RgbFrame, readAudio, readFrames, readSamples } from "../media";
import { ConfigError, errorMessage, L3kitError, Rng } from "../util";
import { Dataset } from "./dataset";
import type { AvcClip, AvcPair, AvcPairSampler, AvcSamplerState, ClipExclusions } from "./sampler";
import type { ManifestRow } from "./types";

/** A decoded pair: the frame and the audio window (float32, mono). */
export interface LoadedPair {
  frame: RgbFrame;
  audio: Float32Array;
}

/**
 * Where pairs come from: a {@link SampleCache} (pre-decoded) or {@link videoPairSource} (straight from
 * the video files). `clips` is what the sampler draws from; `loadPair` decodes one drawn pair;
 * `subset` is the source of one split's clips (each source knows how its pairs address clips).
 */
export interface PairSource {
  readonly clips: readonly AvcClip[];
  loadPair(pair: AvcPair): LoadedPair | Promise<LoadedPair>;
  /** The clips whose `split` is `split`, as a pair source (pairs drawn over its own `clips`). */
  subset(split: string): PairSource;
  /**
   * How to open this same source in another thread ({@link reopenPairSource}), when it can be:
   * plain data. Sources without it are read where they are.
   */
  readonly origin?: PairSourceOrigin;
}

/** A pair source as plain data: a sample cache's folder and the splits taken of it, in order. */
export interface PairSourceOrigin {
  kind: "sample-cache";
  dir: string;
  allowPartial: boolean;
  splits: string[];
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
  const source: PairSource = {
    clips: rows,
    subset(split: string): PairSource {
      const mine = rows.filter((r) => r.split === split);
      return mine.length === rows.length ? source : videoPairSource(mine, opts);
    },
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
  return source;
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
  /**
   * Draws the pairs, from its state when the pipeline is made (epoch, position, excluded clips) on;
   * the pipeline only reads it, so every iteration gives the same batches and the sampler never
   * moves. Give `pairs` instead for a fixed list.
   */
  sampler?: AvcPairSampler;
  /** A fixed list of pairs (e.g. from `fixedPairs`), used once, in order. */
  pairs?: readonly AvcPair[];
  transform: AvcTransforms;
  batchSize: number;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** Pairs decoded at once (default 4). */
  concurrency?: number;
  /** Stop after this many batches (default: the rest of the sampler's current epoch; `Infinity`: epoch after epoch, endless). */
  maxBatches?: number;
  /** Leave out a last, smaller batch (default false). */
  dropRemainder?: boolean;
  /** Seed of the augmentation draws (default: the sampler's seed); each pair's draws depend only on it, the epoch and the position. */
  seed?: number | string;
  /** Called once per clip that fails to decode (per iteration); the clip is excluded from this iteration's draws and the pair redrawn. */
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
 * A clip that fails to decode is reported once through `onSkip`, excluded from the rest of the
 * iteration's draws (never from the sampler itself), and the pair is redrawn at the same position
 * (same label), so the epoch stays balanced. Each batch's `samplerState` carries the exclusions.
 * Like a tf.data dataset, it can be iterated again from the start and knows its `size` (the
 * planned number of batches: fewer only when a pair still fails after 50 redraws).
 */
export function avcBatches(opts: AvcBatchOptions): Dataset<AvcBatch> {
  const { source, sampler } = opts;
  if (!sampler && !opts.pairs) throw new ConfigError("give a sampler or a list of pairs", { subject: "avcBatches" });
  if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
    throw new ConfigError(`must be an integer >= 1, got ${opts.batchSize}`, { subject: "batchSize" });
  }
  if (sampler && sampler.clips !== source.clips && sampler.clips.length !== source.clips.length) {
    throw new ConfigError("the sampler was made over other clips than the source's (use createPairSampler(source.clips))", {
      subject: "sampler",
    });
  }
  const draws = sampler
    ? samplerDraws(sampler, opts.maxBatches, opts.batchSize)
    : fixedDraws(opts.pairs ?? [], opts.maxBatches, opts.batchSize);
  const n = draws.count;
  const batches = opts.dropRemainder ? Math.floor(n / opts.batchSize) : Math.ceil(n / opts.batchSize);
  // Everything an iteration changes (the clips it excluded, the clips it reported) lives in that iteration.
  return Dataset.from(() => batchPipeline(opts, draws.start()), batches);
}

/** One iteration's pair stream: the pairs in order, and redraws of a pair that could not be loaded. */
interface PairDraws {
  pairs: Iterable<AvcPair>;
  /** The pair drawn instead of `pair` once its clip `rowIndex` is excluded; null when it cannot be redrawn. */
  redraw(pair: AvcPair, rowIndex: number): AvcPair | null;
  /** The sampler state right after `last` (sampler draws only). */
  stateAfter(last: AvcPair): AvcSamplerState | undefined;
}

/** How many pairs a pipeline draws, and a fresh stream of them for each iteration. */
interface DrawPlan {
  count: number;
  start(): PairDraws;
}

function fixedDraws(list: readonly AvcPair[], maxBatches: number | undefined, batchSize: number): DrawPlan {
  const n = maxBatches === undefined ? list.length : Math.min(list.length, maxBatches * batchSize);
  return {
    count: n,
    start: () => ({ pairs: list.slice(0, n), redraw: () => null, stateAfter: () => undefined }),
  };
}

/** Pairs from a sampler's state at this moment on, drawn with the pure `pairAt` and the iteration's own exclusions. */
function samplerDraws(s: AvcPairSampler, maxBatches: number | undefined, batchSize: number): DrawPlan {
  const from = s.state();
  const count = maxBatches === undefined ? s.remainingInEpoch() || s.pairsPerEpoch : maxBatches * batchSize;
  return {
    count,
    start(): PairDraws {
      const excluded: ClipExclusions = s.exclusions(from.excluded);
      return {
        pairs: (function* () {
          let epoch = from.epoch;
          let position = from.position;
          for (let i = 0; i < count; i++) {
            if (position >= s.pairsPerEpoch) {
              epoch++;
              position = 0;
            }
            yield s.pairAt(epoch, position++, excluded);
          }
        })(),
        redraw(pair, rowIndex) {
          if (pair.epoch < 0) return null;
          excluded.add(rowIndex);
          return s.pairAt(pair.epoch, pair.index, excluded);
        },
        stateAfter: (last) =>
          last.epoch >= 0 ? { ...from, epoch: last.epoch, position: last.index + 1, excluded: excluded.list() } : undefined,
      };
    },
  };
}

/** The pipeline of one iteration: draw → load and transform (concurrently) → batch → prefetch. */
function batchPipeline(opts: AvcBatchOptions, draws: PairDraws): Dataset<AvcBatch> {
  const { source, transform } = opts;
  const augSeed = opts.seed ?? opts.sampler?.seed ?? 0;
  const reported = new Set<number>();

  const report = (err: ClipLoadError) => {
    if (reported.has(err.rowIndex)) return;
    reported.add(err.rowIndex);
    opts.onSkip?.({ rowIndex: err.rowIndex, id: err.clipId, reason: err.reason, message: err.message });
  };

  const prepare = async (first: AvcPair): Promise<Prepared | null> => {
    let pair: AvcPair | null = first;
    for (let attempt = 0; pair; attempt++) {
      let loaded: LoadedPair;
      try {
        loaded = await source.loadPair(pair);
      } catch (err) {
        if (!(err instanceof ClipLoadError)) throw err;
        report(err);
        pair = attempt >= 50 ? null : draws.redraw(pair, err.rowIndex);
        continue;
      }
      const rng = new Rng(`${augSeed}|avc-aug|${pair.epoch}|${pair.index}`);
      const f = unpack(transform.frame(loaded.frame, rng.fork("frame")), opts.frameShape, "frame");
      const a = unpack(transform.audio(loaded.audio, rng.fork("audio")), opts.audioShape, "audio");
      return { pair, frame: f.data, audio: a.data, frameShape: f.shape, audioShape: a.shape };
    }
    return null;
  };

  return Dataset.from(draws.pairs)
    .mapAsync(prepare, opts.concurrency ?? 4)
    .filter((x): boolean => x !== null)
    .batch(opts.batchSize, { dropRemainder: opts.dropRemainder })
    .map((items) => assemble(items as Prepared[], draws))
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

function assemble(items: Prepared[], draws: PairDraws): AvcBatch {
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
  const samplerState = draws.stateAfter(pairs[B - 1] as AvcPair);
  if (samplerState) batch.samplerState = samplerState;
  return batch;
}
