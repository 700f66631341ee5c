import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { classificationMetrics, type LabelledFeatures, probeSplitByGroup, trainLinearProbe } from "../../src/lib/eval";
import { Rng } from "../../src/lib/util";

/** k classes of Gaussian blobs around well-separated centres in `dim` dims (the last dims are noise). */
function blobs(k: number, perClass: number, dim: number, seed: string, spread = 0.3): LabelledFeatures {
  const rng = new Rng(seed);
  const centres = Array.from({ length: k }, (_, c) =>
    Array.from({ length: dim }, (_, j) => (j === c % dim ? 4 : 0) + (j === (c + 1) % dim ? -2 : 0)),
  );
  const n = k * perClass;
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    y[i] = c;
    for (let j = 0; j < dim; j++) x[i * dim + j] = centres[c]![j]! + rng.normal(0, spread);
  }
  return { x, n, dim, y };
}

describe("trainLinearProbe", () => {
  it("reaches 100% on linearly separable features, and is deterministic for a seed", async () => {
    await tf.setBackend("cpu");
    const train = blobs(3, 30, 6, "train");
    const val = blobs(3, 10, 6, "val");
    const test = blobs(3, 20, 6, "test");
    const before = tf.memory().numTensors;
    const opts = { train, val, numClasses: 3, l2Grid: [1e-4, 1e-2], epochs: 60, seed: 7 };
    const probe = await trainLinearProbe(opts);
    assert.equal(tf.memory().numTensors, before, "no tensors leaked");
    const acc = classificationMetrics(test.y, probe.predict(test.x), 3).accuracy;
    assert.equal(acc, 1);
    assert.equal(probe.valAccuracy, 1);
    assert.ok([1e-4, 1e-2].includes(probe.chosenL2));
    assert.equal(probe.l2Scores.length, 2);
    const p = probe.predictProba(test.x.subarray(0, 12)); // 2 rows of 6 features → 2×3 probabilities;
    assert.equal(p.length, 6);
    assert.ok(Math.abs(p[0]! + p[1]! + p[2]! - 1) < 1e-5);
    const again = await trainLinearProbe(opts);
    assert.deepEqual(Array.from(again.weights), Array.from(probe.weights));
    assert.deepEqual(Array.from(again.bias), Array.from(probe.bias));
  });

  it("holds out whole groups for L2 when no val set is given, and mini-batches", async () => {
    const data = blobs(2, 40, 4, "g");
    const groupIds = Array.from({ length: data.n }, (_, i) => `clip${Math.floor(i / 4)}`);
    const withGroups = { ...data, groupIds };
    const { train, val } = probeSplitByGroup(withGroups, 0.25, 1);
    const trainGroups = new Set(train.groupIds);
    assert.ok(
      val.groupIds!.every((g) => !trainGroups.has(g)),
      "no group on both sides",
    );
    assert.equal(train.n + val.n, data.n);
    const probe = await trainLinearProbe({
      train: withGroups,
      numClasses: 2,
      epochs: 20,
      batchSize: 16,
      seed: 3,
      l2Grid: [1e-3, 1e-1],
      refit: true,
    });
    assert.equal(probe.trainRows, data.n, "refit uses train ∪ val");
    assert.equal(classificationMetrics(data.y, probe.predict(data.x), 2).accuracy, 1);
  });

  it("fails clearly on bad input", async () => {
    const d = blobs(2, 3, 2, "b");
    await assert.rejects(trainLinearProbe({ train: { ...d, y: Int32Array.from([0, 1, 2, 0, 1, 0]) }, numClasses: 2 }), /label 2 at row 2/);
    const bad = { ...d, x: d.x.slice() };
    bad.x[3] = Number.NaN;
    await assert.rejects(trainLinearProbe({ train: bad, numClasses: 2 }), /non-finite feature at row 1/);
  });
});
