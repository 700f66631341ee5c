import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { buildEsc50 } from "../../src/lib/data/builders";
import type { ManifestRow } from "../../src/lib/data/types";
import {
  concatFeatureExtractors,
  type FeatureExtractor,
  mfccStatsExtractor,
  probeLabelEfficiency,
  runProbeProtocol,
} from "../../src/lib/eval";
import { Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";

/** A 16-bit mono PCM WAV. */
function wavBytes(samples: Float32Array, sampleRate: number): Buffer {
  const b = Buffer.alloc(44 + samples.length * 2);
  b.write("RIFF", 0);
  b.writeUInt32LE(36 + samples.length * 2, 4);
  b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36);
  b.writeUInt32LE(samples.length * 2, 40);
  samples.forEach((v, i) => {
    b.writeInt16LE(Math.round(Math.max(-1, Math.min(1, v)) * 32767), 44 + i * 2);
  });
  return b;
}

const CLASSES = [
  { name: "dog", target: 0, freq: 440 },
  { name: "rain", target: 10, freq: 1250 },
  { name: "siren", target: 42, freq: 3100 },
];
const SR = 44100;

describe("probe protocols", () => {
  let dir: string;
  let cleanup: () => void;
  let rows: ManifestRow[];

  before(async () => {
    await tf.setBackend("cpu");
    ({ dir, cleanup } = tempDir("l3kit-esc50-"));
    mkdirSync(path.join(dir, "meta"));
    mkdirSync(path.join(dir, "audio"));
    const lines = ["filename,fold,target,category,esc10,src_file,take"];
    const rng = new Rng("esc50-fake");
    for (let fold = 1; fold <= 5; fold++) {
      for (const c of CLASSES) {
        for (let take = 0; take < 2; take++) {
          const src = 100000 + fold * 100 + c.target;
          const file = `${fold}-${src}-${"AB"[take]}-${c.target}.wav`;
          // a tone per class with random amplitude, phase and a little noise
          const amp = rng.uniform(0.2, 0.6);
          const phase = rng.uniform(0, 2 * Math.PI);
          const x = Float32Array.from(
            { length: SR },
            (_, i) => amp * Math.sin((2 * Math.PI * c.freq * i) / SR + phase) + rng.normal(0, 0.01),
          );
          writeFileSync(path.join(dir, "audio", file), wavBytes(x, SR));
          lines.push(`${file},${fold},${c.target},${c.name},${c.target === 0 ? "True" : "False"},${src},${"AB"[take]}`);
        }
      }
    }
    // one corrupt clip: its extraction fails and it must be skipped, not crash the run
    writeFileSync(path.join(dir, "audio", "1-999999-A-0.wav"), Buffer.from("this is not audio at all, just some bytes"));
    lines.push("1-999999-A-0.wav,1,0,dog,True,999999,A");
    writeFileSync(path.join(dir, "meta", "esc50.csv"), `${lines.join("\n")}\n`);
    const built = await buildEsc50({ root: dir });
    assert.equal(built.errors.length, 0);
    rows = built.rows;
  });
  after(() => cleanup?.());

  /** MFCC statistics of 0.5 s windows (2 per clip; decoded by ffmpeg): the probe averages the window probabilities per clip. */
  const mfccExtract = mfccStatsExtractor({ windowSec: 0.5 });
  /** Random features (seeded by the row id): a baseline that must stay near chance. */
  const noiseExtract: FeatureExtractor = async (row) => {
    const rng = new Rng(row.id);
    return { features: Float32Array.from({ length: 2 * 8 }, () => rng.normal()), k: 2, dim: 8 };
  };

  it("runs the ESC-50 5-fold protocol on a fake tree: MFCC ≫ noise, mean ± std over 5 folds, failures skipped", async () => {
    assert.equal(rows.length, 31);
    const res = await runProbeProtocol({
      rows,
      name: "mfcc",
      extract: mfccExtract,
      baselines: { noise: noiseExtract },
      split: { folds: 5 },
      l2Grid: [1e-4, 1e-2],
      epochs: 60,
      seed: 1,
    });
    assert.equal(res.split, "folds");
    assert.deepEqual(res.classNames, ["dog", "rain", "siren"]);
    const [mfcc, noise] = res.results;
    assert.equal(mfcc!.features, "mfcc");
    assert.equal(mfcc!.dim, 40);
    assert.equal(mfcc!.folds.length, 5);
    assert.deepEqual(
      mfcc!.folds.map((f) => [f.fold, f.valFold]),
      [
        [1, 2],
        [2, 3],
        [3, 4],
        [4, 5],
        [5, 1],
      ],
    );
    for (const f of mfcc!.folds) {
      assert.equal(f.testClips, 6);
      assert.equal(f.trainClips, 24, "refit on the 4 training folds");
      assert.equal(
        f.metrics.confusion.flat().reduce((a, b) => a + b, 0),
        6,
      );
    }
    assert.equal(mfcc!.accuracy.n, 5);
    assert.ok(mfcc!.accuracy.mean >= 0.95, `MFCC accuracy ${mfcc!.accuracy.mean}`);
    assert.ok(mfcc!.accuracy.std >= 0 && Number.isFinite(mfcc!.accuracy.std));
    assert.deepEqual(
      mfcc!.skipped.map((s) => [s.id, s.reason]),
      [["1-999999-A-0", "corrupt"]],
    );
    assert.equal(noise!.baseline, true);
    assert.equal(noise!.skipped.length, 0);
    assert.ok(noise!.accuracy.mean < 0.75, `noise baseline accuracy ${noise!.accuracy.mean} should be near chance (1/3)`);
    assert.deepEqual(
      res.table.map((r) => [r.features, r.baseline, r.folds]),
      [
        ["mfcc", false, 5],
        ["noise", true, 5],
      ],
    );
  });

  it("uses manifest splits, concatenates extractors, and requires a baseline", async () => {
    // train on folds 1–3, validate on 4, test on 5, with "both" = noise ⧺ MFCC features
    const splitRows = rows.map((r) => ({ ...r, split: r.fold! <= 3 ? "train" : r.fold === 4 ? "val" : "test" }));
    const res = await runProbeProtocol({
      rows: splitRows,
      name: "both",
      extract: concatFeatureExtractors(noiseExtract, mfccExtract),
      baselines: { noise: noiseExtract },
      split: "manifest",
      l2Grid: [1e-3],
      epochs: 60,
    });
    const both = res.results[0]!;
    assert.equal(both.dim, 48);
    assert.equal(both.folds.length, 1);
    assert.equal(both.folds[0]!.fold, "manifest");
    assert.equal(both.folds[0]!.testClips, 6);
    assert.equal(both.folds[0]!.accuracy, 1);
    assert.equal(both.accuracy.std, 0);
    await assert.rejects(
      runProbeProtocol({ rows: splitRows, extract: mfccExtract, baselines: {}, split: "manifest" }),
      /at least one baseline/,
    );
    // A baseline result from that run is reported as it is, without extracting again.
    let calls = 0;
    const counted: FeatureExtractor = async (row) => {
      calls++;
      return noiseExtract(row);
    };
    const again = await runProbeProtocol({
      rows: splitRows,
      name: "noise-again",
      extract: counted,
      baselines: { "noise-reused": res.results[1]! },
      split: "manifest",
      l2Grid: [1e-3],
      epochs: 60,
    });
    assert.equal(calls, splitRows.length, "only the features under test were extracted");
    const reused = again.results[1]!;
    assert.equal(reused.features, "noise-reused");
    assert.equal(reused.baseline, true);
    assert.deepEqual(reused.accuracy, res.results[1]!.accuracy);
    assert.equal(again.results[0]!.accuracy.mean, res.results[1]!.accuracy.mean, "same features, rows and seed: same accuracy");
  });
  it("limits training and validation labels per class with a seeded draw", async () => {
    const splitRows = rows.map((r) => ({ ...r, split: r.fold! <= 3 ? "train" : r.fold === 4 ? "val" : "test" }));
    const run = (labelsPerClass: number | undefined, seed = 3) =>
      runProbeProtocol({
        rows: splitRows,
        name: "mfcc",
        extract: mfccExtract,
        baselines: { noise: noiseExtract },
        split: "manifest",
        l2Grid: [1e-3],
        epochs: 60,
        seed,
        ...(labelsPerClass ? { labelsPerClass } : {}),
      });
    const full = await run(undefined);
    // 3 classes × 3 folds × 2 takes = 18 training clips (the corrupt one is extra, and skipped)
    assert.equal(full.results[0]!.folds[0]!.trainClips, 18);
    assert.equal(full.results[0]!.folds[0]!.labelsPerClass, undefined);
    const few = await run(2);
    for (const r of few.results) {
      const f = r.folds[0]!;
      assert.equal(f.trainClips, 6, `${r.features}: 2 labels × 3 classes`);
      assert.equal(f.testClips, 6, "the test rows are all kept");
      assert.equal(f.labelsPerClass, 2);
    }
    assert.ok(few.results[0]!.accuracy.mean >= 0.8, `MFCC with 2 labels per class: ${few.results[0]!.accuracy.mean}`);
    // more labels than a class has: every clip
    assert.deepEqual(
      (await run(2)).results.map((r) => r.accuracy),
      few.results.map((r) => r.accuracy),
      "same seed, same draw",
    );
    assert.equal((await run(50)).results[0]!.folds[0]!.trainClips, 18);
    await assert.rejects(run(0.5), /labelsPerClass must be an integer/);
  });
  it("sweeps labels per class with each feature set extracted once", async () => {
    const splitRows = rows.map((r) => ({ ...r, split: r.fold! <= 3 ? "train" : r.fold === 4 ? "val" : "test" }));
    const calls = { mfcc: 0, noise: 0 };
    const counted =
      (name: keyof typeof calls, e: FeatureExtractor): FeatureExtractor =>
      async (row) => {
        calls[name]++;
        return e(row);
      };
    const { points, runs } = await probeLabelEfficiency(
      {
        rows: splitRows,
        name: "mfcc",
        extract: counted("mfcc", mfccExtract),
        baselines: { noise: counted("noise", noiseExtract) },
        split: "manifest",
        l2Grid: [1e-3],
        epochs: 60,
        seed: 3,
      },
      [1, 2, 6],
    );
    assert.deepEqual(calls, { mfcc: splitRows.length, noise: splitRows.length }, "one extraction per row and feature set");
    assert.equal(runs.length, 3);
    assert.deepEqual(
      points.map((p) => [p.features, p.labelsPerClass]),
      [
        ["mfcc", 1],
        ["noise", 1],
        ["mfcc", 2],
        ["noise", 2],
        ["mfcc", 6],
        ["noise", 6],
      ],
    );
    assert.deepEqual(
      runs.map((r) => r.results[0]!.folds[0]!.trainClips),
      [3, 6, 18],
    );
    await assert.rejects(
      probeLabelEfficiency({ rows: splitRows, extract: mfccExtract, baselines: { noise: noiseExtract }, split: "manifest" }, []),
      /at least one/,
    );
  });
});
