import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type AvcClip, AvcPairSampler, type AvcSamplerState, createPairSampler, fixedAvcPairs } from "../../src/lib/data";

const clips: AvcClip[] = Array.from({ length: 11 }, (_, i) => ({ id: `clip${i}`, durationSec: 2 + i * 0.7, hasAudio: true }));

function checkPair(p: ReturnType<AvcPairSampler["next"]>, cs: readonly AvcClip[], windowSec = 1): void {
  const fc = cs[p.frame.rowIndex]!;
  const ac = cs[p.audio.rowIndex]!;
  assert.equal(p.frame.id, fc.id);
  assert.equal(p.audio.id, ac.id);
  for (const [side, clip] of [
    [p.frame, fc],
    [p.audio, ac],
  ] as const) {
    if (clip.durationSec >= windowSec) {
      assert.ok(side.t - windowSec / 2 >= 0 && side.t + windowSec / 2 <= clip.durationSec, `window inside clip: ${JSON.stringify(side)}`);
    } else assert.equal(side.t, clip.durationSec / 2);
  }
  if (p.label === 1) {
    // the audio window (centred on audio.t, in seconds) contains the frame time, in the same file
    assert.equal(p.audio.rowIndex, p.frame.rowIndex);
    assert.ok(p.audio.t - windowSec / 2 <= p.frame.t && p.frame.t <= p.audio.t + windowSec / 2);
    assert.equal(p.audio.t, p.frame.t);
  } else {
    assert.notEqual(p.audio.rowIndex, p.frame.rowIndex);
  }
}

describe("AvcPairSampler", () => {
  test("epochs are exactly balanced, cover every clip as a frame source, and pairs are aligned", () => {
    const s = createPairSampler(clips, { seed: 7, pairsPerEpoch: 22 });
    for (let e = 0; e < 3; e++) {
      const pairs = s.take(22);
      assert.ok(pairs.every((p) => p.epoch === e));
      assert.equal(pairs.filter((p) => p.label === 1).length, 11);
      const counts = new Array(clips.length).fill(0);
      for (const p of pairs) {
        counts[p.frame.rowIndex]++;
        checkPair(p, clips);
      }
      assert.ok(
        counts.every((c) => c === 2),
        `each clip twice as frame source: ${counts}`,
      );
    }
    // default epoch size: clips rounded up to even
    assert.equal(new AvcPairSampler(clips).pairsPerEpoch, 12);
  });

  test("labels are shuffled and not degenerate over many epochs", () => {
    const s = createPairSampler(clips, { seed: 1, pairsPerEpoch: 200 });
    const pairs = s.take(2000);
    assert.equal(pairs.filter((p) => p.label === 1).length, 1000);
    let runs = 1;
    for (let i = 1; i < pairs.length; i++) if (pairs[i]!.label !== pairs[i - 1]!.label) runs++;
    assert.ok(runs > 800 && runs < 1200, `label runs ${runs}`);
    // negatives draw audio from every other clip, times spread over the clip
    const partners = new Set(pairs.filter((p) => p.label === 0 && p.frame.rowIndex === 0).map((p) => p.audio.rowIndex));
    assert.equal(partners.size, clips.length - 1);
    const ts = pairs.filter((p) => p.frame.rowIndex === 10).map((p) => p.frame.t);
    assert.ok(Math.min(...ts) < 1 && Math.max(...ts) > clips[10]!.durationSec - 1);
  });

  test("seeded and reproducible; reshuffled per epoch; pairAt is random access", () => {
    const a = createPairSampler(clips, { seed: "x" }).take(40);
    const b = createPairSampler(clips, { seed: "x" }).take(40);
    const c = createPairSampler(clips, { seed: "y" }).take(40);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const s = createPairSampler(clips, { seed: "x" });
    const order = (e: number) => s.epochPairs(e).map((p) => p.frame.rowIndex);
    assert.notDeepEqual(order(0), order(1));
    assert.deepEqual(s.pairAt(2, 5), a[2 * 12 + 5]);
  });

  test("resumes exactly from a JSON-serialised state", () => {
    const s = createPairSampler(clips, { seed: 3, pairsPerEpoch: 14 });
    s.take(37);
    const saved = JSON.parse(JSON.stringify(s.state())) as AvcSamplerState;
    assert.equal(saved.epoch, 2);
    assert.equal(saved.position, 9);
    const cont = s.take(50);
    const r = AvcPairSampler.fromState(clips, saved);
    assert.deepEqual(r.take(50), cont);
    // a state for other clips or settings is refused
    assert.throws(() => AvcPairSampler.fromState(clips.slice(1), saved), /different clips/);
    assert.throws(() => createPairSampler(clips, { seed: 4, pairsPerEpoch: 14 }).restore(saved), /seed 3/);
  });

  test("excluded clips are never drawn and epochs stay balanced; exclusions are part of the state", () => {
    const s = createPairSampler(clips, { seed: 5 });
    s.exclude(3);
    s.exclude(4);
    const pairs = s.take(120);
    assert.ok(pairs.every((p) => p.frame.rowIndex !== 3 && p.audio.rowIndex !== 4 && p.frame.rowIndex !== 4 && p.audio.rowIndex !== 3));
    for (let e = 0; e < 10; e++) assert.equal(pairs.filter((p) => p.epoch === e && p.label === 1).length, 6);
    const st = s.state();
    assert.deepEqual(st.excluded, [3, 4]);
    assert.deepEqual(AvcPairSampler.fromState(clips, st).take(5), s.take(5));
    const two = createPairSampler(clips.slice(0, 2));
    assert.throws(() => two.exclude(0), /fewer than 2/);
  });

  test("clips without audio or too short", () => {
    const cs: AvcClip[] = [
      { id: "a", durationSec: 0.6 },
      { id: "b", durationSec: 3, hasAudio: false },
      { id: "c", durationSec: 3 },
    ];
    const s = createPairSampler(cs, { seed: 0, pairsPerEpoch: 100 });
    const pairs = s.take(100);
    assert.ok(pairs.every((p) => p.frame.rowIndex !== 1 && p.audio.rowIndex !== 1));
    for (const p of pairs) checkPair(p, cs);
    assert.throws(() => createPairSampler([cs[0]!, cs[1]!]), /at least 2 clips with audio/);
    assert.throws(() => createPairSampler(cs, { pairsPerEpoch: 7 }), /even/);
  });

  test("cache clips: times come from the list and pairs carry sample indices", () => {
    const cs: AvcClip[] = [
      { id: "a", durationSec: 3, times: [0.5, 1.5, 2.5], firstSample: 0 },
      { id: "b", durationSec: 2, times: [0.7, 1.3], firstSample: 3 },
      { id: "c", durationSec: 4, times: [2], firstSample: 5 },
    ];
    const s = createPairSampler(cs, { seed: 9, pairsPerEpoch: 60 });
    for (const p of s.take(60)) {
      for (const side of [p.frame, p.audio]) {
        const c = cs[side.rowIndex]!;
        const k = side.sample! - c.firstSample!;
        assert.equal(c.times![k], side.t);
      }
      if (p.label === 1) assert.equal(p.audio.sample, p.frame.sample);
      else assert.notEqual(p.audio.rowIndex, p.frame.rowIndex);
    }
  });

  test("fixedPairs depend on their seed only and are balanced", () => {
    const s = createPairSampler(clips, { seed: 1 });
    const v1 = s.fixedPairs(64, 42);
    s.take(17);
    assert.deepEqual(s.fixedPairs(64, 42), v1);
    assert.deepEqual(fixedAvcPairs(clips, 64, 42), v1);
    assert.notDeepEqual(s.fixedPairs(64, 43), v1);
    assert.equal(v1.filter((p) => p.label === 1).length, 32);
    assert.ok(v1.every((p) => p.epoch === -1));
    for (const p of v1) checkPair(p, clips);
  });
});
