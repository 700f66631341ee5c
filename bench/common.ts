// Shared pieces of the benchmark runner (bench/index.ts) and its child processes (bench/worker.ts):
// job and result types, and the timing rule (medians over repetitions after warm-up).

import type { L3PresetName } from "../src/lib/models";
import type { ProfileGroup } from "./profile";

/** One timed operation: median over `reps` repetitions, each of `callsPerRep` calls. */
export interface Timing {
  /** Median milliseconds per call. */
  msPerCall: number;
  /** Fastest repetition, ms per call. */
  minMs: number;
  reps: number;
  callsPerRep: number;
  /** Every repetition's ms per call. */
  allMs: number[];
  /** batch × 1000 / msPerCall. */
  samplesPerSec: number;
  /** Achieved GFLOP/s (forward FLOPs of the graph; a training step counted as 3× forward). */
  gflops?: number;
}

/** How long to time things. */
export interface TimingPlan {
  warmup: number;
  reps: number;
  /** Each repetition repeats the call until it lasts at least this long (from the warm-up time). */
  minRepMs: number;
}

/**
 * Times `fn`: `warmup` untimed calls (at least one), then `reps` repetitions of k calls each, with k
 * chosen from the last warm-up call so a repetition lasts ≥ `minRepMs`. Reports the median.
 */
export async function timeReps(fn: () => unknown, plan: TimingPlan, batch: number, flopsPerCall?: number): Promise<Timing> {
  let last = 0;
  for (let i = 0; i < Math.max(1, plan.warmup); i++) {
    const t0 = performance.now();
    await fn();
    last = performance.now() - t0;
  }
  const callsPerRep = Math.max(1, Math.ceil(plan.minRepMs / Math.max(last, 1e-3)));
  const allMs: number[] = [];
  for (let r = 0; r < Math.max(1, plan.reps); r++) {
    const t0 = performance.now();
    for (let i = 0; i < callsPerRep; i++) await fn();
    allMs.push((performance.now() - t0) / callsPerRep);
  }
  const msPerCall = median(allMs);
  const t: Timing = {
    msPerCall,
    minMs: Math.min(...allMs),
    reps: allMs.length,
    callsPerRep,
    allMs,
    samplesPerSec: (batch * 1000) / msPerCall,
  };
  if (flopsPerCall !== undefined) t.gflops = flopsPerCall / msPerCall / 1e6;
  return t;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** A job for a child process. */
export type BenchJob =
  | ({
      kind: "tfjs";
      backend: string;
      preset: L3PresetName;
      batch: number;
      train: boolean;
      forward: boolean;
      /** Training steps of the tensor-leak check (0: none). */
      leakSteps: number;
      /** Gradient accumulation: the batch is split into this many micro-batches (default 1). */
      microBatches?: number;
    } & TimingPlan)
  | ({ kind: "onnx"; preset: L3PresetName; batch: number } & TimingPlan)
  | ({ kind: "onnx-train"; preset: L3PresetName; batch: number; rssSteps: number } & TimingPlan)
  | { kind: "onnx-profile"; preset: L3PresetName; batch: number; runs: number }
  | { kind: "data"; preset: L3PresetName; batch: number; clips: number; samples: number; reps: number }
  | { kind: "synth"; tinyClips: number; defaultClips: number };

/** What every job reports besides its numbers. */
export interface JobCommon {
  /** Peak resident set size of the child process (bytes). */
  peakRssBytes: number;
  /** 1-minute load average when the job ended. */
  loadavg: number[];
  /** Set when the job failed. */
  error?: string;
}

/** Result of a "tfjs" job. */
export interface TfjsJobResult extends JobCommon {
  kind: "tfjs";
  backend: string;
  preset: L3PresetName;
  batch: number;
  loaded: boolean;
  /** Why the backend is (not) used. */
  reason: string;
  threads?: number;
  tfBackend?: string;
  simd?: boolean;
  kernels?: string[];
  train?: Timing & { loss: number; microBatches: number };
  forward?: Timing;
  leak?: LeakResult;
}

/** The tensor-leak check: tensors alive before and after N training steps. */
export interface LeakResult {
  backend: string;
  preset: L3PresetName;
  steps: number;
  tensorsBefore: number;
  tensorsAfter: number;
  growth: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** Result of an "onnx" job. */
export interface OnnxJobResult extends JobCommon {
  kind: "onnx";
  preset: L3PresetName;
  batch: number;
  available: boolean;
  reason: string;
  version?: string;
  threads?: number;
  /** Export of the probs-only graph: bytes and ms. */
  exportBytes?: number;
  exportMs?: number;
  /** Session creation + first inference (ms). */
  firstRunMs?: number;
  forward?: Timing;
}

/** Result of a "data" job (samples/s of each stage of the input pipeline). */
export interface DataJobResult extends JobCommon {
  kind: "data";
  preset: L3PresetName;
  batch: number;
  clips: number;
  /** Pairs from video files: one `readSamples` call per sample (4 at once, as avcBatches). */
  videoReadSamples?: { samples: number; samplesPerSec: number };
  /** Batches from video files through `avcBatches` with the model's training transforms. */
  videoAvcBatches?: { samples: number; samplesPerSec: number };
  /** Building the sample cache from the videos. */
  cacheBuild?: { samples: number; samplesPerSec: number; bytes: number };
  /** Random `getSample` reads from the cache (median of reps). */
  cacheGetSample?: { samples: number; samplesPerSec: number };
  /** Batches from the cache through `avcBatches` with the model's training transforms (median of reps). */
  cacheAvcBatches?: { samples: number; samplesPerSec: number };
}

/** Result of a "synth" job (bench/synth.ts's numbers). */
export interface SynthJobResult extends JobCommon {
  kind: "synth";
  profiles: Array<{
    profile: string;
    clips: number;
    clipsPerSec: number;
    concurrency: number;
    audioMs: number;
    renderMs: number;
    bytesPerClip: number;
  }>;
}

/** Result of an "onnx-train" job: the whole AVC step on onnxruntime. */
export interface OnnxTrainJobResult extends JobCommon {
  kind: "onnx-train";
  preset: L3PresetName;
  batch: number;
  available: boolean;
  reason: string;
  train?: Timing & { loss: number };
  /** Bytes of parameters, BN statistics and Adam moments that a step hands over (each is copied once), and a memcpy of that volume. */
  copy?: { bytes: number; ms: number };
  /** RSS after the timed steps and after `rssSteps` more (no growth expected). */
  rss?: { steps: number; before: number; after: number };
}

/** Result of an "onnx-profile" job: onnxruntime's profile of training steps, by op group. */
export interface OnnxProfileJobResult extends JobCommon {
  kind: "onnx-profile";
  preset: L3PresetName;
  batch: number;
  available: boolean;
  reason: string;
  /** Profiled steps (after two unprofiled warm-up steps). */
  runs?: number;
  /** Kernel milliseconds per step, with the profiler's overhead. */
  totalMs?: number;
  groups?: ProfileGroup[];
}

export type JobResult = TfjsJobResult | OnnxJobResult | OnnxTrainJobResult | OnnxProfileJobResult | DataJobResult | SynthJobResult;
