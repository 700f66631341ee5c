import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RgbFrame } from "../../src/lib/media";
import { Rng } from "../../src/lib/util";
import {
  adjustBrightness,
  adjustSaturation,
  centerCrop,
  evalTransform,
  flipHorizontal,
  frameToFloat,
  randomCrop,
  resizeFrame,
  resizeShortSide,
  trainTransform,
} from "../../src/lib/vision";

/** A frame whose pixel (x, y) is (x, y, 7): crops and flips can be read back exactly. */
function coordFrame(width: number, height: number): RgbFrame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      data[p] = x;
      data[p + 1] = y;
      data[p + 2] = 7;
    }
  }
  return { width, height, data };
}

function solid(width: number, height: number, rgb: [number, number, number]): RgbFrame {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { width, height, data };
}

const px = (f: RgbFrame, x: number, y: number) => Array.from(f.data.subarray((y * f.width + x) * 3, (y * f.width + x) * 3 + 3));

function noise(width: number, height: number, seed: number): RgbFrame {
  const rng = new Rng(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(256)) };
}

describe("resize", () => {
  test("resizeShortSide keeps the aspect ratio (portrait and landscape)", () => {
    const p = resizeShortSide(noise(32, 57, 1), 16);
    assert.equal(p.width, 16);
    assert.equal(p.height, Math.round((57 * 16) / 32));
    assert.equal(p.data.length, p.width * p.height * 3);
    const l = resizeShortSide(noise(320, 240, 2), 256);
    assert.deepEqual([l.width, l.height], [341, 256]);
  });

  test("a solid frame stays solid; the same size is an exact copy", () => {
    const s = resizeShortSide(solid(40, 30, [10, 200, 99]), 13);
    for (let i = 0; i < s.data.length; i += 3) assert.deepEqual(Array.from(s.data.subarray(i, i + 3)), [10, 200, 99]);
    const f = noise(8, 8, 3);
    const same = resizeFrame(f, 8, 8);
    assert.deepEqual(same.data, f.data);
    assert.notEqual(same.data, f.data);
  });

  test("bilinear values: 2x enlargement interpolates, 2x reduction averages (antialiased)", () => {
    // one row 0, 100 → 4 pixels with half-pixel centres: 0, 25, 75, 100
    const row: RgbFrame = { width: 2, height: 1, data: Uint8Array.from([0, 0, 0, 100, 100, 100]) };
    const up = resizeFrame(row, 4, 1);
    assert.deepEqual(
      [0, 1, 2, 3].map((x) => px(up, x, 0)[0]),
      [0, 25, 75, 100],
    );
    // 0, 10, 20, 30 → 2 pixels, triangle of radius 2 input pixels: (0·.75 + 10·.75 + 20·.25)/1.75 = 7.14…
    const ramp: RgbFrame = { width: 4, height: 1, data: Uint8Array.from([0, 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30]) };
    const down = resizeFrame(ramp, 2, 1);
    assert.deepEqual([px(down, 0, 0)[0], px(down, 1, 0)[0]], [7, 23]);
    // a 1-pixel checkerboard shrunk 4x averages to grey instead of aliasing
    const checker = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) checker.data.fill((x + y) % 2 ? 255 : 0, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
    const small = resizeFrame(checker, 16, 16);
    for (const v of small.data) assert.ok(Math.abs(v - 127.5) <= 20, `value ${v}`);
  });
});

describe("crops and flips", () => {
  test("centerCrop takes the centred square (floor offsets)", () => {
    const f = coordFrame(11, 8);
    const c = centerCrop(f, 4);
    assert.deepEqual([c.width, c.height], [4, 4]);
    assert.deepEqual(px(c, 0, 0), [3, 2, 7]);
    assert.deepEqual(px(c, 3, 3), [6, 5, 7]);
    assert.throws(() => centerCrop(f, 9), /does not fit/);
  });

  test("randomCrop: content is the source region; positions cover the range; seeded", () => {
    const f = coordFrame(10, 6);
    const seen = new Set<string>();
    const rng = new Rng("crop");
    for (let i = 0; i < 300; i++) {
      const c = randomCrop(f, 4, rng);
      const [x0, y0] = px(c, 0, 0);
      assert.ok(x0! <= 6 && y0! <= 2);
      assert.deepEqual(px(c, 3, 2), [x0! + 3, y0! + 2, 7]);
      seen.add(`${x0},${y0}`);
    }
    assert.equal(seen.size, 7 * 3);
    assert.deepEqual(randomCrop(f, 4, new Rng(9)), randomCrop(f, 4, new Rng(9)));
  });

  test("flipHorizontal mirrors each row", () => {
    const f: RgbFrame = { width: 3, height: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]) };
    const g = flipHorizontal(f);
    assert.deepEqual(Array.from(g.data), [7, 8, 9, 4, 5, 6, 1, 2, 3, 16, 17, 18, 13, 14, 15, 10, 11, 12]);
    assert.deepEqual(flipHorizontal(g).data, f.data);
  });
});

describe("colour", () => {
  test("saturation: factor 1 keeps, 0 gives grey at the max channel (HSV), 2 clips S at 1", () => {
    const f = solid(2, 2, [200, 100, 50]);
    assert.deepEqual(adjustSaturation(f, 1).data, f.data);
    assert.deepEqual(px(adjustSaturation(f, 0), 0, 0), [200, 200, 200]);
    // S = 150/200 = .75 → ×2 clipped to 1: min channel goes to 0, hue kept
    const sat = px(adjustSaturation(f, 2), 1, 1);
    assert.deepEqual(sat, [200, 67, 0]);
    assert.deepEqual(px(adjustSaturation(solid(1, 1, [90, 90, 90]), 1.5), 0, 0), [90, 90, 90]);
  });

  test("brightness adds delta·255 and clips", () => {
    const f: RgbFrame = { width: 2, height: 1, data: Uint8Array.from([0, 100, 250, 10, 20, 30]) };
    assert.deepEqual(Array.from(adjustBrightness(f, 32 / 255).data), [32, 132, 255, 42, 52, 62]);
    assert.deepEqual(Array.from(adjustBrightness(f, -32 / 255).data), [0, 68, 218, 0, 0, 0]);
  });

  test("frameToFloat is HWC value/255", () => {
    const v = frameToFloat({ width: 1, height: 1, data: Uint8Array.from([0, 51, 255]) });
    assert.deepEqual(Array.from(v), [0, Math.fround(0.2), 1]);
  });
});

describe("train/eval transforms", () => {
  const opts = { resizeTo: 32, cropTo: 28 };

  test("evalTransform = centre crop of the short-side resize", () => {
    const f = noise(64, 48, 4);
    const e = evalTransform(f, opts);
    assert.deepEqual([e.width, e.height], [28, 28]);
    assert.deepEqual(e, centerCrop(resizeShortSide(f, 32), 28));
    // on a coordinate frame already at size, the crop is exact
    const c = evalTransform(coordFrame(40, 32), opts);
    assert.deepEqual(px(c, 0, 0), [6, 2, 7]);
    assert.throws(() => evalTransform(f, { resizeTo: 16, cropTo: 28 }), /larger than resizeTo/);
  });

  test("trainTransform: shape, same seed → same bytes, seeds differ, source untouched", () => {
    const f = noise(80, 60, 5);
    const before = f.data.slice();
    const a = trainTransform(f, new Rng(11), opts);
    const b = trainTransform(f, new Rng(11), opts);
    assert.deepEqual([a.width, a.height, a.data.length], [28, 28, 28 * 28 * 3]);
    assert.deepEqual(a.data, b.data);
    const outs = new Set(
      Array.from({ length: 8 }, (_, i) => Buffer.from(trainTransform(f, new Rng(100 + i), opts).data).toString("base64")),
    );
    assert.equal(outs.size, 8);
    assert.deepEqual(f.data, before);
  });

  test("trainTransform on a grey frame only shifts brightness, within ±32", () => {
    const f = solid(40, 40, [128, 128, 128]);
    const deltas = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const out = trainTransform(f, new Rng(i), opts);
      const v = out.data[0]!;
      assert.ok(
        out.data.every((x) => x === v),
        "a grey frame stays uniform grey",
      );
      assert.ok(v >= 96 && v <= 160, `value ${v}`);
      deltas.add(v);
    }
    assert.ok(deltas.size > 10);
  });

  test("trainTransform flips about half the time", () => {
    // a frame that is dark on the left, bright on the right, grey-free (no saturation effect on 0/255 channels equal)
    const f = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
    for (let y = 0; y < 32; y++) for (let x = 16; x < 32; x++) f.data.fill(255, (y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
    let flipped = 0;
    for (let i = 0; i < 200; i++) {
      const out = trainTransform(f, new Rng(`flip${i}`), opts);
      if (out.data[0]! > out.data[27 * 1 * 3]!) flipped++;
    }
    assert.ok(flipped > 70 && flipped < 130, `flipped ${flipped}/200`);
  });
});
