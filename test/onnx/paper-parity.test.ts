// ONNX vs tfjs for the paper preset (224×224 frames, 257×199 spectrograms, widths 64…512), every
// fusion head, batch 1. Runs on the wasm backend: the tfjs cpu backend takes minutes per paper forward.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { initBackend } from "../../src/lib/backend";
import { buildL3Net, createInferenceRunner, FUSION_KINDS, onnxRuntimeStatus } from "../../src/lib/models";
import { compareOutputs, randomInputs, randomizeBatchNorm } from "./helpers";

const ort = onnxRuntimeStatus();
const skip = ort.available ? false : `onnxruntime-node not available: ${ort.reason}`;

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
});

describe("ONNX parity with tfjs-wasm, paper preset", { skip, timeout: 180_000 }, () => {
  for (const fusion of FUSION_KINDS) {
    it(`paper / ${fusion}: every output within 1e-4 relative error`, async () => {
      const model = buildL3Net({ preset: "paper", fusion }, { seed: `paper-${fusion}` });
      randomizeBatchNorm(model, `paper-${fusion}-bn`);
      const onnx = createInferenceRunner(model, { prefer: "onnx" });
      const ref = createInferenceRunner(model, { prefer: "tfjs" });
      try {
        const x = randomInputs(model, 1, `paper-${fusion}`);
        const outputs = ["logits", "probs", "visionEmbedding", "audioEmbedding", "visionMap", "audioMap", "visionGrid", "audioGrid"];
        if (fusion === "avol") outputs.push("similarityMap");
        const got = await onnx.run(x, outputs);
        const want = await ref.run(x, outputs);
        assert.deepEqual(got.visionMap?.shape, [1, 28, 28, 512]);
        assert.deepEqual(got.audioMap?.shape, [1, 32, 24, 512]);
        assert.deepEqual(got.audioGrid?.shape, [1, 6144]);
        for (const c of compareOutputs(got, want)) {
          assert.ok(c.sameShape, `${c.name}: shape`);
          assert.ok(c.rel <= 1e-4, `paper/${fusion} ${c.name}: relative error ${c.rel}`);
        }
      } finally {
        await onnx.dispose();
        await ref.dispose();
        model.dispose();
      }
    });
  }
});
