import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { videoPairSource } from "../../src/lib/data";
import type { ManifestRow } from "../../src/lib/data/types";
import {
  type AvcPairSource,
  avcScores,
  evaluateAvc,
  evaluateLocalization,
  fixedAvcPairSource,
  gradCamRaw,
  headFromVisionMap,
  localizationItems,
  localizationMaps,
  manifestLocalizationSource,
  modelFeatureExtractor,
  randomWeightsModel,
  resolveLocalizationMethod,
  towerFeatureExtractor,
} from "../../src/lib/eval";
import { audioInputShape, buildL3Net, getL3Weights, type L3Net, visionInputShape } from "../../src/lib/models";
import { L3kitError } from "../../src/lib/util";
import { needsRealdata, realdata } from "../helpers";

/** Deterministic inputs for the tiny preset: frames 64×64×3 in [0, 1], mel spectrograms 32×51×1. */
function inputs(model: L3Net, b: number, seed: number): { frames: tf.Tensor4D; audio: tf.Tensor4D } {
  const [h, w] = visionInputShape(model.config);
  const [bins, t] = audioInputShape(model.config);
  return {
    frames: tf.randomUniform([b, h, w, 3], 0, 1, "float32", seed) as tf.Tensor4D,
    audio: tf.randomNormal([b, bins, t, 1], 0, 1, "float32", seed + 1000) as tf.Tensor4D,
  };
}

const row = (id: string): ManifestRow => ({ id, path: `${id}.wav`, split: "test", durationSec: 5, hasAudio: true });

describe("model-based evaluation (tiny preset)", () => {
  let concat: L3Net;
  let avol: L3Net;
  let cosine: L3Net;
  before(async () => {
    await tf.setBackend("cpu");
    concat = buildL3Net("tiny", { seed: 1 });
    avol = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: 2 });
    cosine = buildL3Net({ preset: "tiny", fusion: "cosine" }, { seed: 3 });
  });
  after(() => {
    for (const m of [concat, avol, cosine]) m?.dispose();
  });

  it("evaluateAvc: batch-size invariant, skips pairs that fail to load, leaks nothing", async () => {
    const pairs = Array.from({ length: 10 }, (_, i) => ({ id: i, label: (i % 2) as 0 | 1 }));
    const source: AvcPairSource<{ id: number; label: 0 | 1 }> = {
      pairs,
      load: async (ps: readonly { id: number }[]) => {
        if (ps.some((p) => p.id === 7)) throw new L3kitError("cannot decode", { subject: "clip7", reason: "decode-failed" });
        const parts = ps.map((p) => inputs(concat, 1, 100 + p.id));
        const out = {
          frames: tf.concat(parts.map((p) => p.frames)) as tf.Tensor4D,
          audio: tf.concat(parts.map((p) => p.audio)) as tf.Tensor4D,
        };
        tf.dispose(parts.flatMap((p) => [p.frames, p.audio]));
        return out;
      },
    };
    const before = tf.memory().numTensors;
    const a = await evaluateAvc(concat, source, { batchSize: 4 });
    const b = await evaluateAvc(concat, source, { batchSize: 3 });
    assert.equal(tf.memory().numTensors, before, "no tensors leaked");
    assert.equal(a.n, 9);
    assert.deepEqual(a.failed, [{ index: 7, reason: "decode-failed", message: "clip7: cannot decode" }]);
    assert.deepEqual(a.indices, [0, 1, 2, 3, 4, 5, 6, 8, 9]);
    assert.equal(a.positives, 4);
    for (let i = 0; i < a.scores.length; i++) {
      assert.ok(a.scores[i]! >= 0 && a.scores[i]! <= 1);
      assert.ok(Math.abs(a.scores[i]! - b.scores[i]!) < 1e-5, `pair ${a.indices[i]}: ${a.scores[i]} vs ${b.scores[i]}`);
    }
    assert.ok(a.accuracy >= 0 && a.accuracy <= 1 && a.auc >= 0 && a.auc <= 1);
    // the scores are the model's softmax index 1
    const x = inputs(concat, 1, 100);
    const direct = await avcScores(concat, x);
    tf.dispose([x.frames, x.audio]);
    assert.ok(Math.abs(direct[0]! - a.scores[0]!) < 1e-5);
  });

  it("towerFeatureExtractor gives k×dim grid or embedding features; randomWeightsModel is a fixed-seed twin", async () => {
    const audioGrid = towerFeatureExtractor(concat, { tower: "audio", inputs: async () => inputs(concat, 5, 1).audio, batchSize: 2 });
    const visEmb = towerFeatureExtractor(concat, {
      tower: "vision",
      feature: "embedding",
      inputs: async () => inputs(concat, 3, 2).frames,
    });
    const before = tf.memory().numTensors;
    const fa = await audioGrid(row("a"));
    const fv = await visEmb(row("v"));
    // the generator made both frames and audio; the unused half is disposed here
    assert.equal(fa.k, 5);
    assert.equal(fa.dim, 4 * 3 * 64); // gridPool 4×3 of the 64-channel last map
    assert.equal(fa.features.length, 5 * 768);
    assert.equal(fv.k, 3);
    assert.equal(fv.dim, 64);
    assert.ok(fa.features.every(Number.isFinite) && fv.features.every(Number.isFinite));
    assert.ok(tf.memory().numTensors <= before + 2, "only the unused generated tensors remain");

    const r1 = randomWeightsModel(concat);
    const r2 = randomWeightsModel(concat.config);
    try {
      const k = "vision/block1/conv1/kernel";
      assert.deepEqual(getL3Weights(r1)[k]!.data, getL3Weights(r2)[k]!.data);
      assert.notDeepEqual(getL3Weights(r1)[k]!.data, getL3Weights(concat)[k]!.data);
      assert.deepEqual(r1.config, concat.config);
    } finally {
      r1.dispose();
      r2.dispose();
    }
  });

  it("modelFeatureExtractor decodes a real video (bento.mp4, 1.1 s) into 1 s windows / 1 frame per second", needsRealdata(), async () => {
    const row = { id: "bento", path: realdata("openl3", "video", "bento.mp4"), split: "test", durationSec: 1.1, hasAudio: true };
    const before = tf.memory().numTensors;
    const fa = await modelFeatureExtractor(concat, { tower: "audio" })(row);
    const fv = await modelFeatureExtractor(concat, { tower: "vision", feature: "embedding" })(row);
    assert.equal(tf.memory().numTensors, before, "no tensors leaked");
    assert.deepEqual([fa.k, fa.dim], [1, 768]);
    assert.deepEqual([fv.k, fv.dim], [1, 64]);
    assert.ok(fa.features.every(Number.isFinite) && fv.features.every(Number.isFinite));
    assert.ok(
      fv.features.some((v) => v > 0),
      "a real frame activates some units",
    );
  });

  it("fixedAvcPairSource: fixed seeded pairs decoded from real video through the model's front-ends", needsRealdata(), async () => {
    // two manifest rows over the one real video: negatives pair a frame with audio of "another" clip
    const rows = ["a", "b"].map((id) => ({
      id,
      path: realdata("openl3", "video", "bento.mp4"),
      split: "val",
      durationSec: 1.1,
      hasAudio: true,
    }));
    const source = videoPairSource(rows, { frameSize: { shortSide: 73 }, sampleRate: 16000 });
    const ps = fixedAvcPairSource(concat, source, 4, "val-seed");
    assert.deepEqual(ps.pairs, fixedAvcPairSource(concat, source, 4, "val-seed").pairs, "same seed, same pairs");
    const before = tf.memory().numTensors;
    const res = await evaluateAvc(concat, ps, { batchSize: 4 });
    assert.equal(tf.memory().numTensors, before, "no tensors leaked");
    assert.equal(res.n, 4);
    assert.equal(res.positives, 2);
    assert.deepEqual(res.failed, []);
    // a source at the wrong sample rate is a configuration error, not a skipped pair
    const wrong = fixedAvcPairSource(concat, videoPairSource(rows, { frameSize: { shortSide: 73 }, sampleRate: 48000 }), 2, 1);
    await assert.rejects(evaluateAvc(concat, wrong), /takes 16000/);
  });

  it("maps have the frame's size and are finite for every method; auto picks per head", async () => {
    const x = inputs(concat, 2, 5);
    try {
      assert.equal(resolveLocalizationMethod(concat, "auto", true), "gradcam");
      assert.equal(resolveLocalizationMethod(avol, "auto", true), "similarity");
      assert.equal(resolveLocalizationMethod(avol, "auto", false), "unit");
      const before = tf.memory().numTensors;
      for (const [model, method] of [
        [concat, "unit"],
        [concat, "gradcam"],
        [cosine, "gradcam"],
        [avol, "similarity"],
        [avol, "gradcam"],
        [avol, "auto"],
      ] as const) {
        const maps = await localizationMaps(model, x, { method });
        assert.equal(maps.length, 2);
        for (const m of maps) {
          assert.equal(m.width, 64);
          assert.equal(m.height, 64);
          assert.equal(m.data.length, 64 * 64);
          assert.ok(m.data.every(Number.isFinite), `${model.config.fusion}/${method} finite`);
        }
      }
      assert.equal(tf.memory().numTensors, before, "no tensors leaked");
      await assert.rejects(localizationMaps(concat, x, { method: "similarity" }), /needs an AVOL head/);
      await assert.rejects(localizationMaps(concat, { frames: x.frames }, { method: "gradcam" }), /needs the audio/);
    } finally {
      tf.dispose([x.frames, x.audio]);
    }
  });

  it("unit and similarity maps at the map's size equal the model's own tensors", async () => {
    const x = inputs(avol, 1, 9);
    try {
      const A = avol.visionTower(x.frames).map;
      const ch = (await tf.squeeze(tf.slice(A, [0, 0, 0, 5], [1, -1, -1, 1])).data()) as Float32Array;
      const unit = await localizationMaps(avol, x, { method: "unit", unit: 5, size: [8, 8] });
      assert.deepEqual(Array.from(unit[0]!.data), Array.from(ch));
      const out = avol.forward(x);
      const sim = (await out.similarityMap!.data()) as Float32Array;
      const maps = await localizationMaps(avol, x, { method: "similarity", size: [8, 8] });
      assert.deepEqual(Array.from(maps[0]!.data), Array.from(sim));
      tf.dispose([A, ...Object.values(out)]);
    } finally {
      tf.dispose([x.frames, x.audio]);
    }
  });

  it("Grad-CAM: the cut graph reproduces the logits, and the map equals the hand-derived concat-head gradient", async () => {
    const x = inputs(concat, 1, 11);
    try {
      const A = concat.visionTower(x.frames).map; // 1×8×8×64
      const full = concat.forward(x);
      const fromMap = tf.tidy(() => headFromVisionMap(concat, A, x.audio));
      const [l1, l2] = [(await full.logits.data()) as Float32Array, (await fromMap.data()) as Float32Array];
      for (let i = 0; i < 2; i++) assert.ok(Math.abs(l1[i]! - l2[i]!) < 1e-4, `logit ${i}: ${l1[i]} vs ${l2[i]}`);
      // concat head: logit₁ = Σ_j W2[j,1]·relu(pre_j) + b2₁, pre = [e_v, e_a]·W1 + b1, e_v[c] = max_hw A[·,·,c].
      // So ∂logit₁/∂e_v[c] = Σ_j W1[c,j]·[pre_j > 0]·W2[j,1], and the gradient reaches A only at channel c's
      // maximum: α_c = ∂logit₁/∂e_v[c] / (h·w). (tfjs sends the gradient to every tied maximum; that only
      // happens here for all-zero channels, whose A_c = 0 drops them from the map either way.)
      const wts = getL3Weights(concat);
      const W1 = wts["fusion/fc1/kernel"]!;
      const b1 = wts["fusion/fc1/bias"]!.data;
      const W2 = wts["fusion/logits/kernel"]!.data;
      const [cin, hidden] = W1.shape as [number, number];
      const [, h, w, C] = A.shape;
      const a = (await A.data()) as Float32Array;
      const ev = new Float64Array(C).fill(Number.NEGATIVE_INFINITY);
      for (let p = 0; p < h * w; p++) for (let c = 0; c < C; c++) ev[c] = Math.max(ev[c]!, a[p * C + c]!);
      const ea = (await full.audioEmbedding.data()) as Float32Array;
      const e = [...ev, ...ea];
      assert.equal(e.length, cin);
      const alpha = new Float64Array(C);
      for (let j = 0; j < hidden; j++) {
        let pre = b1[j]!;
        for (let i = 0; i < cin; i++) pre += e[i]! * W1.data[i * hidden + j]!;
        if (pre > 0) for (let c = 0; c < C; c++) alpha[c]! += (W1.data[c * hidden + j]! * W2[j * 2 + 1]!) / (h * w);
      }
      const expected = new Float64Array(h * w);
      for (let p = 0; p < h * w; p++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += alpha[c]! * a[p * C + c]!;
        expected[p] = Math.max(0, s);
      }
      const cam = gradCamRaw(concat, x.frames, x.audio);
      const got = (await cam.data()) as Float32Array;
      const scale = Math.max(...expected);
      assert.ok(scale > 0, "a non-trivial map");
      for (let p = 0; p < h * w; p++)
        assert.ok(Math.abs(got[p]! - expected[p]!) <= 1e-4 * scale, `location ${p}: ${got[p]} vs ${expected[p]}`);
      tf.dispose([A, fromMap, cam, ...Object.values(full)]);
    } finally {
      tf.dispose([x.frames, x.audio]);
    }
  });

  it(
    "manifestLocalizationSource decodes annotated instants of a real video; protocol l3kit moves boxes into the centre crop and drops items outside it, published scores every item on its boxes as annotated",
    needsRealdata(),
    async () => {
      const row = {
        id: "bento",
        path: realdata("openl3", "video", "bento.mp4"),
        split: "test",
        durationSec: 1.1,
        hasAudio: true,
        boxes: [
          { t: 0.3, sounding: [{ x1: 0.2, y1: 0.3, x2: 0.8, y2: 0.7 }], distractors: [{ x1: 0, y1: 0, x2: 0.1, y2: 0.05 }] },
          { t: 0.8, sounding: [{ x1: 0.2, y1: 0.3, x2: 0.8, y2: 0.7 }] },
          // the portrait frame's top band: outside the centre crop
          { t: 0.5, sounding: [{ x1: 0.3, y1: 0, x2: 0.7, y2: 0.06 }] },
        ],
      };
      const before = tf.memory().numTensors;
      const l3 = await evaluateLocalization(concat, manifestLocalizationSource(concat, [row], { protocol: "l3kit" }));
      assert.equal(tf.memory().numTensors, before, "no tensors leaked");
      assert.equal(l3.method, "gradcam");
      assert.equal(l3.protocol, "l3kit");
      assert.deepEqual(l3.failed, []);
      assert.equal(l3.dropped.length, 1, "the item with its box outside the crop is dropped");
      assert.match(l3.dropped[0]!.message, /no sounding box inside the centre crop at t=0\.5/);
      assert.equal(l3.audioConditioned.n, 2);
      // the portrait frame's top band (the distractor) is cut away by the centre crop
      assert.equal(l3.audioConditioned.nWithDistractors, 0);

      const pub = await evaluateLocalization(concat, manifestLocalizationSource(concat, [row]));
      assert.equal(pub.protocol, "published", "the default protocol");
      assert.deepEqual(pub.dropped, []);
      assert.deepEqual(pub.failed, []);
      assert.equal(pub.audioConditioned.n, 3, "every item is scored");
      assert.equal(pub.audioConditioned.nWithDistractors, 1, "boxes as annotated: the distractor stays");
      // the centre prior peaks at the grid's centre, inside the unadjusted box 0.2–0.8 × 0.3–0.7 (items 1, 2), not in the top band
      assert.deepEqual(pub.centerPrior.hits, [true, true, false]);
      assert.equal(localizationItems([row], 1).length, 1);
    },
  );

  it("evaluateLocalization reports the audio-conditioned maps beside the vision-only map and the centre prior", async () => {
    const items = Array.from({ length: 5 }, (_, i) => i);
    const target = (i: number) => ({
      t: 0,
      sounding: [{ x1: 0.1 * i, y1: 0.1, x2: 0.1 * i + 0.4, y2: 0.6 }],
      distractors: [{ x1: 0.6, y1: 0.6, x2: 0.95, y2: 0.95 }],
    });
    const before = tf.memory().numTensors;
    const report = await evaluateLocalization(
      avol,
      {
        items,
        target,
        load: async (its) => {
          if (its.includes(3)) throw new Error("unreadable frame");
          return inputs(avol, its.length, 50 + its[0]!);
        },
      },
      { batchSize: 2 },
    );
    assert.equal(tf.memory().numTensors, before, "no tensors leaked");
    assert.equal(report.method, "similarity");
    assert.deepEqual(report.failed, [{ index: 3, message: "unreadable frame" }]);
    for (const m of [report.audioConditioned, report.visionOnly, report.centerPrior]) {
      assert.equal(m.n, 4);
      assert.equal(m.ciou.length, 4);
      assert.equal(m.nWithDistractors, 4);
      assert.ok(m.auc >= 0 && m.auc <= 1);
    }
    // the centre prior's first maximum is pixel (31, 31) of 64×64; item i's box spans pixels
    // ⌊6.4i⌋ … ⌊6.4i + 25.6⌋ − 1 in x and 6 … 37 in y → 0…24 (miss), 6…31 (hit), 12…37, 25…50 (hits)
    assert.deepEqual(report.centerPrior.hits, [false, true, true, true]);
  });
});
