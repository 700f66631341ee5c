import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Box } from "../../src/lib/data/types";
import {
  binarizeMap,
  boxesMask,
  boxesToCenterCrop,
  centerPriorMap,
  ciouScore,
  ciouSuccessCurve,
  type LocalizationMap,
  localizationMetrics,
  mapArgmax,
  pointingHit,
  protocolTarget,
} from "../../src/lib/eval";

/** A 4×4 map whose value is its row-major index: 0 at top-left … 15 at bottom-right. */
const ramp: LocalizationMap = { data: Float32Array.from({ length: 16 }, (_, i) => i), width: 4, height: 4 };

function peakAt(x: number, y: number, w = 10, h = 10): LocalizationMap {
  const data = new Float32Array(w * h);
  data[y * w + x] = 1;
  return { data, width: w, height: h };
}

describe("pointing game", () => {
  const box: Box = { x1: 0.2, y1: 0.2, x2: 0.5, y2: 0.6 }; // pixels x 2..4, y 2..5 on a 10×10 grid
  it("scores 1 for a peak inside the box and 0 outside", () => {
    assert.equal(pointingHit(peakAt(3, 4), [box]), true);
    assert.equal(pointingHit(peakAt(7, 4), [box]), false);
    // x = 5 is ⌊10·0.5⌋, the first pixel past the box
    assert.equal(pointingHit(peakAt(5, 4), [box]), false);
    const m = localizationMetrics([peakAt(3, 4), peakAt(7, 4)], [[box], [box]]);
    assert.equal(m.pointing, 0.5);
    assert.deepEqual(m.hits, [true, false]);
  });

  it("takes the first maximum (row-major) on ties", () => {
    const m = peakAt(8, 8);
    m.data[1 * 10 + 3] = 1; // an equal maximum earlier in row-major order
    assert.deepEqual(mapArgmax(m), { x: 3, y: 1, index: 13 });
    assert.equal(pointingHit(m, [{ x1: 0.3, y1: 0.1, x2: 0.4, y2: 0.2 }]), true);
    assert.equal(pointingHit(m, [{ x1: 0.8, y1: 0.8, x2: 0.9, y2: 0.9 }]), false);
  });

  it("hits if the peak is in any of several boxes", () => {
    assert.equal(
      pointingHit(peakAt(9, 9), [
        { x1: 0, y1: 0, x2: 0.1, y2: 0.1 },
        { x1: 0.9, y1: 0.9, x2: 1, y2: 1 },
      ]),
      true,
    );
  });

  it("reports distractor pointing for BoxFrames", () => {
    const frame = { t: 0, sounding: [{ x1: 0, y1: 0, x2: 0.3, y2: 0.3 }], distractors: [{ x1: 0.6, y1: 0.6, x2: 1, y2: 1 }] };
    // item 1 points at the sounding object, item 2 at the distractor, item 3 at neither
    const m = localizationMetrics([peakAt(1, 1), peakAt(8, 8), peakAt(5, 0)], [frame, frame, frame]);
    assert.equal(m.pointing, 1 / 3);
    assert.equal(m.distractorPointing, 1 / 3);
    assert.equal(m.nWithDistractors, 3);
    assert.ok(Number.isNaN(localizationMetrics([peakAt(1, 1)], [[frame.sounding[0]!]]).distractorPointing));
  });
});

describe("cIoU", () => {
  it("binarises at the median: values above sorted[⌊N/2⌋] (and the max) are 1", () => {
    // sorted[8] = 8 → pixels 9…15 are 1
    assert.deepEqual(Array.from(binarizeMap(ramp)), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    // a constant map is all at its maximum → all 1
    assert.deepEqual(Array.from(binarizeMap({ data: new Float32Array(4), width: 2, height: 2 })), [1, 1, 1, 1]);
    // a fixed threshold on the min–max normalised map: v/15 ≥ 0.5 → 8…15
    assert.equal(Array.from(binarizeMap(ramp, 0.5)).filter(Boolean).length, 8);
  });

  it("equals hand-computed values on the ramp map", () => {
    // pred = pixels 9…15 (7 px).
    // Bottom half box → gt = 8…15 (8 px): inter 7, outside-gt pred 0 → 7 / (8 + 0) = 0.875
    assert.equal(ciouScore(ramp, [{ x1: 0, y1: 0.5, x2: 1, y2: 1 }]), 0.875);
    // Top-left quarter → gt = {0,1,4,5}: inter 0 → 0 / (4 + 7) = 0
    assert.equal(ciouScore(ramp, [{ x1: 0, y1: 0, x2: 0.5, y2: 0.5 }]), 0);
    // Bottom-right quarter → gt = {10,11,14,15}: inter 4, pred outside gt = {9,12,13} = 3 → 4 / (4 + 3)
    assert.equal(ciouScore(ramp, [{ x1: 0.5, y1: 0.5, x2: 1, y2: 1 }]), 4 / 7);
  });

  it("builds union and consensus GT masks", () => {
    const boxes = [
      { x1: 0, y1: 0, x2: 0.5, y2: 0.5 },
      { x1: 0.25, y1: 0, x2: 0.75, y2: 0.5 },
    ];
    // 4×2 grid: box 1 → x 0..1, y 0; box 2 → x 1..2, y 0
    assert.deepEqual(Array.from(boxesMask(boxes, 4, 2, "union")), [1, 1, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(boxesMask(boxes, 4, 2, "consensus")), [0.5, 1, 0.5, 0, 0, 0, 0, 0]);
    assert.throws(() => boxesMask([{ x1: 0.5, y1: 0, x2: 0.2, y2: 1 }], 4, 4), /bad box/);
  });

  it("gives success at 0.5 and the trapezoid AUC over thresholds 0, 0.05 … 1", () => {
    const boxes: Box[][] = [[{ x1: 0, y1: 0.5, x2: 1, y2: 1 }], [{ x1: 0, y1: 0, x2: 0.5, y2: 0.5 }], [{ x1: 0.5, y1: 0.5, x2: 1, y2: 1 }]];
    const m = localizationMetrics([ramp, ramp, ramp], boxes);
    assert.deepEqual(m.ciou, [0.875, 0, 4 / 7]);
    // cIoUs {0.875, 0, 0.571}: success 1 at t=0; 2/3 for t = 0.05…0.55 (11 points); 1/3 for 0.60…0.85 (6);
    // 0 for 0.90, 0.95, 1.00. Trapezoid, dx 0.05: 0.05·(Σ r − (r0 + r20)/2) = 0.05·(1 + 22/3 + 2 − 1/2) = 59/120
    assert.equal(m.successAt05, 2 / 3);
    assert.equal(m.successCurve.length, 21);
    assert.ok(Math.abs(m.auc - 59 / 120) < 1e-12, `auc ${m.auc}`);
    assert.ok(Math.abs(ciouSuccessCurve([1, 1]).auc - 1) < 1e-12);
    assert.equal(m.n, 3);
  });
});

describe("boxesToCenterCrop", () => {
  it("moves boxes into the centre crop of the short-side-resized frame", () => {
    // 200×100 → short side 64 → 128×64; the 64×64 centre crop starts at x = 32.
    // x 0.25…0.75 → pixels 32…96 → crop 0…1; a box at x 0…0.2 (pixels 0…25.6) lies left of the crop → dropped
    const out = boxesToCenterCrop(
      [
        { x1: 0.25, y1: 0.5, x2: 0.75, y2: 1, label: "drum" },
        { x1: 0, y1: 0, x2: 0.2, y2: 1 },
      ],
      200,
      100,
      64,
      64,
    );
    assert.deepEqual(out, [{ x1: 0, y1: 0.5, x2: 1, y2: 1, label: "drum" }]);
    // a square frame resized to 73 and cropped to 64 (offset ⌊9/2⌋ = 4): x 0.5 → (36.5 − 4)/64
    const sq = boxesToCenterCrop([{ x1: 0.5, y1: 0.5, x2: 1, y2: 1 }], 50, 50, 73, 64);
    assert.ok(Math.abs(sq[0]!.x1 - 32.5 / 64) < 1e-12 && sq[0]!.x2 === 1);
  });
});

describe("localization protocols", () => {
  const geometry = { width: 200, height: 100, resizeTo: 64, size: 64 };
  const frame = {
    t: 1,
    sounding: [{ x1: 0, y1: 0, x2: 0.2, y2: 1 }],
    distractors: [{ x1: 0.25, y1: 0.5, x2: 0.75, y2: 1 }],
  };
  it("published keeps every item with its boxes as annotated (hche11's test.py lays them on the map unadjusted)", () => {
    assert.deepEqual(protocolTarget(frame, "published", geometry), frame);
    // scored on the map's grid as annotated: a peak in the left fifth of a 10×10 map is a hit
    const t = protocolTarget(frame, "published", geometry)!;
    assert.equal(localizationMetrics([peakAt(1, 5)], [t]).pointing, 1);
  });
  it("l3kit moves the boxes into the centre crop and drops an item whose sounding boxes fall outside it", () => {
    // 200×100 → 128×64, crop from x = 32: the sounding box (pixels 0…25.6) is outside the crop
    assert.equal(protocolTarget(frame, "l3kit", geometry), null);
    const inside = { t: 1, sounding: frame.distractors, distractors: frame.sounding };
    assert.deepEqual(protocolTarget(inside, "l3kit", geometry), { t: 1, sounding: [{ x1: 0, y1: 0.5, x2: 1, y2: 1 }] });
  });
  it("an unknown protocol fails naming the allowed ones", () => {
    assert.throws(() => protocolTarget(frame, "hche11" as never, geometry), /expected one of published, l3kit/);
  });
});

describe("centre prior", () => {
  it("peaks at the centre and scores on a centred box", () => {
    const c = centerPriorMap(21, 11);
    assert.deepEqual(mapArgmax(c), { x: 10, y: 5, index: 5 * 21 + 10 });
    assert.equal(c.data.length, 21 * 11);
    const m = localizationMetrics([c], [[{ x1: 0.4, y1: 0.4, x2: 0.6, y2: 0.6 }]]);
    assert.equal(m.pointing, 1);
    assert.ok(m.ciou[0]! > 0 && m.ciou[0]! < 1);
  });
});
