/**
 * One synthetic clip: the plan (every random choice, drawn from one seeded generator per clip, so
 * clips can be made in any order or in parallel), its audio mix, and a frame renderer that also
 * returns the ground-truth boxes (and, for tests, per-object coverage masks).
 */
import type { Box, BoxFrame } from "../types";
import { Rng } from "../../util";
import {
  drawSynthNoise,
  drawSynthSoundInstance,
  type SynthNoiseSpec,
  type SynthSoundInstance,
  synthesizeSynthNoise,
  synthesizeSynthSound,
  synthFrameEnvelope,
} from "./audio";
import type { SynthClass, SynthShape, SynthTexture } from "./classes";
import {
  drawSynthBackgroundSpec,
  drawSynthObject,
  drawSynthPatch,
  drawSynthPatchInto,
  renderSynthBackground,
  type SynthBackgroundSpec,
  type SynthPatchSpec,
  type SynthPixelExtent,
  synthHsvToRgb,
  synthToRgb24,
} from "./render";

/** Size, rate and duration shared by every clip of a dataset. */
export interface SynthRenderConfig {
  width: number;
  height: number;
  fps: number;
  durationSec: number;
  sampleRate: number;
  /**
   * Range [lo, hi) of object radii as a fraction of min(width, height), before the pulse (default
   * {@link SYNTH_DEFAULT_OBJECT_RADIUS}); the `realistic` profile's larger objects cover 15–40% of the frame.
   */
  objectRadius?: [number, number];
}

/** Object radii (fraction of min(width, height)) of the `tiny` and `default` profiles: boxes of about 7% of the frame. */
export const SYNTH_DEFAULT_OBJECT_RADIUS: [number, number] = [0.11, 0.17];

/** A moving object's path in normalised coordinates. */
export interface SynthPath {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** Sinusoidal wobble across the direction of travel. */
  wobbleAmp: number;
  wobbleHz: number;
  wobblePhase: number;
  /** Direction of the wobble, radians. */
  wobbleAngle: number;
  /** Positions are clamped to [min, max] on each axis (normalised). */
  clamp: [number, number, number, number];
}

/** One object of a clip (the sounding one or a silent distractor). */
export interface SynthObjectSpec {
  classIndex: number;
  label: string;
  sounding: boolean;
  shape: SynthShape;
  texture: SynthTexture;
  hue: number;
  sat: number;
  val: number;
  altValue: number;
  textureFreq: number;
  /** Radius as a fraction of min(width, height), before the pulse. */
  radius: number;
  path: SynthPath;
  angle0: number;
  /** Rotation speed, radians per second. */
  spin: number;
  /** Size pulse depth: scale = 1 + pulse · (2·env − 1). */
  pulse: number;
  /** The object's sound (silent distractors only use its envelope, to pulse alike). */
  sound: SynthSoundInstance;
}

/** How the sounding object is made hard to see, if at all. */
export type SynthOcclusion = "none" | "occluder" | "distractor" | "border";

/** Every random choice of one clip. */
export interface SynthClipSpec extends SynthRenderConfig {
  index: number;
  id: string;
  classIndex: number;
  label: string;
  frames: number;
  /** objects[0] is the sounding object; the rest are silent distractors of other classes. */
  objects: SynthObjectSpec[];
  /** Indices into `objects`, back to front. */
  zOrder: number[];
  background: SynthBackgroundSpec;
  /** A static patch drawn in front of every object (occlusion "occluder"). */
  occluder: SynthPatchSpec | null;
  occlusion: SynthOcclusion;
  noise: SynthNoiseSpec;
  /** Object sound to background noise ratio, dB. */
  snrDb: number;
  /** Loudness jitter: the mix is normalised to {@link SYNTH_TARGET_RMS} · 10^(gainDb/20). */
  gainDb: number;
}

/** RMS the audio mix is normalised to before the (class-independent) gain jitter: −28 dBFS (headroom for percussive sounds with a crest factor near 20). */
export const SYNTH_TARGET_RMS = 0.04;

const r4 = (x: number) => Math.round(x * 10000) / 10000;

/** Number of frames of a clip: round(duration · fps). */
export function synthFrameCount(cfg: SynthRenderConfig): number {
  return Math.round(cfg.durationSec * cfg.fps);
}

function drawObject(cls: SynthClass, rng: Rng, sounding: boolean, radius: [number, number]): Omit<SynthObjectSpec, "path"> {
  const v = cls.visual;
  return {
    classIndex: cls.index,
    label: cls.name,
    sounding,
    shape: v.shape,
    texture: v.texture,
    hue: r4((v.hue + rng.uniform(-v.hueJitter, v.hueJitter) + 1) % 1),
    sat: r4(rng.uniform(0.55, 1)),
    val: r4(rng.uniform(0.65, 1)),
    altValue: v.altValue,
    textureFreq: r4(v.textureFreq * rng.uniform(0.85, 1.15)),
    radius: r4(rng.uniform(radius[0], radius[1])),
    angle0: r4(rng.uniform(0, 2 * Math.PI)),
    spin: r4(rng.uniform(-0.6, 0.6)),
    pulse: r4(rng.uniform(0.08, 0.16)),
    sound: drawSynthSoundInstance(cls, rng),
  };
}

function drawPath(rng: Rng, rx: number, ry: number): SynthPath {
  const clamp: [number, number, number, number] = [r4(0.9 * rx), r4(1 - 0.9 * rx), r4(0.9 * ry), r4(1 - 0.9 * ry)];
  const x0 = rng.uniform(rx, 1 - rx);
  const y0 = rng.uniform(ry, 1 - ry);
  const dir = rng.uniform(0, 2 * Math.PI);
  const len = rng.uniform(0.1, 0.45);
  const x1 = Math.min(1 - rx, Math.max(rx, x0 + len * Math.cos(dir)));
  const y1 = Math.min(1 - ry, Math.max(ry, y0 + len * Math.sin(dir)));
  return {
    x0: r4(x0),
    y0: r4(y0),
    x1: r4(x1),
    y1: r4(y1),
    wobbleAmp: r4(rng.uniform(0, 0.05)),
    wobbleHz: r4(rng.uniform(0.15, 0.6)),
    wobblePhase: r4(rng.uniform(0, 2 * Math.PI)),
    wobbleAngle: r4(dir + Math.PI / 2),
    clamp,
  };
}

/** Position of a path at time t of a clip lasting `duration` seconds (normalised coordinates). */
export function synthPathAt(p: SynthPath, t: number, duration: number): [number, number] {
  const a = duration > 0 ? t / duration : 0;
  const w = p.wobbleAmp * Math.sin(2 * Math.PI * p.wobbleHz * t + p.wobblePhase);
  const x = p.x0 + (p.x1 - p.x0) * a + w * Math.cos(p.wobbleAngle);
  const y = p.y0 + (p.y1 - p.y0) * a + w * Math.sin(p.wobbleAngle);
  return [Math.min(p.clamp[1], Math.max(p.clamp[0], x)), Math.min(p.clamp[3], Math.max(p.clamp[2], y))];
}

/** The id of the synthetic benchmark's clip `index`: `clip-000042`. */
export function synthClipId(index: number): string {
  return `clip-${String(index).padStart(6, "0")}`;
}

/**
 * Plans clip `index` of class `classIndex`: objects, paths, background, occlusion, noise and levels.
 * The plan depends only on (seed, index, classIndex, classes, cfg).
 */
export function planSynthClip(
  cfg: SynthRenderConfig,
  classes: readonly SynthClass[],
  seed: number | string,
  index: number,
  classIndex: number,
): SynthClipSpec {
  const rng = new Rng(`l3kit-synth:${seed}:clip:${index}`);
  const K = classes.length;
  const cls = classes[classIndex];
  if (!cls) throw new RangeError(`planSynthClip: class ${classIndex} out of range (K = ${K})`);
  const minDim = Math.min(cfg.width, cfg.height);
  const sx = minDim / cfg.width;
  const sy = minDim / cfg.height;

  const u = rng.next();
  const occlusion: SynthOcclusion = u < 0.8 ? "none" : u < 0.87 ? "occluder" : u < 0.93 ? "distractor" : "border";
  let nd = rng.pick([0, 1, 1, 2, 2, 0, 1, 2, 1, 0]);
  if (occlusion === "distractor") nd = Math.max(1, nd);
  nd = Math.min(nd, K - 1);
  const others = rng.shuffle(classes.map((_, i) => i).filter((i) => i !== classIndex)).slice(0, nd);

  const radius = cfg.objectRadius ?? SYNTH_DEFAULT_OBJECT_RADIUS;
  const main = drawObject(cls, rng, true, radius);
  let mainPath = drawPath(rng, main.radius * sx, main.radius * sy);
  if (occlusion === "border") {
    const edge = rng.int(4);
    const off = rng.uniform(0, 0.5);
    const a = rng.uniform(0.2, 0.8);
    const b = Math.min(0.85, Math.max(0.15, a + rng.uniform(-0.35, 0.35)));
    const rx = main.radius * sx;
    const ry = main.radius * sy;
    const fixed = [off * rx, 1 - off * rx, off * ry, 1 - off * ry][edge] as number;
    const vertical = edge < 2; // left/right edge: moves along y
    mainPath = {
      x0: r4(vertical ? fixed : a),
      y0: r4(vertical ? a : fixed),
      x1: r4(vertical ? fixed : b),
      y1: r4(vertical ? b : fixed),
      wobbleAmp: 0,
      wobbleHz: 0,
      wobblePhase: 0,
      wobbleAngle: 0,
      clamp: [-1, 2, -1, 2],
    };
  }
  const objects: SynthObjectSpec[] = [{ ...main, path: mainPath }];
  for (let d = 0; d < nd; d++) {
    const o = drawObject(classes[others[d] as number] as SynthClass, rng, false, radius);
    let path = drawPath(rng, o.radius * sx, o.radius * sy);
    if (occlusion === "distractor" && d === 0) {
      const ang = rng.uniform(0, 2 * Math.PI);
      const dist = rng.uniform(0.45, 0.8) * (main.radius + o.radius);
      const dx = dist * Math.cos(ang) * sx;
      const dy = dist * Math.sin(ang) * sy;
      path = {
        ...mainPath,
        x0: r4(mainPath.x0 + dx),
        y0: r4(mainPath.y0 + dy),
        x1: r4(mainPath.x1 + dx),
        y1: r4(mainPath.y1 + dy),
        clamp: [-1, 2, -1, 2],
      };
    }
    objects.push({ ...o, path });
  }
  let zOrder = rng.shuffle(objects.map((_, i) => i));
  if (occlusion === "distractor") {
    // The occluding distractor must be in front of the sounding object.
    const rest = zOrder.filter((i) => i !== 0 && i !== 1);
    zOrder = [...rest.slice(0, rng.int(rest.length + 1)), 0, 1];
    zOrder = [...zOrder, ...rest.filter((i) => !zOrder.includes(i))];
  }
  const background = drawSynthBackgroundSpec(rng);
  let occluder: SynthPatchSpec | null = null;
  if (occlusion === "occluder") {
    const [mx, my] = synthPathAt(mainPath, cfg.durationSec / 2, cfg.durationSec);
    const vertical = rng.bool();
    const rxy = vertical ? main.radius * sx : main.radius * sy;
    // A bar over one side of the object's mid-clip position: hides roughly 20–70% of it there.
    const half = rng.uniform(0.35, 0.7) * rxy;
    const shift = (rng.bool() ? 1 : -1) * rng.uniform(0.25, 0.9) * rxy;
    const span = rng.uniform(0.3, 0.5);
    occluder = vertical
      ? drawSynthPatch(rng, { cx: mx + shift, cy: my + rng.uniform(-0.2, 0.2), hw: half, hh: span })
      : drawSynthPatch(rng, { cx: mx + rng.uniform(-0.2, 0.2), cy: my + shift, hw: span, hh: half });
  }
  return {
    ...cfg,
    index,
    id: synthClipId(index),
    classIndex,
    label: cls.name,
    frames: synthFrameCount(cfg),
    objects,
    zOrder,
    background,
    occluder,
    occlusion,
    noise: drawSynthNoise(rng),
    snrDb: r4(rng.uniform(0, 20)),
    gainDb: r4(rng.uniform(-3, 3)),
  };
}

/** A clip's audio mix and the per-frame envelopes that drive each object's pulse. */
export interface SynthClipAudio {
  /** Mono mix at `sampleRate`, RMS = {@link SYNTH_TARGET_RMS} · 10^(gainDb/20), clipped to [−1, 1]. */
  samples: Float32Array;
  sampleRate: number;
  /** Per object (same order as `objects`), one value per frame in [0, 1]. */
  envelopes: Float32Array[];
  /** Samples that hit the ±1 limit (0 in practice). */
  clipped: number;
}

/** Synthesises the sounding object's sound, the background noise at the clip's SNR, and the envelopes. */
export function synthesizeSynthClipAudio(spec: SynthClipSpec): SynthClipAudio {
  const sr = spec.sampleRate;
  const n = Math.round(spec.durationSec * sr);
  const envelopes: Float32Array[] = [];
  let samples = new Float32Array(n);
  spec.objects.forEach((o, i) => {
    const s = synthesizeSynthSound(o.sound, spec.durationSec, sr, { envelopeOnly: i !== 0 });
    envelopes.push(synthFrameEnvelope(s.amp, spec.fps, spec.frames, sr));
    if (i === 0 && s.samples) samples = s.samples;
  });
  const noise = synthesizeSynthNoise(spec.noise, n, sr);
  const ng = 10 ** (-spec.snrDb / 20);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const v = (samples[i] as number) + ng * (noise[i] as number);
    samples[i] = v;
    ss += v * v;
  }
  const rms = Math.sqrt(ss / Math.max(1, n));
  const g = rms > 0 ? (SYNTH_TARGET_RMS * 10 ** (spec.gainDb / 20)) / rms : 0;
  let clipped = 0;
  for (let i = 0; i < n; i++) {
    let v = (samples[i] as number) * g;
    if (v > 1) {
      v = 1;
      clipped++;
    } else if (v < -1) {
      v = -1;
      clipped++;
    }
    samples[i] = v;
  }
  return { samples, sampleRate: sr, envelopes, clipped };
}

/** One rendered frame. */
export interface SynthFrame {
  /** rgb24, HWC. */
  rgb: Uint8Array;
  /** Boxes at t = index / fps (see {@link createSynthClipRenderer} for the box definition). */
  boxes: BoxFrame;
  /** Fraction of the sounding object's coverage hidden by objects or the occluder in front of it. */
  soundingOccluded: number;
  /** Per-object anti-aliased coverage (W·H, same order as `objects`), only with `masks: true`. */
  masks?: Float32Array[];
}

/** Options of a frame render. */
export interface SynthFrameOptions {
  /** Draw the objects (default true). False renders the static scene only: background, patches, occluder. */
  objects?: boolean;
  /** Return per-object coverage masks. */
  masks?: boolean;
}

function boxOf(ext: SynthPixelExtent, w: number, h: number, label: string): Box {
  const dn = (v: number) => Math.floor(v * 1e6) / 1e6;
  const up = (v: number) => Math.ceil(v * 1e6) / 1e6;
  return { x1: dn(ext.x0 / w), y1: dn(ext.y0 / h), x2: up((ext.x1 + 1) / w), y2: up((ext.y1 + 1) / h), label };
}

/** The pose of object `o` of a clip at frame `f`, given its envelope value there. */
export function synthObjectPose(spec: SynthClipSpec, o: SynthObjectSpec, f: number, env: number) {
  const t = f / spec.fps;
  const [x, y] = synthPathAt(o.path, t, spec.durationSec);
  const minDim = Math.min(spec.width, spec.height);
  const scale = 1 + o.pulse * (2 * env - 1);
  const val = o.val * (0.85 + 0.15 * env);
  const base = synthHsvToRgb(o.hue, o.sat, val);
  const alt = o.altValue < 1 ? synthHsvToRgb(o.hue, o.sat, val * o.altValue) : synthHsvToRgb(o.hue, o.sat * 0.4, Math.min(1, val * 1.25));
  return {
    shape: o.shape,
    texture: o.texture,
    cx: x * spec.width,
    cy: y * spec.height,
    radius: o.radius * minDim * scale,
    angle: o.angle0 + o.spin * t,
    base,
    alt,
    textureFreq: o.textureFreq,
  };
}

/**
 * A renderer for one clip. Frame `f` shows time t = f / fps (it is displayed during [t, t + 1/fps)).
 *
 * Boxes are normalised `[x1, y1, x2, y2]` of the pixel-aligned bounding rectangle of every pixel
 * the object covers, even partly (anti-aliased edge), **before occlusion** (so an occluded object
 * keeps its full box) and clipped to the frame. Objects fully outside the frame get no box.
 */
export function createSynthClipRenderer(spec: SynthClipSpec, envelopes: Float32Array[]) {
  const { width: W, height: H } = spec;
  const bg = renderSynthBackground(spec.background, W, H);
  const frameBuf = new Float32Array(W * H * 3);
  const maskBufs = spec.objects.map(() => new Float32Array(W * H));
  const occMask = spec.occluder ? new Float32Array(W * H) : null;
  if (spec.occluder && occMask) drawSynthPatchInto(new Float32Array(W * H * 3), W, H, spec.occluder, occMask);
  return {
    spec,
    /** Renders frame `f` (0 ≤ f < spec.frames). */
    frame(f: number, opts: SynthFrameOptions = {}): SynthFrame {
      if (!(Number.isInteger(f) && f >= 0 && f < spec.frames))
        throw new RangeError(`${spec.id}: frame ${f} out of range [0, ${spec.frames})`);
      frameBuf.set(bg);
      const extents: Array<SynthPixelExtent | null> = spec.objects.map(() => null);
      for (const m of maskBufs) m.fill(0);
      for (const oi of spec.zOrder) {
        const o = spec.objects[oi] as SynthObjectSpec;
        const pose = synthObjectPose(spec, o, f, (envelopes[oi] as Float32Array)[f] as number);
        // With objects off, draw into a scratch frame so masks and boxes still come out.
        const target = opts.objects === false ? new Float32Array(W * H * 3) : frameBuf;
        extents[oi] = drawSynthObject(target, W, H, pose, maskBufs[oi]);
      }
      if (spec.occluder) drawSynthPatchInto(frameBuf, W, H, spec.occluder);
      // Visibility of the sounding object: its coverage times the transparency of everything above.
      const above = spec.zOrder.slice(spec.zOrder.indexOf(0) + 1);
      const m0 = maskBufs[0] as Float32Array;
      let total = 0;
      let visible = 0;
      for (let i = 0; i < W * H; i++) {
        const c = m0[i] as number;
        if (c === 0) continue;
        let v = c;
        for (const a of above) v *= 1 - ((maskBufs[a] as Float32Array)[i] as number);
        if (occMask) v *= 1 - (occMask[i] as number);
        total += c;
        visible += v;
      }
      const boxes: BoxFrame = { t: Math.round((f / spec.fps) * 1e6) / 1e6, sounding: [], distractors: [] };
      spec.objects.forEach((o, i) => {
        const e = extents[i];
        if (!e) return;
        const b = boxOf(e, W, H, o.label);
        if (i === 0) boxes.sounding.push(b);
        else boxes.distractors?.push(b);
      });
      return {
        rgb: synthToRgb24(frameBuf),
        boxes,
        soundingOccluded: total > 0 ? 1 - visible / total : 1,
        masks: opts.masks ? maskBufs.map((m) => m.slice()) : undefined,
      };
    },
  };
}
