import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PbWriter } from "../../src/lib/models/onnx/protobuf";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("protobuf writer", () => {
  it("encodes the examples of the protobuf encoding guide", () => {
    assert.equal(hex(new PbWriter().int(1, 150).finish()), "089601");
    assert.equal(hex(new PbWriter().string(2, "testing").finish()), "120774657374696e67");
    assert.equal(hex(new PbWriter().message(3, new PbWriter().int(1, 150)).finish()), "1a03089601");
    assert.equal(hex(new PbWriter().packedInts(4, [3, 270, 86942]).finish()), "2206038e029ea705");
  });

  it("int64: large, negative and bigint values", () => {
    assert.equal(hex(new PbWriter().int(1, 2 ** 40).finish()), "08808080808020");
    assert.equal(hex(new PbWriter().int(1, -1).finish()), "08ffffffffffffffffff01");
    assert.equal(hex(new PbWriter().int(1, -2n).finish()), "08feffffffffffffffff01");
    assert.throws(() => new PbWriter().int(1, 2 ** 60), /safe integer/);
  });

  it("floats are little-endian fixed32; big fields > 127 bytes get multi-byte lengths", () => {
    assert.equal(hex(new PbWriter().float(2, 1).finish()), "150000803f");
    assert.equal(hex(new PbWriter().packedFloats(1, [1, -2]).finish()), "0a080000803f000000c0");
    const big = new Uint8Array(300).fill(7);
    const out = new PbWriter().bytes(9, big).finish();
    assert.equal(hex(out.subarray(0, 3)), "4aac02");
    assert.equal(out.length, 303);
    const nested = new PbWriter().message(1, new PbWriter().bytes(9, big).int(2, 1)).finish();
    assert.equal(hex(nested.subarray(0, 3)), "0ab102"); // 303 + 2 = 305 bytes inside
    assert.equal(nested.length, 308);
  });
});
