import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { crc32 as zlibCrc32, inflateSync } from "node:zlib";
import { Rng } from "../../src/lib/util";
import { encodePng, pngDataUri, shrinkImage, type VizImage } from "../../src/lib/viz";

interface Chunk {
  type: string;
  body: Buffer;
  crc: number;
  crcInput: Buffer;
}

function chunks(png: Uint8Array): Chunk[] {
  const b = Buffer.from(png);
  const out: Chunk[] = [];
  let off = 8;
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    out.push({
      type: b.toString("latin1", off + 4, off + 8),
      body: b.subarray(off + 8, off + 8 + len),
      crc: b.readUInt32BE(off + 8 + len),
      crcInput: b.subarray(off + 4, off + 8 + len),
    });
    off += 12 + len;
  }
  assert.equal(off, b.length, "chunks end exactly at the end of the file");
  return out;
}

/** A minimal PNG decoder (8-bit, non-interlaced) written from the spec, to check the encoder. */
function decodePng(png: Uint8Array): VizImage {
  const cs = chunks(png);
  const ihdr = cs[0]!.body;
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const ch = ({ 0: 1, 2: 3, 6: 4 } as Record<number, 1 | 3 | 4>)[ihdr[9]!]!;
  const raw = inflateSync(Buffer.concat(cs.filter((c) => c.type === "IDAT").map((c) => c.body)));
  const stride = width * ch;
  assert.equal(raw.length, (stride + 1) * height);
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= ch ? out[y * stride + i - ch]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= ch && y > 0 ? out[(y - 1) * stride + i - ch]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assert.equal(f, 0, `unknown filter ${f}`);
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, data: out, channels: ch };
}

function gradient(w: number, h: number): VizImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = (x * 255) / (w - 1);
      data[o + 1] = (y * 255) / (h - 1);
      data[o + 2] = (x * y) & 0xff;
    }
  return { width: w, height: h, data };
}

describe("encodePng", () => {
  it("writes the signature, a correct IHDR, valid CRCs and IEND", () => {
    const png = encodePng(gradient(37, 23));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const cs = chunks(png);
    assert.deepEqual(
      cs.map((c) => c.type),
      ["IHDR", "IDAT", "IEND"],
    );
    const ihdr = cs[0]!.body;
    assert.equal(ihdr.length, 13);
    assert.equal(ihdr.readUInt32BE(0), 37);
    assert.equal(ihdr.readUInt32BE(4), 23);
    assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0]);
    for (const c of cs) assert.equal(c.crc, zlibCrc32(c.crcInput), `CRC of ${c.type}`);
  });

  it("round-trips RGB, grey and RGBA images through inflate + unfiltering", () => {
    const rng = new Rng("png");
    const noise = (w: number, h: number, ch: 1 | 3 | 4): VizImage => ({
      width: w,
      height: h,
      channels: ch,
      data: Uint8Array.from({ length: w * h * ch }, () => rng.int(256)),
    });
    for (const img of [gradient(64, 48), noise(17, 9, 3), noise(5, 31, 1), noise(12, 12, 4), noise(1, 1, 3)]) {
      const back = decodePng(encodePng(img));
      assert.equal(back.width, img.width);
      assert.equal(back.height, img.height);
      assert.equal(back.channels, img.channels ?? 3);
      assert.deepEqual(back.data, img.data);
    }
  });

  it("compresses smooth images well (adaptive filters)", () => {
    const img = gradient(224, 224);
    const png = encodePng(img);
    assert.ok(png.length < img.data.length / 4, `PNG of a 224×224 gradient is ${png.length} bytes`);
  });

  it("rejects data of the wrong size with a clear error", () => {
    assert.throws(() => encodePng({ width: 4, height: 4, data: new Uint8Array(47) }), /47 bytes, expected 4×4×3 = 48/);
  });

  it("pngDataUri is a base64 PNG data URI", () => {
    const uri = pngDataUri(gradient(8, 8));
    assert.match(uri, /^data:image\/png;base64,iVBORw0KGgo/);
    assert.deepEqual(decodePng(Buffer.from(uri.split(",")[1]!, "base64")).data, gradient(8, 8).data);
  });
});

describe("shrinkImage", () => {
  it("area-averages down to maxSide and keeps small images as they are", () => {
    const img: VizImage = {
      width: 4,
      height: 2,
      data: Uint8Array.from([0, 0, 0, 10, 10, 10, 100, 100, 100, 200, 200, 200, 20, 20, 20, 30, 30, 30, 0, 0, 0, 0, 0, 0]),
    };
    const s = shrinkImage(img, 2);
    assert.equal(s.width, 2);
    assert.equal(s.height, 1);
    assert.deepEqual([...s.data], [15, 15, 15, 75, 75, 75]);
    assert.equal(shrinkImage(img, 4), img);
  });
});
