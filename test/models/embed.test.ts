import assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { embedCommand } from "../../src/cli/embed-files";
import { type RgbFrame, readAudio, readNpy } from "../../src/lib/media";
import {
  audioWindowPlan,
  buildL3Net,
  embedAudio,
  embedImage,
  embedVideo,
  type L3Net,
  resampleAudio,
  saveModel,
} from "../../src/lib/models";
import { L3kitError, Rng } from "../../src/lib/util";
import { frameToFloat } from "../../src/lib/vision";
import { needsRealdata, realdata, tempDir } from "../helpers";

tf.enableProdMode();

describe("OpenL3 window layout", () => {
  test("window counts follow openl3's center + pad rule", () => {
    // values from openl3's _center_audio/_pad_audio + librosa.util.frame (checked with numpy)
    assert.equal(audioWindowPlan(96000, 48000, 4800).count, 16); // 2.0 s at 48 kHz, hop 0.1
    assert.equal(audioWindowPlan(48, 48000, 4800).count, 1); // shorter than a window
    assert.equal(audioWindowPlan(48000, 48000, 4800).count, 6);
    assert.equal(audioWindowPlan(96000, 48000, 4800, false).count, 11);
    assert.deepEqual(audioWindowPlan(50000, 48000, 4800), { count: 7, padStart: 24000, padEnd: 2800 });
    assert.equal(audioWindowPlan(32000, 16000, 1600).count, 16);
  });
});

describe("resampler", () => {
  const tone = (freq: number, rate: number, n: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * freq * i) / rate));

  test("keeps an in-band tone and its timing (44.1 kHz → 16 kHz, 16 kHz → 48 kHz)", () => {
    for (const [from, to, f] of [
      [44100, 16000, 1000],
      [44100, 16000, 7000],
      [16000, 48000, 3000],
    ] as const) {
      const x = tone(f, from, from);
      const y = resampleAudio(x, from, to);
      assert.equal(y.length, Math.floor((x.length * to) / from));
      const want = tone(f, to, y.length);
      let err = 0;
      for (let i = 200; i < y.length - 200; i++) err = Math.max(err, Math.abs((y[i] as number) - (want[i] as number)));
      assert.ok(err < 2e-3, `${from}→${to} ${f} Hz: max error ${err}`);
    }
  });

  test("removes content above the new Nyquist (no aliasing)", () => {
    const y = resampleAudio(tone(10000, 44100, 44100), 44100, 16000);
    let s = 0;
    for (let i = 200; i < y.length - 200; i++) s += (y[i] as number) ** 2;
    assert.ok(Math.sqrt(s / (y.length - 400)) < 1e-3);
    assert.deepEqual(resampleAudio(Float32Array.of(1, 2), 16000, 16000), Float32Array.of(1, 2));
  });
});

describe("embeddings", () => {
  let model: L3Net;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    await tf.setBackend("cpu");
    model = buildL3Net("tiny", { seed: 21 });
    tmp = tempDir("l3kit-embed-");
  });
  after(() => {
    model.dispose();
    tmp.cleanup();
  });

  test("embedAudio on chirp_44k.wav (2.0 s at 44.1 kHz), hop 0.1: 16 windows at 0.0 … 1.5 s, deterministic", needsRealdata(), async () => {
    const clip = await readAudio(realdata("openl3", "audio", "chirp_44k.wav"), { sampleRate: 44100 });
    assert.equal(clip.samples.length, 88200);
    const start = tf.memory().numTensors;
    const e = await embedAudio(model, clip.samples, 44100, { hopSec: 0.1, batchSize: 6 });
    assert.equal(tf.memory().numTensors, start);
    assert.equal(e.dim, 64);
    assert.deepEqual(
      e.timestamps,
      Array.from({ length: 16 }, (_, i) => Math.round(i * 0.1 * 10) / 10),
    );
    assert.equal(e.embeddings.length, 16 * 64);
    assert.ok(e.embeddings.every(Number.isFinite));
    // deterministic, and independent of the batch size
    const again = await embedAudio(model, clip.samples, 44100, { hopSec: 0.1, batchSize: 16 });
    assert.ok(again.embeddings.every((v, i) => Math.abs(v - (e.embeddings[i] as number)) < 1e-5));
    // the windows differ along the chirp
    assert.notDeepEqual(e.embeddings.subarray(0, 64), e.embeddings.subarray(64 * 8, 64 * 9));
    const grid = await embedAudio(model, clip.samples, 44100, { hopSec: 0.25, pooling: "grid" });
    assert.equal(grid.dim, 4 * 3 * 64);
    assert.equal(grid.timestamps.length, 1 + Math.ceil((32000 + 8000 - 16000) / 4000));
    await assert.rejects(
      embedAudio(model, clip.samples, 44100, { pooling: 512 }),
      /pooling 512 is not available for the audio tower of 'tiny' \(valid: "global" = 64, "grid" = 768 \(4×3×64\)\)/,
    );
  });

  test("short and empty audio", async () => {
    const short = await embedAudio(model, new Float32Array(48).fill(0.1), 48000);
    assert.deepEqual(short.timestamps, [0]);
    await assert.rejects(embedAudio(model, new Float32Array(0), 16000), (e: unknown) => e instanceof L3kitError && e.reason === "empty");
  });

  test("every modality answers alike: embeddings, dim and count; audio windows add timestamps, images have none", async () => {
    const audio = await embedAudio(model, new Float32Array(24000).fill(0.1), 16000, { hopSec: 0.5 });
    assert.deepEqual(Object.keys(audio).sort(), ["count", "dim", "embeddings", "timestamps"]);
    assert.equal(audio.count, audio.timestamps.length);
    assert.equal(audio.embeddings.length, audio.count * audio.dim);
    const frame: RgbFrame = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(90) };
    const image = await embedImage(model, [frame, frame, frame]);
    assert.deepEqual(Object.keys(image).sort(), ["count", "dim", "embeddings"]);
    assert.equal(image.embeddings.length, image.count * image.dim);
    assert.equal(image.count, 3);
  });

  test("embedImage resizes and centre-crops; size×size frames go in as they are", async () => {
    const rng = new Rng(3);
    const frame = (w: number, h: number): RgbFrame => ({
      width: w,
      height: h,
      data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)),
    });
    const big = frame(120, 90);
    const exact = frame(64, 64);
    const e = await embedImage(model, [big, exact], { batchSize: 1 });
    assert.equal(e.count, 2);
    assert.equal(e.dim, 64);
    // embeddings pool the raw last conv by default (as L³ and OpenL3): the tower's `layer: "conv"`
    const direct = tf.tidy(() =>
      model.visionTower(tf.tensor4d(frameToFloat(exact), [1, 64, 64, 3]), { layer: "conv" }).embedding.dataSync(),
    );
    assert.ok(direct.every((v, i) => Math.abs(v - (e.embeddings[64 + i] as number)) < 1e-5));
    const g = await embedImage(model, big, { pooling: "grid" });
    assert.equal(g.dim, 4 * 4 * 64);
  });

  test("embedVideo on bento.mp4: audio windows and frames with timestamps", needsRealdata(), async () => {
    const r = await embedVideo(model, realdata("openl3", "video", "bento.mp4"), { hopSec: 0.1, frameHopSec: 0.5 });
    assert.ok(r.durationSec > 1 && r.durationSec < 1.2);
    assert.ok(r.audio && r.vision);
    assert.equal(r.audio.dim, 64);
    assert.ok(r.audio.timestamps.length >= 6 && r.audio.timestamps.length <= 7, String(r.audio.timestamps));
    assert.equal(r.audio.timestamps[1], 0.1);
    assert.deepEqual(r.vision.timestamps, [0, 0.5, 1]);
    assert.equal(r.vision.count, 3);
    assert.equal(r.audio.count, r.audio.timestamps.length);
    assert.equal(r.vision.embeddings.length, 3 * 64);
    assert.ok(r.vision.embeddings.every(Number.isFinite));
    // frames 0 and 1 s differ
    assert.notDeepEqual(r.vision.embeddings.subarray(0, 64), r.vision.embeddings.subarray(128, 192));
  });

  test("embedCommand: one output per input, a bad file is reported and skipped", needsRealdata(), async () => {
    const ckpt = path.join(tmp.dir, "model");
    await saveModel(model, ckpt);
    const bad = path.join(tmp.dir, "broken.mp4");
    await fsp.writeFile(bad, "not a video");
    const files = [realdata("openl3", "video", "bento.mp4"), bad, realdata("openl3", "audio", "chirp_44k.wav")];
    const out = path.join(tmp.dir, "json");
    const lines: string[] = [];
    const r = await embedCommand({ files, checkpoint: ckpt, out, format: "json", hopSec: 0.5, log: (l) => lines.push(l) });
    assert.equal(r.written.length, 2);
    assert.deepEqual(
      r.failed.map((f) => f.file),
      [bad],
    );
    assert.ok(lines.some((l) => l.includes("broken.mp4: skipped")));
    assert.deepEqual((await fsp.readdir(out)).sort(), ["bento.json", "chirp_44k.json"]);
    const chirp = JSON.parse(await fsp.readFile(path.join(out, "chirp_44k.json"), "utf8"));
    assert.equal(chirp.vision, null);
    assert.deepEqual(chirp.audio.timestamps, [0, 0.5, 1, 1.5]);
    assert.equal(chirp.audio.embeddings.length, 4);
    assert.equal(chirp.audio.embeddings[0].length, 64);
    const bento = JSON.parse(await fsp.readFile(path.join(out, "bento.json"), "utf8"));
    assert.deepEqual(bento.vision.timestamps, [0, 1]);
    // the same embeddings as the in-memory API (files are decoded by ffmpeg at the model's rate)
    const clip = await readAudio(realdata("openl3", "audio", "chirp_44k.wav"), { sampleRate: 16000 });
    const direct = await embedAudio(model, clip.samples, 16000, { hopSec: 0.5 });
    assert.ok(direct.embeddings.subarray(0, 64).every((v, i) => Math.abs(v - chirp.audio.embeddings[0][i]) < 1e-5));

    const npyOut = path.join(tmp.dir, "npy");
    const r2 = await embedCommand({ files: [files[2] as string], checkpoint: model, out: npyOut, format: "npy", hopSec: 0.5 });
    assert.equal(r2.failed.length, 0);
    assert.deepEqual((await fsp.readdir(npyOut)).sort(), ["chirp_44k.audio.npy", "chirp_44k.audio_timestamps.npy"]);
    const arr = await readNpy(path.join(npyOut, "chirp_44k.audio.npy"));
    assert.deepEqual(arr.shape, [4, 64]);
    assert.ok((arr.data as Float32Array).every((v, i) => Math.abs(v - (direct.embeddings[i] as number)) < 1e-5));
    assert.equal(model.isDisposed, false, "a model passed in is not disposed");

    const npzOut = path.join(tmp.dir, "npz");
    await embedCommand({ files: [files[0] as string], checkpoint: model, out: npzOut, format: "npz", hopSec: 0.5 });
    const zip = await fsp.readFile(path.join(npzOut, "bento.npz"));
    assert.equal(zip.readUInt32LE(0), 0x04034b50);
    const text = zip.toString("latin1");
    for (const name of ["audio_embedding.npy", "audio_timestamps.npy", "vision_embedding.npy", "vision_timestamps.npy"])
      assert.ok(text.includes(name), name);
  });
});
