import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  drawSynthSoundInstance,
  SYNTH_SOUND_PATTERNS,
  synthAvcCeiling,
  synthClass,
  synthClasses,
  synthClassAssignment,
  synthesizeSynthSound,
  synthFrameEnvelope,
  synthLocalizationBaselines,
  synthShapeSdf,
  SYNTH_SHAPES,
  synthSplitAssignment,
} from "../../src/lib/data/synth";
import { parseSynthSize, synthCommand } from "../../src/cli/data-synth";
import { encodeVideo } from "../../src/lib/media/encode";
import { ConfigError, L3kitError, Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";

test("classes: deterministic, unique names and identities, K up to 40", () => {
  assert.deepEqual(synthClass(7), synthClass(7));
  for (const k of [2, 10, 20, 40]) {
    const cs = synthClasses(k);
    assert.equal(cs.length, k);
    assert.equal(new Set(cs.map((c) => c.name)).size, k, `names unique for K=${k}`);
    // No two classes look alike (shape, texture, colour word) and none sound alike (pattern, register).
    assert.equal(new Set(cs.map((c) => `${c.visual.shape}|${c.visual.texture}|${c.visual.colour}`)).size, k);
    assert.equal(new Set(cs.map((c) => `${c.sound.pattern}|${c.sound.pitchHz[0]}`)).size, k);
  }
  const ten = synthClasses(10);
  assert.match(ten[0]!.name, /^[a-z]+-[a-z]+-[a-z]+\/[a-z]+$/);
  // The first 10 classes use 10 different shapes and 10 different sound patterns.
  assert.equal(new Set(ten.map((c) => c.visual.shape)).size, 10);
  assert.equal(new Set(ten.map((c) => c.sound.pattern)).size, 10);
  // With K = 20 some shapes and patterns repeat, so no single attribute identifies a class.
  const twenty = synthClasses(20);
  assert.ok(new Set(twenty.map((c) => c.sound.pattern)).size < 20);
  assert.throws(() => synthClasses(1), RangeError);
});

test("shapes: every SDF is negative at some interior point and positive outside radius 1", () => {
  for (const s of SYNTH_SHAPES) {
    let inside = 0;
    for (let u = -1; u <= 1; u += 0.05) for (let v = -1; v <= 1; v += 0.05) if (synthShapeSdf(s, u, v) < 0) inside++;
    assert.ok(inside > 50, `${s} has an interior`);
    for (let a = 0; a < 2 * Math.PI; a += 0.1)
      assert.ok(synthShapeSdf(s, 1.05 * Math.cos(a), 1.05 * Math.sin(a)) > 0, `${s} lies within radius 1`);
  }
});

/** Energy at frequency f (Goertzel, normalised). */
function power(x: Float32Array, f: number, sr: number): number {
  const w = (2 * Math.PI * f) / sr;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = (x[i] as number) + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / x.length;
}

test("sounds: every pattern is finite, unit RMS, and its envelope-only run gives the same envelope", () => {
  const classes = synthClasses(SYNTH_SOUND_PATTERNS.length);
  for (const c of classes) {
    const inst = drawSynthSoundInstance(c, new Rng(`u${c.index}`));
    const full = synthesizeSynthSound(inst, 2, 48000);
    const env = synthesizeSynthSound(inst, 2, 48000, { envelopeOnly: true });
    const x = full.samples!;
    assert.equal(x.length, 96000);
    let ss = 0;
    for (const v of x) {
      assert.ok(Number.isFinite(v));
      ss += v * v;
    }
    assert.ok(Math.abs(Math.sqrt(ss / x.length) - 1) < 1e-3, `${c.name} unit RMS`);
    assert.equal(env.samples, undefined);
    assert.deepEqual(env.amp, full.amp, `${c.name}: envelope must not depend on the carrier`);
    const fe = synthFrameEnvelope(full.amp, 8, 16, 48000);
    assert.equal(Math.max(...fe), 1);
    assert.ok(Math.min(...fe) >= 0);
  }
});

test("sounds: tonal patterns put energy at their drawn pitch, and pitch varies inside a class", () => {
  const c = synthClass(0); // sustained
  assert.equal(c.sound.pattern, "sustained");
  const f0s = new Set<number>();
  for (let k = 0; k < 5; k++) {
    const inst = drawSynthSoundInstance(c, new Rng(`p${k}`));
    f0s.add(inst.f0);
    assert.ok(inst.f0 >= c.sound.pitchHz[0] && inst.f0 <= c.sound.pitchHz[1]);
    const x = synthesizeSynthSound(inst, 1, 48000).samples!;
    assert.ok(power(x, inst.f0, 48000) > 20 * power(x, inst.f0 * 1.5, 48000), "fundamental beats the half-octave above");
  }
  assert.equal(f0s.size, 5);
});

test("class assignment is balanced and split assignment is stratified 70/15/15", () => {
  const classOf = synthClassAssignment(200, 10, 3);
  const counts = new Array(10).fill(0);
  for (const c of classOf) counts[c]++;
  assert.deepEqual(counts, new Array(10).fill(20));
  const splits = synthSplitAssignment(classOf, 3);
  const total: Record<string, number> = {};
  for (let c = 0; c < 10; c++) {
    const per: Record<string, number> = {};
    classOf.forEach((k, i) => {
      if (k === c) per[splits[i]!] = (per[splits[i]!] ?? 0) + 1;
    });
    assert.ok(Math.abs((per.train ?? 0) - 14) <= 2, `class ${c} train ${per.train}`);
    assert.ok((per.val ?? 0) >= 1 && (per.test ?? 0) >= 1, `class ${c} has val and test clips`);
  }
  for (const s of splits) total[s] = (total[s] ?? 0) + 1;
  assert.ok(Math.abs(total.train! - 140) <= 2 && Math.abs(total.val! - 30) <= 2 && Math.abs(total.test! - 30) <= 2, JSON.stringify(total));
  assert.deepEqual(synthSplitAssignment(classOf, 3), splits);
});

test("known answers: AVC ceiling formula and localization baselines on hand-made boxes", () => {
  // Two classes of two clips: a negative drawn from the 3 other clips has the same class with p = 1/3.
  const c = synthAvcCeiling([2, 2]);
  assert.equal(c.sameClassNegativeRate, 1 / 3);
  assert.equal(c.ceiling, 1 - 1 / 6);
  assert.equal(synthAvcCeiling([1, 1, 1]).ceiling, 1);
  const row = (b: { x1: number; y1: number; x2: number; y2: number }, d?: { x1: number; y1: number; x2: number; y2: number }) => ({
    id: "r",
    path: "x",
    split: "train",
    durationSec: 1,
    hasAudio: true,
    boxes: [{ t: 0, sounding: [b], distractors: d ? [d] : [] }],
  });
  const l = synthLocalizationBaselines([
    row({ x1: 0.4, y1: 0.4, x2: 0.6, y2: 0.6 }),
    row({ x1: 0, y1: 0, x2: 0.2, y2: 0.2 }, { x1: 0.7, y1: 0.7, x2: 0.9, y2: 0.9 }),
  ]);
  assert.equal(l.boxFrames, 2);
  assert.equal(l.centrePointing, 0.5);
  assert.ok(Math.abs(l.meanBoxArea - 0.04) < 1e-9);
  assert.equal(l.randomObjectPointing, 0.75); // 1 (one object) and 1/2 (two objects)
  assert.equal(l.centreBoxIoU.mean, 0.5); // the centred mean-size box equals the first box exactly
});

test("encodeVideo: bad input fails naming the file and leaves no temp file behind", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, "bad.mp4");
    await assert.rejects(
      encodeVideo({ path: file, width: 15, height: 16, fps: 8, frames: [] }),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith(file),
    );
    await assert.rejects(
      encodeVideo({ path: file, width: 16, height: 16, fps: 8, frames: [new Uint8Array(16 * 16 * 3), new Uint8Array(10)] }),
      (e: unknown) => e instanceof ConfigError && /frame 1 has 10 bytes/.test((e as Error).message),
    );
    await assert.rejects(
      encodeVideo({ path: file, width: 16, height: 16, fps: 8, preset: "no-such-preset", frames: [new Uint8Array(16 * 16 * 3)] }),
      (e: unknown) => e instanceof L3kitError && e.message.startsWith(file) && /ffmpeg failed/.test(e.message),
    );
    assert.equal(existsSync(file), false);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test("synthCommand: CLI strings are parsed and bad ones are refused naming the flag", async () => {
  assert.deepEqual(parseSynthSize("128x96"), { width: 128, height: 96 });
  assert.throws(
    () => parseSynthSize("128"),
    (e: unknown) => e instanceof ConfigError && e.subject === "--size",
  );
  const out = "/nonexistent/never-created";
  await assert.rejects(
    synthCommand({ out, clips: "abc", seed: "1", quiet: true }),
    (e: unknown) => e instanceof ConfigError && e.subject === "--clips",
  );
  await assert.rejects(
    synthCommand({ out, clips: "4", seed: "", quiet: true }),
    (e: unknown) => e instanceof ConfigError && e.subject === "--seed",
  );
  await assert.rejects(
    synthCommand({ out, clips: "4", seed: "1", profile: "big", quiet: true }),
    (e: unknown) => e instanceof ConfigError && e.subject === "--profile",
  );
  await assert.rejects(
    synthCommand({ out, clips: "4", seed: "1", fps: "fast", quiet: true }),
    (e: unknown) => e instanceof ConfigError && e.subject === "--fps",
  );
  await assert.rejects(
    synthCommand({ out, clips: "4", seed: "1", size: "65x64", quiet: true }),
    (e: unknown) => e instanceof ConfigError && e.subject === "size.width",
  );
  assert.equal(existsSync(out), false);
});
