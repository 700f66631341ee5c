// ONNX export + onnxruntime-node vs the tfjs forward pass, for the tiny and lite presets and every
// fusion head (the paper preset is checked in paper-parity.test.ts on the wasm backend).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  buildL3Net,
  createInferenceRunner,
  exportOnnx,
  FUSION_KINDS,
  type InferenceRunner,
  type L3Net,
  OnnxL3Runner,
  onnxRuntimeStatus,
  releaseInferenceRunners,
  saveOnnx,
  sharedInferenceRunner,
} from "../../src/lib/models";
import { tempDir } from "../helpers";
import { compareOutputs, randomInputs, randomizeBatchNorm, relError } from "./helpers";

const ort = onnxRuntimeStatus();
const skip = ort.available ? false : `onnxruntime-node not available: ${ort.reason}`;
const TOL = 1e-4;

before(async () => {
  await tf.setBackend("cpu");
});

describe("ONNX parity with tfjs (tiny, lite × every fusion head)", { skip }, () => {
  for (const preset of ["tiny", "lite"] as const) {
    for (const fusion of FUSION_KINDS) {
      it(`${preset} / ${fusion}: every output within ${TOL} relative error, two batch sizes on one session`, async () => {
        const model = buildL3Net({ preset, fusion }, { seed: `${preset}-${fusion}` });
        randomizeBatchNorm(model, `${preset}-${fusion}-bn`);
        const onnx = createInferenceRunner(model, { prefer: "onnx" });
        const ref = createInferenceRunner(model, { prefer: "tfjs" });
        try {
          assert.equal(onnx.engine, "onnx");
          assert.equal(ref.engine, "tfjs");
          const outputs = [
            "logits",
            "probs",
            "visionEmbedding",
            "audioEmbedding",
            "visionMap",
            "audioMap",
            "visionGrid",
            "audioGrid",
            "visionConv",
            "audioConv",
            "visionConvEmbedding",
            "audioConvEmbedding",
            "visionConvGrid",
            "audioConvGrid",
            ...(fusion === "concat" ? [] : ["visionProjection", "audioProjection", "score"]),
            ...(fusion === "avol" ? ["similarityMap"] : []),
          ];
          for (const batch of preset === "tiny" ? [3, 1] : [2, 1]) {
            const x = randomInputs(model, batch, `${preset}-${fusion}-${batch}`);
            const got = await onnx.run(x, outputs);
            const want = await ref.run(x, outputs);
            assert.deepEqual(Object.keys(got).sort(), [...outputs].sort());
            for (const c of compareOutputs(got, want)) {
              assert.ok(c.sameShape, `${c.name}: shape ${JSON.stringify(got[c.name]?.shape)} vs ${JSON.stringify(want[c.name]?.shape)}`);
              assert.ok(c.rel <= TOL, `${preset}/${fusion} batch ${batch} ${c.name}: relative error ${c.rel}`);
            }
            assert.equal(got.probs?.shape[0], batch);
          }
        } finally {
          await onnx.dispose();
          await ref.dispose();
          model.dispose();
        }
      });
    }
  }
});

describe("ONNX export options and runner behaviour", { skip }, () => {
  let model: L3Net;
  let onnx: InferenceRunner;
  let ref: InferenceRunner;
  before(() => {
    model = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: 7 });
    randomizeBatchNorm(model, "opts-bn");
    onnx = createInferenceRunner(model, { prefer: "onnx" });
    ref = createInferenceRunner(model, { prefer: "tfjs" });
  });
  after(async () => {
    await onnx.dispose();
    await ref.dispose();
    model.dispose();
  });

  it("unit maps (last vision map) and AVOL similarity maps; intermediate nodes come back NHWC", async () => {
    const x = randomInputs(model, 2, "maps");
    const names = ["visionMap", "similarityMap", "vision/block2/relu2", "audio/block1/pool"];
    const got = await onnx.run(x, names);
    const want = await ref.run(x, names);
    assert.deepEqual(got["vision/block2/relu2"]?.shape, [2, 32, 32, 16]);
    assert.deepEqual(got.similarityMap?.shape, [2, 8, 8]);
    for (const c of compareOutputs(got, want)) assert.ok(c.sameShape && c.rel <= TOL, `${c.name}: ${c.rel}`);
  });

  it("vision-only and audio-only outputs need only their input", async () => {
    const x = randomInputs(model, 2, "towers");
    const v = await onnx.run({ frames: x.frames }, ["visionEmbedding", "visionGrid"]);
    const a = await onnx.run({ audio: { data: x.audio, shape: [2, 32, 50, 1] } });
    assert.deepEqual(Object.keys(a).sort(), ["audioEmbedding", "audioGrid", "audioMap"]);
    const vr = await ref.run({ frames: x.frames }, ["visionEmbedding", "visionGrid"]);
    for (const c of compareOutputs(v, vr)) assert.ok(c.rel <= TOL, `${c.name}: ${c.rel}`);
    await assert.rejects(onnx.run({ frames: x.frames }, ["probs"]), /need the audio input/);
  });

  it("foldBatchNorm: false keeps BatchNormalization and gives the same numbers", async () => {
    const x = randomInputs(model, 2, "unfolded");
    const unfolded = new OnnxL3Runner(model, { foldBatchNorm: false });
    try {
      const a = await unfolded.run(x, ["logits", "visionMap"]);
      const b = await ref.run(x, ["logits", "visionMap"]);
      for (const c of compareOutputs(a, b)) assert.ok(c.rel <= TOL, `${c.name}: ${c.rel}`);
      const info = await unfolded.exported(["logits"]);
      assert.ok(Buffer.from(info.bytes).includes(Buffer.from("BatchNormalization")));
      const folded = await (onnx as OnnxL3Runner).exported(["logits"]);
      assert.ok(!Buffer.from(folded.bytes).includes(Buffer.from("BatchNormalization")));
    } finally {
      await unfolded.dispose();
    }
  });

  it("re-exports after the weights change (e.g. a training step)", async () => {
    const x = randomInputs(model, 1, "stale");
    const before1 = await onnx.run(x, ["probs", "visionEmbedding"]);
    const k = model.variable("vision/block1/conv1/kernel");
    tf.tidy(() => k.assign(tf.mul(k, 1.5)));
    const after1 = await onnx.run(x, ["probs", "visionEmbedding"]);
    const want = await ref.run(x, ["probs", "visionEmbedding"]);
    assert.ok(relError(after1.visionEmbedding!.data, before1.visionEmbedding!.data) > 1e-3, "the output changed");
    for (const c of compareOutputs(after1, want)) assert.ok(c.rel <= TOL, `${c.name}: ${c.rel}`);
  });

  it("input checks name the model and the shape", async () => {
    await assert.rejects(onnx.run({ frames: new Float32Array(10) }), /model 'tiny': frames has 10 values, not a multiple/);
    await assert.rejects(onnx.run({ frames: { data: new Float32Array(64 * 64 * 3), shape: [1, 64, 64, 1] } }), /expects \[B,64,64,3\]/);
    await assert.rejects(onnx.run({}), /give frames, audio or both/);
    await assert.rejects(onnx.run(randomInputs(model, 1, "e"), ["nope"]), /unknown output 'nope'/);
    const concat = buildL3Net("tiny");
    try {
      assert.throws(() => exportOnnx(concat, { outputs: ["similarityMap"] }), /'concat' head has no output 'similarityMap'/);
      assert.throws(() => exportOnnx(concat, { opset: 9 }), /opset must be an integer in \[13, 17\]/);
    } finally {
      concat.dispose();
    }
  });

  it("saveOnnx writes the ModelProto; sharedInferenceRunner reuses one runner per model", async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, "m", "tiny.onnx");
      const n = await saveOnnx(model, file, { outputs: ["probs"] });
      const bytes = readFileSync(file);
      assert.equal(bytes.length, n);
      assert.ok(bytes.includes(Buffer.from("l3kit.config")));
      const s1 = sharedInferenceRunner(model, "onnx");
      assert.equal(sharedInferenceRunner(model, "onnx"), s1);
      await releaseInferenceRunners(model);
      assert.notEqual(sharedInferenceRunner(model, "onnx"), s1);
      await releaseInferenceRunners(model);
    } finally {
      tmp.cleanup();
    }
  });
});
