import { deflateSync } from "node:zlib";
import { ConfigError } from "../util";

/** An 8-bit image, rows top to bottom, channels interleaved (HWC): RGB by default. */
export interface VizImage {
  width: number;
  height: number;
  /** `width * height * channels` bytes. */
  data: Uint8Array;
  /** 1 (grey), 3 (RGB, the default) or 4 (RGBA). */
  channels?: 1 | 3 | 4;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (the PNG/zlib polynomial). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Checks an image's shape and returns its channel count. */
export function checkImage(img: VizImage, subject = "image"): 1 | 3 | 4 {
  const ch = img.channels ?? 3;
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new ConfigError(`width and height must be positive integers, got ${img.width}×${img.height}`, { subject, reason: "bad-shape" });
  }
  if (ch !== 1 && ch !== 3 && ch !== 4) throw new ConfigError(`channels must be 1, 3 or 4, got ${ch}`, { subject, reason: "bad-shape" });
  if (img.data.length !== img.width * img.height * ch) {
    throw new ConfigError(`data has ${img.data.length} bytes, expected ${img.width}×${img.height}×${ch} = ${img.width * img.height * ch}`, {
      subject,
      reason: "bad-shape",
    });
  }
  return ch;
}

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, "latin1");
  out.set(body, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Encodes an 8-bit grey/RGB/RGBA image as a PNG file (pure TypeScript + node:zlib). Each row gets
 * the PNG filter (none, sub, up, average, paeth) with the smallest sum of absolute residuals.
 */
export function encodePng(img: VizImage): Uint8Array {
  const ch = checkImage(img);
  const { width: w, height: h, data } = img;
  const stride = w * ch;
  const raw = new Uint8Array((stride + 1) * h);
  const cand = [0, 1, 2, 3, 4].map(() => new Uint8Array(stride));
  const zero = new Uint8Array(stride);
  for (let y = 0; y < h; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zero;
    let best = 0;
    let bestSum = Number.POSITIVE_INFINITY;
    for (let f = 0; f < 5; f++) {
      const out = cand[f]!;
      let sum = 0;
      for (let i = 0; i < stride; i++) {
        const x = row[i]!;
        const a = i >= ch ? row[i - ch]! : 0;
        const b = up[i]!;
        const c = i >= ch ? up[i - ch]! : 0;
        const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
        const r = (x - pred) & 0xff;
        out[i] = r;
        sum += r < 128 ? r : 256 - r;
      }
      if (sum < bestSum) {
        bestSum = sum;
        best = f;
      }
    }
    raw[y * (stride + 1)] = best;
    raw.set(cand[best]!, y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = ch === 1 ? 0 : ch === 3 ? 2 : 6; // colour type
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw, { level: 9 })), chunk("IEND", new Uint8Array(0))]);
}

/** A PNG `data:` URI for an image (for plotly `image` traces' `source` or an `<img src>`). */
export function pngDataUri(img: VizImage): string {
  return `data:image/png;base64,${Buffer.from(encodePng(img)).toString("base64")}`;
}

/**
 * Shrinks an image by area averaging so that its longer side is at most `maxSide` pixels; returns
 * the image itself when it is already small enough.
 */
export function shrinkImage(img: VizImage, maxSide: number): VizImage {
  const ch = checkImage(img);
  const long = Math.max(img.width, img.height);
  if (!(maxSide > 0) || long <= maxSide) return img;
  const scale = maxSide / long;
  const w = Math.max(1, Math.round(img.width * scale));
  const h = Math.max(1, Math.round(img.height * scale));
  const out = new Uint8Array(w * h * ch);
  const sx = img.width / w;
  const sy = img.height / h;
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor(y * sy);
    const y1 = Math.max(y0 + 1, Math.floor((y + 1) * sy));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor(x * sx);
      const x1 = Math.max(x0 + 1, Math.floor((x + 1) * sx));
      for (let c = 0; c < ch; c++) {
        let s = 0;
        for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += img.data[(yy * img.width + xx) * ch + c]!;
        out[(y * w + x) * ch + c] = Math.round(s / ((y1 - y0) * (x1 - x0)));
      }
    }
  }
  return { width: w, height: h, data: out, channels: ch };
}
