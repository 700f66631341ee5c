// Embeddings and probe features pool the raw last conv (conv4_2: before batch norm and ReLU), as L³'s
// embedding models and OpenL3 do; the post-ReLU layer stays available as `layer: "relu"`. And the mel
// presets normalise the spectrogram with a batch norm, as l3embedding's and OpenL3's mel models.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { esc50Probe } from "../../src/experiments/esc50-probe";
import { kineticsProbe } from "../../src/experiments/kinetics-probe";
import { towerFeatureExtractor } from "../../src/lib/eval";
import {
  adaptiveWindows,
  buildL3Graph,
  buildL3Net,
  computeAudioInput,
  countL3Params,
  createInferenceRunner,
  embedAudio,
  embedImage,
  type L3Net,
  loadModel,
  modelSummary,
  onnxRuntimeStatus,
  resolveL3Config,
  saveModel,
} from "../../src/lib/models";
import { Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { compareOutputs, randomizeBatchNorm } from "../onnx/helpers";

const tmp = tempDir("l3kit-embedding-layer-");
after(() => tmp.cleanup());

/** Sets a variable's values. */
function assign(model: L3Net, name: string, values: number[]): void {
  const v = model.variable(name);
  tf.tidy(() => v.assign(tf.tensor(Float32Array.from(values), v.shape)));
}

/** The tower's last conv output computed here: conv2d(relu4_1, kernel4_2), NHWC, as nested data. */
function rawLastConv(model: L3Net, part: "vision" | "audio", input: tf.Tensor4D): { data: Float32Array; shape: number[] } {
  return tf.tidy(() => {
    const feeds = part === "vision" ? { frames: input } : { audio: input };
    const r41 = model.run(feeds, [`${part}/block4/relu1`])[`${part}/block4/relu1`] as tf.Tensor4D;
    const y = tf.conv2d(r41, model.variable(`${part}/block4/conv2/kernel`) as unknown as tf.Tensor4D, 1, "same");
    return { data: y.dataSync() as Float32Array, shape: y.shape };
  });
}

/** Max over the whole map and over an adaptive grid, in plain JS (per sample: [global C], [grid gh·gw·C]). */
function pools(map: { data: Float32Array; shape: number[] }, grid: [number, number]): { global: number[][]; grid: number[][] } {
  const [b, h, w, c] = map.shape as [number, number, number, number];
  const at = (n: number, y: number, x: number, k: number) => map.data[((n * h + y) * w + x) * c + k] as number;
  const rows = adaptiveWindows(h, grid[0]);
  const cols = adaptiveWindows(w, grid[1]);
  const out = { global: [] as number[][], grid: [] as number[][] };
  for (let n = 0; n < b; n++) {
    const g: number[] = [];
    for (let k = 0; k < c; k++) {
      let m = Number.NEGATIVE_INFINITY;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) m = Math.max(m, at(n, y, x, k));
      g.push(m);
    }
    const cells: number[] = [];
    for (const [y0, y1] of rows)
      for (const [x0, x1] of cols)
        for (let k = 0; k < c; k++) {
          let m = Number.NEGATIVE_INFINITY;
          for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m = Math.max(m, at(n, y, x, k));
          cells.push(m);
        }
    out.global.push(g);
    out.grid.push(cells);
  }
  return out;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
};

let model: L3Net;
let audioIn: tf.Tensor4D;
let samples: Float32Array;
let frames: Float32Array;
const negative = [0, 3, 5, 17, 40, 63]; // channels of block4/bn2 with γ < 0

before(async () => {
  await tf.setBackend("cpu");
  model = buildL3Net({ preset: "tiny", fusion: "concat" }, { seed: "layer" });
  randomizeBatchNorm(model, "layer-bn");
  // a negative γ turns the post-BN max into a min of the conv; ReLU then drops what is left below 0
  for (const part of ["vision", "audio"] as const) {
    const g = Array.from(model.variable(`${part}/block4/bn2/gamma`).dataSync());
    for (const k of negative) g[k] = -Math.abs(g[k] as number) - 0.5;
    assign(model, `${part}/block4/bn2/gamma`, g);
  }
  const rng = new Rng("layer-inputs");
  samples = Float32Array.from({ length: 16000 }, (_, i) => 0.3 * Math.sin(i * 0.07) + rng.normal(0, 0.1));
  audioIn = tf.tensor4d(computeAudioInput(model.config, samples), [1, 32, 50, 1]);
  frames = Float32Array.from({ length: 64 * 64 * 3 }, () => rng.uniform());
});
after(() => {
  audioIn.dispose();
  model.dispose();
});

describe("embeddings pool the raw last conv (conv4_2), as L³ and OpenL3", () => {
  test("audio: the default embedding and grid feature are maxima of the raw conv, not of the post-ReLU map", async () => {
    const ref = pools(rawLastConv(model, "audio", audioIn), [4, 3]);
    const opts = { hopSec: 1, center: false, engine: "tfjs" as const };
    const g = await embedAudio(model, samples, 16000, opts);
    const grid = await embedAudio(model, samples, 16000, { ...opts, pooling: "grid" });
    assert.equal(g.dim, 64);
    assert.equal(grid.dim, 4 * 3 * 64);
    assert.ok(maxDiff(g.embeddings, ref.global[0]!) < 1e-4, `global: ${maxDiff(g.embeddings, ref.global[0]!)}`);
    assert.ok(maxDiff(grid.embeddings, ref.grid[0]!) < 1e-4, `grid: ${maxDiff(grid.embeddings, ref.grid[0]!)}`);
    // the paper-style name of the same layer gives the same features
    const named = await embedAudio(model, samples, 16000, { ...opts, layer: "conv4_2" as never });
    assert.deepEqual(named.embeddings, g.embeddings);

    // layer "relu" gives the old, post-BN-and-ReLU features, which differ
    const old = tf.tidy(() => model.run({ audio: audioIn }, ["audio/global_pool"])["audio/global_pool"]!.dataSync());
    const relu = await embedAudio(model, samples, 16000, { ...opts, layer: "relu" });
    assert.ok(maxDiff(relu.embeddings, old) < 1e-6);
    assert.ok(relu.embeddings.every((v) => v >= 0));
    assert.ok(
      g.embeddings.some((v) => v < 0),
      "raw conv maxima can be negative",
    );
    assert.ok(maxDiff(relu.embeddings, g.embeddings) > 0.1);
    const relu42 = await embedAudio(model, samples, 16000, { ...opts, layer: "relu4_2" as never });
    assert.deepEqual(relu42.embeddings, relu.embeddings);
  });

  test("vision: embedImage pools the raw conv by default; layer relu gives the tower's post-ReLU vector", async () => {
    const x = tf.tensor4d(frames, [1, 64, 64, 3]);
    try {
      const ref = pools(rawLastConv(model, "vision", x), [4, 4]);
      const frame = { width: 64, height: 64, data: Uint8Array.from(frames, (v) => Math.round(v * 255)) };
      const xq = tf.tensor4d(
        Float32Array.from(frame.data, (v) => v / 255),
        [1, 64, 64, 3],
      );
      const refq = pools(rawLastConv(model, "vision", xq), [4, 4]);
      const e = await embedImage(model, frame, { engine: "tfjs" });
      const g = await embedImage(model, frame, { engine: "tfjs", pooling: "grid" });
      assert.ok(maxDiff(e.embeddings, refq.global[0]!) < 1e-4);
      assert.ok(maxDiff(g.embeddings, refq.grid[0]!) < 1e-4);
      const relu = await embedImage(model, frame, { engine: "tfjs", layer: "relu" });
      const tower = tf.tidy(() => model.visionTower(xq).embedding.dataSync());
      assert.ok(maxDiff(relu.embeddings, tower) < 1e-6);
      assert.ok(maxDiff(relu.embeddings, e.embeddings) > 0.1);
      // the tower API: layer "conv" on request (default "relu", the fusion head's input)
      const conv = model.visionTower(x, { layer: "conv", grid: true });
      assert.ok(maxDiff(conv.embedding.dataSync(), ref.global[0]!) < 1e-4);
      assert.ok(maxDiff(conv.grid!.dataSync(), ref.grid[0]!) < 1e-4);
      tf.dispose(conv as unknown as tf.TensorContainer);
      xq.dispose();
    } finally {
      x.dispose();
    }
  });
});

describe("probe features, the layer option, and the ONNX runner", () => {
  test("probe features (towerFeatureExtractor) default to the raw conv grid; relu on request", async () => {
    const ref = pools(rawLastConv(model, "audio", audioIn), [4, 3]);
    const row = { id: "r", path: "-", split: "train", durationSec: 1, hasAudio: true };
    const inputs = async () => audioIn.clone();
    const conv = await towerFeatureExtractor(model, { tower: "audio", inputs, engine: "tfjs" })(row);
    assert.equal(conv.dim, 768);
    assert.ok(maxDiff(conv.features, ref.grid[0]!) < 1e-4);
    const relu = await towerFeatureExtractor(model, { tower: "audio", inputs, engine: "tfjs", layer: "relu" })(row);
    const old = tf.tidy(() => model.run({ audio: audioIn }, ["audio/grid_pool"])["audio/grid_pool"]!.dataSync());
    assert.ok(maxDiff(relu.features, old) < 1e-6);
    // the probe experiments read the raw conv by default and validate probe.layer
    assert.equal((esc50Probe.defaults as { probe: { layer: string } }).probe.layer, "conv");
    assert.equal((kineticsProbe.defaults as { probe: { layer: string } }).probe.layer, "conv");
    assert.deepEqual(esc50Probe.choices?.["probe.layer"], ["conv", "relu"]);
  });

  test("an unknown layer fails with the valid choices", async () => {
    await assert.rejects(
      embedAudio(model, samples, 16000, { layer: "conv5" as never, engine: "tfjs" }),
      /unknown layer "conv5": expected "conv" — the last conv's raw output \(here conv4_2\), before batch norm and ReLU.*or "relu"/,
    );
    await assert.rejects(
      embedImage(model, { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) }, { layer: "pre" as never }),
      /unknown layer "pre"/,
    );
    assert.throws(
      () => towerFeatureExtractor(model, { tower: "vision", inputs: async () => tf.zeros([1, 64, 64, 3]), layer: "x" as never }),
      /unknown layer "x"/,
    );
  });

  test("ONNX: the raw-conv outputs match tfjs, alone and beside the post-ReLU map (the last BN then stays unfolded)", {
    skip: onnxRuntimeStatus().available ? false : "onnxruntime-node not available",
  }, async () => {
    const onnx = createInferenceRunner(model, { prefer: "onnx" });
    const ref = createInferenceRunner(model, { prefer: "tfjs" });
    try {
      const audio = { data: audioIn.dataSync() as Float32Array, shape: [1, 32, 50, 1] };
      const x = { frames: { data: frames, shape: [1, 64, 64, 3] }, audio };
      for (const names of [
        ["audioConvEmbedding", "audioConvGrid", "visionConvEmbedding", "visionConvGrid"],
        ["audioConv", "visionConv", "audioMap", "visionMap", "audioConvEmbedding", "visionEmbedding", "logits"],
      ]) {
        const got = await onnx.run(x, names);
        const want = await ref.run(x, names);
        for (const c of compareOutputs(got, want)) assert.ok(c.sameShape && c.rel <= 1e-4, `${c.name}: ${c.rel}`);
      }
      const e = await embedAudio(model, samples, 16000, { hopSec: 1, center: false, engine: onnx, pooling: "grid" });
      const t = await embedAudio(model, samples, 16000, { hopSec: 1, center: false, engine: "tfjs", pooling: "grid" });
      assert.ok(maxDiff(e.embeddings, t.embeddings) < 1e-4);
    } finally {
      await onnx.dispose();
      await ref.dispose();
    }
  });
});

describe("mel presets: a batch norm right after the spectrogram", () => {
  test("tiny and lite have audio/input_bn (one channel) before the first conv; paper does not, and its counts are unchanged", () => {
    for (const preset of ["tiny", "lite"] as const) {
      const g = buildL3Graph(resolveL3Config(preset));
      const i = g.nodes.findIndex((n) => n.name === "audio/input");
      const bn = g.nodes[i + 1]!;
      assert.equal(bn.op, "batchNorm");
      assert.equal(bn.name, "audio/input_bn");
      assert.deepEqual(bn.inputs, ["audio/input"]);
      assert.equal(g.nodes.find((n) => n.name === "audio/block1/conv1")?.inputs[0], "audio/input_bn");
      const widths = resolveL3Config(preset).audio.widths;
      const blockBn = 2 * 2 * widths.reduce((a, b) => a + b, 0);
      const c = countL3Params(preset);
      assert.equal(c.audio.batchNorm, blockBn + 2);
      assert.equal(c.audio.batchNormStats, blockBn + 2);
      assert.equal(c.vision.batchNorm, blockBn);
      assert.ok(modelSummary(preset).rows.some((r) => r.name === "audio/input_bn" && r.params === 4));
    }
    const paper = buildL3Graph(resolveL3Config("paper"));
    assert.ok(!paper.nodes.some((n) => n.name === "audio/input_bn"));
    const c = countL3Params("paper");
    assert.equal(c.audio.batchNorm, c.vision.batchNorm);
    assert.equal(c.audio.conv, 4_682_304);
  });

  test("the input batch norm normalises the spectrogram with its own parameters", async () => {
    await tf.setBackend("cpu");
    const m = buildL3Net("tiny", { seed: 1 });
    try {
      assign(m, "audio/input_bn/gamma", [2]);
      assign(m, "audio/input_bn/beta", [0.5]);
      assign(m, "audio/input_bn/moving_mean", [-30]);
      assign(m, "audio/input_bn/moving_variance", [100]);
      const x = tf.randomUniform([1, 32, 50, 1], -80, 0, "float32", 3) as tf.Tensor4D;
      const y = tf.tidy(() => m.run({ audio: x }, ["audio/input_bn"])["audio/input_bn"]!.dataSync());
      const xs = x.dataSync();
      const eps = m.config.batchNorm.epsilon;
      assert.ok(
        maxDiff(
          y,
          Array.from(xs, (v) => ((v + 30) / Math.sqrt(100 + eps)) * 2 + 0.5),
        ) < 1e-4,
      );
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  test("a mel checkpoint saved before the input batch norm fails to load, naming the missing parameters", async () => {
    await tf.setBackend("cpu");
    const m = buildL3Net("tiny", { seed: 2 });
    const dir = path.join(tmp.dir, "old-tiny");
    await saveModel(m, dir);
    m.dispose();
    // what an older l3kit wrote: the same tensors without audio/input_bn/*
    const jsonFile = path.join(dir, "model.json");
    const info = JSON.parse(readFileSync(jsonFile, "utf8"));
    info.weights.tensors = info.weights.tensors.filter((t: { name: string }) => !t.name.startsWith("audio/input_bn/"));
    writeFileSync(jsonFile, JSON.stringify(info));
    await assert.rejects(
      loadModel(dir),
      /weights do not fit: missing 4 parameter\(s\): audio\/input_bn\/gamma, audio\/input_bn\/beta, audio\/input_bn\/moving_mean, audio\/input_bn\/moving_variance; mel models now have a batch norm right after the spectrogram/,
    );
  });
});
