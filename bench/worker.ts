// One benchmark job in its own process (so each backend starts clean and peak RSS is per job):
//
//   node --require tsx/cjs bench/worker.ts <job.json> <result.json>
//
// Jobs and results are described in bench/common.ts; bench/index.ts runs them.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/lib/backend";
import {
  type AvcBatch,
  avcBatches,
  buildSampleCache,
  createPairSampler,
  generateSynthDataset,
  openSampleCache,
  videoPairSource,
} from "../src/lib/data";
import type { ManifestRow } from "../src/lib/data/types";
import { readSamples } from "../src/lib/media";
import {
  buildL3Net,
  createInferenceRunner,
  exportOnnx,
  type L3Net,
  type L3PresetName,
  modelSummary,
  OnnxL3Runner,
  onnxRuntimeStatus,
} from "../src/lib/models";
import { Adam, avcTransforms, createOnnxTrainingEngine, trainStep } from "../src/lib/train";
import { errorMessage, mapPool, Rng } from "../src/lib/util";
import {
  type BenchJob,
  type DataJobResult,
  type JobCommon,
  type JobResult,
  median,
  type OnnxJobResult,
  type OnnxProfileJobResult,
  type OnnxTrainJobResult,
  type SynthJobResult,
  type TfjsJobResult,
  timeReps,
} from "./common";
import { afterRuns, groupProfile, type ProfileEvent } from "./profile";
import { benchSynth } from "./synth";

function common(): JobCommon {
  return { peakRssBytes: process.resourceUsage().maxRSS * 1024, loadavg: os.loadavg() };
}

/** A batch of random AVC inputs for a model (frames in [0, 1], spectrogram values in [−2, 2]). */
function randomBatch(model: ReturnType<typeof buildL3Net>, batch: number): AvcBatch {
  const rng = new Rng("bench-batch");
  const shape = (name: string) => model.graph.nodes.find((n) => n.name === name)?.shape ?? [];
  const fs = shape(model.graph.outputs.frames);
  const as = shape(model.graph.outputs.audio);
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    frames: Float32Array.from({ length: batch * size(fs) }, () => rng.uniform()),
    audio: Float32Array.from({ length: batch * size(as) }, () => rng.uniform(-2, 2)),
    labels: Uint8Array.from({ length: batch }, (_, i) => i % 2),
    pairs: [],
    size: batch,
    frameShape: [batch, ...fs],
    audioShape: [batch, ...as],
  };
}

async function tfjsJob(job: Extract<BenchJob, { kind: "tfjs" }>): Promise<TfjsJobResult> {
  const base = { kind: "tfjs" as const, backend: job.backend, preset: job.preset, batch: job.batch };
  let info: Awaited<ReturnType<typeof initBackend>>;
  try {
    info = await initBackend({ backend: job.backend as "wasm", quiet: true });
  } catch (err) {
    return { ...base, loaded: false, reason: errorMessage(err), ...common() };
  }
  const out: TfjsJobResult = {
    ...base,
    loaded: true,
    reason: info.reason,
    threads: info.threads,
    tfBackend: info.tfBackend,
    ...(info.simd === undefined ? {} : { simd: info.simd }),
    ...(info.kernels ? { kernels: info.kernels } : {}),
    ...common(),
  };
  const model = buildL3Net(job.preset, { seed: 0 });
  const flops = modelSummary(model.graph).totals.flops;
  const batch = randomBatch(model, job.batch);
  if (job.train || job.leakSteps > 0) {
    const optimizer = new Adam({ weightDecay: 2e-5 });
    let loss = Number.NaN;
    const microBatches = job.microBatches ?? 1;
    const step = () => {
      loss = trainStep(model, optimizer, batch, 1e-4, { microBatches }).loss;
    };
    if (job.train) out.train = { ...(await timeReps(step, job, job.batch, 3 * flops * job.batch)), loss, microBatches };
    if (job.leakSteps > 0) {
      step(); // Adam's moment slots exist after the first step
      const before = tf.memory();
      for (let i = 0; i < job.leakSteps; i++) step();
      const after = tf.memory();
      out.leak = {
        backend: job.backend,
        preset: job.preset,
        steps: job.leakSteps,
        tensorsBefore: before.numTensors,
        tensorsAfter: after.numTensors,
        growth: after.numTensors - before.numTensors,
        bytesBefore: before.numBytes,
        bytesAfter: after.numBytes,
      };
    }
    optimizer.dispose();
  }
  if (job.forward) {
    const runner = createInferenceRunner(model, { prefer: "tfjs" });
    const inputs = {
      frames: { data: batch.frames, shape: batch.frameShape },
      audio: { data: batch.audio, shape: batch.audioShape },
    };
    out.forward = await timeReps(() => runner.run(inputs, ["probs"]), job, job.batch, flops * job.batch);
  }
  model.dispose();
  return { ...out, ...common() };
}

async function onnxJob(job: Extract<BenchJob, { kind: "onnx" }>): Promise<OnnxJobResult> {
  const base = { kind: "onnx" as const, preset: job.preset, batch: job.batch };
  const st = onnxRuntimeStatus();
  if (!st.available) return { ...base, available: false, reason: st.reason, ...common() };
  await tf.setBackend("cpu"); // only to hold the weights
  const model = buildL3Net(job.preset, { seed: 0 });
  const flops = modelSummary(model.graph).totals.flops;
  const batch = randomBatch(model, job.batch);
  let t0 = performance.now();
  const bytes = exportOnnx(model, { outputs: ["probs"] });
  const exportMs = performance.now() - t0;
  const runner = new OnnxL3Runner(model);
  const inputs = { frames: { data: batch.frames, shape: batch.frameShape }, audio: { data: batch.audio, shape: batch.audioShape } };
  t0 = performance.now();
  await runner.run(inputs, ["probs"]);
  const firstRunMs = performance.now() - t0;
  const forward = await timeReps(() => runner.run(inputs, ["probs"]), job, job.batch, flops * job.batch);
  await runner.dispose();
  model.dispose();
  return {
    ...base,
    available: true,
    reason: runner.reason,
    version: st.version,
    threads: runner.threads,
    exportBytes: bytes.length,
    exportMs,
    firstRunMs,
    forward,
    ...common(),
  };
}

/** The step the onnx-train and onnx-profile jobs time: sampled pairs, as tfjs' and PyTorch's rows. */
const ONNX_BENCH_STEP = { microBatches: 1, pairing: "sampled", negatives: 1, weightDecay: 1e-5 } as const;

/** The preset's model (initial weights held on tfjs cpu) and a random batch, or why onnxruntime-node does not load. */
async function onnxJobInputs(job: {
  preset: L3PresetName;
  batch: number;
}): Promise<{ reason: string } | { model: L3Net; batch: AvcBatch }> {
  const st = onnxRuntimeStatus();
  if (!st.available) return { reason: st.reason };
  await tf.setBackend("cpu");
  const model = buildL3Net(job.preset, { seed: 0 });
  return { model, batch: randomBatch(model, job.batch) };
}

async function onnxTrainJob(job: Extract<BenchJob, { kind: "onnx-train" }>): Promise<OnnxTrainJobResult> {
  const base = { kind: "onnx-train" as const, preset: job.preset, batch: job.batch };
  const inputs = await onnxJobInputs(job);
  if ("reason" in inputs) return { ...base, available: false, reason: inputs.reason, ...common() };
  const { model, batch } = inputs;
  const flops = modelSummary(model.graph).totals.flops;
  const engine = await createOnnxTrainingEngine(model, ONNX_BENCH_STEP);
  let loss = 0;
  const step = async () => {
    loss = (await engine.step(batch, 1e-4)).loss;
  };
  // as tfjs' and PyTorch's rows: 3 forward passes of FLOPs per step
  const train = await timeReps(step, job, job.batch, 3 * flops * job.batch);
  // what a step hands over and gets back: every parameter, its two moments and the BN statistics
  const arrays = model
    .namedVariables()
    .flatMap((v) => (v.trainable ? [v.variable.size, v.variable.size, v.variable.size] : [v.variable.size]));
  const src = arrays.map((n) => new Float32Array(n).fill(1));
  let t0 = performance.now();
  for (let r = 0; r < 5; r++) for (const a of src) a.slice();
  const copyMs = (performance.now() - t0) / 5;
  const bytes = arrays.reduce((a, b) => a + b, 0) * 4;
  let rss: OnnxTrainJobResult["rss"];
  if (job.rssSteps > 0) {
    const before = process.memoryUsage().rss;
    for (let i = 0; i < job.rssSteps; i++) await step();
    rss = { steps: job.rssSteps, before, after: process.memoryUsage().rss };
  }
  t0 = performance.now();
  await engine.dispose();
  model.dispose();
  return { ...base, available: true, reason: engine.reason, train: { ...train, loss }, copy: { bytes, ms: copyMs }, rss, ...common() };
}

/** onnxruntime's profile of `runs` onnx training steps (after 2 unprofiled warm-ups), by op group. */
async function onnxProfileJob(job: Extract<BenchJob, { kind: "onnx-profile" }>): Promise<OnnxProfileJobResult> {
  const base = { kind: "onnx-profile" as const, preset: job.preset, batch: job.batch };
  const inputs = await onnxJobInputs(job);
  if ("reason" in inputs) return { ...base, available: false, reason: inputs.reason, ...common() };
  const { model, batch } = inputs;
  const dir = mkdtempSync(path.join(os.tmpdir(), "l3kit-bench-profile-"));
  try {
    const prefix = path.join(dir, "step");
    const engine = await createOnnxTrainingEngine(model, ONNX_BENCH_STEP, { profileFilePrefix: prefix });
    // the profile starts at session creation: warm-up steps are in it, so they are counted and left out
    for (let i = 0; i < 2; i++) await engine.step(batch, 1e-4);
    for (let i = 0; i < job.runs; i++) await engine.step(batch, 1e-4);
    await engine.endProfiling();
    await engine.dispose();
    model.dispose();
    const file = readdirSync(dir).find((f) => f.endsWith(".json"));
    if (!file) throw new Error("onnxruntime wrote no profile");
    const events = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as ProfileEvent[];
    const { groups, totalMs } = groupProfile(afterRuns(events, 2), job.runs);
    return { ...base, available: true, reason: engine.reason, runs: job.runs, totalMs, groups, ...common() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function dataJob(job: Extract<BenchJob, { kind: "data" }>): Promise<DataJobResult> {
  await tf.setBackend("cpu");
  const out: DataJobResult = { kind: "data", preset: job.preset, batch: job.batch, clips: job.clips, ...common() };
  const model = buildL3Net(job.preset);
  const config = model.config;
  model.dispose();
  const fe = config.audio.frontEnd;
  const resizeTo = config.vision.frontEnd.resizeTo;
  const dir = path.join(os.tmpdir(), `l3kit-bench-data-${process.pid}`);
  try {
    const gen = await generateSynthDataset({ out: path.join(dir, "synth"), clips: job.clips, seed: "bench-data", profile: "tiny" });
    const rows: ManifestRow[] = gen.rows.map((r) => ({ ...r, path: path.join(gen.out, r.path) }));
    const rng = new Rng("bench-data-times");
    const picks = Array.from({ length: job.samples }, (_, i) => {
      const row = rows[i % rows.length] as ManifestRow;
      return { row, t: rng.uniform(0.5, Math.max(0.5, row.durationSec - 0.5)) };
    });
    // 1. video → samples (one readSamples per sample, 4 at once like avcBatches' default)
    let t0 = performance.now();
    await mapPool(picks, 4, (p) =>
      readSamples(p.row.path, [p.t], { size: { shortSide: resizeTo }, sampleRate: fe.sampleRate, audioSec: 1 }),
    );
    out.videoReadSamples = { samples: picks.length, samplesPerSec: (picks.length * 1000) / (performance.now() - t0) };
    // 2. video → batches with the model's training transforms
    const train = avcTransforms(config, { augment: true });
    const vsource = videoPairSource(rows, { frameSize: { shortSide: resizeTo }, sampleRate: fe.sampleRate, audioSec: 1 });
    const nb = Math.max(1, Math.floor(job.samples / job.batch));
    let n = 0;
    t0 = performance.now();
    for await (const b of avcBatches({
      source: vsource,
      sampler: createPairSampler(vsource.clips, { seed: 1, pairsPerEpoch: nb * job.batch }),
      transform: train,
      batchSize: job.batch,
      maxBatches: nb,
    }))
      n += b.size;
    out.videoAvcBatches = { samples: n, samplesPerSec: (n * 1000) / (performance.now() - t0) };
    // 3. the sample cache
    const cacheDir = path.join(dir, "cache");
    t0 = performance.now();
    const built = await buildSampleCache({
      manifest: rows,
      out: cacheDir,
      perClip: 4,
      frameSize: { width: resizeTo, height: resizeTo },
      sampleRate: fe.sampleRate,
      audioSec: 1,
      seed: "bench",
    });
    const bytes = built.index.shards.reduce((s, sh) => s + (sh ? statSync(path.join(cacheDir, sh.file)).size : 0), 0);
    out.cacheBuild = { samples: built.samples, samplesPerSec: (built.samples * 1000) / (performance.now() - t0), bytes };
    const cache = openSampleCache(cacheDir);
    try {
      const reads = Math.max(200, job.samples * 4);
      const rates: number[] = [];
      for (let r = 0; r < job.reps; r++) {
        t0 = performance.now();
        for (let i = 0; i < reads; i++) cache.getSample(rng.int(cache.numSamples));
        rates.push((reads * 1000) / (performance.now() - t0));
      }
      out.cacheGetSample = { samples: reads, samplesPerSec: median(rates) };
      const batchRates: number[] = [];
      let samples = 0;
      for (let r = 0; r < job.reps; r++) {
        const sampler = createPairSampler(cache.clips, { seed: r, pairsPerEpoch: nb * job.batch * 2 });
        let m = 0;
        t0 = performance.now();
        for await (const b of avcBatches({ source: cache, sampler, transform: train, batchSize: job.batch, maxBatches: nb * 2 }))
          m += b.size;
        batchRates.push((m * 1000) / (performance.now() - t0));
        samples = m;
      }
      out.cacheAvcBatches = { samples, samplesPerSec: median(batchRates) };
    } finally {
      cache.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { ...out, ...common() };
}

async function synthJob(job: Extract<BenchJob, { kind: "synth" }>): Promise<SynthJobResult> {
  const rows = await benchSynth({ tinyClips: job.tinyClips, defaultClips: job.defaultClips });
  return {
    kind: "synth",
    profiles: rows.map((r) => ({
      profile: r.profile,
      clips: r.clips,
      clipsPerSec: r.clipsPerSec,
      concurrency: r.concurrency,
      audioMs: r.audioMs,
      renderMs: r.renderMs,
      bytesPerClip: r.bytesPerClip,
    })),
    ...common(),
  };
}

/** Runs one job. */
export async function runJob(job: BenchJob): Promise<JobResult> {
  switch (job.kind) {
    case "tfjs":
      return tfjsJob(job);
    case "onnx-train":
      return onnxTrainJob(job);
    case "onnx-profile":
      return onnxProfileJob(job);
    case "onnx":
      return onnxJob(job);
    case "data":
      return dataJob(job);
    case "synth":
      return synthJob(job);
  }
}

if (require.main === module) {
  const [jobFile, resultFile] = process.argv.slice(2);
  if (!jobFile || !resultFile) {
    console.error("usage: bench/worker.ts <job.json> <result.json>");
    process.exit(2);
  }
  const job = JSON.parse(readFileSync(jobFile, "utf8")) as BenchJob;
  runJob(job)
    .then((res) => {
      writeFileSync(resultFile, JSON.stringify(res));
      process.exit(0);
    })
    .catch((err) => {
      writeFileSync(resultFile, JSON.stringify({ kind: job.kind, error: errorMessage(err), ...common() }));
      console.error(err);
      process.exit(1);
    });
}
