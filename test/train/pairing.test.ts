import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/lib/backend";
import { AvcPairSampler, type AvcClip } from "../../src/lib/data";
import { audioInputShape, buildL3Net, FUSION_KINDS } from "../../src/lib/models";
import {
  Adam,
  inBatchLogits,
  inBatchLossAndAccuracy,
  inBatchPairs,
  trainStep,
  validateTrainConfig,
  DEFAULT_TRAIN_CONFIG,
} from "../../src/lib/train";
import { ConfigError, Rng } from "../../src/lib/util";

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
});

describe("in-batch negatives", () => {
  test("inBatchPairs: block 0 positives, shifted negatives, same-clip combinations weigh 0, each side weighs 1/2", () => {
    const p = inBatchPairs(["a", "b", "a", "c"], 2);
    assert.equal(p.n, 4);
    assert.equal(p.shifts, 2);
    assert.deepEqual([...p.labels], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // shift 2 pairs entry 0 ("a") with entry 2 ("a") and entry 2 with entry 0: neither positive nor negative
    const zero = [...p.weights].map((w, j) => (w === 0 ? j : -1)).filter((j) => j >= 0);
    assert.deepEqual(zero, [8, 10]);
    assert.equal(p.negatives, 6);
    const sum = (from: number, to: number) => [...p.weights.slice(from, to)].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum(0, 4) - 0.5) < 1e-6);
    assert.ok(Math.abs(sum(4, 12) - 0.5) < 1e-6);
    assert.equal(inBatchPairs(["a", "b", "c"], 10).shifts, 2, "capped at n − 1");
    const only = inBatchPairs(["a", "a"], 1);
    assert.equal(only.negatives, 0);
    assert.deepEqual([...only.weights], [0.5, 0.5, 0, 0], "no negative: the positives carry the whole loss");
  });

  test("inBatchLossAndAccuracy gives the balanced accuracy", () => {
    const p = inBatchPairs(["a", "b"], 1); // labels [1, 1, 0, 0]
    const logits = tf.tensor2d([
      [0, 1], // positive, right
      [1, 0], // positive, wrong
      [1, 0], // negative, right
      [2, 0], // negative, right
    ]);
    const { loss, accuracy } = inBatchLossAndAccuracy(logits as tf.Tensor2D, p);
    assert.ok(Math.abs((accuracy.dataSync()[0] as number) - 0.75) < 1e-6);
    const ce = (z: number[], y: number) => -(z[y]! - Math.log(Math.exp(z[0]!) + Math.exp(z[1]!)));
    const want = 0.25 * (ce([0, 1], 1) + ce([1, 0], 1)) + 0.25 * (ce([1, 0], 0) + ce([2, 0], 0));
    assert.ok(Math.abs((loss.dataSync()[0] as number) - want) < 1e-5);
    tf.dispose([logits, loss, accuracy]);
  });

  for (const fusion of FUSION_KINDS) {
    test(`${fusion}: each in-batch logit equals the full forward pass of that frame with that audio`, () => {
      const model = buildL3Net({ preset: "tiny", fusion }, { seed: 4 });
      const rng = new Rng(9);
      const n = 3;
      const fs = model.config.vision.frontEnd.size;
      const [bins, frames] = audioInputShape(model.config);
      const F = tf.tensor4d(
        Float32Array.from({ length: n * fs * fs * 3 }, () => rng.uniform(0, 1)),
        [n, fs, fs, 3],
      );
      const A = tf.tensor4d(
        Float32Array.from({ length: n * bins! * frames! }, () => rng.normal()),
        [n, bins!, frames!, 1],
      );
      const pairs = inBatchPairs(["x", "y", "z"], 2);
      const got = inBatchLogits(model, F, A, pairs, { training: false }).arraySync();
      for (let s = 0; s <= 2; s++) {
        const idx = tf.tensor1d(
          Array.from({ length: n }, (_, i) => (i + s) % n),
          "int32",
        );
        const want = tf.tidy(() => model.forward({ frames: F, audio: tf.gather(A, idx) as tf.Tensor4D }).logits.arraySync());
        for (let i = 0; i < n; i++)
          for (let c = 0; c < 2; c++) assert.ok(Math.abs(got[s * n + i]![c]! - want[i]![c]!) < 1e-4, `shift ${s} entry ${i}`);
        idx.dispose();
      }
      tf.dispose([F, A]);
      model.dispose();
    });
  }

  test("a training step with in-batch negatives lowers the loss on a fixed batch and leaks no tensor", () => {
    const model = buildL3Net("tiny", { seed: 1 });
    const rng = new Rng(2);
    const B = 8;
    const fs = model.config.vision.frontEnd.size;
    const [bins, frames] = audioInputShape(model.config);
    const batch = {
      size: B,
      frames: Float32Array.from({ length: B * fs * fs * 3 }, () => rng.uniform(0, 1)),
      audio: Float32Array.from({ length: B * bins! * frames! }, () => rng.normal()),
      frameShape: [B, fs, fs, 3],
      audioShape: [B, bins!, frames!, 1],
      labels: new Int32Array(B).fill(1),
      pairs: Array.from({ length: B }, (_, i) => ({ frame: { id: `c${i}` } })),
    } as never;
    const opt = new Adam({ weightDecay: 2e-5 });
    const opts = { pairing: "in-batch" as const, negatives: 3 };
    const first = trainStep(model, opt, batch, 1e-3, opts);
    const before = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 15; i++) last = trainStep(model, opt, batch, 1e-3, opts);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(last.loss < first.loss, `loss ${first.loss} → ${last.loss}`);
    model.dispose();
  });

  test("positives-only sampler and config checks", () => {
    const clips: AvcClip[] = Array.from({ length: 5 }, (_, i) => ({ id: `c${i}`, durationSec: 3 }));
    const s = new AvcPairSampler(clips, { seed: 1, pairsPerEpoch: 10, positivesOnly: true });
    const pairs = s.take(12);
    assert.ok(pairs.every((p) => p.label === 1 && p.audio.id === p.frame.id && p.audio.t === p.frame.t));
    const st = s.state();
    assert.equal(st.positivesOnly, true);
    assert.deepEqual(AvcPairSampler.fromState(clips, st).next(), s.next());
    assert.throws(() => new AvcPairSampler(clips, { seed: 1, pairsPerEpoch: 10 }).restore(st), /positives only/);
    assert.throws(
      () => validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, pairing: "nope" as never }),
      (e: unknown) => e instanceof ConfigError && /train\.pairing/.test(String((e as ConfigError).subject)),
    );
    assert.throws(
      () => validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, pairing: "in-batch", batchSize: 4, microBatches: 4 }),
      /at least 2 pairs/,
    );
  });
});
