import assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { buildL3Net, loadModel, loadWeightsInto, readModelInfo, resolveModelConfig, saveModel } from "../../src/lib/models";
import { ConfigError } from "../../src/lib/util";
import { L3kitError, Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";

tf.enableProdMode();

function inputs(seed: number, b: number): { frames: tf.Tensor4D; audio: tf.Tensor4D } {
  const rng = new Rng(seed);
  return {
    frames: tf.tensor4d(
      new Float32Array(b * 64 * 64 * 3).map(() => rng.next()),
      [b, 64, 64, 3],
    ),
    audio: tf.tensor4d(
      new Float32Array(b * 32 * 50).map(() => rng.normal()),
      [b, 32, 50, 1],
    ),
  };
}

describe("model files", () => {
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    await tf.setBackend("cpu");
    tmp = tempDir("l3kit-models-");
  });
  after(() => tmp.cleanup());

  test("save → load gives identical outputs, BN statistics and metadata", async () => {
    const m = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: 5 });
    const x = inputs(1, 2);
    // move the BN statistics away from their initial values
    tf.dispose(m.forward(x, { training: true }) as unknown as tf.TensorContainer);
    const dir = path.join(tmp.dir, "m1");
    const info = await saveModel(m, dir, { step: 12, note: "hello" });
    assert.equal(info.format, "l3kit-model");
    assert.equal(info.l3kitVersion, "0.1.0");
    assert.equal(info.paramCount.total, m.paramCount().total);
    assert.match(info.createdAt, /^\d{4}-\d\d-\d\dT/);
    const files = (await fsp.readdir(dir)).sort();
    assert.deepEqual(files, ["model.json", info.weights.file].sort());
    assert.equal((await fsp.stat(path.join(dir, info.weights.file))).size, m.paramCount().total * 4);

    const loaded = await loadModel(dir);
    assert.deepEqual(loaded.config, m.config);
    for (const { name, variable } of m.namedVariables()) assert.deepEqual(loaded.variable(name).dataSync(), variable.dataSync(), name);
    const a = m.forward(x, { grid: true });
    const b = loaded.forward(x, { grid: true });
    for (const k of ["logits", "similarityMap", "audioGrid", "visionGrid"] as const) {
      assert.deepEqual((b[k] as tf.Tensor).dataSync(), (a[k] as tf.Tensor).dataSync(), k);
    }
    tf.dispose([a, b] as unknown as tf.TensorContainer);
    const back = await readModelInfo(path.join(dir, "model.json"));
    assert.deepEqual(back.metadata, { step: 12, note: "hello" });
    tf.dispose(x);
    m.dispose();
    loaded.dispose();
  });

  test("saving again replaces the weights file; a corrupted file is detected", async () => {
    const dir = path.join(tmp.dir, "m2");
    const m = buildL3Net("tiny", { seed: 1 });
    const first = await saveModel(m, dir);
    const m2 = buildL3Net("tiny", { seed: 2 });
    const second = await saveModel(m2, dir);
    assert.notEqual(first.weights.file, second.weights.file);
    assert.deepEqual((await fsp.readdir(dir)).sort(), ["model.json", second.weights.file].sort());
    const loaded = await loadModel(dir);
    assert.deepEqual(loaded.variable("fusion/fc1/kernel").dataSync(), m2.variable("fusion/fc1/kernel").dataSync());
    loaded.dispose();
    // flip one byte
    const wf = path.join(dir, second.weights.file);
    const buf = await fsp.readFile(wf);
    buf[100] = (buf[100] as number) ^ 0xff;
    await fsp.writeFile(wf, buf);
    await assert.rejects(loadModel(dir), (e: unknown) => e instanceof L3kitError && e.reason === "corrupt" && /SHA-256/.test(e.message));
    await fsp.writeFile(wf, buf.subarray(0, 1000));
    await assert.rejects(loadModel(dir), /weights file has 1000 bytes/);
    await assert.rejects(loadModel(path.join(tmp.dir, "nowhere")), (e: unknown) => e instanceof L3kitError && e.reason === "missing");
    m.dispose();
    m2.dispose();
  });

  test("loading weights into a different config says what differs", async () => {
    const dir = path.join(tmp.dir, "m3");
    const saved = buildL3Net({ preset: "tiny", fusion: "avol" });
    await saveModel(saved, dir);
    const other = buildL3Net({ preset: "tiny", fusion: "concat", vision: { widths: [16, 32, 64, 128] } });
    await assert.rejects(
      loadWeightsInto(other, dir),
      (e: unknown) =>
        e instanceof L3kitError &&
        e.reason === "config-mismatch" &&
        /config differs: vision\.widths \[16,32,64,128\] vs \[8,16,32,64\]; fusion 'concat' vs 'avol'/.test(e.message),
    );
    const same = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: 42 });
    await loadWeightsInto(same, dir);
    assert.deepEqual(same.variable("fusion/vision_fc1/kernel").dataSync(), saved.variable("fusion/vision_fc1/kernel").dataSync());
    for (const m of [saved, other, same]) m.dispose();
  });

  test("resolveModelConfig: a preset, a saved model or a config file, with overrides", async () => {
    assert.equal((await resolveModelConfig("paper", { fusion: "avol" })).fusion, "avol");
    assert.equal((await resolveModelConfig("paper")).vision.frontEnd.size, 224);
    const dir = path.join(tmp.dir, "m4");
    const m = buildL3Net({ preset: "lite", fusion: "cosine" });
    await saveModel(m, dir);
    m.dispose();
    const fromDir = await resolveModelConfig(dir);
    assert.equal(fromDir.name, "lite");
    assert.equal(fromDir.fusion, "cosine");
    assert.equal((await resolveModelConfig(path.join(dir, "model.json"), { fusion: "concat" })).fusion, "concat");
    const cfgFile = path.join(tmp.dir, "cfg.json");
    await fsp.writeFile(cfgFile, JSON.stringify({ preset: "tiny", audio: { widths: [4, 8, 16, 32] } }));
    const fromFile = await resolveModelConfig(cfgFile, { fusion: "euclidean" });
    assert.deepEqual(fromFile.audio.widths, [4, 8, 16, 32]);
    assert.equal(fromFile.fusion, "euclidean");
    await assert.rejects(
      resolveModelConfig("nothing-here"),
      (e: unknown) => e instanceof ConfigError && /not a preset \(paper, lite, tiny\)/.test(e.message),
    );
    await fsp.writeFile(cfgFile, JSON.stringify({ fusion: "film" }));
    await assert.rejects(resolveModelConfig(cfgFile), /unknown fusion head "film"/);
  });
});
