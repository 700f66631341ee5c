/**
 * Typed-array rasterisation for the synthetic benchmark: anti-aliased shapes from signed distance
 * functions, textures in each object's rotating frame, static backgrounds and patches. Frames are
 * Float32 RGB in [0, 1] while drawing and rgb24 (HWC) at the end.
 */
import { Rng } from "../../util";
import type { SynthShape, SynthTexture } from "./classes";

/** HSV (all in [0, 1]) → RGB in [0, 1]. */
export function synthHsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const hh = (((h % 1) + 1) % 1) * 6;
  const i = Math.floor(hh);
  const f = hh - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (i % 6) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

function regular(n: number, r: number, rot = -Math.PI / 2): number[] {
  const v: number[] = [];
  for (let i = 0; i < n; i++) v.push(r * Math.cos(rot + (2 * Math.PI * i) / n), r * Math.sin(rot + (2 * Math.PI * i) / n));
  return v;
}

function star(n: number, ro: number, ri: number): number[] {
  const v: number[] = [];
  for (let i = 0; i < 2 * n; i++) {
    const r = i % 2 === 0 ? ro : ri;
    const a = -Math.PI / 2 + (Math.PI * i) / n;
    v.push(r * Math.cos(a), r * Math.sin(a));
  }
  return v;
}

const POLYGONS: Partial<Record<SynthShape, Float64Array>> = {
  triangle: Float64Array.from(regular(3, 1)),
  star: Float64Array.from(star(5, 1, 0.45)),
  diamond: Float64Array.from([0, -1, 0.68, 0, 0, 1, -0.68, 0]),
  hexagon: Float64Array.from(regular(6, 0.95, 0)),
  pentagon: Float64Array.from(regular(5, 0.98)),
  arrow: Float64Array.from([-0.95, -0.28, 0.15, -0.28, 0.15, -0.65, 0.98, 0, 0.15, 0.65, 0.15, 0.28, -0.95, 0.28]),
};

/** Exact signed distance to a polygon (negative inside), after Inigo Quilez. */
function sdPolygon(px: number, py: number, v: Float64Array): number {
  const n = v.length / 2;
  let d = (px - (v[0] as number)) ** 2 + (py - (v[1] as number)) ** 2;
  let s = 1;
  for (let i = 0, j = n - 1; i < n; j = i, i++) {
    const vix = v[2 * i] as number;
    const viy = v[2 * i + 1] as number;
    const vjx = v[2 * j] as number;
    const vjy = v[2 * j + 1] as number;
    const ex = vjx - vix;
    const ey = vjy - viy;
    const wx = px - vix;
    const wy = py - viy;
    const h = Math.min(1, Math.max(0, (wx * ex + wy * ey) / (ex * ex + ey * ey)));
    const bx = wx - ex * h;
    const by = wy - ey * h;
    d = Math.min(d, bx * bx + by * by);
    const c1 = py >= viy;
    const c2 = py < vjy;
    const c3 = ex * wy > ey * wx;
    if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
  }
  return s * Math.sqrt(d);
}

function sdBox(px: number, py: number, bx: number, by: number): number {
  const qx = Math.abs(px) - bx;
  const qy = Math.abs(py) - by;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0);
}

/** Signed distance (negative inside) of a unit-frame shape; every shape lies within radius 1. */
export function synthShapeSdf(shape: SynthShape, u: number, v: number): number {
  const poly = POLYGONS[shape];
  if (poly) return sdPolygon(u, v, poly);
  switch (shape) {
    case "circle":
      return Math.hypot(u, v) - 0.95;
    case "square":
      return sdBox(u, v, 0.7, 0.7);
    case "ring":
      return Math.abs(Math.hypot(u, v) - 0.68) - 0.27;
    case "cross":
      return Math.min(sdBox(u, v, 0.95, 0.3), sdBox(u, v, 0.3, 0.95));
    case "crescent":
      return Math.max(Math.hypot(u, v) - 0.95, -(Math.hypot(u - 0.42, v + 0.1) - 0.72));
    case "halfdisc":
      return Math.max(Math.hypot(u, v - 0.3) - 0.95, v - 0.3);
    default:
      throw new RangeError(`unknown shape ${shape}`);
  }
}

/** What {@link drawSynthObject} needs about an object at one instant. */
export interface SynthObjectPose {
  shape: SynthShape;
  texture: SynthTexture;
  /** Centre in pixels (may lie outside the frame). */
  cx: number;
  cy: number;
  /** Radius in pixels of the unit frame. */
  radius: number;
  /** Rotation in radians. */
  angle: number;
  base: [number, number, number];
  alt: [number, number, number];
  textureFreq: number;
}

/** Pixel-aligned extent of what a draw touched (inclusive pixel indices), or null when nothing. */
export interface SynthPixelExtent {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Draws an object into a Float32 RGB frame (alpha-blended by anti-aliased coverage) and, when
 * `mask` is given, writes its coverage there (mask must be zeroed by the caller). Returns the extent
 * of pixels with coverage > 0, before any occlusion and clipped to the frame.
 */
export function drawSynthObject(
  frame: Float32Array,
  width: number,
  height: number,
  o: SynthObjectPose,
  mask?: Float32Array,
): SynthPixelExtent | null {
  const R = o.radius;
  const bound = R + 1.5;
  const xa = Math.max(0, Math.floor(o.cx - bound));
  const xb = Math.min(width - 1, Math.ceil(o.cx + bound));
  const ya = Math.max(0, Math.floor(o.cy - bound));
  const yb = Math.min(height - 1, Math.ceil(o.cy + bound));
  const cos = Math.cos(o.angle);
  const sin = Math.sin(o.angle);
  const f = o.textureFreq;
  const [br, bg, bb] = o.base;
  const [ar, ag, ab] = o.alt;
  let ext: SynthPixelExtent | null = null;
  for (let y = ya; y <= yb; y++) {
    const dy = y + 0.5 - o.cy;
    for (let x = xa; x <= xb; x++) {
      const dx = x + 0.5 - o.cx;
      const u = (cos * dx + sin * dy) / R;
      const v = (-sin * dx + cos * dy) / R;
      const d = synthShapeSdf(o.shape, u, v) * R;
      const cov = d >= 0.5 ? 0 : d <= -0.5 ? 1 : 0.5 - d;
      if (cov <= 0) continue;
      let t = 0;
      switch (o.texture) {
        case "solid":
          break;
        case "stripes": {
          const m = Math.sin(Math.PI * f * u * 2);
          t = Math.min(1, Math.max(0, m * 2 + 0.5));
          break;
        }
        case "dots": {
          const gu = u * f - Math.round(u * f);
          const gv = v * f - Math.round(v * f);
          const dpx = ((Math.hypot(gu, gv) - 0.3) / f) * R;
          t = Math.min(1, Math.max(0, 0.5 - dpx));
          break;
        }
        case "checker":
          t = (Math.floor(u * f) + Math.floor(v * f)) & 1;
          break;
        case "gradient":
          t = Math.min(1, Math.max(0, (u + 1) / 2));
          break;
      }
      const i = (y * width + x) * 3;
      const cr = br + (ar - br) * t;
      const cg = bg + (ag - bg) * t;
      const cb = bb + (ab - bb) * t;
      frame[i] = (frame[i] as number) * (1 - cov) + cr * cov;
      frame[i + 1] = (frame[i + 1] as number) * (1 - cov) + cg * cov;
      frame[i + 2] = (frame[i + 2] as number) * (1 - cov) + cb * cov;
      if (mask) mask[y * width + x] = cov;
      if (!ext) ext = { x0: x, y0: y, x1: x, y1: y };
      else {
        if (x < ext.x0) ext.x0 = x;
        if (x > ext.x1) ext.x1 = x;
        if (y < ext.y0) ext.y0 = y;
        if (y > ext.y1) ext.y1 = y;
      }
    }
  }
  return ext;
}

/** A static textured rectangle (background patch or front occluder), in normalised coordinates. */
export interface SynthPatchSpec {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** HSV colour. */
  hsv: [number, number, number];
  texture: "solid" | "stripes" | "checker";
  /** Texture cells across the frame. */
  freq: number;
}

/** A clip's static background. */
export interface SynthBackgroundSpec {
  kind: "gradient" | "stripes" | "checker" | "noise" | "blobs";
  /** Two HSV colours (low saturation). */
  c1: [number, number, number];
  c2: [number, number, number];
  /** Direction of gradients/stripes, radians. */
  angle: number;
  /** Stripe/checker/noise cells across the frame. */
  freq: number;
  /** Amplitude of a smooth value-noise overlay and of static per-pixel grain. */
  noiseAmp: number;
  grainAmp: number;
  /** Patches drawn behind the objects. */
  patches: SynthPatchSpec[];
  seed: number;
}

const r4 = (x: number) => Math.round(x * 10000) / 10000;

/** Draws a background spec (colours kept at low saturation so objects stand out). */
export function drawSynthBackgroundSpec(rng: Rng): SynthBackgroundSpec {
  const kinds: SynthBackgroundSpec["kind"][] = ["gradient", "stripes", "checker", "noise", "blobs"];
  const h1 = rng.next();
  const v1 = rng.uniform(0.2, 0.8);
  const dv = rng.uniform(0.08, 0.3) * (v1 > 0.5 ? -1 : 1);
  const c1: [number, number, number] = [r4(h1), r4(rng.uniform(0, 0.35)), r4(v1)];
  const c2: [number, number, number] = [r4((h1 + rng.uniform(-0.15, 0.15) + 1) % 1), r4(rng.uniform(0, 0.35)), r4(v1 + dv)];
  const patches: SynthPatchSpec[] = [];
  const np = rng.int(3);
  for (let i = 0; i < np; i++) patches.push(drawSynthPatch(rng));
  return {
    kind: rng.pick(kinds),
    c1,
    c2,
    angle: r4(rng.uniform(0, Math.PI)),
    freq: r4(rng.uniform(2, 7)),
    noiseAmp: r4(rng.uniform(0.02, 0.08)),
    grainAmp: r4(rng.uniform(0, 0.03)),
    patches,
    seed: rng.nextUint32(),
  };
}

/** Draws a random low-saturation patch; `around` places it (centre x/y, half sizes) when given. */
export function drawSynthPatch(rng: Rng, around?: { cx: number; cy: number; hw: number; hh: number }): SynthPatchSpec {
  const hsv: [number, number, number] = [r4(rng.next()), r4(rng.uniform(0, 0.3)), r4(rng.uniform(0.15, 0.85))];
  const texture = rng.pick(["solid", "stripes", "checker"] as const);
  const freq = r4(rng.uniform(6, 16));
  if (around) {
    return {
      x1: r4(around.cx - around.hw),
      y1: r4(around.cy - around.hh),
      x2: r4(around.cx + around.hw),
      y2: r4(around.cy + around.hh),
      hsv,
      texture,
      freq,
    };
  }
  const w = rng.uniform(0.1, 0.4);
  const h = rng.uniform(0.1, 0.4);
  const x = rng.uniform(-0.05, 1.05 - w);
  const y = rng.uniform(-0.05, 1.05 - h);
  return { x1: r4(x), y1: r4(y), x2: r4(x + w), y2: r4(y + h), hsv, texture, freq };
}

/** Draws a patch (pixel centres inside the rectangle are covered); `mask` gets 1 where covered. */
export function drawSynthPatchInto(frame: Float32Array, width: number, height: number, p: SynthPatchSpec, mask?: Float32Array): void {
  const [r, g, b] = synthHsvToRgb(p.hsv[0], p.hsv[1], p.hsv[2]);
  const [r2, g2, b2] = synthHsvToRgb(p.hsv[0], p.hsv[1], p.hsv[2] * 0.7);
  const xa = Math.max(0, Math.ceil(p.x1 * width - 0.5));
  const xb = Math.min(width - 1, Math.floor(p.x2 * width - 0.5));
  const ya = Math.max(0, Math.ceil(p.y1 * height - 0.5));
  const yb = Math.min(height - 1, Math.floor(p.y2 * height - 0.5));
  for (let y = ya; y <= yb; y++) {
    const ny = (y + 0.5) / height;
    for (let x = xa; x <= xb; x++) {
      const nx = (x + 0.5) / width;
      let alt = false;
      if (p.texture === "stripes") alt = Math.floor(nx * p.freq) % 2 === 1;
      else if (p.texture === "checker") alt = (Math.floor(nx * p.freq) + Math.floor(ny * p.freq)) % 2 === 1;
      const i = (y * width + x) * 3;
      frame[i] = alt ? r2 : r;
      frame[i + 1] = alt ? g2 : g;
      frame[i + 2] = alt ? b2 : b;
      if (mask) mask[y * width + x] = 1;
    }
  }
}

function smooth(t: number): number {
  return t * t * (3 - 2 * t);
}

/** Renders a background spec (with its patches) into a new Float32 RGB frame. */
export function renderSynthBackground(spec: SynthBackgroundSpec, width: number, height: number): Float32Array {
  const rng = new Rng(spec.seed);
  const out = new Float32Array(width * height * 3);
  const c1 = synthHsvToRgb(...spec.c1);
  const c2 = synthHsvToRgb(...spec.c2);
  // Value-noise lattices: one for the "noise" kind, one for the overlay.
  const lattice = (n: number) => {
    const g = new Float32Array((n + 1) * (n + 1));
    for (let i = 0; i < g.length; i++) g[i] = rng.next();
    return (x: number, y: number) => {
      const fx = Math.min(n - 1e-9, Math.max(0, x * n));
      const fy = Math.min(n - 1e-9, Math.max(0, y * n));
      const ix = Math.floor(fx);
      const iy = Math.floor(fy);
      const tx = smooth(fx - ix);
      const ty = smooth(fy - iy);
      const a = g[iy * (n + 1) + ix] as number;
      const b = g[iy * (n + 1) + ix + 1] as number;
      const c = g[(iy + 1) * (n + 1) + ix] as number;
      const d = g[(iy + 1) * (n + 1) + ix + 1] as number;
      return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty;
    };
  };
  const cells = Math.max(2, Math.round(spec.freq));
  const kindNoise = lattice(cells);
  const overlay = lattice(4);
  const blobs: Array<[number, number, number]> = [];
  for (let i = 0; i < 4; i++) blobs.push([rng.next(), rng.next(), rng.uniform(0.08, 0.25)]);
  const ca = Math.cos(spec.angle);
  const sa = Math.sin(spec.angle);
  for (let y = 0; y < height; y++) {
    const ny = (y + 0.5) / height;
    for (let x = 0; x < width; x++) {
      const nx = (x + 0.5) / width;
      const proj = (nx - 0.5) * ca + (ny - 0.5) * sa;
      let t: number;
      switch (spec.kind) {
        case "gradient":
          t = Math.min(1, Math.max(0, proj + 0.5));
          break;
        case "stripes":
          t = 0.5 + 0.5 * Math.sin(2 * Math.PI * spec.freq * proj);
          break;
        case "checker":
          t = (Math.floor(nx * spec.freq) + Math.floor(ny * spec.freq)) & 1 ? 0.85 : 0.15;
          break;
        case "noise":
          t = kindNoise(nx, ny);
          break;
        default: {
          t = 0;
          for (const [bx, by, br] of blobs) t = Math.max(t, Math.exp(-((nx - bx) ** 2 + (ny - by) ** 2) / (2 * br * br)));
        }
      }
      const shade = spec.noiseAmp * (overlay(nx, ny) - 0.5) * 2 + spec.grainAmp * (rng.next() - 0.5) * 2;
      const i = (y * width + x) * 3;
      out[i] = c1[0] + (c2[0] - c1[0]) * t + shade;
      out[i + 1] = c1[1] + (c2[1] - c1[1]) * t + shade;
      out[i + 2] = c1[2] + (c2[2] - c1[2]) * t + shade;
    }
  }
  for (const p of spec.patches) drawSynthPatchInto(out, width, height, p);
  return out;
}

/** Float32 RGB in [0, 1] → rgb24 bytes (rounded, clamped). */
export function synthToRgb24(frame: Float32Array, out = new Uint8Array(frame.length)): Uint8Array {
  for (let i = 0; i < frame.length; i++) {
    const v = Math.round((frame[i] as number) * 255);
    out[i] = Math.min(255, Math.max(0, v));
  }
  return out;
}
