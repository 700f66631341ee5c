import { PNG } from "pngjs";
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

const COLOR_TYPE = { 1: 0, 3: 2, 4: 6 } as const;

/**
 * Encodes an 8-bit grey/RGB/RGBA image as a PNG file with pngjs: adaptive filtering (each row gets
 * the filter with the smallest sum of residuals), deflate level 9 with zlib's default strategy.
 * pngjs replaced a hand-written encoder: AMD EPYC, min of 7 interleaved reps, 224×224 RGB 40.9 →
 * 16.2 ms, 224×224 RGBA 34.0 → 24.3 ms, 1024×768 RGBA 348.7 → 233.8 ms, 1024×768 RGB 262.7 → 166.5 ms,
 * with files of the same size (±0.05%) or smaller (a smooth 224×224 gradient: 28997 → 11560 B).
 * (pngjs' default Z_RLE strategy is faster still but made that gradient 73084 B.)
 */
export function encodePng(img: VizImage): Uint8Array {
  const ch = checkImage(img);
  const colorType = COLOR_TYPE[ch];
  const data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return PNG.sync.write({ width: img.width, height: img.height, data } as PNG, {
    colorType,
    inputColorType: colorType,
    inputHasAlpha: ch === 4,
    bitDepth: 8,
    filterType: -1,
    deflateLevel: 9,
    deflateStrategy: 0,
  });
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
