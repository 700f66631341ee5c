/**
 * Frame front-end: resize, crops, flips and the L³ colour augmentation, as pure functions on
 * {@link RgbFrame}s (uint8 HWC RGB). Every random choice comes from the {@link Rng} passed in.
 */
import type { RgbFrame } from "../media/types";
import { integerProblem, L3kitError, type Rng } from "../util";

/** Sizes of the frame transforms: the paper resizes the short side to 256 and crops 224. */
export interface FrameTransformOptions {
  /** Short side after resizing (paper: 256; small configs e.g. 128 or 73). */
  resizeTo: number;
  /** Square crop (paper: 224; small configs e.g. 112 or 64). */
  cropTo: number;
}

function checkFrame(frame: RgbFrame, what: string): void {
  const { width, height, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== width * height * 3) {
    throw new L3kitError(`${what}: bad frame ${width}x${height} with ${data.length} bytes (need width*height*3)`, {
      subject: "frame",
      reason: "bad-frame",
    });
  }
}

function checkSize(what: string, name: string, v: number): void {
  const problem = integerProblem(v, 1);
  if (problem) throw new L3kitError(`${what}: ${name} ${problem}`, { subject: "frame", reason: "bad-config" });
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  maxTaps: number;
}

/**
 * Resampling weights along one axis with a triangle (bilinear) kernel, widened by the scale factor
 * when shrinking so that every input pixel contributes (PIL's antialiased BILINEAR). Pixel centres
 * sit at i + 0.5 (half-pixel convention); when enlarging this is plain bilinear interpolation.
 */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(1, scale);
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support + 0.5));
    const hi = Math.min(inSize, Math.floor(centre + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const w = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      weights[o * maxTaps + (i - lo)] = w;
      total += w;
    }
    if (total > 0) for (let i = lo; i < hi; i++) weights[o * maxTaps + (i - lo)]! /= total;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, maxTaps };
}

/** Resizes to exactly `width` × `height` (antialiased bilinear, see {@link resizeShortSide}). */
export function resizeFrame(frame: RgbFrame, width: number, height: number): RgbFrame {
  checkFrame(frame, "resizeFrame");
  checkSize("resizeFrame", "width", width);
  checkSize("resizeFrame", "height", height);
  const { width: w0, height: h0, data } = frame;
  if (w0 === width && h0 === height) return { width, height, data: data.slice() };
  const tx = bilinearTaps(w0, width);
  const ty = bilinearTaps(h0, height);
  // horizontal pass: h0 rows × width columns, float
  const mid = new Float64Array(h0 * width * 3);
  for (let y = 0; y < h0; y++) {
    const row = y * w0 * 3;
    for (let x = 0; x < width; x++) {
      const s = tx.start[x]!;
      const n = tx.count[x]!;
      const wo = x * tx.maxTaps;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = 0; i < n; i++) {
        const w = tx.weights[wo + i]!;
        const p = row + (s + i) * 3;
        r += w * data[p]!;
        g += w * data[p + 1]!;
        b += w * data[p + 2]!;
      }
      const q = (y * width + x) * 3;
      mid[q] = r;
      mid[q + 1] = g;
      mid[q + 2] = b;
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ty.start[y]!;
    const n = ty.count[y]!;
    const wo = y * ty.maxTaps;
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = 0; i < n; i++) {
        const w = ty.weights[wo + i]!;
        const p = ((s + i) * width + x) * 3;
        r += w * mid[p]!;
        g += w * mid[p + 1]!;
        b += w * mid[p + 2]!;
      }
      const q = (y * width + x) * 3;
      out[q] = clampByte(r);
      out[q + 1] = clampByte(g);
      out[q + 2] = clampByte(b);
    }
  }
  return { width, height, data: out };
}

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * Resizes so that the shorter side is `short` (the longer one is scaled by the same factor and
 * rounded), with bilinear filtering (antialiased when shrinking, like PIL / torchvision
 * `Resize(antialias=True)`).
 */
export function resizeShortSide(frame: RgbFrame, short: number): RgbFrame {
  checkFrame(frame, "resizeShortSide");
  checkSize("resizeShortSide", "short", short);
  const { width, height } = frame;
  if (width <= height) return resizeFrame(frame, short, Math.max(1, Math.round((height * short) / width)));
  return resizeFrame(frame, Math.max(1, Math.round((width * short) / height)), short);
}

/** The `w` × `h` region whose top-left corner is (x, y). */
export function cropFrame(frame: RgbFrame, x: number, y: number, w: number, h: number): RgbFrame {
  checkFrame(frame, "cropFrame");
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || w < 1 || h < 1 || x + w > frame.width || y + h > frame.height) {
    throw new L3kitError(`crop ${w}x${h} at (${x}, ${y}) does not fit in a ${frame.width}x${frame.height} frame`, {
      subject: "frame",
      reason: "bad-crop",
    });
  }
  const out = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) {
    const src = ((y + r) * frame.width + x) * 3;
    out.set(frame.data.subarray(src, src + w * 3), r * w * 3);
  }
  return { width: w, height: h, data: out };
}

function checkCrop(frame: RgbFrame, size: number, what: string): void {
  checkFrame(frame, what);
  checkSize(what, "size", size);
  if (size > frame.width || size > frame.height) {
    throw new L3kitError(`${what}: a ${size}x${size} crop does not fit in a ${frame.width}x${frame.height} frame`, {
      subject: "frame",
      reason: "bad-crop",
    });
  }
}

/** The centred `size` × `size` crop (offsets ⌊(w − size)/2⌋, ⌊(h − size)/2⌋). */
export function centerCrop(frame: RgbFrame, size: number): RgbFrame {
  checkCrop(frame, size, "centerCrop");
  return cropFrame(frame, Math.floor((frame.width - size) / 2), Math.floor((frame.height - size) / 2), size, size);
}

/** A `size` × `size` crop at a uniformly random position (x then y drawn from `rng`). */
export function randomCrop(frame: RgbFrame, size: number, rng: Rng): RgbFrame {
  checkCrop(frame, size, "randomCrop");
  const x = rng.int(frame.width - size + 1);
  const y = rng.int(frame.height - size + 1);
  return cropFrame(frame, x, y, size, size);
}

/** Mirrors the frame left–right. */
export function flipHorizontal(frame: RgbFrame): RgbFrame {
  checkFrame(frame, "flipHorizontal");
  const { width, height, data } = frame;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { width, height, data: out };
}

/** Scales HSV saturation of float RGB (0–1) in place by `factor`, clipping S to [0, 1] (tf.image.adjust_saturation). */
function saturateInPlace(px: Float64Array, factor: number): void {
  for (let i = 0; i < px.length; i += 3) {
    const r = px[i]!;
    const g = px[i + 1]!;
    const b = px[i + 2]!;
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    if (max <= 0 || max === min) continue; // grey: saturation 0 stays 0
    const s = (max - min) / max;
    const s2 = Math.min(1, Math.max(0, s * factor));
    // keep hue and value: each channel is max − (max − c)·s2/s
    const k = s2 / s;
    px[i] = max - (max - r) * k;
    px[i + 1] = max - (max - g) * k;
    px[i + 2] = max - (max - b) * k;
  }
}

function brightenInPlace(px: Float64Array, delta: number): void {
  for (let i = 0; i < px.length; i++) px[i] = Math.min(1, Math.max(0, px[i]! + delta));
}

function toFloat64(frame: RgbFrame): Float64Array {
  const px = new Float64Array(frame.data.length);
  for (let i = 0; i < px.length; i++) px[i] = frame.data[i]! / 255;
  return px;
}

function fromFloat64(px: Float64Array, width: number, height: number): RgbFrame {
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = clampByte(px[i]! * 255);
  return { width, height, data: out };
}

/** Multiplies HSV saturation by `factor` (hue and value kept; S clipped to [0, 1]). */
export function adjustSaturation(frame: RgbFrame, factor: number): RgbFrame {
  checkFrame(frame, "adjustSaturation");
  const px = toFloat64(frame);
  saturateInPlace(px, factor);
  return fromFloat64(px, frame.width, frame.height);
}

/** Adds `delta` (in [0, 1] intensity units, e.g. 32/255) to every channel, clipped to [0, 1]. */
export function adjustBrightness(frame: RgbFrame, delta: number): RgbFrame {
  checkFrame(frame, "adjustBrightness");
  const px = toFloat64(frame);
  brightenInPlace(px, delta);
  return fromFloat64(px, frame.width, frame.height);
}

/**
 * The L³ training transform: resize the short side to `resizeTo`, random `cropTo` square crop,
 * horizontal flip with p = 0.5, then saturation ×U[0.5, 1.5] (HSV, as tf.image.random_saturation)
 * and brightness +U[−32/255, 32/255] (as tf.image.random_brightness) in random order, computed in
 * float and rounded once. Draws, in order: crop x, crop y, flip, order, saturation, brightness.
 */
export function trainTransform(frame: RgbFrame, rng: Rng, opts: FrameTransformOptions): RgbFrame {
  checkTransformOptions(opts);
  const resized = resizeShortSide(frame, opts.resizeTo);
  let out = randomCrop(resized, opts.cropTo, rng);
  if (rng.bool(0.5)) out = flipHorizontal(out);
  const saturationFirst = rng.bool(0.5);
  const factor = rng.uniform(0.5, 1.5);
  const delta = rng.uniform(-32 / 255, 32 / 255);
  const px = toFloat64(out);
  if (saturationFirst) {
    saturateInPlace(px, factor);
    brightenInPlace(px, delta);
  } else {
    brightenInPlace(px, delta);
    saturateInPlace(px, factor);
  }
  return fromFloat64(px, out.width, out.height);
}

/** The evaluation transform: resize the short side to `resizeTo`, then the centre `cropTo` crop. */
export function evalTransform(frame: RgbFrame, opts: FrameTransformOptions): RgbFrame {
  checkTransformOptions(opts);
  return centerCrop(resizeShortSide(frame, opts.resizeTo), opts.cropTo);
}

function checkTransformOptions(opts: FrameTransformOptions): void {
  checkSize("frame transform", "resizeTo", opts.resizeTo);
  checkSize("frame transform", "cropTo", opts.cropTo);
  if (opts.cropTo > opts.resizeTo) {
    throw new L3kitError(`cropTo ${opts.cropTo} is larger than resizeTo ${opts.resizeTo}`, {
      subject: "frame transform",
      reason: "bad-config",
    });
  }
}

/** The frame as HWC float32 in [0, 1] (value / 255). */
export function frameToFloat(frame: RgbFrame): Float32Array {
  checkFrame(frame, "frameToFloat");
  const out = new Float32Array(frame.data.length);
  for (let i = 0; i < out.length; i++) out[i] = frame.data[i]! / 255;
  return out;
}
