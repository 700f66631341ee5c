import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createSynthClipRenderer,
  planSynthClip,
  resolveSynthParams,
  SYNTH_PROFILES,
  type SynthProfileName,
  type SynthRenderConfig,
  synthClasses,
  synthesizeSynthClipAudio,
} from "../../src/lib/data/synth";

/** Box areas (fraction of the frame) of the sounding object over clips of a profile, a few frames each. */
function soundingBoxAreas(profile: SynthProfileName, clips = 40): number[] {
  const p = resolveSynthParams({ profile, clips, seed: 1 });
  const cfg: SynthRenderConfig = { ...p, sampleRate: 8000 };
  const classes = synthClasses(10);
  const areas: number[] = [];
  for (let i = 0; i < clips; i++) {
    const spec = planSynthClip(cfg, classes, 1, i, i % 10);
    const r = createSynthClipRenderer(spec, synthesizeSynthClipAudio(spec).envelopes);
    for (let f = 0; f < spec.frames; f += 8) {
      const b = r.frame(f).boxes.sounding[0];
      if (b) areas.push((b.x2 - b.x1) * (b.y2 - b.y1));
    }
  }
  return areas.sort((a, b) => a - b);
}

const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] as number;

test("the realistic profile's sounding objects cover 15–40% of the frame, as Flickr-SoundNet's annotated boxes (tiny: ≈7%)", () => {
  const real = soundingBoxAreas("realistic");
  const inRange = real.filter((a) => a >= 0.15 && a <= 0.4).length / real.length;
  assert.ok(median(real) >= 0.2 && median(real) <= 0.3, `median box area ${median(real)}`);
  assert.ok(inRange >= 0.75, `${(inRange * 100).toFixed(0)}% of the boxes in 15–40% of the frame`);
  // The small objects that keep cIoU@0.5 at 0 under median binarisation: boxes far under half the frame.
  const tiny = soundingBoxAreas("tiny");
  assert.ok(median(tiny) < 0.1, `tiny median box area ${median(tiny)}`);
  assert.equal(SYNTH_PROFILES.realistic.width, SYNTH_PROFILES.tiny.width);
});

test("tiny and default record no object size, so their parameters, clips and folders are as before", () => {
  for (const profile of ["tiny", "default"] as const) {
    const p = resolveSynthParams({ profile, clips: 4, seed: 1 });
    assert.equal("objectRadius" in p, false, profile);
    const spec = planSynthClip({ ...p }, synthClasses(10), 1, 0, 0);
    for (const o of spec.objects) assert.ok(o.radius >= 0.11 && o.radius <= 0.17, `${profile}: radius ${o.radius}`);
  }
  assert.deepEqual(resolveSynthParams({ profile: "realistic", clips: 4, seed: 1 }).objectRadius, [0.22, 0.3]);
});
