/**
 * End-to-end checks of the synthetic benchmark on one 40-clip tiny dataset made through the CLI
 * handler: playable files, valid manifest and metadata, frames and audio that match the generator,
 * boxes that contain their objects, and no trivial shortcut between positives and negatives.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import { loadManifest } from "../../src/lib/data/manifest";
import {
  createSynthClipRenderer,
  planSynthClip,
  type SynthDatasetResult,
  synthAvcCeiling,
  synthClasses,
  synthesizeSynthClipAudio,
  type SynthMetadata,
} from "../../src/lib/data/synth";
import { synthCommand } from "../../src/cli/data-synth";
import { readSamples } from "../../src/lib/media/decode";
import { probeMedia } from "../../src/lib/media/probe";
import { mapPool, Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { decodeAllAudio, decodeAllFrames } from "./decode";
import { buildPairs, type DecodedClip, logisticAccuracy, type Pair } from "./shortcut";

const W = 64;
const H = 64;
const FPS = 8;
const DUR = 3;
const SR = 48000;
const cfg = { width: W, height: H, fps: FPS, durationSec: DUR, sampleRate: SR };
const tmp = tempDir("l3kit-synth-");
let res: SynthDatasetResult;
let progress = "";
let summary = "";
const decoded: DecodedClip[] = [];

const sink = (onText: (s: string) => void) =>
  new Writable({
    write(chunk, _enc, cb) {
      onText(chunk.toString());
      cb();
    },
  });

before(async () => {
  res = await synthCommand({
    out: path.join(tmp.dir, "ds"),
    clips: "40",
    seed: "7",
    profile: "tiny",
    quiet: false,
    progressStream: sink((s) => (progress += s)),
    summaryStream: sink((s) => (summary += s)),
  });
  const files = res.rows.map((r) => path.join(res.out, r.path));
  const clips = await mapPool(files, 2, async (f) => ({ frames: await decodeAllFrames(f, W, H), audio: await decodeAllAudio(f, SR) }));
  decoded.push(...clips);
});

after(() => tmp.cleanup());

test("CLI run: 40 playable H.264/AAC mp4s, progress lines and a summary", async () => {
  assert.equal(res.rows.length, 40);
  assert.match(progress, /synth: 40\/40 clips \([\d.]+ clips\/s, ETA \w+\)/);
  assert.match(summary, /synth: 40 clips \(test \d+, train \d+, val \d+\)/);
  const infos = await mapPool(res.rows, 2, (r) => probeMedia(path.join(res.out, r.path)));
  for (const info of infos) {
    assert.equal(info.video?.codec, "h264");
    assert.equal(info.video?.width, W);
    assert.equal(info.video?.height, H);
    assert.equal(info.video?.fps, FPS);
    assert.equal(info.audio?.codec, "aac");
    assert.equal(info.audio?.sampleRate, SR);
    assert.equal(info.audio?.channels, 1);
    assert.ok(Math.abs(info.durationSec - DUR) < 0.05, `duration ${info.durationSec}`);
    assert.match(info.formatName, /mp4/);
  }
  // Every clip decodes to exactly duration·fps frames and at least duration·sr samples.
  for (const d of decoded) {
    assert.equal(d.frames.length, DUR * FPS);
    assert.ok(d.audio.length >= DUR * SR && d.audio.length < DUR * SR + 2048);
  }
});

test("manifest: loads through the data loader; labels, stratified splits and per-frame boxes", async () => {
  const m = await loadManifest(res.manifestPath);
  assert.equal(m.rows.length, 40);
  const names = new Set(synthClasses(10).map((c) => c.name));
  const perClass = new Map<string, number>();
  const splits: Record<string, number> = {};
  for (const r of m.rows) {
    assert.ok(names.has(r.label!), r.label);
    perClass.set(r.label!, (perClass.get(r.label!) ?? 0) + 1);
    splits[r.split] = (splits[r.split] ?? 0) + 1;
    assert.equal(r.durationSec, DUR);
    assert.equal(r.fps, FPS);
    assert.equal(r.hasAudio, true);
    assert.equal(r.path, path.join(res.out, "clips", `${r.id}.mp4`));
    assert.equal(r.boxes!.length, DUR * FPS);
    r.boxes!.forEach((bf, f) => {
      assert.equal(bf.t, f / FPS);
      assert.equal(bf.sounding.length, 1);
      assert.equal(bf.sounding[0]!.label, r.label);
      for (const b of [...bf.sounding, ...bf.distractors!])
        assert.ok(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= 1 && b.y2 <= 1 && b.x2 > b.x1 && b.y2 > b.y1);
      assert.ok(bf.distractors!.length <= 2);
      for (const d of bf.distractors!) assert.notEqual(d.label, r.label, "distractors are of other classes");
    });
  }
  assert.deepEqual([...perClass.values()], new Array(10).fill(4), "4 clips per class");
  assert.deepEqual(splits, { train: 28, val: 6, test: 6 });
  const text = readFileSync(res.manifestPath, "utf8");
  assert.match(text.split("\n")[0]!, /"path":"clips\/clip-000000\.mp4"/);
});

test("metadata.json and README.md: class list, parameters, known answers that match the counts", () => {
  const meta = JSON.parse(readFileSync(res.metadataPath, "utf8")) as Omit<SynthMetadata, "stats">;
  assert.equal(meta.params.seed, 7);
  assert.equal(meta.params.generator, "l3kit-synth");
  assert.equal(meta.params.width, W);
  assert.equal(meta.classes.length, 10);
  assert.equal(meta.answers.classificationChance, 0.1);
  assert.equal(meta.answers.avcClassCeilingApprox, 0.95);
  for (const split of ["all", "train", "val", "test"]) {
    const counts = meta.classes.map((c) => (split === "all" ? meta.counts[c.name]!.all! : (meta.counts[c.name]![split] ?? 0)));
    assert.deepEqual(meta.answers.avcClassCeiling[split], synthAvcCeiling(counts));
  }
  assert.equal(meta.answers.avcClassCeiling.all!.ceiling, 1 - (10 * 4 * 3) / (40 * 39) / 2);
  const loc = meta.answers.localization.all!;
  assert.equal(loc.boxFrames, 40 * DUR * FPS);
  assert.ok(loc.meanBoxArea > 0.02 && loc.meanBoxArea < 0.2, `box area ${loc.meanBoxArea}`);
  assert.equal(loc.randomPointing, loc.meanBoxArea);
  assert.ok(loc.randomObjectPointing > loc.randomPointing);
  const readme = readFileSync(path.join(res.out, "README.md"), "utf8");
  for (const c of meta.classes) assert.ok(readme.includes(c.name), c.name);
  assert.match(readme, /AVC accuracy ceiling/);
  const clipsJsonl = readFileSync(path.join(res.out, "clips.jsonl"), "utf8").trim().split("\n");
  assert.equal(clipsJsonl.length, 40);
  assert.ok(
    clipsJsonl.every((l) => JSON.parse(l).clippedSamples === 0),
    "no clipped audio",
  );
});

test("decoded frames and audio match the generator: frame f is rendered frame f, audio at lag 0", () => {
  const classes = synthClasses(10);
  for (const i of [0, 5, 17]) {
    const row = res.rows[i]!;
    const spec = planSynthClip(
      cfg,
      classes,
      7,
      i,
      classes.findIndex((c) => c.name === row.label),
    );
    const audio = synthesizeSynthClipAudio(spec);
    const r = createSynthClipRenderer(spec, audio.envelopes);
    const d = decoded[i]!;
    for (let f = 0; f < spec.frames; f++) {
      const fr = r.frame(f);
      assert.deepEqual(fr.boxes, row.boxes![f]);
      let err = 0;
      for (let k = 0; k < fr.rgb.length; k++) err += Math.abs((fr.rgb[k] as number) - (d.frames[f]![k] as number));
      assert.ok(err / fr.rgb.length < 6, `${row.id} frame ${f}: mean abs error ${err / fr.rgb.length}`);
    }
    // Normalised cross-correlation of the decoded track with the synthesised mix peaks at lag 0.
    const a = audio.samples;
    const b = d.audio;
    const corr = (lag: number) => {
      let s = 0;
      let na = 0;
      let nb = 0;
      for (let k = 4800; k < a.length - 4800; k += 2) {
        const y = b[k + lag] ?? 0;
        s += (a[k] as number) * y;
        na += (a[k] as number) ** 2;
        nb += y * y;
      }
      return s / Math.sqrt(na * nb);
    };
    const c0 = corr(0);
    assert.ok(c0 > 0.9, `${row.id}: correlation at lag 0 is ${c0}`);
    for (const lag of [-2048, -1024, -48, -1, 1, 48, 1024, 2048]) assert.ok(corr(lag) < c0, `${row.id}: lag ${lag} beats lag 0`);
  }
});

test("the training sampler (media readSamples) gets exactly the decoded frame shown at t and the audio centred on t", async () => {
  const times = [0.5, 1, 1.125, 1.49, 2.5];
  for (const i of [0, 9, 31]) {
    const s = await readSamples(path.join(res.out, res.rows[i]!.path), times, { size: { width: W, height: H }, sampleRate: SR });
    times.forEach((t, k) => {
      assert.deepEqual(s.frames[k]!.data, decoded[i]!.frames[Math.floor(t * FPS)], `clip ${i} frame at t=${t}`);
      const start = Math.round((t - 0.5) * SR);
      const a = s.audio[k]!.samples;
      assert.equal(a.length, SR);
      let maxDiff = 0;
      for (let j = 0; j < a.length; j++) maxDiff = Math.max(maxDiff, Math.abs((a[j] as number) - (decoded[i]!.audio[start + j] as number)));
      assert.ok(maxDiff < 1e-4, `clip ${i} audio at t=${t}: max difference ${maxDiff}`);
    });
  }
});

test("boxes contain their objects: mask ⊆ box and the box is tight, for every object and frame", () => {
  const classes = synthClasses(10);
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const spec = planSynthClip(cfg, classes, 11, i, i % 10);
    seen.add(spec.occlusion);
    const r = createSynthClipRenderer(spec, synthesizeSynthClipAudio(spec).envelopes);
    for (let f = 0; f < spec.frames; f += 3) {
      const fr = r.frame(f, { masks: true });
      const boxes = [...fr.boxes.sounding, ...fr.boxes.distractors!];
      assert.equal(boxes.length, spec.objects.length, "every object is at least partly in the frame");
      spec.objects.forEach((o, oi) => {
        const b = boxes.find((bb) => bb.label === o.label)!;
        const m = fr.masks![oi]!;
        let x0 = W;
        let x1 = -1;
        let y0 = H;
        let y1 = -1;
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            if ((m[y * W + x] as number) <= 0) continue;
            assert.ok(
              x / W >= b.x1 && (x + 1) / W <= b.x2 + 1e-9 && y / H >= b.y1 && (y + 1) / H <= b.y2 + 1e-9,
              `${spec.id} f${f} ${o.label}: pixel (${x},${y}) outside its box`,
            );
            x0 = Math.min(x0, x);
            x1 = Math.max(x1, x);
            y0 = Math.min(y0, y);
            y1 = Math.max(y1, y);
          }
        }
        assert.ok(
          Math.abs(b.x1 - x0 / W) < 1e-6 &&
            Math.abs(b.x2 - (x1 + 1) / W) < 1e-6 &&
            Math.abs(b.y1 - y0 / H) < 1e-6 &&
            Math.abs(b.y2 - (y1 + 1) / H) < 1e-6,
          "tight box",
        );
      });
    }
  }
  assert.deepEqual([...seen].sort(), ["border", "distractor", "none", "occluder"]);
});

test("boxes on decoded frames: pixels that differ from the object-free scene lie in the boxes; the sounding object differs", () => {
  const classes = synthClasses(10);
  let outside = 0;
  let outsideN = 0;
  for (let i = 0; i < 40; i += 3) {
    const row = res.rows[i]!;
    const spec = planSynthClip(
      cfg,
      classes,
      7,
      i,
      classes.findIndex((c) => c.name === row.label),
    );
    const r = createSynthClipRenderer(spec, synthesizeSynthClipAudio(spec).envelopes);
    for (const f of [0, 11, 23]) {
      const dec = decoded[i]!.frames[f]!;
      const scene = r.frame(f, { objects: false }).rgb;
      const full = r.frame(f, { masks: true });
      const inBox = new Uint8Array(W * H);
      for (const b of [...row.boxes![f]!.sounding, ...row.boxes![f]!.distractors!]) {
        // One pixel of slack for the codec's blur across the edge.
        for (let y = Math.max(0, Math.round(b.y1 * H) - 1); y < Math.min(H, Math.round(b.y2 * H) + 1); y++)
          for (let x = Math.max(0, Math.round(b.x1 * W) - 1); x < Math.min(W, Math.round(b.x2 * W) + 1); x++) inBox[y * W + x] = 1;
      }
      let objDiff = 0;
      let objN = 0;
      for (let p = 0; p < W * H; p++) {
        const diff = (k: Uint8Array) =>
          Math.abs((dec[3 * p] as number) - (k[3 * p] as number)) +
          Math.abs((dec[3 * p + 1] as number) - (k[3 * p + 1] as number)) +
          Math.abs((dec[3 * p + 2] as number) - (k[3 * p + 2] as number));
        const d = diff(scene);
        if (!inBox[p]) {
          outsideN++;
          if (d > 48) outside++;
        }
        // Fully covered, visible pixels of the sounding object (the full render differs from the scene there).
        const visible =
          (full.masks![0]![p] as number) === 1 &&
          Math.abs((full.rgb[3 * p] as number) - (scene[3 * p] as number)) +
            Math.abs((full.rgb[3 * p + 1] as number) - (scene[3 * p + 1] as number)) +
            Math.abs((full.rgb[3 * p + 2] as number) - (scene[3 * p + 2] as number)) >
            0;
        if (visible) {
          objDiff += d;
          objN++;
        }
      }
      if (objN > 0) assert.ok(objDiff / objN > 40, `${row.id} f${f}: sounding object barely differs from the scene (${objDiff / objN})`);
    }
  }
  assert.ok(outside / outsideN < 0.005, `changed pixels outside boxes: ${outside}/${outsideN}`);
});

test("no shortcut: frame/audio statistics do not tell positives from negatives (4-fold CV over clips)", (t) => {
  // Pairs of one clip share its statistics, so a single held-out half of 20 clips is a noisy judge;
  // averaging over 4 folds of held-out clips (160 test pairs each) keeps the estimate near its mean.
  const idx = decoded.map((_, i) => i);
  const plant = (ps: Pair[]) => ps.map((p) => ({ y: p.y, x: p.y ? p.x : p.x.map((v, j) => (j >= 6 ? v * 1.4 : v)) }));
  let acc = 0;
  let planted = 0;
  const folds: string[] = [];
  for (let k = 0; k < 4; k++) {
    const rng = new Rng(`shortcut-fold-${k}`);
    const train = buildPairs(
      decoded,
      idx.filter((i) => i % 4 !== k),
      FPS,
      SR,
      DUR,
      8,
      rng,
    );
    const test_ = buildPairs(
      decoded,
      idx.filter((i) => i % 4 === k),
      FPS,
      SR,
      DUR,
      8,
      rng,
    );
    assert.equal(train.length, 480);
    assert.equal(test_.length, 160);
    const a = logisticAccuracy(train, test_).test;
    acc += a / 4;
    planted += logisticAccuracy(plant(train), plant(test_)).test / 4;
    folds.push(a.toFixed(3));
  }
  t.diagnostic(`held-out accuracy ${acc.toFixed(3)} (folds ${folds.join(", ")}); with a planted 2.9 dB loudness cue ${planted.toFixed(3)}`);
  assert.ok(Math.abs(acc - 0.5) <= 0.08, `held-out accuracy ${acc}`);
  // Power check: the same classifier finds a planted 2.9 dB loudness difference between positives and negatives.
  assert.ok(planted > 0.65, `planted cue found with accuracy ${planted}`);
});
