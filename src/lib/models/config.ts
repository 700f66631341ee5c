/**
 * L³-Net configurations: a short, JSON-serialisable description that fully determines the graph
 * (towers, fusion head, input front-ends), in the manner of torchvision's `vgg.py` config lists.
 *
 * A tower is `widths.length` blocks of [conv k×k (same padding, no bias) → batch norm → ReLU] ×
 * `convsPerBlock`; blocks 1…n−1 end with a 2×2 max-pool (stride 2, floor); the last block ends with a
 * max-pool over the whole remaining map. Conv layers carry no bias: batch norm follows each one, so
 * a bias would be absorbed by BN's β (the paper's parameter counts exclude biases too).
 */
import { z } from "zod";
import { ConfigError } from "../util";

/** Names of the fusion heads. */
export const FUSION_KINDS = ["concat", "euclidean", "cosine", "avol"] as const;
/**
 * A fusion head:
 * - `concat` — L³: concat → fc `head.hidden` + ReLU → fc 2 → softmax.
 * - `euclidean` — AVE-Net: each tower → fc hidden → ReLU → fc embedDim → L2-normalise; Euclidean
 *   distance → fc 1→2 → softmax.
 * - `cosine` — like `euclidean` but the score is the dot product of the normalised embeddings
 *   (cosine similarity) → fc 1→2 (a learnable scale and bias per logit).
 * - `avol` — AVOL-Net: every location of the last vision map → (1×1) fc hidden → ReLU → fc embedDim →
 *   L2-normalise; the audio embedding likewise; per-location dot product → similarity map (H×W); max over
 *   locations → fc 1→2.
 */
export type FusionKind = (typeof FUSION_KINDS)[number];

/** Names of the built-in presets. */
export const L3_PRESET_NAMES = ["paper", "lite", "tiny"] as const;
export type L3PresetName = (typeof L3_PRESET_NAMES)[number];

/** A value as the model config's messages show it. */
const show = (v: unknown): string => String(JSON.stringify(v));

/** A leaf's error: "missing" when the key is absent, else `f(value)`. */
const orMissing =
  (f: (v: unknown) => string) =>
  (iss: { input: unknown }): string =>
    iss.input === undefined ? "missing" : f(iss.input);

/** An integer in [min, max]. */
function int(max: number, min = 1) {
  const error = orMissing((v) => `expected an integer in [${min}, ${max}], got ${show(v)}`);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A positive, finite number. */
function positive() {
  const error = orMissing((v) => `expected a positive number, got ${show(v)}`);
  return z.number({ error }).positive({ error });
}

/** One of fixed names, e.g. `unknown fusion head "x" (valid: concat, …)`. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T, what: string) {
  return z.enum(values, { error: orMissing((v) => `unknown ${what} ${show(v)} (valid: ${values.join(", ")})`) });
}

/** An object with exactly these keys: another key is `unknown key (valid: …)`, an absent one `missing`. */
function keys<S extends z.ZodRawShape>(shape: S) {
  const valid = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown key (valid: ${valid})`
        : orMissing((v) => `expected an object, got ${Array.isArray(v) ? "an array" : show(v)}`)(iss),
  });
}

/**
 * The frame front-end: frames are resized so the short side is `resizeTo`, then (centre or random)
 * cropped to `size`×`size`. The model takes frames in [0, 1] and normalises them itself:
 * `symmetric` maps to [−1, 1] (x·2 − 1), `unit` keeps [0, 1].
 */
const VISION_FRONT_END = keys({
  size: int(4096),
  resizeTo: int(8192),
  normalize: oneOf(["symmetric", "unit"], "frame normalisation"),
});

const sampleRate = () => int(384000).refine((v) => v >= 1000, { error: (iss) => `expected at least 1000 Hz, got ${show(iss.input)}` });
const powerOfTwo = (max: number) =>
  int(max).refine((v) => (v & (v - 1)) === 0, { error: (iss) => `expected a power of two, got ${show(iss.input)}` });

/** A linear-frequency log-magnitude spectrogram (the paper's input: 48 kHz, win 480, hop 240, nFft 512 → 257×199). */
const LINEAR_FRONT_END = keys({
  kind: z.literal("linear"),
  sampleRate: sampleRate(),
  durationSec: positive(),
  nFft: powerOfTwo(65536),
  winLength: int(65536),
  hopLength: int(65536),
  /** `none`: frames from sample 0 (paper); `center`: winLength/2 zeros on each side (librosa center=True). */
  padding: oneOf(["none", "center"], "linear spectrogram padding"),
  /** `l3embedding`: ln(max(|X|, 1e-12)) / 5, as marl/l3embedding; `none`: ln(max(|X|, 1e-12)). */
  normalize: oneOf(["l3embedding", "none"], "spectrogram normalisation"),
});

/** A log-mel spectrogram in dB (OpenL3 style; the window is `nFft` long). */
const MEL_FRONT_END = keys({
  kind: z.literal("mel"),
  sampleRate: sampleRate(),
  durationSec: positive(),
  nFft: powerOfTwo(65536),
  hopLength: int(65536),
  nMels: int(1024),
  /** HTK mel scale (OpenL3's weights) or Slaney. */
  htk: z.boolean({ error: orMissing((v) => `expected true or false, got ${show(v)}`) }),
  /**
   * `same`: TensorFlow "same" framing, ⌈N/hop⌉ frames (kapre / OpenL3); `center`: nFft/2 zeros on each
   * side (librosa center=True); `none`: frames from sample 0.
   */
  padding: oneOf(["same", "center", "none"], "mel spectrogram padding"),
  /** Dynamic range of the dB values below the window's maximum (80 as OpenL3), or null for none. */
  topDb: positive().nullable(),
});

/** The audio front-end: how 1 s of mono audio becomes the tower's input (bins × frames × 1). */
const AUDIO_FRONT_END = z.discriminatedUnion("kind", [LINEAR_FRONT_END, MEL_FRONT_END], {
  error: orMissing((v) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? `unknown audio front-end kind ${show((v as { kind?: unknown }).kind)} (valid: linear, mel)`
      : "expected an object",
  ),
});

/** One VGG-style tower's fields. */
const TOWER = {
  /** Filters per block; the number of blocks is its length. Paper: [64, 128, 256, 512]. */
  widths: z
    .array(int(8192), { error: orMissing((v) => `expected 1 to 8 block widths, got ${show(v)}`) })
    .min(1, { error: (iss) => `expected 1 to 8 block widths, got ${show(iss.input)}` })
    .max(8, { error: (iss) => `expected 1 to 8 block widths, got ${show(iss.input)}` }),
  /** [conv → BN → ReLU] units per block (paper: 2). */
  convsPerBlock: int(8),
  /** Conv kernel size, odd (paper: 3). */
  kernelSize: int(11).refine((k) => k % 2 === 1, { error: (iss) => `expected an odd size (same padding), got ${show(iss.input)}` }),
  /**
   * The grid of the "larger pooled" probe feature: the last map adaptively max-pooled to
   * gridPool[0]×gridPool[1]×C (paper audio 4×3 → 6144-d; vision 4×4 → 8192-d).
   */
  gridPool: z.tuple([int(64), int(64)], { error: orMissing((v) => `expected [rows, cols], got ${show(v)}`) }),
};

/**
 * The full configuration of an L³-Net, declared once: its type, every key's check and message. It
 * determines the graph and the parameter names exactly; {@link validateL3Config} adds the checks
 * across keys (window and map sizes).
 */
export const L3_NET_CONFIG = keys({
  /** Informational: the preset it came from (not part of the graph; ignored when comparing configs). */
  name: z.string({ error: orMissing((v) => `expected a string, got ${show(v)}`) }),
  vision: keys({ frontEnd: VISION_FRONT_END, ...TOWER }),
  audio: keys({ frontEnd: AUDIO_FRONT_END, ...TOWER }),
  fusion: oneOf(FUSION_KINDS, "fusion head"),
  /** Sizes of the fusion head's layers: the hidden fc width (concat: fc 128 + ReLU; AVE/cosine/AVOL: the first projection) and the L2-normalised embedding's (paper: 128). */
  head: keys({ hidden: int(65536), embedDim: int(65536) }),
  /** Batch-norm settings (Keras defaults; moving = momentum·moving + (1 − momentum)·batch). */
  batchNorm: keys({
    momentum: z
      .number({ error: orMissing((v) => `expected a number in [0, 1), got ${show(v)}`) })
      .min(0, { error: (iss) => `expected a number in [0, 1), got ${show(iss.input)}` })
      .lt(1, { error: (iss) => `expected a number in [0, 1), got ${show(iss.input)}` }),
    epsilon: positive(),
  }),
});

/** The frame front-end ({@link L3_NET_CONFIG}'s `vision.frontEnd`). */
export type VisionFrontEnd = z.output<typeof VISION_FRONT_END>;
/** A linear-frequency log-magnitude spectrogram front-end. */
export type LinearAudioFrontEnd = z.output<typeof LINEAR_FRONT_END>;
/** A log-mel spectrogram front-end. */
export type MelAudioFrontEnd = z.output<typeof MEL_FRONT_END>;
/** The audio front-end: how 1 s of mono audio becomes the tower's input (bins × frames × 1). */
export type AudioFrontEnd = LinearAudioFrontEnd | MelAudioFrontEnd;
/** The full configuration of an L³-Net ({@link L3_NET_CONFIG}); it determines the graph and the parameter names exactly. */
export type L3NetConfig = z.output<typeof L3_NET_CONFIG>;
/** One VGG-style tower. */
export type TowerConfig = Omit<L3NetConfig["vision"], "frontEnd">;
export type VisionTowerConfig = L3NetConfig["vision"];
export type AudioTowerConfig = L3NetConfig["audio"];
/** Sizes of the fusion head's layers. */
export type HeadConfig = L3NetConfig["head"];
/** Batch-norm settings. */
export type BatchNormConfig = L3NetConfig["batchNorm"];

/** A partial config: any keys of {@link L3NetConfig}, filled from `preset` (default `tiny`); arrays replace. */
export interface L3NetConfigInput {
  preset?: L3PresetName;
  name?: string;
  vision?: Partial<Omit<VisionTowerConfig, "frontEnd">> & { frontEnd?: Partial<VisionFrontEnd> };
  audio?: Partial<Omit<AudioTowerConfig, "frontEnd">> & { frontEnd?: Partial<LinearAudioFrontEnd> | Partial<MelAudioFrontEnd> };
  fusion?: FusionKind | string;
  head?: Partial<HeadConfig>;
  batchNorm?: Partial<BatchNormConfig>;
}

const PAPER: L3NetConfig = {
  name: "paper",
  vision: {
    frontEnd: { size: 224, resizeTo: 256, normalize: "symmetric" },
    widths: [64, 128, 256, 512],
    convsPerBlock: 2,
    kernelSize: 3,
    gridPool: [4, 4],
  },
  audio: {
    frontEnd: {
      kind: "linear",
      sampleRate: 48000,
      durationSec: 1,
      nFft: 512,
      winLength: 480,
      hopLength: 240,
      padding: "none",
      normalize: "l3embedding",
    },
    widths: [64, 128, 256, 512],
    convsPerBlock: 2,
    kernelSize: 3,
    gridPool: [4, 3],
  },
  fusion: "concat",
  head: { hidden: 128, embedDim: 128 },
  batchNorm: { momentum: 0.99, epsilon: 1e-3 },
};

/** How a smaller preset differs from the paper's network: narrower blocks, smaller frames and a log-mel front-end. */
interface PresetVariant {
  /** Every block's width is the paper's divided by this. */
  widthDivisor: number;
  frame: Pick<VisionFrontEnd, "size" | "resizeTo">;
  audio: AudioFrontEnd;
}

/** A log-mel front-end at 16 kHz (HTK mel scale, nFft 512, "same" framing, 80 dB range) with the given hop and bands. */
function mel16k(hopLength: number, nMels: number): MelAudioFrontEnd {
  return { kind: "mel", sampleRate: 16000, durationSec: 1, nFft: 512, hopLength, nMels, htk: true, padding: "same", topDb: 80 };
}

/** The paper's network with a variant's widths, frame size and audio front-end (as torchvision's vgg.py derives VGG-11…19 from one list). */
function fromPaper(name: string, v: PresetVariant): L3NetConfig {
  const widths = PAPER.vision.widths.map((w) => w / v.widthDivisor);
  return {
    ...PAPER,
    name,
    vision: { ...PAPER.vision, frontEnd: { ...PAPER.vision.frontEnd, ...v.frame }, widths },
    audio: { ...PAPER.audio, frontEnd: v.audio, widths: [...widths] },
  };
}

/** lite: 112×112 frames, 64-band log-mel at 16 kHz (nFft 512, hop 160, "same" framing → 64×100), widths ÷4. */
const LITE = fromPaper("lite", { widthDivisor: 4, frame: { size: 112, resizeTo: 128 }, audio: mel16k(160, 64) });

/** tiny: 64×64 frames, 32-band log-mel at 16 kHz (nFft 512, hop 320, "same" framing → 32×50), widths ÷8. */
const TINY = fromPaper("tiny", { widthDivisor: 8, frame: { size: 64, resizeTo: 73 }, audio: mel16k(320, 32) });

const PRESETS: Record<L3PresetName, L3NetConfig> = { paper: PAPER, lite: LITE, tiny: TINY };

/** A fresh copy of a preset's config. */
export function l3Preset(name: L3PresetName): L3NetConfig {
  const p = PRESETS[name as L3PresetName];
  if (!p) throw new ConfigError(`unknown preset '${name}' (valid: ${L3_PRESET_NAMES.join(", ")})`, { subject: "model config" });
  return structuredClone(p);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? base : structuredClone(over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = k in base ? deepMerge(base[k], v) : structuredClone(v);
  }
  return out;
}

/**
 * Resolves a preset name, a full config or a partial one (`{ preset: "tiny", fusion: "avol" }`) into a
 * validated {@link L3NetConfig}. A partial config without `preset` is merged over `base` when given,
 * else over `tiny`. Throws {@link ConfigError} naming the key and the cause.
 */
export function resolveL3Config(input: L3PresetName | L3NetConfig | L3NetConfigInput, base?: L3NetConfig): L3NetConfig {
  if (typeof input === "string") return validateL3Config(l3Preset(input as L3PresetName));
  if (!isObject(input))
    throw new ConfigError(`expected a preset name or a config object, got ${typeof input}`, { subject: "model config" });
  const { preset, ...rest } = input as L3NetConfigInput;
  if (preset !== undefined && !(L3_PRESET_NAMES as readonly string[]).includes(preset)) {
    throw new ConfigError(`unknown preset '${preset}' (valid: ${L3_PRESET_NAMES.join(", ")})`, { subject: "model config key 'preset'" });
  }
  const start = preset === undefined && base ? structuredClone(base) : l3Preset(preset ?? "tiny");
  // A switch of audio kind replaces the whole front-end rather than merging linear and mel keys.
  const restAudio = (rest as L3NetConfigInput).audio;
  const restKind = (restAudio?.frontEnd as { kind?: string } | undefined)?.kind;
  if (restAudio?.frontEnd && restKind !== undefined && restKind !== start.audio.frontEnd.kind) {
    const other = restKind === "linear" ? PAPER.audio.frontEnd : restKind === "mel" ? TINY.audio.frontEnd : undefined;
    if (other) start.audio.frontEnd = structuredClone(other);
  }
  const merged = deepMerge(start, rest) as L3NetConfig;
  if ((rest as L3NetConfigInput).name === undefined) merged.name = preset ?? (base ? base.name : "custom");
  return validateL3Config(merged);
}

function bad(key: string, message: string): never {
  throw new ConfigError(message, { subject: `model config key '${key}'` });
}

/** The dotted key of an issue path: `audio.widths[1]`. */
function keyOf(path: readonly PropertyKey[]): string {
  let key = "";
  for (const p of path) key = typeof p === "number" ? `${key}[${p}]` : key ? `${key}.${String(p)}` : String(p);
  return key;
}

/** The spatial size after the tower's 2×2 pools (floor), i.e. the last conv map's height and width. */
export function lastMapSize(inputHW: [number, number], blocks: number): [number, number] {
  let [h, w] = inputHW;
  for (let i = 0; i < blocks - 1; i++) {
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
  return [h, w];
}

/** Number of samples in one input window of the audio front-end. */
export function audioWindowSamples(fe: AudioFrontEnd): number {
  return Math.round(fe.sampleRate * fe.durationSec);
}

/**
 * The audio tower's input shape [bins, frames, 1] from the front-end: bins = nFft/2+1 (linear) or nMels;
 * with N samples in `durationSec` and a window of `win` (linear: winLength; mel: nFft) frames are
 * 1 + ⌊(N − win)/hop⌋ (`none`), 1 + ⌊(N + 2⌊win/2⌋ − win)/hop⌋ (`center`) or ⌈N/hop⌉ (`same`).
 * Paper: 257×199; lite 64×100; tiny 32×50.
 */
export function audioInputShape(config: L3NetConfig | AudioFrontEnd): [number, number, 1] {
  const fe = "audio" in config ? config.audio.frontEnd : config;
  const n = audioWindowSamples(fe);
  const win = fe.kind === "linear" ? fe.winLength : fe.nFft;
  const hop = fe.hopLength;
  const frames =
    fe.padding === "same"
      ? Math.ceil(n / hop)
      : fe.padding === "center"
        ? 1 + Math.floor((n + 2 * Math.floor(win / 2) - win) / hop)
        : 1 + Math.floor((n - win) / hop);
  const bins = fe.kind === "linear" ? Math.floor(fe.nFft / 2) + 1 : fe.nMels;
  return [bins, frames, 1];
}

/** The vision tower's input shape [size, size, 3]. */
export function visionInputShape(config: L3NetConfig): [number, number, 3] {
  const s = config.vision.frontEnd.size;
  return [s, s, 3];
}

/** The front-ends' checks across keys: frame resize and crop, window and hop against nFft and the input's samples. */
function checkFrontEnds(c: L3NetConfig): void {
  const { size, resizeTo } = c.vision.frontEnd;
  if (resizeTo < size) bad("vision.frontEnd.resizeTo", `must be ≥ size (${size}), got ${resizeTo}`);
  const af = c.audio.frontEnd;
  const n = audioWindowSamples(af);
  if (af.kind === "linear") {
    if (af.winLength > af.nFft) bad("audio.frontEnd.winLength", `must be ≤ nFft (${af.nFft}), got ${af.winLength}`);
    if (af.padding === "none" && af.winLength > n)
      bad("audio.frontEnd.winLength", `window ${af.winLength} is longer than the ${n} samples of one input`);
  } else {
    const bins = Math.floor(af.nFft / 2) + 1;
    if (af.nMels > bins) bad("audio.frontEnd.nMels", `${af.nMels} mel bands is more than the ${bins} FFT bins`);
    if (af.padding === "none" && af.nFft > n) bad("audio.frontEnd.nFft", `window ${af.nFft} is longer than the ${n} samples of one input`);
  }
  if (af.hopLength > n) bad("audio.frontEnd.hopLength", `hop ${af.hopLength} is longer than the ${n} samples of one input`);
}

function checkSizes(part: "vision" | "audio", inputHW: [number, number], t: TowerConfig): void {
  const blocks = t.widths.length;
  const pools = blocks - 1;
  const need = 2 ** pools;
  const [h, w] = inputHW;
  if (h < need || w < need) {
    bad(
      `${part}.frontEnd`,
      `${part} input ${h}×${w} is too small for ${pools} pools of 2×2 (needs ≥ ${need}×${need} so the last map is at least 1×1 before the global pool)`,
    );
  }
  const [lh, lw] = lastMapSize(inputHW, blocks);
  if (t.gridPool[0] > lh || t.gridPool[1] > lw) {
    bad(`${part}.gridPool`, `grid ${t.gridPool[0]}×${t.gridPool[1]} is larger than the last ${part} map ${lh}×${lw}`);
  }
}

/**
 * Validates a full config against {@link L3_NET_CONFIG} (every key present, no unknown keys, each
 * value in range) and the checks across keys (front-ends, map sizes); returns it (typed). Throws a
 * ConfigError naming `model config key '<key>'` and the cause; an unknown key is reported first.
 */
export function validateL3Config(raw: unknown): L3NetConfig {
  const r = L3_NET_CONFIG.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues;
    const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
    const path = issue?.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : (issue?.path ?? []);
    bad(keyOf(path) || "(root)", issue?.message ?? "invalid");
  }
  const config = r.data;
  checkFrontEnds(config);
  const [vh, vw] = visionInputShape(config);
  checkSizes("vision", [vh, vw], config.vision);
  const [ab, af] = audioInputShape(config);
  if (af < 1) bad("audio.frontEnd", `the front-end gives ${af} frames per input`);
  checkSizes("audio", [ab, af], config.audio);
  return config;
}

/**
 * The differences between two configs, as "path a vs b" strings (the `name` key is ignored), e.g.
 * `fusion 'concat' vs 'avol'`, `vision.widths [8,16,32,64] vs [16,32,64,128]`. Empty when equal.
 */
export function diffL3Configs(a: L3NetConfig, b: L3NetConfig): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (typeof v === "string" ? `'${v}'` : JSON.stringify(v));
  const walk = (x: unknown, y: unknown, p: string) => {
    if (isObject(x) && isObject(y)) {
      const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])];
      for (const k of keys) {
        if (p === "" && k === "name") continue;
        walk(x[k], y[k], p ? `${p}.${k}` : k);
      }
      return;
    }
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${p} ${show(x)} vs ${show(y)}`);
  };
  walk(a, b, "");
  return out;
}
