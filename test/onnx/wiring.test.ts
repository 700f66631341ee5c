// The ONNX engine behind the forward-only evaluation functions (AVC scores, probe features,
// unit/similarity maps), against their tfjs path; and the fallback when onnxruntime-node is missing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { avcScores, evaluateAvc, localizationMaps, towerFeatureExtractor } from "../../src/lib/eval";
import {
  buildL3Net,
  createInferenceRunner,
  embedAudio,
  embedImage,
  type L3Net,
  onnxRuntimeStatus,
  resolveInferenceEngine,
  setOnnxRuntimeLoader,
  sharedInferenceRunner,
} from "../../src/lib/models";
import { Rng } from "../../src/lib/util";
import { repoRoot, tempDir } from "../helpers";
import { randomInputs, randomizeBatchNorm, relError } from "./helpers";

const ort = onnxRuntimeStatus();
const skip = ort.available ? false : `onnxruntime-node not available: ${ort.reason}`;

let avol: L3Net;
const tensors = (model: L3Net, batch: number, seed: string) => {
  const x = randomInputs(model, batch, seed);
  return {
    frames: tf.tensor4d(x.frames, [batch, 64, 64, 3]),
    audio: tf.tensor4d(x.audio, [batch, 32, 50, 1]),
  };
};

before(async () => {
  await tf.setBackend("cpu");
  avol = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: 11 });
  randomizeBatchNorm(avol, "wiring");
});
after(() => avol.dispose());

describe("forward-only evaluation on the ONNX engine", { skip }, () => {
  it("avcScores / evaluateAvc: onnx and tfjs agree; nothing leaks", async () => {
    const x = tensors(avol, 4, "avc");
    try {
      const start = tf.memory().numTensors;
      const a = await avcScores(avol, x, "onnx");
      const b = await avcScores(avol, x, "tfjs");
      assert.equal(a.length, 4);
      assert.ok(relError(a, b) < 1e-4, `${a} vs ${b}`);
      assert.equal(tf.memory().numTensors, start);
      const source = {
        pairs: [0, 1, 2, 3].map((i) => ({ label: i % 2 })),
        load: async (batch: readonly { label: number }[]) => tensors(avol, batch.length, `pairs-${batch.length}`),
      };
      const eo = await evaluateAvc(avol, source, { batchSize: 4, engine: "onnx" });
      const et = await evaluateAvc(avol, source, { batchSize: 4, engine: "tfjs" });
      assert.ok(relError(Float32Array.from(eo.scores), Float32Array.from(et.scores)) < 1e-4);
      assert.equal(eo.accuracy, et.accuracy);
      assert.equal(tf.memory().numTensors, start);
    } finally {
      tf.dispose([x.frames, x.audio]);
    }
  });

  it("towerFeatureExtractor: onnx features equal tfjs features (grid and embedding, chunked)", async () => {
    for (const tower of ["vision", "audio"] as const) {
      for (const feature of ["grid", "embedding"] as const) {
        const inputs = async () => tensors(avol, 5, `feat-${tower}`)[tower === "vision" ? "frames" : "audio"];
        const fo = await towerFeatureExtractor(avol, { tower, feature, inputs, batchSize: 2, engine: "onnx" })({ id: "r" } as never);
        const ft = await towerFeatureExtractor(avol, { tower, feature, inputs, batchSize: 2, engine: "tfjs" })({ id: "r" } as never);
        assert.deepEqual([fo.k, fo.dim], [ft.k, ft.dim]);
        assert.ok(relError(fo.features, ft.features) < 1e-4, `${tower}/${feature}`);
      }
    }
  });

  it("embedAudio / embedImage: onnx embeddings equal tfjs embeddings (global and grid pooling)", async () => {
    const rng = new Rng("embed-engine");
    const sr = avol.config.audio.frontEnd.sampleRate;
    const samples = Float32Array.from({ length: Math.round(2.3 * sr) }, () => rng.normal(0, 0.1));
    // A runner that counts its calls: the embeddings must come from it.
    const onnx = createInferenceRunner(avol, { prefer: "onnx" });
    let calls = 0;
    const counted = {
      ...onnx,
      engine: onnx.engine,
      model: avol,
      run: (...a: Parameters<typeof onnx.run>) => {
        calls++;
        return onnx.run(...a);
      },
    };
    for (const pooling of ["global", "grid"] as const) {
      const eo = await embedAudio(avol, samples, sr, { hopSec: 0.5, pooling, batchSize: 3, engine: counted });
      const et = await embedAudio(avol, samples, sr, { hopSec: 0.5, pooling, batchSize: 3, engine: "tfjs" });
      assert.deepEqual([eo.timestamps, eo.dim], [et.timestamps, et.dim]);
      assert.ok(relError(eo.embeddings, et.embeddings) < 1e-4, `audio ${pooling}`);
    }
    const frames = [0, 1, 2].map(() => ({ width: 80, height: 72, data: Uint8Array.from({ length: 80 * 72 * 3 }, () => rng.int(256)) }));
    const io = await embedImage(avol, frames, { batchSize: 2, engine: "onnx" });
    const it_ = await embedImage(avol, frames, { batchSize: 2, engine: "tfjs" });
    assert.equal(io.count, 3);
    assert.ok(relError(io.embeddings, it_.embeddings) < 1e-4, "image");
    assert.equal(calls, 4, "two batches of 3 windows (5 windows) per pooling ran on the ONNX runner");
    await onnx.dispose();
  });

  it("localizationMaps: unit and similarity maps on onnx equal the tfjs ones", async () => {
    const x = tensors(avol, 2, "maps");
    try {
      for (const opts of [{ method: "unit" as const, unit: "max" as const }, { method: "similarity" as const }]) {
        const mo = await localizationMaps(avol, x, { ...opts, engine: "onnx", size: [16, 16] });
        const mt = await localizationMaps(avol, x, { ...opts, engine: "tfjs", size: [16, 16] });
        assert.equal(mo.length, 2);
        for (let i = 0; i < 2; i++) assert.ok(relError(mo[i]!.data, mt[i]!.data) < 1e-4, `${opts.method} map ${i}`);
      }
    } finally {
      tf.dispose([x.frames, x.audio]);
    }
  });
});

describe("without onnxruntime-node", () => {
  after(() => setOnnxRuntimeLoader());

  it("auto falls back to tfjs and says why; onnx throws", async () => {
    setOnnxRuntimeLoader(() => {
      throw new Error("Cannot find module 'onnxruntime-node'");
    });
    const r = resolveInferenceEngine("auto");
    assert.equal(r.engine, "tfjs");
    assert.match(r.reason, /onnxruntime-node does not load \(Cannot find module 'onnxruntime-node'\); using tfjs/);
    assert.throws(() => createInferenceRunner(avol, { prefer: "onnx" }), /engine "onnx" requested but onnxruntime-node does not load/);
    const runner = createInferenceRunner(avol);
    assert.equal(runner.engine, "tfjs");
    const out = await runner.run(randomInputs(avol, 2, "fallback"), ["probs", "similarityMap"]);
    assert.deepEqual(out.similarityMap?.shape, [2, 8, 8]);
    const x = tensors(avol, 2, "fallback-avc");
    try {
      assert.equal((await avcScores(avol, x)).length, 2);
    } finally {
      tf.dispose([x.frames, x.audio]);
    }
    assert.equal(sharedInferenceRunner(avol).engine, "tfjs");
  });

  it("in a process where require('onnxruntime-node') throws, auto runs on tfjs", () => {
    const tmp = tempDir();
    try {
      const preload = path.join(tmp.dir, "block-ort.js");
      writeFileSync(
        preload,
        `const M = require("module"); const orig = M._resolveFilename;
M._resolveFilename = function (req, ...rest) { if (req === "onnxruntime-node") throw new Error("blocked for the test"); return orig.call(this, req, ...rest); };`,
      );
      const script = `
const tf = require("@tensorflow/tfjs");
const { buildL3Net, createInferenceRunner, onnxRuntimeStatus } = require("./src/lib/models");
(async () => {
  await tf.setBackend("cpu");
  const m = buildL3Net("tiny");
  const r = createInferenceRunner(m, { prefer: "auto" });
  const out = await r.run({ frames: new Float32Array(64 * 64 * 3), audio: new Float32Array(32 * 50) }, ["probs"]);
  console.log(JSON.stringify({ engine: r.engine, reason: r.reason, available: onnxRuntimeStatus().available, probs: out.probs.shape }));
})().catch((e) => { console.error(e); process.exit(1); });`;
      const res = spawnSync(process.execPath, ["--require", require.resolve("tsx/cjs"), "--require", preload, "-e", script], {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(res.status, 0, res.stderr);
      const line = res.stdout.trim().split("\n").pop() as string;
      const got = JSON.parse(line) as { engine: string; reason: string; available: boolean; probs: number[] };
      assert.equal(got.engine, "tfjs");
      assert.equal(got.available, false);
      assert.match(got.reason, /blocked for the test/);
      assert.deepEqual(got.probs, [1, 2]);
    } finally {
      tmp.cleanup();
    }
  });
});
