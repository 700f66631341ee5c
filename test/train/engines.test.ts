// The onnx and tfjs training engines against each other: the same loss curve, checkpoints that
// resume on the other engine, and byte-identical reruns on onnx.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { AvcPairSampler, avcBatches, type SampleCache } from "../../src/lib/data";
import { buildL3Net, getL3Weights, onnxRuntimeStatus } from "../../src/lib/models";
import { avcTransforms, createTrainingEngine, type MetricsRow, splitSource, type TrainAvcConfig, trainAvc } from "../../src/lib/train";
import { tempDir } from "../helpers";
import { tinyTrainingData } from "./fixture";

const ort = onnxRuntimeStatus();
const skip = ort.available ? false : `onnxruntime-node not available: ${ort.reason}`;

const tmp = tempDir("l3kit-engines-");
let cache: SampleCache;
before(async () => {
  ({ cache } = await tinyTrainingData(tmp.dir));
});
after(() => {
  cache?.close();
  tmp.cleanup();
});

const CONFIG: Partial<TrainAvcConfig> = {
  steps: 20,
  batchSize: 8,
  lr: 1e-3,
  evalEvery: 10,
  valPairs: 16,
  logEvery: 1,
  checkpointEvery: 10,
  seed: 4,
};

/**
 * Two engines' loss curves agree: within 1e-3 (relative) over the first 3 steps, and within 25%
 * at every step after (5% on average). Float32 rounding differs between the engines (summation
 * order), and Adam's first updates are ≈ lr·sign(g), so a gradient component that is ≈ 0 moves by
 * ±lr in either direction: the curves drift apart step by step (measured: 5e-6 at step 1, 8e-4 at
 * step 4, up to 4–5% by step 20 on this fixture). The mel models' input batch norm adds two such
 * components (its γ and β barely move the loss: the first conv's batch norm undoes them), and the
 * drift grew to 11% at step 18 (sampled pairs; 2.7% on average), and to 17% there (2.5% on
 * average) once the onnx engine's convs ran on NCHWc kernels, another summation order. Training
 * here is that sensitive anyway: tfjs against itself with one kernel scaled by 1 + 1e-6 drifts 3%
 * by step 15. A wrong gradient shows in the first three steps.
 */
function assertCloseCurves(got: ReturnType<typeof curve>, want: ReturnType<typeof curve>, what: string): void {
  assert.equal(got.length, want.length, `${what}: rows`);
  let meanRel = 0;
  got.forEach((row, i) => {
    const ref = want[i] as (typeof want)[number];
    assert.equal(row.step, ref.step);
    const rel = Math.abs(row.loss - ref.loss) / Math.abs(ref.loss);
    meanRel += rel / got.length;
    assert.ok(rel <= (row.step <= 3 ? 1e-3 : 0.25), `${what} step ${row.step}: loss ${row.loss} vs ${ref.loss}`);
  });
  assert.ok(meanRel <= 0.05, `${what}: mean relative difference ${meanRel}`);
}

/** metrics.jsonl without the wall-clock fields. */
function curve(dir: string): Array<Omit<MetricsRow, "samplesPerSec" | "elapsedSec">> {
  return readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { samplesPerSec: _s, elapsedSec: _e, ...rest } = JSON.parse(l) as MetricsRow;
      return rest;
    });
}

async function run(name: string, config: Partial<TrainAvcConfig>, opts: { resume?: boolean; stopAt?: number } = {}) {
  const model = buildL3Net("tiny", { seed: 9 });
  const controller = new AbortController();
  const result = await trainAvc({
    model,
    train: splitSource(cache, "train"),
    val: splitSource(cache, "val"),
    out: path.join(tmp.dir, name),
    config: { ...CONFIG, ...config },
    progress: false,
    resume: opts.resume,
    signal: controller.signal,
    callbacks: {
      onStep: (row) => {
        if (opts.stopAt !== undefined && row.step >= opts.stopAt) controller.abort();
      },
    },
  });
  const weights = getL3Weights(model);
  model.dispose();
  return { result, weights, curve: curve(path.join(tmp.dir, name)) };
}

for (const pairing of ["sampled", "in-batch"] as const) {
  test(`20 steps (${pairing} pairs): onnx and tfjs give the same loss curve`, { skip }, async () => {
    const cfg = { pairing, negatives: 7 } as const;
    const onnx = await run(`curve-onnx-${pairing}`, { ...cfg, engine: "onnx" });
    const tfjs = await run(`curve-tfjs-${pairing}`, { ...cfg, engine: "tfjs" });
    assert.equal(onnx.result.engine.name, "onnx");
    assert.equal(tfjs.result.engine.name, "tfjs");
    assertCloseCurves(onnx.curve, tfjs.curve, pairing);
    assert.ok((onnx.curve.at(-1)?.loss as number) < (onnx.curve[0]?.loss as number), "the loss falls");
  });
}

test("a checkpoint written by one engine resumes on the other, and continues the same curve", { skip }, async () => {
  const straight = await run("resume-straight", { engine: "onnx" });
  for (const [first, second] of [
    ["onnx", "tfjs"],
    ["tfjs", "onnx"],
  ] as const) {
    const name = `resume-${first}-${second}`;
    const a = await run(name, { engine: first }, { stopAt: 10 });
    assert.equal(a.result.stoppedBy, "signal");
    const at = a.result.steps;
    assert.ok(at >= 10 && at < 20);
    const b = await run(name, { engine: second }, { resume: true });
    assert.equal(b.result.resumedFrom, at);
    assert.equal(b.result.steps, 20);
    assert.equal(b.result.engine.name, second);
    // the steps before the checkpoint are onnx's or tfjs' own; the resumed ones continue from its state
    if (first === "onnx") assert.deepEqual(b.curve.slice(0, at), straight.curve.slice(0, at));
    assertCloseCurves(b.curve, straight.curve, name);
  }
});

test("the optimizer state goes from engine to engine unchanged (kernel layouts converted exactly)", { skip }, async () => {
  const model = buildL3Net("tiny", { seed: 3 });
  const step = { microBatches: 1, pairing: "sampled", negatives: 1, weightDecay: 1e-5 } as const;
  const onnx = await createTrainingEngine(model, step, { engine: "onnx" });
  const batches = [];
  for await (const b of avcBatches({
    source: splitSource(cache, "train"),
    pairs: new AvcPairSampler(splitSource(cache, "train").clips, { seed: 1 }).fixedPairs(16, 1),
    transform: avcTransforms(model.config, { augment: false }),
    batchSize: 8,
  }))
    batches.push(b);
  for (const b of batches) await onnx.step(b, 1e-3);
  await onnx.syncModel();
  const state = await onnx.getOptimizerState();
  assert.equal(state.step, 2);
  const tfjs = await createTrainingEngine(model, step, { engine: "tfjs" });
  await tfjs.setOptimizerState(state);
  const back = await tfjs.getOptimizerState();
  const onnx2 = await createTrainingEngine(model, step, { engine: "onnx" });
  await onnx2.setOptimizerState(back);
  const again = await onnx2.getOptimizerState();
  assert.equal(again.step, 2);
  for (const k of Object.keys(state.m)) {
    assert.deepEqual(again.m[k]?.shape, state.m[k]?.shape, k);
    assert.ok(
      Buffer.from((again.m[k] as { data: Float32Array }).data.buffer).equals(
        Buffer.from((state.m[k] as { data: Float32Array }).data.buffer),
      ),
      `m/${k}`,
    );
    assert.ok(
      Buffer.from((again.v[k] as { data: Float32Array }).data.buffer).equals(
        Buffer.from((state.v[k] as { data: Float32Array }).data.buffer),
      ),
      `v/${k}`,
    );
  }
  // the parameters too: onnx2 re-read them from the model that onnx wrote
  const before = getL3Weights(model);
  await onnx2.syncModel();
  const after = getL3Weights(model);
  for (const k of Object.keys(before))
    assert.ok(Buffer.from(before[k]?.data.buffer as ArrayBuffer).equals(Buffer.from(after[k]?.data.buffer as ArrayBuffer)), k);
  for (const e of [onnx, tfjs, onnx2]) await e.dispose();
  model.dispose();
});

test("the same config and seed train byte-identical runs on onnx", { skip }, async () => {
  const a = await run("rerun-a", { engine: "onnx", pairing: "in-batch", negatives: 7 });
  const b = await run("rerun-b", { engine: "onnx", pairing: "in-batch", negatives: 7 });
  assert.deepEqual(a.curve, b.curve);
  for (const k of Object.keys(a.weights))
    assert.ok(Buffer.from(a.weights[k]?.data.buffer as ArrayBuffer).equals(Buffer.from(b.weights[k]?.data.buffer as ArrayBuffer)), k);
});

test("batches made in a worker thread train the same run as the main thread's pipeline", { skip }, async () => {
  const cfg = { engine: "onnx", pairing: "in-batch", negatives: 7 } as const;
  const inWorker = await run("worker-on", cfg);
  process.env.L3KIT_DATA_WORKER = "0";
  let inMain: Awaited<ReturnType<typeof run>>;
  try {
    inMain = await run("worker-off", cfg);
  } finally {
    delete process.env.L3KIT_DATA_WORKER;
  }
  assert.equal(inWorker.result.steps, 20);
  assert.deepEqual(inWorker.curve, inMain.curve);
  for (const k of Object.keys(inMain.weights))
    assert.ok(
      Buffer.from(inWorker.weights[k]?.data.buffer as ArrayBuffer).equals(Buffer.from(inMain.weights[k]?.data.buffer as ArrayBuffer)),
      k,
    );
});

test("train.device=webgpu either trains or fails at once with a clear error naming the key", { skip }, async () => {
  const model = buildL3Net("tiny", { seed: 1 });
  try {
    const engine = await createTrainingEngine(
      model,
      { microBatches: 1, pairing: "sampled", negatives: 1, weightDecay: 0 },
      {
        engine: "onnx",
        device: "webgpu",
      },
    );
    // a machine with a WebGPU adapter: the engine says where it runs
    assert.match(engine.reason, /webgpu/);
    await engine.dispose();
  } catch (err) {
    // Dawn finds no adapter on machines without a usable GPU (e.g. Debian 12's software Vulkan)
    assert.match(String((err as Error).message), /^train\.device: onnxruntime could not create the training session on 'webgpu': .+/);
  } finally {
    model.dispose();
  }
});
