import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { type AvcBatch, AvcPairSampler, type SampleCache } from "../../src/lib/data";
import { buildL3Net, getL3Weights } from "../../src/lib/models";
import {
  DEFAULT_TRAIN_CONFIG,
  type StepInfo,
  splitSource,
  type TrainAvcConfig,
  Trainer,
  type TrainerCallback,
  trainAvc,
  validateTrainConfig,
} from "../../src/lib/train";
import { ConfigError } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { tinyTrainingData } from "./fixture";

const tmp = tempDir("l3kit-trainer-");
let cache: SampleCache;
before(async () => {
  ({ cache } = await tinyTrainingData(tmp.dir));
});
after(() => {
  cache?.close();
  tmp.cleanup();
});

// No validation and few steps: these tests are about the loop's bookkeeping, not learning. The
// tfjs engine is named so that they do not depend on which engine `auto` picks on this machine.
const CONFIG: Partial<TrainAvcConfig> = {
  steps: 6,
  batchSize: 8,
  lr: 1e-3,
  logEvery: 2,
  checkpointEvery: 0,
  seed: 5,
  engine: "tfjs",
};

/** Stops the run after a given step (a custom stop rule). */
function stopAt(step: number, reason: string, flush?: boolean): TrainerCallback {
  return { shouldStop: (t: Trainer) => (t.step >= step ? { reason, flush } : null) };
}

/** A stateful callback: counts the steps it saw and sums their losses. */
class StepCounter implements TrainerCallback {
  readonly stateKey = "counter";
  count = 0;
  lossSum = 0;
  onStepEnd(_t: Trainer, info: StepInfo): void {
    this.count++;
    this.lossSum += info.loss;
  }
  stateDict(): unknown {
    return { count: this.count, lossSum: this.lossSum };
  }
  loadStateDict(state: unknown): void {
    ({ count: this.count, lossSum: this.lossSum } = state as { count: number; lossSum: number });
  }
}

function metricsOf(dir: string): unknown[] {
  return readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { samplesPerSec: _s, elapsedSec: _e, ...rest } = JSON.parse(l);
      return rest;
    });
}

test("a custom callback stops training at a given step and the run reports its reason", async () => {
  const model = buildL3Net("tiny", { seed: 4 });
  const out = path.join(tmp.dir, "custom-stop");
  const r = await trainAvc({
    model,
    train: splitSource(cache, "train"),
    out,
    config: CONFIG,
    progress: false,
    trainerCallbacks: [stopAt(3, "enough")],
  });
  assert.equal(r.steps, 3);
  assert.equal(r.stoppedBy, "enough");
  assert.equal(r.engine.name, "tfjs");
  const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8"));
  assert.equal(summary.stoppedBy, "enough");
  // A stop that asks for the usual ending logs the partial window (step 3 is not a log step).
  assert.deepEqual(
    metricsOf(out).map((row) => (row as { step: number }).step),
    [2, 3],
  );
  assert.ok(existsSync(path.join(out, "checkpoints", "step-00000003")), "a checkpoint at the step it stopped");
  model.dispose();
});

test("a callback's state is saved in checkpoints and restored on resume", async () => {
  const train = splitSource(cache, "train");
  const full = buildL3Net("tiny", { seed: 8 });
  const whole = new StepCounter();
  await trainAvc({ model: full, train, out: path.join(tmp.dir, "count-full"), config: CONFIG, progress: false, trainerCallbacks: [whole] });
  assert.equal(whole.count, 6);

  const out = path.join(tmp.dir, "count-resumed");
  const first = buildL3Net("tiny", { seed: 8 });
  const before = new StepCounter();
  const r1 = await trainAvc({
    model: first,
    train,
    out,
    config: CONFIG,
    progress: false,
    trainerCallbacks: [before, stopAt(3, "pause", false)],
  });
  assert.equal(r1.steps, 3);
  first.dispose();
  const saved = JSON.parse(readFileSync(path.join(out, "checkpoints", "step-00000003", "trainer.json"), "utf8"));
  assert.equal(saved.callbacks.counter.count, 3);

  const second = buildL3Net("tiny", { seed: 123 });
  const after = new StepCounter();
  const r2 = await trainAvc({ model: second, train, out, config: CONFIG, progress: false, resume: true, trainerCallbacks: [after] });
  assert.equal(r2.resumedFrom, 3);
  assert.equal(after.count, whole.count, "the resumed counter continues from the checkpoint");
  assert.equal(after.lossSum, whole.lossSum);
  const wa = getL3Weights(full);
  const wb = getL3Weights(second);
  for (const [name, w] of Object.entries(wa)) assert.deepEqual(wb[name]?.data, w.data, `weights of ${name} differ after resume`);
  assert.deepEqual(metricsOf(out), metricsOf(path.join(tmp.dir, "count-full")));
  full.dispose();
  second.dispose();
});

test("a checkpoint written before callbacks kept their own state still resumes exactly", async () => {
  const train = splitSource(cache, "train");
  const full = buildL3Net("tiny", { seed: 6 });
  await trainAvc({ model: full, train, out: path.join(tmp.dir, "legacy-full"), config: CONFIG, progress: false });

  const out = path.join(tmp.dir, "legacy-resumed");
  const first = buildL3Net("tiny", { seed: 6 });
  await trainAvc({ model: first, train, out, config: CONFIG, progress: false, trainerCallbacks: [stopAt(3, "pause", false)] });
  first.dispose();
  // Rewrite trainer.json the way the loop wrote it before callbacks had state: window and evalsSinceBest at the top.
  const file = path.join(out, "checkpoints", "step-00000003", "trainer.json");
  const { callbacks, ...rest } = JSON.parse(readFileSync(file, "utf8"));
  assert.ok(callbacks.metrics.n > 0, "step 3 leaves an unlogged window");
  writeFileSync(file, JSON.stringify({ ...rest, window: callbacks.metrics, evalsSinceBest: callbacks["early-stopping"].evalsSinceBest }));

  const second = buildL3Net("tiny", { seed: 77 });
  const r = await trainAvc({ model: second, train, out, config: CONFIG, progress: false, resume: true });
  assert.equal(r.resumedFrom, 3);
  assert.deepEqual(metricsOf(out), metricsOf(path.join(tmp.dir, "legacy-full")));
  const wa = getL3Weights(full);
  const wb = getL3Weights(second);
  for (const [name, w] of Object.entries(wa)) assert.deepEqual(wb[name]?.data, w.data, `weights of ${name} differ after resume`);
  full.dispose();
  second.dispose();
});

test("an unknown train.engine or train.device is rejected, naming the key and the allowed values", async () => {
  const bad = { ...DEFAULT_TRAIN_CONFIG, engine: "torch" } as unknown as TrainAvcConfig;
  assert.throws(
    () => validateTrainConfig(bad),
    (e: Error) =>
      e instanceof ConfigError && /train\.engine/.test(e.message) && /'auto', 'onnx', 'tfjs'/.test(e.message) && /torch/.test(e.message),
  );
  assert.throws(
    () => validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, device: "tpu" } as unknown as TrainAvcConfig),
    (e: Error) => e instanceof ConfigError && /train\.device/.test(e.message) && /'cpu', 'webgpu'/.test(e.message),
  );
  validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, engine: "onnx", device: "webgpu" });
  const model = buildL3Net("tiny");
  const out = path.join(tmp.dir, "bad-engine");
  await assert.rejects(
    trainAvc({ model, train: splitSource(cache, "train"), out, config: { ...CONFIG, engine: "torch" as "tfjs" }, progress: false }),
    /train\.engine/,
  );
  assert.ok(!existsSync(path.join(out, "metrics.jsonl")), "rejected before training started");
  model.dispose();
});

test("summary.json lists only the checkpoints that still exist after pruning", async () => {
  const model = buildL3Net("tiny", { seed: 2 });
  const out = path.join(tmp.dir, "pruned");
  const r = await trainAvc({
    model,
    train: splitSource(cache, "train"),
    out,
    config: { ...CONFIG, checkpointEvery: 2, keepLast: 1 },
    progress: false,
  });
  const ckptDir = path.join(out, "checkpoints");
  assert.deepEqual(
    readdirSync(ckptDir).filter((d) => d.startsWith("step-")),
    ["step-00000006"],
  );
  const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8"));
  assert.deepEqual(summary.checkpoints, [path.join(ckptDir, "step-00000006")]);
  assert.deepEqual(r.checkpoints, summary.checkpoints);
  for (const dir of summary.checkpoints) assert.ok(existsSync(dir), `${dir} listed but missing`);
  model.dispose();
});

test("the Trainer reads one pipeline: its batches are the sampler's epochs in order, across epoch boundaries", async () => {
  const train = cache.subset("train");
  const config = { ...DEFAULT_TRAIN_CONFIG, ...CONFIG, steps: 7, batchSize: 4, pairsPerEpoch: 8, valPairs: 0 } as TrainAvcConfig;
  validateTrainConfig(config);
  const seen: Array<{ epoch: number; index: number; frame: number | undefined; audio: number | undefined }> = [];
  const engine = {
    name: "tfjs" as const,
    reason: "records the batches",
    step: async (b: AvcBatch) => {
      for (const p of b.pairs) seen.push({ epoch: p.epoch, index: p.index, frame: p.frame.sample, audio: p.audio.sample });
      return { loss: 0.5, accuracy: 0.5 };
    },
    evaluate: async () => ({ loss: 0, accuracy: 0, n: 0 }),
    syncModel: async () => {},
    getOptimizerState: async () => ({}) as never,
    setOptimizerState: async () => {},
    dispose: async () => {},
  };
  const model = buildL3Net("tiny", { seed: 1 });
  const trainer = new Trainer({ model, engine, config, train });
  const r = await trainer.fit();
  model.dispose();
  assert.equal(r.steps, 7);
  assert.equal(r.epochs, 4);
  const reference = new AvcPairSampler(train.clips, { seed: config.seed, pairsPerEpoch: 8 });
  assert.deepEqual(
    seen,
    reference.take(28).map((p) => ({ epoch: p.epoch, index: p.index, frame: p.frame.sample, audio: p.audio.sample })),
  );
  assert.deepEqual(trainer.checkpointState().sampler, { ...reference.state(), epoch: 3, position: 4 });
});
