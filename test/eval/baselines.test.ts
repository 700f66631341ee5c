import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ManifestRow } from "../../src/lib/data/types";
import { colorHistogramExtractor, mfccStatsExtractor, windowCentres } from "../../src/lib/eval";
import { needsRealdata, realdata } from "../helpers";

const row = (p: string, durationSec: number): ManifestRow => ({ id: p, path: p, split: "test", durationSec, hasAudio: true });

describe("hand-made baseline extractors (real media)", () => {
  it("windowCentres: one per second at window centres, at least one", () => {
    assert.deepEqual(windowCentres(3.2), [0.5, 1.5, 2.5]);
    assert.deepEqual(windowCentres(0.6), [0.3]);
  });

  it("MFCC stats of 1 s windows of a 2 s chirp: 2×40, finite, windows differ (the chirp rises)", needsRealdata(), async () => {
    const f = await mfccStatsExtractor()(row(realdata("openl3", "audio", "chirp_mono.wav"), 2));
    assert.equal(f.k, 2);
    assert.equal(f.dim, 40);
    assert.ok(f.features.every(Number.isFinite));
    const d = Math.hypot(...Array.from(f.features.subarray(0, 40), (v, i) => v - f.features[40 + i]!));
    assert.ok(d > 1, `windows differ by ${d}`);
  });

  it("colour histograms of bento.mp4 (1.1 s → 1 frame): 512-d, sums to 1", needsRealdata(), async () => {
    const f = await colorHistogramExtractor()(row(realdata("openl3", "video", "bento.mp4"), 1.1));
    assert.equal(f.k, 1);
    assert.equal(f.dim, 512);
    assert.ok(Math.abs(f.features.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    const hsv = await colorHistogramExtractor({ space: "hsv", mode: "per-channel", bins: 16 })(
      row(realdata("openl3", "video", "bento.mp4"), 1.1),
    );
    assert.equal(hsv.dim, 48);
  });

  it("a missing file fails with the media error (the protocol then skips the row)", async () => {
    await assert.rejects(
      mfccStatsExtractor()(row("/nonexistent/clip.wav", 5)),
      (err: Error & { reason?: string }) => err.reason === "missing",
    );
  });
});
