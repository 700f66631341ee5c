import { createHash } from "node:crypto";
import { ConfigError, L3kitError, Rng } from "../util";

/**
 * A clip the pair sampler can draw from. Manifest rows fit as they are; a sample cache gives
 * `times` (the pre-decoded instants) and `firstSample` (the global index of the clip's first sample).
 */
export interface AvcClip {
  id: string;
  durationSec: number;
  /** Clips with `hasAudio: false` are never drawn. */
  hasAudio?: boolean;
  /** When set, times are drawn from this list instead of uniformly over the clip. */
  times?: readonly number[];
  /** Global sample index of `times[0]` (cache clips); pairs then carry `sample`. */
  firstSample?: number;
}

/** One side of a pair: which clip (index into the sampler's clips) and when (seconds). */
export interface PairSide {
  rowIndex: number;
  id: string;
  /** Frame time, or the centre of the audio window. */
  t: number;
  /** Global sample index in a sample cache (only for clips with `times`). */
  sample?: number;
}

/** An AVC pair: a frame, an audio window (centred on `audio.t`) and whether they correspond. */
export interface AvcPair {
  frame: PairSide;
  audio: PairSide;
  /** 1: same clip, same time (positive); 0: audio from another clip (negative). */
  label: 0 | 1;
  /** Epoch and position in the epoch (-1 and the index for fixed pairs). */
  epoch: number;
  index: number;
}

export interface AvcSamplerOptions {
  /** Seed of every draw (default 0). */
  seed?: number | string;
  /** Pairs per epoch, even (default: the number of usable clips rounded up to even). */
  pairsPerEpoch?: number;
  /** Length of the audio window in seconds (default 1): times keep it inside the clip when possible. */
  windowSec?: number;
  /**
   * Every pair a positive (default false): for training with in-batch negatives, where the
   * negatives are made by pairing each frame with the audio of other pairs of its batch.
   */
  positivesOnly?: boolean;
}

/** Everything needed to resume a sampler exactly (JSON-serialisable). */
export interface AvcSamplerState {
  kind: "avc-pair-sampler";
  version: 1;
  seed: number | string;
  epoch: number;
  /** Next position in the epoch. */
  position: number;
  pairsPerEpoch: number;
  windowSec: number;
  /** Present (true) when every pair is a positive. */
  positivesOnly?: boolean;
  /** Fingerprint of the clips (ids, durations, times), checked on restore. */
  clipsHash: string;
  /** Clips excluded after a decode failure. */
  excluded: number[];
}

interface EpochPlan {
  epoch: number;
  frameClip: Int32Array;
  labels: Uint8Array;
}

/**
 * Draws AVC pairs. Each epoch shuffles the usable clips as frame sources (cycled when the epoch is
 * longer than the clip count) and a label list with exactly half positives (all positives with
 * `positivesOnly`). Positive: a frame at t
 * and the audio window centred on t, same clip. Negative: the frame from one clip, audio from a
 * different clip at its own random time. Times lie in [w/2, duration − w/2] (w = window), or at the
 * middle of clips shorter than w.
 *
 * Every pair is a pure function of (seed, epoch, index, excluded clips), so the state is small
 * ({@link AvcSamplerState}), resuming is exact, and {@link AvcPairSampler.pairAt} gives random access.
 */
export class AvcPairSampler {
  readonly seed: number | string;
  readonly windowSec: number;
  readonly pairsPerEpoch: number;
  readonly positivesOnly: boolean;
  readonly clipsHash: string;
  private _epoch = 0;
  private _position = 0;
  private readonly eligible: number[];
  private excluded: ClipExclusions;
  private plan: EpochPlan | null = null;

  constructor(
    readonly clips: readonly AvcClip[],
    opts: AvcSamplerOptions = {},
  ) {
    this.seed = opts.seed ?? 0;
    this.windowSec = opts.windowSec ?? 1;
    this.positivesOnly = opts.positivesOnly ?? false;
    if (!(this.windowSec > 0)) throw new ConfigError(`must be > 0, got ${this.windowSec}`, { subject: "windowSec" });
    this.eligible = [];
    clips.forEach((c, i) => {
      const hasTimes = c.times === undefined || c.times.length > 0;
      if (c.hasAudio !== false && c.durationSec > 0 && hasTimes) this.eligible.push(i);
    });
    if (this.eligible.length < 2) {
      throw new ConfigError(`AVC needs at least 2 clips with audio, got ${this.eligible.length} of ${clips.length}`, {
        subject: "clips",
        reason: "too-few-clips",
      });
    }
    this.excluded = new ClipExclusions(clips, this.eligible);
    const n = this.eligible.length;
    this.pairsPerEpoch = opts.pairsPerEpoch ?? n + (n % 2);
    if (!(Number.isInteger(this.pairsPerEpoch) && this.pairsPerEpoch >= 2 && this.pairsPerEpoch % 2 === 0)) {
      throw new ConfigError(`must be an even integer >= 2 (for exactly balanced labels), got ${opts.pairsPerEpoch}`, {
        subject: "pairsPerEpoch",
      });
    }
    this.clipsHash = clipsFingerprint(clips);
  }

  /** Restores a sampler saved with {@link AvcPairSampler.state} over the same clips. */
  static fromState(clips: readonly AvcClip[], state: AvcSamplerState): AvcPairSampler {
    const s = new AvcPairSampler(clips, {
      seed: state.seed,
      pairsPerEpoch: state.pairsPerEpoch,
      windowSec: state.windowSec,
      positivesOnly: state.positivesOnly ?? false,
    });
    s.restore(state);
    return s;
  }

  /** The current epoch (starts at 0). */
  get epoch(): number {
    return this._epoch;
  }

  /** The next position within the epoch. */
  get position(): number {
    return this._position;
  }

  /** Indices of the clips that can still be drawn. */
  get usableClips(): readonly number[] {
    return this.excluded.active;
  }

  /**
   * A fresh, separate copy of the exclusions in `excluded` (default: this sampler's), for a reader
   * such as {@link avcBatches} that leaves out clips on its own without changing the sampler.
   */
  exclusions(excluded: Iterable<number> = this.excluded.list()): ClipExclusions {
    return new ClipExclusions(this.clips, this.eligible, excluded);
  }

  /** The next pair; rolls over to the next epoch (with a new shuffle) at the end of one. */
  next(): AvcPair {
    if (this._position >= this.pairsPerEpoch) {
      this._epoch++;
      this._position = 0;
    }
    return this.pairAt(this._epoch, this._position++);
  }

  /** The next `n` pairs. */
  take(n: number): AvcPair[] {
    const out: AvcPair[] = [];
    for (let i = 0; i < n; i++) out.push(this.next());
    return out;
  }

  /** Pairs left in the current epoch. */
  remainingInEpoch(): number {
    return Math.max(0, this.pairsPerEpoch - this._position);
  }

  /** All pairs of one epoch (default: the current one), without moving the sampler. */
  epochPairs(epoch = this._epoch): AvcPair[] {
    const out: AvcPair[] = [];
    for (let i = 0; i < this.pairsPerEpoch; i++) out.push(this.pairAt(epoch, i));
    return out;
  }

  /**
   * The pair at (epoch, index), a pure function of the seed and the excluded clips (this sampler's,
   * or `excluded` from {@link exclusions}). A frame clip that was excluded is replaced by another
   * usable clip drawn for this position; the label is kept, so epochs stay balanced.
   */
  pairAt(epoch: number, index: number, excluded: ClipExclusions = this.excluded): AvcPair {
    if (!(Number.isInteger(index) && index >= 0 && index < this.pairsPerEpoch)) {
      throw new RangeError(`pair index ${index} outside [0, ${this.pairsPerEpoch})`);
    }
    const plan = this.planFor(epoch);
    const rng = new Rng(`${this.seed}|avc-pair|${epoch}|${index}`);
    return this.makePair(plan.frameClip[index] as number, plan.labels[index] as 0 | 1, rng, epoch, index, excluded);
  }

  /**
   * `n` pairs for a validation set, fixed by `seed` alone (independent of the sampler's position);
   * exactly ⌊n/2⌋ positives. Excluded clips are avoided.
   */
  fixedPairs(n: number, seed: number | string): AvcPair[] {
    if (!(Number.isInteger(n) && n >= 0)) throw new ConfigError(`must be an integer >= 0, got ${n}`, { subject: "n" });
    const rng = new Rng(`${seed}|avc-fixed`);
    const { frameClip, labels } = makePlan(this.eligible, n, rng);
    const out: AvcPair[] = [];
    for (let i = 0; i < n; i++) {
      out.push(this.makePair(frameClip[i] as number, labels[i] as 0 | 1, new Rng(`${seed}|avc-fixed|${i}`), -1, i, this.excluded));
    }
    return out;
  }

  /** Stops drawing a clip (e.g. it failed to decode). Throws when fewer than 2 usable clips would remain. */
  exclude(rowIndex: number): void {
    this.excluded.add(rowIndex);
  }

  /** Whether a clip was excluded. */
  isExcluded(rowIndex: number): boolean {
    return this.excluded.has(rowIndex);
  }

  /** The state to save in a checkpoint. */
  state(): AvcSamplerState {
    return {
      kind: "avc-pair-sampler",
      version: 1,
      seed: this.seed,
      epoch: this._epoch,
      position: this._position,
      pairsPerEpoch: this.pairsPerEpoch,
      windowSec: this.windowSec,
      ...(this.positivesOnly ? { positivesOnly: true } : {}),
      clipsHash: this.clipsHash,
      excluded: this.excluded.list(),
    };
  }

  /** Resets this sampler to a saved state; the clips must be the same (checked by fingerprint). */
  restore(state: AvcSamplerState): void {
    if (state?.kind !== "avc-pair-sampler" || state.version !== 1) {
      throw new L3kitError("not an AVC sampler state (version 1)", { subject: "sampler state", reason: "bad-state" });
    }
    if (state.clipsHash !== this.clipsHash) {
      throw new L3kitError("saved for different clips (fingerprint differs): the manifest or cache changed", {
        subject: "sampler state",
        reason: "state-mismatch",
      });
    }
    const positivesOnly = state.positivesOnly ?? false;
    if (
      state.seed !== this.seed ||
      state.pairsPerEpoch !== this.pairsPerEpoch ||
      state.windowSec !== this.windowSec ||
      positivesOnly !== this.positivesOnly
    ) {
      const labels = (p: boolean) => (p ? "positives only" : "balanced labels");
      throw new L3kitError(
        `saved with seed ${state.seed}, ${state.pairsPerEpoch} pairs/epoch, window ${state.windowSec}s, ${labels(positivesOnly)}; this sampler has ${this.seed}, ${this.pairsPerEpoch}, ${this.windowSec}s, ${labels(this.positivesOnly)}`,
        { subject: "sampler state", reason: "state-mismatch" },
      );
    }
    this._epoch = state.epoch;
    this._position = state.position;
    this.excluded = this.exclusions(state.excluded);
  }

  private planFor(epoch: number): EpochPlan {
    if (this.plan?.epoch !== epoch) {
      const rng = new Rng(`${this.seed}|avc-epoch|${epoch}`);
      this.plan = { epoch, ...makePlan(this.eligible, this.pairsPerEpoch, rng) };
      if (this.positivesOnly) this.plan.labels.fill(1);
    }
    return this.plan;
  }

  private makePair(frameClip: number, label: 0 | 1, rng: Rng, epoch: number, index: number, excluded: ClipExclusions): AvcPair {
    const active = excluded.active;
    let fc = frameClip;
    if (excluded.has(fc)) fc = rng.pick(active);
    const frame = this.side(fc, rng);
    if (label === 1) return { frame, audio: { ...frame }, label, epoch, index };
    let ac = rng.pick(active);
    while (ac === fc) ac = rng.pick(active);
    return { frame, audio: this.side(ac, rng), label, epoch, index };
  }

  private side(rowIndex: number, rng: Rng): PairSide {
    const clip = this.clips[rowIndex] as AvcClip;
    if (clip.times) {
      const k = rng.int(clip.times.length);
      const s: PairSide = { rowIndex, id: clip.id, t: clip.times[k] as number };
      if (clip.firstSample !== undefined) s.sample = clip.firstSample + k;
      return s;
    }
    return { rowIndex, id: clip.id, t: drawCentredTime(clip.durationSec, this.windowSec, rng) };
  }
}

/**
 * The clips a sampler no longer draws (e.g. they failed to decode) and those it still draws, in
 * clip order. Made by {@link AvcPairSampler.exclusions}; each holder changes only its own copy.
 */
export class ClipExclusions {
  private readonly excluded = new Set<number>();
  private usable: number[];

  constructor(
    private readonly clips: readonly AvcClip[],
    private readonly eligible: readonly number[],
    excluded: Iterable<number> = [],
  ) {
    this.usable = [...eligible];
    for (const i of excluded) this.add(i);
  }

  /** Clips that can still be drawn (indices into the clips), in clip order. */
  get active(): readonly number[] {
    return this.usable;
  }

  /** Whether a clip is excluded. */
  has(rowIndex: number): boolean {
    return this.excluded.has(rowIndex);
  }

  /** The excluded clips, sorted. */
  list(): number[] {
    return [...this.excluded].sort((a, b) => a - b);
  }

  /** Stops drawing a clip. Throws when fewer than 2 usable clips would remain. */
  add(rowIndex: number): void {
    if (this.excluded.has(rowIndex) || !this.eligible.includes(rowIndex)) return;
    if (this.usable.length <= 2) {
      throw new L3kitError(`cannot exclude clip ${rowIndex} ('${this.clips[rowIndex]?.id}'): fewer than 2 usable clips would remain`, {
        subject: "sampler",
        reason: "too-few-clips",
      });
    }
    this.excluded.add(rowIndex);
    this.usable = this.usable.filter((i) => i !== rowIndex);
  }
}

/** Creates an {@link AvcPairSampler}. */
export function createPairSampler(clips: readonly AvcClip[], opts: AvcSamplerOptions = {}): AvcPairSampler {
  return new AvcPairSampler(clips, opts);
}

/** `n` fixed validation pairs over `clips`, determined by `seed` alone (see {@link AvcPairSampler.fixedPairs}). */
export function fixedAvcPairs(clips: readonly AvcClip[], n: number, seed: number | string, opts: { windowSec?: number } = {}): AvcPair[] {
  return new AvcPairSampler(clips, { seed, windowSec: opts.windowSec }).fixedPairs(n, seed);
}

/**
 * A time for a window of `windowSec` centred on it to lie inside [0, duration]: uniform in
 * [w/2, duration − w/2], or the middle when the clip is shorter than the window.
 */
export function drawCentredTime(durationSec: number, windowSec: number, rng: Rng): number {
  const lo = windowSec / 2;
  const hi = durationSec - windowSec / 2;
  return hi > lo ? rng.uniform(lo, hi) : durationSec / 2;
}

function makePlan(eligible: readonly number[], count: number, rng: Rng): { frameClip: Int32Array; labels: Uint8Array } {
  const frameClip = new Int32Array(count);
  let filled = 0;
  while (filled < count) {
    const perm = rng.shuffle([...eligible]);
    for (let i = 0; i < perm.length && filled < count; i++) frameClip[filled++] = perm[i] as number;
  }
  const labels = new Uint8Array(count);
  for (let i = 0; i < Math.floor(count / 2); i++) labels[i] = 1;
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = labels[i] as number;
    labels[i] = labels[j] as number;
    labels[j] = t;
  }
  return { frameClip, labels };
}

function clipsFingerprint(clips: readonly AvcClip[]): string {
  const h = createHash("sha256");
  for (const c of clips) {
    h.update(
      `${c.id}\u0000${c.durationSec}\u0000${c.hasAudio !== false}\u0000${c.firstSample ?? ""}\u0000${c.times ? c.times.join(",") : ""}\n`,
    );
  }
  return h.digest("hex").slice(0, 16);
}
