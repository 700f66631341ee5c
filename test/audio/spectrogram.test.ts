import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, test } from "node:test";
import { augmentGain, linearSpectrogram, melFilterBank, melSpectrogram, RealFft } from "../../src/lib/audio";
import { readNpy } from "../../src/lib/media";
import { Rng } from "../../src/lib/util";
import { needsRealdata, realdata, repoRoot } from "../helpers";

const fixture = (name: string) => path.join(repoRoot, "test", "fixtures", "audio", name);

/** The signal of scripts/fixtures/test_signal.py, built from the same formula. */
function testSignal(n = 48000, sr = 48000): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    x[i] =
      0.5 * Math.sin(2 * Math.PI * (200 * t + 3900 * t * t)) +
      0.25 * Math.sin(2 * Math.PI * 1000 * t) +
      0.1 * Math.sin(2 * Math.PI * 3150.5 * t + 0.3) +
      0.02 * Math.sin(2 * Math.PI * 17000 * t) * (t > 0.5 ? 1 : 0);
  }
  return x;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("RealFft", () => {
  test("matches a direct DFT for sizes 2 to 2048", () => {
    const rng = new Rng("fft");
    for (const n of [2, 4, 8, 64, 512, 2048]) {
      const x = Float64Array.from({ length: n }, () => rng.normal());
      const re = new Float64Array(n / 2 + 1);
      const im = new Float64Array(n / 2 + 1);
      new RealFft(n).forward(x, re, im);
      let err = 0;
      for (let k = 0; k <= n / 2; k++) {
        let r = 0;
        let i = 0;
        for (let t = 0; t < n; t++) {
          r += x[t]! * Math.cos((2 * Math.PI * k * t) / n);
          i -= x[t]! * Math.sin((2 * Math.PI * k * t) / n);
        }
        err = Math.max(err, Math.abs(r - re[k]!), Math.abs(i - im[k]!));
      }
      assert.ok(err < 1e-9 * n, `n=${n}: max error ${err}`);
    }
  });

  test("rejects sizes that are not powers of two", () => {
    assert.throws(() => new RealFft(480), /power of two/);
  });
});

describe("linearSpectrogram", () => {
  test("1 s at 48 kHz gives 257 bins x 199 frames matching numpy within 1e-4", async () => {
    const spec = linearSpectrogram(testSignal());
    assert.equal(spec.bins, 257);
    assert.equal(spec.frames, 199);
    assert.equal(spec.data.length, 257 * 199);
    assert.equal(spec.kind, "linear");
    assert.equal(spec.hopLength, 240);
    assert.equal(spec.nFft, 512);
    assert.equal(spec.freqs[1], 93.75);
    assert.equal(spec.freqs[256], 24000);
    const ref = await readNpy(fixture("linear_spectrogram.npy"));
    assert.deepEqual(ref.shape, [257, 199]);
    const err = maxAbsDiff(spec.data, ref.data as Float32Array);
    assert.ok(err < 1e-4, `max |diff| ${err}`);
  });

  test("the 1 kHz tone peaks in its bin; silence sits at ln(1e-12)", () => {
    const n = 48000;
    const tone = Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * 1000 * i) / 48000));
    const spec = linearSpectrogram(tone);
    const f = 100;
    let best = 0;
    for (let k = 1; k < spec.bins; k++) if (spec.data[k * spec.frames + f]! > spec.data[best * spec.frames + f]!) best = k;
    assert.ok(Math.abs(spec.freqs[best]! - 1000) <= 93.75 / 2 + 1e-9, `peak at ${spec.freqs[best]} Hz`);
    const silent = linearSpectrogram(new Float32Array(n));
    assert.ok(silent.data.every((v) => Math.abs(v - Math.log(1e-12)) < 1e-4));
  });

  test("normalize 'l3embedding' divides by 5; center pads half a window each side", () => {
    const x = testSignal();
    const a = linearSpectrogram(x);
    const b = linearSpectrogram(x, { normalize: "l3embedding" });
    assert.ok(
      maxAbsDiff(
        Float32Array.from(a.data, (v) => v / 5),
        b.data,
      ) < 1e-6,
    );
    const c = linearSpectrogram(x, { center: true });
    assert.equal(c.frames, 1 + Math.floor(48000 / 240));
    // centred frame f+1 covers [240 f, 240 f + 480), the uncentred frame f
    for (const f of [0, 50, 198]) {
      for (const k of [3, 40, 200]) assert.ok(Math.abs(c.data[k * c.frames + f + 1]! - a.data[k * a.frames + f]!) < 1e-5);
    }
  });

  test("too short a signal is an error", () => {
    assert.throws(() => linearSpectrogram(new Float32Array(100)), /too few/);
  });
});

describe("melFilterBank", () => {
  for (const bands of [128, 256]) {
    test(`equals OpenL3's mel${bands} weights (torchopenl3 .npy) within 1e-6`, needsRealdata(), async () => {
      const ref = await readNpy(realdata("torchopenl3", `mel${bands}_weights.npy`));
      assert.deepEqual(ref.shape, [1025, bands]);
      const fb = melFilterBank({ sampleRate: 48000, nFft: 2048, nMels: bands });
      assert.equal(fb.length, 1025 * bands);
      const err = maxAbsDiff(fb, ref.data as Float32Array);
      assert.ok(err < 1e-6, `max |diff| ${err}`);
    });
  }

  test("Slaney scale (htk false) differs from HTK; every band has weight", () => {
    const htk = melFilterBank({ nMels: 64 });
    const slaney = melFilterBank({ nMels: 64, htk: false });
    assert.ok(maxAbsDiff(htk, slaney) > 1e-3);
    for (const fb of [htk, slaney]) {
      for (let m = 0; m < 64; m++) {
        let s = 0;
        for (let k = 0; k < 1025; k++) s += fb[k * 64 + m]!;
        assert.ok(s > 0, `band ${m} is empty`);
      }
    }
  });
});

describe("melSpectrogram", () => {
  test("matches OpenL3's kapre front-end computed with numpy (128 x 199)", async () => {
    const spec = melSpectrogram(testSignal());
    assert.equal(spec.bins, 128);
    assert.equal(spec.frames, 199);
    assert.equal(spec.kind, "mel");
    assert.equal(spec.freqs.length, 128);
    const ref = await readNpy(fixture("mel128_spectrogram.npy"));
    assert.deepEqual(ref.shape, [128, 199]);
    const err = maxAbsDiff(spec.data, ref.data as Float32Array);
    assert.ok(err < 1e-3, `max |diff| ${err} dB`);
    assert.equal(Math.max(...spec.data), 0);
    assert.ok(Math.min(...spec.data) >= -80);
  });

  test("256 bands; padding modes give 199 / 199 / 190 frames; ref 1 keeps absolute dB", () => {
    const x = testSignal();
    assert.equal(melSpectrogram(x, { nMels: 256 }).bins, 256);
    assert.equal(melSpectrogram(x, { center: true }).frames, 199);
    assert.equal(melSpectrogram(x, { padding: "none" }).frames, 190);
    const rel = melSpectrogram(x);
    const abs = melSpectrogram(x, { ref: 1, topDb: null });
    const peak = Math.max(...abs.data);
    assert.ok(peak > 0, "the signal has mel magnitudes above 1");
    // same values up to the shift, where neither is clipped
    let checked = 0;
    for (let i = 0; i < rel.data.length; i++) {
      if (rel.data[i]! > -79) {
        assert.ok(Math.abs(rel.data[i]! - (abs.data[i]! - peak)) < 1e-3);
        checked++;
      }
    }
    assert.ok(checked > 1000);
  });
});

describe("augmentGain", () => {
  test("scales by one factor in [0.9, 1.1], deterministic per seed, input untouched", () => {
    const x = testSignal(1000);
    const copy = x.slice();
    const a = augmentGain(x, new Rng(5));
    const b = augmentGain(x, new Rng(5));
    assert.deepEqual(a, b);
    assert.deepEqual(x, copy);
    const g = a[10]! / x[10]!;
    assert.ok(g >= 0.9 && g <= 1.1);
    for (let i = 0; i < x.length; i++) if (Math.abs(x[i]!) > 1e-3) assert.ok(Math.abs(a[i]! / x[i]! - g) < 1e-5);
    const gains = Array.from({ length: 200 }, (_, i) => augmentGain(Float32Array.of(1), new Rng(i))[0]!);
    assert.ok(Math.min(...gains) < 0.92 && Math.max(...gains) > 1.08);
    const c = augmentGain(Float32Array.of(1), new Rng(1), [2, 2]);
    assert.equal(c[0], 2);
  });
});
