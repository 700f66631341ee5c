import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, test } from "node:test";
import { encodeNpy, parseNpy, readNpy, writeNpy } from "../../src/lib/media";
import { needsRealdata, realdata, tempDir } from "../helpers";

describe("npy", () => {
  test("round-trips float32, float64, int32 and uint8 with shapes; header is 64-byte aligned", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const cases = [
        { data: Float32Array.from([1.5, -2, 3.25, 0, 1e-8, 7]), shape: [2, 3], dtype: "<f4" },
        { data: Float64Array.from([Math.PI, -1]), shape: [2], dtype: "<f8" },
        { data: Int32Array.from([-5, 6, 7, 8]), shape: [1, 2, 2], dtype: "<i4" },
        { data: Uint8Array.from([0, 255, 9]), shape: [3], dtype: "|u1" },
        { data: new Float32Array(0), shape: [0, 4], dtype: "<f4" },
      ];
      for (const c of cases) {
        const bytes = encodeNpy(c.data, c.shape);
        const headerLen = bytes[8]! | (bytes[9]! << 8);
        assert.equal((10 + headerLen) % 64, 0);
        const back = parseNpy(bytes);
        assert.equal(back.dtype, c.dtype);
        assert.deepEqual(back.shape, c.shape);
        assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(c.data));
        const file = path.join(dir, `${c.dtype.slice(1)}.npy`);
        await writeNpy(file, c.data, c.shape);
        assert.deepEqual((await readNpy(file)).shape, c.shape);
      }
      assert.throws(() => encodeNpy(Float32Array.of(1, 2, 3), [2, 2]), /holds 4 values/);
    } finally {
      cleanup();
    }
  });

  test("reads numpy-written files; rejects bad input with the file named", needsRealdata(), async () => {
    const mel = await readNpy(realdata("torchopenl3", "mel128_weights.npy"));
    assert.equal(mel.dtype, "<f4");
    assert.deepEqual(mel.shape, [1025, 128]);
    assert.ok(mel.data instanceof Float32Array);
    assert.throws(() => parseNpy(new TextEncoder().encode("hello world"), "x.npy"), /x\.npy: not a \.npy file/);
    const full = encodeNpy(Float32Array.of(1, 2, 3, 4));
    const truncated = full.subarray(0, full.length - 4);
    assert.throws(() => parseNpy(truncated, "t.npy"), /t\.npy: data is truncated/);
    await assert.rejects(readNpy("/nonexistent/a.npy"), /a\.npy: cannot read/);
  });

  test("big-endian data is byte-swapped", () => {
    const le = encodeNpy(Float32Array.of(1.5, -3), [2]);
    const be = le.slice();
    const text = new TextDecoder("latin1").decode(be.subarray(10, 74)).replace("<f4", ">f4");
    for (let i = 0; i < text.length; i++) be[10 + i] = text.charCodeAt(i);
    const body = be.subarray(be.length - 8);
    body.subarray(0, 4).reverse();
    body.subarray(4, 8).reverse();
    assert.deepEqual(Array.from(parseNpy(be).data as Float32Array), [1.5, -3]);
  });
});
