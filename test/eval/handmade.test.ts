import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { colorHistogramFeatures, evalMfcc, mfccStatsFeatures, windowedMfccStats } from "../../src/lib/eval";

function solid(r: number, g: number, b: number, w = 4, h = 3, channels = 3) {
  const data = new Uint8Array(w * h * channels);
  for (let p = 0; p < w * h; p++) data.set(channels === 4 ? [r, g, b, 255] : [r, g, b], p * channels);
  return { width: w, height: h, data };
}

describe("colorHistogramFeatures", () => {
  it("puts a solid colour in one joint RGB bin", () => {
    const h = colorHistogramFeatures(solid(255, 0, 0), 8);
    assert.equal(h.length, 512);
    assert.equal(h[(7 * 8 + 0) * 8 + 0], 1);
    assert.equal(
      h.reduce((a, b) => a + b, 0),
      1,
    );
  });

  it("bins HSV: pure red → h 0, s 1, v 1; grey → s 0", () => {
    const red = colorHistogramFeatures(solid(255, 0, 0, 2, 2, 4), 4, { space: "hsv" });
    assert.equal(red[(0 * 4 + 3) * 4 + 3], 1);
    const grey = colorHistogramFeatures(solid(128, 128, 128), 4, { space: "hsv", mode: "per-channel" });
    // h block [0..3], s block [4..7], v block [8..11]; v = 128/255 → bin 2
    assert.deepEqual(Array.from(grey), [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]);
  });

  it("normalises each per-channel block to 1 on a mixed image", () => {
    const img = { width: 2, height: 1, data: new Uint8Array([0, 100, 255, 255, 100, 0]) };
    const h = colorHistogramFeatures(img, 2, { mode: "per-channel" });
    assert.deepEqual(Array.from(h), [0.5, 0.5, 1, 0, 0.5, 0.5]);
  });

  it("rejects data that is neither RGB nor RGBA", () => {
    assert.throws(() => colorHistogramFeatures({ width: 2, height: 2, data: new Uint8Array(5) }), /expected RGB or RGBA/);
  });
});

describe("MFCC baseline", () => {
  it("matches a numpy reference (fixtures/make_mfcc_ref.py)", () => {
    const ref = JSON.parse(readFileSync(path.join(__dirname, "fixtures", "mfcc_ref.json"), "utf8"));
    const { sampleRate: sr, n } = ref;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const t = i / sr;
      x[i] =
        0.5 * Math.sin(2 * Math.PI * 440 * t) +
        0.25 * Math.sin(2 * Math.PI * 3000 * t) +
        0.1 * Math.sin(2 * Math.PI * (200 * t + 4000 * t * t));
    }
    const m = evalMfcc(x, sr);
    assert.equal(m.frames, ref.frames);
    for (let c = 0; c < 20; c++) {
      const v = m.data[c * m.frames + 3]!;
      assert.ok(
        Math.abs(v - ref.mfccFrame3[c]) < 1e-3 * Math.max(1, Math.abs(ref.mfccFrame3[c])),
        `coef ${c}: ${v} vs ${ref.mfccFrame3[c]}`,
      );
    }
    const s = mfccStatsFeatures(x, sr);
    assert.equal(s.length, 40);
    for (let i = 0; i < 40; i++)
      assert.ok(Math.abs(s[i]! - ref.stats[i]) < 1e-3 * Math.max(1, Math.abs(ref.stats[i])), `stat ${i}: ${s[i]} vs ${ref.stats[i]}`);
  });

  it("separates tones: same tone → close features, different tone → far", () => {
    const sr = 16000;
    const tone = (f: number, phase: number) =>
      Float32Array.from({ length: sr }, (_, i) => 0.3 * Math.sin(2 * Math.PI * f * (i / sr) + phase));
    const dist = (a: Float32Array, b: Float32Array) => Math.hypot(...Array.from(a, (v, i) => v - b[i]!));
    const a1 = mfccStatsFeatures(tone(500, 0), sr);
    const a2 = mfccStatsFeatures(tone(500, 1), sr);
    const b = mfccStatsFeatures(tone(2000, 0), sr);
    assert.ok(dist(a1, a2) * 2 < dist(a1, b), `${dist(a1, a2)} vs ${dist(a1, b)}`);
  });

  it("windows a clip into 1 s windows", () => {
    const sr = 8000;
    const w = windowedMfccStats(new Float32Array(sr * 3 + 100).fill(0.1), sr, { nFft: 512, hop: 256 });
    assert.equal(w.k, 3);
    assert.equal(w.dim, 40);
    assert.equal(w.features.length, 120);
    assert.equal(windowedMfccStats(new Float32Array(100).fill(0.1), sr, { nFft: 512 }).k, 1);
  });
});
