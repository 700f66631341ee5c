import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { buildL3Net, FUSION_KINDS, type FusionKind, getL3Weights, type L3Net, setL3Weights } from "../../src/lib/models";
import { ConfigError, L3kitError, Rng } from "../../src/lib/util";
import { batchNormTraining } from "../../src/lib/models/runtime";
import { useFastCpuConvFilterGrad } from "./fast-conv-grad";

tf.enableProdMode();

function inputs(seed: number, b: number, frame = 64, bins = 32, frames = 50): { frames: tf.Tensor4D; audio: tf.Tensor4D } {
  const rng = new Rng(seed);
  const f = new Float32Array(b * frame * frame * 3).map(() => rng.next());
  const a = new Float32Array(b * bins * frames).map(() => rng.normal());
  return { frames: tf.tensor4d(f, [b, frame, frame, 3]), audio: tf.tensor4d(a, [b, bins, frames, 1]) };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

let restoreKernel: (() => void) | undefined;
before(async () => {
  await tf.setBackend("cpu");
});
after(() => restoreKernel?.());

describe("forward pass of every fusion head (tiny)", () => {
  for (const fusion of FUSION_KINDS) {
    test(fusion, () => {
      const m = buildL3Net({ preset: "tiny", fusion }, { seed: 3 });
      const x = inputs(1, 2);
      const start = tf.memory().numTensors;
      const o = m.forward(x, { grid: true });
      const afterForward = tf.memory().numTensors;
      try {
        tf.tidy(() => check());
      } finally {
        tf.dispose(o as unknown as tf.TensorContainer);
      }
      assert.equal(tf.memory().numTensors, start, "forward leaked tensors");
      assert.ok(afterForward > start);
      tf.dispose(x);
      m.dispose();

      function check() {
        assert.deepEqual(o.logits.shape, [2, 2]);
        assert.deepEqual(o.visionEmbedding.shape, [2, 64]);
        assert.deepEqual(o.audioEmbedding.shape, [2, 64]);
        assert.deepEqual(o.visionMap.shape, [2, 8, 8, 64]);
        assert.deepEqual(o.audioMap.shape, [2, 4, 6, 64]);
        assert.deepEqual(o.visionGrid?.shape, [2, 4 * 4 * 64]);
        assert.deepEqual(o.audioGrid?.shape, [2, 4 * 3 * 64]);
        const p = o.probs.arraySync();
        for (const row of p) assert.ok(Math.abs((row[0] as number) + (row[1] as number) - 1) < 1e-5);
        // the global embedding is the max of the map
        assert.ok(maxAbsDiff(tf.max(o.visionMap, [1, 2]).dataSync(), o.visionEmbedding.dataSync()) < 1e-6);
        if (fusion === "concat") {
          assert.equal(o.score, undefined);
          assert.equal(o.similarityMap, undefined);
        } else {
          const ve = o.visionProjection as tf.Tensor;
          const ae = o.audioProjection as tf.Tensor2D;
          const norms = tf.norm(ae, "euclidean", -1).dataSync();
          for (const n of norms) assert.ok(Math.abs(n - 1) < 1e-4);
          const score = (o.score as tf.Tensor2D).dataSync();
          if (fusion === "euclidean") {
            const d = tf.norm(tf.sub(ve, ae), "euclidean", -1).dataSync();
            assert.ok(maxAbsDiff(d, score) < 1e-4);
          } else if (fusion === "cosine") {
            assert.ok(maxAbsDiff(tf.sum(tf.mul(ve, ae), -1).dataSync(), score) < 1e-5);
          } else {
            assert.deepEqual(ve.shape, [2, 8, 8, 128]);
            const sim = o.similarityMap as tf.Tensor3D;
            assert.deepEqual(sim.shape, [2, 8, 8]);
            const manual = tf.sum(tf.mul(ve, tf.reshape(ae, [2, 1, 1, 128])), -1);
            assert.ok(maxAbsDiff(manual.dataSync(), sim.dataSync()) < 1e-5);
            for (const v of sim.dataSync()) assert.ok(v >= -1.0001 && v <= 1.0001);
            assert.ok(maxAbsDiff(tf.max(sim, [1, 2]).dataSync(), score) < 1e-6);
          }
          // logits = score · W + b for the 1→2 calibration
          const w = m.variable("fusion/logits/kernel").dataSync();
          const b = m.variable("fusion/logits/bias").dataSync();
          const logits = o.logits.dataSync();
          for (let i = 0; i < 2; i++) {
            for (let j = 0; j < 2; j++)
              assert.ok(Math.abs((logits[2 * i + j] as number) - ((score[i] as number) * (w[j] as number) + (b[j] as number))) < 1e-4);
          }
        }
      }
    });
  }

  test("inference is deterministic; the seed decides the weights", () => {
    const a = buildL3Net("tiny", { seed: 7 });
    const b = buildL3Net("tiny", { seed: 7 });
    const c = buildL3Net("tiny", { seed: 8 });
    const x = inputs(2, 2);
    const la = tf.tidy(() => a.forward(x).logits.dataSync());
    const la2 = tf.tidy(() => a.forward(x).logits.dataSync());
    const lb = tf.tidy(() => b.forward(x).logits.dataSync());
    const lc = tf.tidy(() => c.forward(x).logits.dataSync());
    assert.deepEqual(la, la2);
    assert.deepEqual(la, lb);
    assert.notDeepEqual(la, lc);
    tf.dispose(x);
    for (const m of [a, b, c]) m.dispose();
  });

  test("run() computes any node, also from a fed intermediate (the head from a vision map)", () => {
    const m = buildL3Net({ preset: "tiny", fusion: "avol" });
    const x = inputs(12, 2);
    const start = tf.memory().numTensors;
    tf.tidy(() => {
      const o = m.forward(x);
      const g = m.graph.outputs;
      const r = m.run({ [g.visionMap]: o.visionMap, audio: x.audio }, [g.logits, g.similarityMap as string, "audio/block2/relu1"]);
      assert.deepEqual(r[g.logits]?.dataSync(), o.logits.dataSync());
      assert.deepEqual(r[g.similarityMap as string]?.dataSync(), o.similarityMap?.dataSync());
      assert.deepEqual(r["audio/block2/relu1"]?.shape, [2, 16, 25, 16]);
      // gradient of the max similarity w.r.t. the map: non-zero at one location per sample
      const grad = tf.grad((v: tf.Tensor) =>
        tf.sum(m.run({ [g.visionMap]: v, audio: x.audio }, [g.score as string])[g.score as string] as tf.Tensor),
      )(o.visionMap);
      const nz = tf.sum(tf.cast(tf.notEqual(tf.sum(tf.abs(grad), -1), 0), "int32")).dataSync()[0];
      assert.equal(nz, 2);
    });
    assert.equal(tf.memory().numTensors, start);
    assert.throws(() => m.run({ nope: x.audio }, ["fusion/logits"]), /no node named 'nope' to feed/);
    tf.dispose(x);
    m.dispose();
  });

  test("grid pooling matches a direct computation (divisible and overlapping windows)", () => {
    // vision last map 8×8 with a 3×3 grid: windows [0,3) [2,6) [5,8) (PyTorch's adaptive rule)
    const m = buildL3Net({ preset: "tiny", vision: { gridPool: [3, 3] } });
    const x = inputs(3, 1);
    const o = m.forward(x, { grid: true });
    const map = o.visionMap.arraySync()[0] as number[][][];
    const vg = (o.visionGrid as tf.Tensor2D).dataSync();
    const win = [
      [0, 3],
      [2, 6],
      [5, 8],
    ];
    const C = 64;
    for (let r = 0; r < 3; r++) {
      for (let q = 0; q < 3; q++) {
        for (let ch = 0; ch < C; ch += 7) {
          let mx = Number.NEGATIVE_INFINITY;
          for (let y = win[r]![0]!; y < win[r]![1]!; y++)
            for (let xx = win[q]![0]!; xx < win[q]![1]!; xx++) mx = Math.max(mx, map[y]![xx]![ch]!);
          assert.equal(vg[(r * 3 + q) * C + ch], mx);
        }
      }
    }
    // audio 4×6 → 4×3: 1×2 windows
    const amap = o.audioMap.arraySync()[0] as number[][][];
    const ag = (o.audioGrid as tf.Tensor2D).dataSync();
    for (let r = 0; r < 4; r++)
      for (let q = 0; q < 3; q++) assert.equal(ag[(r * 3 + q) * C + 5], Math.max(amap[r]![2 * q]![5]!, amap[r]![2 * q + 1]![5]!));
    tf.dispose(o as unknown as tf.TensorContainer);
    tf.dispose(x);
    m.dispose();
  });

  test("bad input shapes are rejected with the expected shape", () => {
    const m = buildL3Net("tiny");
    const x = inputs(4, 1);
    const bad = tf.zeros([1, 32, 51, 1]) as tf.Tensor4D;
    assert.throws(
      () => m.forward({ frames: x.frames, audio: bad }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /audio input has shape \[1,32,51,1\]; the model expects \[B,32,50,1\] \(mel spectrogram, 32 mel bands × 50 frames\)/.test(
          e.message,
        ),
    );
    assert.throws(
      () => m.visionTower(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D),
      /frames input has shape \[1,32,32,3\]; the model expects \[B,64,64,3\]/,
    );
    tf.dispose([x.frames, x.audio, bad]);
    m.dispose();
    assert.throws(() => m.forward(x), /disposed/);
  });
});

describe("training", () => {
  test("the test's fast cpu filter-gradient kernel agrees with tfjs's", () => {
    const rng = new Rng(5);
    const x = tf.tensor4d(
      new Float32Array(2 * 9 * 7 * 3).map(() => rng.normal()),
      [2, 9, 7, 3],
    );
    const k = tf.tensor4d(
      new Float32Array(3 * 3 * 3 * 4).map(() => rng.normal()),
      [3, 3, 3, 4],
    );
    const dy = tf.tensor4d(
      new Float32Array(2 * 9 * 7 * 4).map(() => rng.normal()),
      [2, 9, 7, 4],
    );
    const dy2 = tf.tensor4d(
      new Float32Array(2 * 4 * 3 * 4).map(() => rng.normal()),
      [2, 4, 3, 4],
    );
    const g1 = () => tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, kk as tf.Tensor4D, 1, "same"), dy)))(k);
    const g2 = () => tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, kk as tf.Tensor4D, 2, "valid"), dy2)))(k);
    const a1 = g1().dataSync();
    const a2 = g2().dataSync();
    restoreKernel = useFastCpuConvFilterGrad();
    assert.ok(maxAbsDiff(g1().dataSync(), a1) < 1e-4);
    assert.ok(maxAbsDiff(g2().dataSync(), a2) < 1e-4);
  });

  for (const fusion of FUSION_KINDS) {
    test(`one AVC step gives every trainable variable a non-zero gradient (${fusion})`, () => {
      restoreKernel ??= useFastCpuConvFilterGrad();
      const m = buildL3Net({ preset: "tiny", fusion: fusion as FusionKind }, { seed: 11 });
      const x = inputs(6, 2);
      const vars = m.trainableVariables();
      const { value, grads } = tf.variableGrads(() => m.lossAndAccuracy([1, 0], m.forward(x, { training: true })).loss, vars);
      const loss = value.dataSync()[0] as number;
      assert.ok(Number.isFinite(loss) && loss > 0);
      const zero: string[] = [];
      for (const v of vars) {
        const g = grads[v.name];
        if (!g?.dataSync().some((z) => z !== 0 && Number.isFinite(z))) zero.push(m.nameOf(v));
        if (g && !g.dataSync().every(Number.isFinite)) zero.push(`${m.nameOf(v)} (non-finite)`);
      }
      assert.deepEqual(zero, []);
      tf.dispose([value, ...Object.values(grads)]);
      tf.dispose(x);
      m.dispose();
    });
  }

  test("batch norm in training: the hand-written gradient equals autodiff through moments + batchNorm", () => {
    const rng = new Rng(11);
    const [b, h, w, c] = [3, 5, 4, 6];
    const x = tf.tensor4d(
      Float32Array.from({ length: b * h * w * c }, () => rng.normal(0.7, 2)),
      [b, h, w, c],
    );
    const gamma = tf.tensor1d(Float32Array.from({ length: c }, () => rng.normal(1, 0.3)));
    const beta = tf.tensor1d(Float32Array.from({ length: c }, () => rng.normal(0, 0.3)));
    // A non-uniform upstream gradient, so every term of dx matters.
    const weights = tf.tensor4d(
      Float32Array.from({ length: b * h * w * c }, () => rng.normal()),
      [b, h, w, c],
    );
    const eps = 1e-3;
    const reference = (xx: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.sum(tf.mul(tf.batchNorm(xx as tf.Tensor4D, mean, variance, bb, g, eps), weights));
    };
    const mine = (xx: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(batchNormTraining(xx as tf.Tensor4D, g, bb, eps), weights));
    const want = tf.grads(reference)([x, gamma, beta]);
    const got = tf.grads(mine)([x, gamma, beta]);
    const fwd = maxAbsDiff(reference(x, gamma, beta).dataSync(), mine(x, gamma, beta).dataSync());
    assert.ok(fwd < 1e-4, `forward differs by ${fwd}`);
    ["x", "gamma", "beta"].forEach((name, i) => {
      const d = maxAbsDiff(want[i]!.dataSync(), got[i]!.dataSync());
      assert.ok(d < 1e-4, `d${name} differs by ${d}`);
    });
    // The statistics handed to onStats are the batch mean and biased variance.
    let seen: number[] = [];
    tf.tidy(() => {
      batchNormTraining(x, gamma, beta, eps, (m, v) => {
        seen = [...m.dataSync(), ...v.dataSync()];
      });
    });
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    assert.ok(maxAbsDiff(seen, [...mean.dataSync(), ...variance.dataSync()]) < 1e-5);
    tf.dispose([x, gamma, beta, weights, mean, variance, ...want, ...got]);
  });

  test("batch norm: moving statistics follow momentum 0.99 (unbiased variance) in training only", () => {
    const m = buildL3Net("tiny", { seed: 2 });
    const x = inputs(8, 2);
    const conv = m.run({ frames: x.frames }, ["vision/block1/conv1"]);
    const y = conv["vision/block1/conv1"] as tf.Tensor4D;
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    const n = (y.size / 8) as number;
    const wantMean = tf.mul(mean, 0.01).dataSync();
    const wantVar = tf.add(0.99, tf.mul(variance, (0.01 * n) / (n - 1))).dataSync();
    const mm = () => m.variable("vision/block1/bn1/moving_mean").dataSync();
    const mv = () => m.variable("vision/block1/bn1/moving_variance").dataSync();
    // inference, and training without the update, leave them alone
    tf.dispose(m.forward(x) as unknown as tf.TensorContainer);
    tf.dispose(m.forward(x, { training: true, updateBatchNorm: false }) as unknown as tf.TensorContainer);
    assert.deepEqual(Array.from(mm()), new Array(8).fill(0));
    const start = tf.memory().numTensors;
    tf.dispose(m.forward(x, { training: true }) as unknown as tf.TensorContainer);
    assert.equal(tf.memory().numTensors, start);
    assert.ok(maxAbsDiff(mm(), wantMean) < 1e-5);
    assert.ok(maxAbsDiff(mv(), wantVar) < 1e-4);
    // the audio tower alone updates only audio statistics
    const vBefore = Array.from(mm());
    tf.dispose(m.audioTower(x.audio, { training: true }) as unknown as tf.TensorContainer);
    assert.deepEqual(Array.from(mm()), vBefore);
    assert.ok(
      m
        .variable("audio/block1/bn1/moving_mean")
        .dataSync()
        .some((v) => v !== 0),
    );
    tf.dispose([y, mean, variance, x.frames, x.audio]);
    m.dispose();
  });

  test("no tensor leaks across repeated training steps and forwards", () => {
    restoreKernel ??= useFastCpuConvFilterGrad();
    const m = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: 4 });
    const x = inputs(9, 2);
    const opt = tf.train.adam(1e-3);
    const step = () => {
      const cost = opt.minimize(
        () => tf.add(m.lossAndAccuracy([1, 0], m.forward(x, { training: true })).loss, m.l2Penalty(1e-5)) as tf.Scalar,
        true,
        m.trainableVariables(),
      );
      const v = cost?.dataSync()[0];
      cost?.dispose();
      return v as number;
    };
    const l0 = step(); // creates the optimizer's slots
    const counts: number[] = [];
    const losses: number[] = [l0];
    for (let i = 0; i < 2; i++) {
      losses.push(step());
      counts.push(tf.memory().numTensors);
      tf.dispose(m.forward(x, { grid: true }) as unknown as tf.TensorContainer);
      counts.push(tf.memory().numTensors);
    }
    assert.ok(
      counts.every((c) => c === counts[0]),
      `tensor counts ${counts.join(",")}`,
    );
    // the same batch, repeated: the loss goes down
    assert.ok((losses.at(-1) as number) < l0, `losses ${losses.join(",")}`);
    opt.dispose();
    tf.dispose(x);
    m.dispose();
  });

  test("loss, accuracy and the L2 penalty match direct computations", () => {
    const m = buildL3Net("tiny");
    const logits = tf.tensor2d([
      [2, 0],
      [0, 1],
      [3, 3],
    ]);
    const { loss, accuracy } = m.lossAndAccuracy([0, 0, 1], logits);
    const ce = (l: number[], y: number) => -(l[y]! - Math.log(Math.exp(l[0]!) + Math.exp(l[1]!)));
    assert.ok(Math.abs(loss.dataSync()[0]! - (ce([2, 0], 0) + ce([0, 1], 0) + ce([3, 3], 1)) / 3) < 1e-5);
    // argmax of [3,3] is 0 → wrong for label 1
    assert.ok(Math.abs(accuracy.dataSync()[0]! - 1 / 3) < 1e-6);
    let s = 0;
    for (const v of m.decayVariables()) for (const w of v.dataSync()) s += w * w;
    assert.ok(Math.abs(m.l2Penalty(1e-5).dataSync()[0]! / (1e-5 * s) - 1) < 1e-4);
    assert.throws(() => m.lossAndAccuracy([0, 1], logits), /2 labels for 3 logits/);
    tf.dispose([logits, loss, accuracy]);
    m.dispose();
  });
});

describe("parameters by name", () => {
  let m: L3Net;
  before(() => {
    m = buildL3Net({ preset: "tiny", fusion: "euclidean" });
  });
  after(() => m.dispose());

  test("stable names, roles and groups", () => {
    const named = m.namedVariables();
    assert.equal(named[0]?.name, "vision/block1/conv1/kernel");
    assert.equal(named[1]?.name, "vision/block1/bn1/gamma");
    assert.ok(named.some((v) => v.name === "audio/block4/bn2/moving_variance" && !v.trainable));
    assert.ok(named.some((v) => v.name === "fusion/vision_fc2/kernel"));
    assert.ok(named.some((v) => v.name === "fusion/audio_fc1/bias"));
    const names = (vs: tf.Variable[]) => vs.map((v) => m.nameOf(v));
    assert.ok(names(m.decayVariables()).every((n) => n.endsWith("/kernel")));
    assert.equal(m.decayVariables().length, named.filter((v) => v.name.endsWith("/kernel")).length);
    assert.ok(names(m.nonTrainableVariables()).every((n) => /moving_(mean|variance)$/.test(n)));
    assert.equal(m.trainableVariables().length + m.nonTrainableVariables().length, named.length);
    assert.equal(
      m.trainableVariables().reduce((a, v) => a + v.size, 0),
      m.paramCount().trainable,
    );
    assert.throws(() => m.variable("vision/nope"), /no parameter named 'vision\/nope'/);
  });

  test("get/set weights round-trip; mismatches are listed", () => {
    const w = getL3Weights(m);
    const other = buildL3Net({ preset: "tiny", fusion: "euclidean" }, { seed: 99 });
    setL3Weights(other, w);
    for (const { name, variable } of other.namedVariables()) assert.deepEqual(variable.dataSync(), w[name]?.data, name);
    // the copy is not a view of the variable
    (w["vision/block1/conv1/kernel"] as { data: Float32Array }).data[0] = 1234;
    assert.notEqual(m.variable("vision/block1/conv1/kernel").dataSync()[0], 1234);
    const bad = { ...w, "fusion/extra/kernel": { shape: [1], data: new Float32Array(1) } } as typeof w;
    delete bad["audio/block1/bn1/gamma"];
    bad["fusion/logits/kernel"] = { shape: [2, 1], data: new Float32Array(2) };
    assert.throws(
      () => setL3Weights(other, bad),
      (e: unknown) =>
        e instanceof L3kitError &&
        /missing 1 parameter\(s\): audio\/block1\/bn1\/gamma/.test(e.message) &&
        /unknown parameter\(s\): fusion\/extra\/kernel/.test(e.message) &&
        /'fusion\/logits\/kernel' has shape \[2,1\], the model has \[1,2\]/.test(e.message),
    );
    other.dispose();
  });
});
