import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { audioPlayer, encodeWav } from "../../src/lib/viz";
import { needsRealdata, realdata } from "../helpers";

/** Reads the int16 samples of a canonical 44-byte-header PCM WAV as floats (negatives /32768, positives /32767). */
function readWav16(file: string): { rate: number; channels: Float32Array[]; bytes: Buffer } {
  const b = readFileSync(file);
  assert.equal(b.toString("latin1", 36, 40), "data", "canonical 44-byte header");
  const nch = b.readUInt16LE(22);
  const n = b.readUInt32LE(40) / 2 / nch;
  const channels = Array.from({ length: nch }, () => new Float32Array(n));
  for (let i = 0; i < n; i++)
    for (let c = 0; c < nch; c++) {
      const s = b.readInt16LE(44 + (i * nch + c) * 2);
      channels[c]![i] = s < 0 ? s / 32768 : s / 32767;
    }
  return { rate: b.readUInt32LE(24), channels, bytes: b };
}

describe("encodeWav", () => {
  it("writes a correct 16-bit PCM header and clips to [-1, 1]", () => {
    const wav = Buffer.from(encodeWav(Float32Array.from([0, 0.5, -0.5, 1, -1, 2, -3, Number.NaN]), 16000));
    assert.equal(wav.length, 44 + 16);
    assert.equal(wav.toString("latin1", 0, 4), "RIFF");
    assert.equal(wav.readUInt32LE(4), 36 + 16);
    assert.equal(wav.toString("latin1", 8, 16), "WAVEfmt ");
    assert.equal(wav.readUInt32LE(16), 16);
    assert.equal(wav.readUInt16LE(20), 1); // PCM
    assert.equal(wav.readUInt16LE(22), 1); // mono
    assert.equal(wav.readUInt32LE(24), 16000);
    assert.equal(wav.readUInt32LE(28), 32000);
    assert.equal(wav.readUInt16LE(32), 2);
    assert.equal(wav.readUInt16LE(34), 16);
    assert.equal(wav.toString("latin1", 36, 40), "data");
    assert.equal(wav.readUInt32LE(40), 16);
    const s = Array.from({ length: 8 }, (_, i) => wav.readInt16LE(44 + 2 * i));
    assert.deepEqual(s, [0, 16384, -16384, 32767, -32768, 32767, -32768, 0]);
  });

  it("downmixes channels by averaging, or keeps them interleaved", () => {
    const l = Float32Array.from([0.5, 1]);
    const r = Float32Array.from([-0.5, 0]);
    const mono = Buffer.from(encodeWav([l, r], 8000));
    assert.equal(mono.readUInt16LE(22), 1);
    assert.deepEqual([mono.readInt16LE(44), mono.readInt16LE(46)], [0, 16384]);
    const st = Buffer.from(encodeWav([l, r], 8000, { keepChannels: true }));
    assert.equal(st.readUInt16LE(22), 2);
    assert.equal(st.readUInt16LE(32), 4);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => st.readInt16LE(44 + 2 * i)),
      [16384, -16384, 32767, 0],
    );
  });

  it("rejects a bad sample rate and unequal channels", () => {
    assert.throws(() => encodeWav(new Float32Array(4), 0), /sampleRate must be a positive integer/);
    assert.throws(() => encodeWav([new Float32Array(4), new Float32Array(3)], 8000), /differ in length/);
  });

  it("re-encodes openl3's real WAVs byte for byte", needsRealdata(), () => {
    for (const [name, keep] of [
      ["chirp_1s.wav", false],
      ["chirp_stereo.wav", true],
      ["empty.wav", false],
    ] as const) {
      const { rate, channels, bytes } = readWav16(realdata("openl3", "audio", name));
      const again = Buffer.from(encodeWav(channels, rate, { keepChannels: keep }));
      assert.ok(again.equals(bytes), `${name} re-encodes identically`);
    }
  });
});

describe("audioPlayer", () => {
  it("is an <audio controls> element with the WAV inlined", () => {
    const html = audioPlayer(
      Float32Array.from({ length: 100 }, (_, i) => Math.sin(i)),
      8000,
      { label: "a <b>" },
    );
    assert.match(html, /<audio controls[^>]* src="data:audio\/wav;base64,UklGR/);
    assert.ok(html.includes("a &lt;b&gt;"));
    const b64 = /base64,([A-Za-z0-9+/=]+)"/.exec(html)![1]!;
    assert.equal(Buffer.from(b64, "base64").length, 44 + 200);
    const cut = audioPlayer(new Float32Array(8000), 8000, { maxSeconds: 0.5 });
    assert.equal(Buffer.from(/base64,([A-Za-z0-9+/=]+)"/.exec(cut)![1]!, "base64").length, 44 + 8000);
  });
});
