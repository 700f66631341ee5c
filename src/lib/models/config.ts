/**
 * L³-Net configurations: a short, JSON-serialisable description that fully determines the graph
 * (towers, fusion head, input front-ends), in the manner of torchvision's `vgg.py` config lists.
 *
 * A tower is `widths.length` blocks of [conv k×k (same padding, no bias) → batch norm → ReLU] ×
 * `convsPerBlock`; blocks 1…n−1 end with a 2×2 max-pool (stride 2, floor); the last block ends with a
 * max-pool over the whole remaining map. Conv layers carry no bias: batch norm follows each one, so
 * a bias would be absorbed by BN's β (the paper's parameter counts exclude biases too).
 */
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

/**
 * The frame front-end: frames are resized so the short side is `resizeTo`, then (centre or random)
 * cropped to `size`×`size`. The model takes frames in [0, 1] and normalises them itself:
 * `symmetric` maps to [−1, 1] (x·2 − 1), `unit` keeps [0, 1].
 */
export interface VisionFrontEnd {
  size: number;
  resizeTo: number;
  normalize: "symmetric" | "unit";
}

/** A linear-frequency log-magnitude spectrogram (the paper's input: 48 kHz, win 480, hop 240, nFft 512 → 257×199). */
export interface LinearAudioFrontEnd {
  kind: "linear";
  sampleRate: number;
  durationSec: number;
  nFft: number;
  winLength: number;
  hopLength: number;
  /** `none`: frames from sample 0 (paper); `center`: winLength/2 zeros on each side (librosa center=True). */
  padding: "none" | "center";
  /** `l3embedding`: ln(max(|X|, 1e-12)) / 5, as marl/l3embedding; `none`: ln(max(|X|, 1e-12)). */
  normalize: "l3embedding" | "none";
}

/** A log-mel spectrogram in dB (OpenL3 style; the window is `nFft` long). */
export interface MelAudioFrontEnd {
  kind: "mel";
  sampleRate: number;
  durationSec: number;
  nFft: number;
  hopLength: number;
  nMels: number;
  /** HTK mel scale (OpenL3's weights) or Slaney. */
  htk: boolean;
  /**
   * `same`: TensorFlow "same" framing, ⌈N/hop⌉ frames (kapre / OpenL3); `center`: nFft/2 zeros on each
   * side (librosa center=True); `none`: frames from sample 0.
   */
  padding: "same" | "center" | "none";
  /** Dynamic range of the dB values below the window's maximum (80 as OpenL3), or null for none. */
  topDb: number | null;
}

/** The audio front-end: how 1 s of mono audio becomes the tower's input (bins × frames × 1). */
export type AudioFrontEnd = LinearAudioFrontEnd | MelAudioFrontEnd;

/** One VGG-style tower. */
export interface TowerConfig {
  /** Filters per block; the number of blocks is its length. Paper: [64, 128, 256, 512]. */
  widths: number[];
  /** [conv → BN → ReLU] units per block (paper: 2). */
  convsPerBlock: number;
  /** Conv kernel size, odd (paper: 3). */
  kernelSize: number;
  /**
   * The grid of the "larger pooled" probe feature: the last map adaptively max-pooled to
   * gridPool[0]×gridPool[1]×C (paper audio 4×3 → 6144-d; vision 4×4 → 8192-d).
   */
  gridPool: [number, number];
}

export interface VisionTowerConfig extends TowerConfig {
  frontEnd: VisionFrontEnd;
}

export interface AudioTowerConfig extends TowerConfig {
  frontEnd: AudioFrontEnd;
}

/** Sizes of the fusion head's layers. */
export interface HeadConfig {
  /** Hidden fc width (concat: fc 128 + ReLU; AVE/cosine/AVOL: the first projection). */
  hidden: number;
  /** Width of the L2-normalised embedding of the AVE/cosine/AVOL heads (paper: 128). */
  embedDim: number;
}

/** Batch-norm settings (Keras defaults; moving = momentum·moving + (1 − momentum)·batch). */
export interface BatchNormConfig {
  momentum: number;
  epsilon: number;
}

/** The full configuration of an L³-Net; it determines the graph and the parameter names exactly. */
export interface L3NetConfig {
  /** Informational: the preset it came from (not part of the graph; ignored when comparing configs). */
  name: string;
  vision: VisionTowerConfig;
  audio: AudioTowerConfig;
  fusion: FusionKind;
  head: HeadConfig;
  batchNorm: BatchNormConfig;
}

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

const KEYS: Record<string, readonly string[]> = {
  "": ["name", "vision", "audio", "fusion", "head", "batchNorm"],
  vision: ["frontEnd", "widths", "convsPerBlock", "kernelSize", "gridPool"],
  audio: ["frontEnd", "widths", "convsPerBlock", "kernelSize", "gridPool"],
  "vision.frontEnd": ["size", "resizeTo", "normalize"],
  "audio.frontEnd.linear": ["kind", "sampleRate", "durationSec", "nFft", "winLength", "hopLength", "padding", "normalize"],
  "audio.frontEnd.mel": ["kind", "sampleRate", "durationSec", "nFft", "hopLength", "nMels", "htk", "padding", "topDb"],
  head: ["hidden", "embedDim"],
  batchNorm: ["momentum", "epsilon"],
};

function bad(key: string, message: string): never {
  throw new ConfigError(message, { subject: `model config key '${key}'` });
}

function checkKeys(obj: unknown, key: string, keysOf: string): Record<string, unknown> {
  if (!isObject(obj)) bad(key || "(root)", `expected an object, got ${Array.isArray(obj) ? "an array" : JSON.stringify(obj)}`);
  const valid = KEYS[keysOf] as readonly string[];
  for (const k of Object.keys(obj)) {
    if (!valid.includes(k)) bad(key ? `${key}.${k}` : k, `unknown key (valid: ${valid.join(", ")})`);
  }
  for (const k of valid) {
    if (obj[k] === undefined) bad(key ? `${key}.${k}` : k, "missing");
  }
  return obj;
}

function posInt(v: unknown, key: string, max = 1 << 20): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max)
    bad(key, `expected an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  return v;
}

function posNum(v: unknown, key: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) bad(key, `expected a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(v: unknown, key: string, valid: readonly T[], what: string): T {
  if (typeof v !== "string" || !valid.includes(v as T)) bad(key, `unknown ${what} ${JSON.stringify(v)} (valid: ${valid.join(", ")})`);
  return v as T;
}

function bool(v: unknown, key: string): boolean {
  if (typeof v !== "boolean") bad(key, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function validateTower(t: Record<string, unknown>, part: "vision" | "audio"): void {
  const w = t.widths;
  if (!Array.isArray(w) || w.length < 1 || w.length > 8) bad(`${part}.widths`, `expected 1 to 8 block widths, got ${JSON.stringify(w)}`);
  for (let i = 0; i < w.length; i++) posInt(w[i], `${part}.widths[${i}]`, 8192);
  posInt(t.convsPerBlock, `${part}.convsPerBlock`, 8);
  const k = posInt(t.kernelSize, `${part}.kernelSize`, 11);
  if (k % 2 !== 1) bad(`${part}.kernelSize`, `expected an odd size (same padding), got ${k}`);
  const g = t.gridPool;
  if (!Array.isArray(g) || g.length !== 2) bad(`${part}.gridPool`, `expected [rows, cols], got ${JSON.stringify(g)}`);
  posInt(g[0], `${part}.gridPool[0]`, 64);
  posInt(g[1], `${part}.gridPool[1]`, 64);
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

function validateFrontEnds(c: L3NetConfig): void {
  const vf = checkKeys(c.vision.frontEnd, "vision.frontEnd", "vision.frontEnd");
  const size = posInt(vf.size, "vision.frontEnd.size", 4096);
  const resizeTo = posInt(vf.resizeTo, "vision.frontEnd.resizeTo", 8192);
  if (resizeTo < size) bad("vision.frontEnd.resizeTo", `must be ≥ size (${size}), got ${resizeTo}`);
  oneOf(vf.normalize, "vision.frontEnd.normalize", ["symmetric", "unit"], "frame normalisation");

  const rawAf = c.audio.frontEnd as unknown;
  if (!isObject(rawAf)) bad("audio.frontEnd", "expected an object");
  const kind = oneOf(rawAf.kind, "audio.frontEnd.kind", ["linear", "mel"], "audio front-end kind");
  const af = checkKeys(rawAf, "audio.frontEnd", `audio.frontEnd.${kind}`);
  const sr = posInt(af.sampleRate, "audio.frontEnd.sampleRate", 384000);
  if (sr < 1000) bad("audio.frontEnd.sampleRate", `expected at least 1000 Hz, got ${sr}`);
  const dur = posNum(af.durationSec, "audio.frontEnd.durationSec");
  const nFft = posInt(af.nFft, "audio.frontEnd.nFft", 65536);
  if ((nFft & (nFft - 1)) !== 0) bad("audio.frontEnd.nFft", `expected a power of two, got ${nFft}`);
  const hop = posInt(af.hopLength, "audio.frontEnd.hopLength", 65536);
  const n = Math.round(sr * dur);
  if (kind === "linear") {
    const win = posInt(af.winLength, "audio.frontEnd.winLength", 65536);
    if (win > nFft) bad("audio.frontEnd.winLength", `must be ≤ nFft (${nFft}), got ${win}`);
    oneOf(af.normalize, "audio.frontEnd.normalize", ["l3embedding", "none"], "spectrogram normalisation");
    const padding = oneOf(af.padding, "audio.frontEnd.padding", ["none", "center"], "linear spectrogram padding");
    if (padding === "none" && win > n) bad("audio.frontEnd.winLength", `window ${win} is longer than the ${n} samples of one input`);
  } else {
    const nMels = posInt(af.nMels, "audio.frontEnd.nMels", 1024);
    if (nMels > Math.floor(nFft / 2) + 1)
      bad("audio.frontEnd.nMels", `${nMels} mel bands is more than the ${Math.floor(nFft / 2) + 1} FFT bins`);
    if (af.topDb !== null) posNum(af.topDb, "audio.frontEnd.topDb");
    bool(af.htk, "audio.frontEnd.htk");
    const padding = oneOf(af.padding, "audio.frontEnd.padding", ["same", "center", "none"], "mel spectrogram padding");
    if (padding === "none" && nFft > n) bad("audio.frontEnd.nFft", `window ${nFft} is longer than the ${n} samples of one input`);
  }
  if (hop > n) bad("audio.frontEnd.hopLength", `hop ${hop} is longer than the ${n} samples of one input`);
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

/** Validates a full config (every key present, no unknown keys, sizes consistent); returns it (typed). */
export function validateL3Config(raw: unknown): L3NetConfig {
  const c = checkKeys(raw, "", "");
  if (typeof c.name !== "string") bad("name", `expected a string, got ${JSON.stringify(c.name)}`);
  checkKeys(c.vision, "vision", "vision");
  checkKeys(c.audio, "audio", "audio");
  const config = c as unknown as L3NetConfig;
  validateTower(config.vision as unknown as Record<string, unknown>, "vision");
  validateTower(config.audio as unknown as Record<string, unknown>, "audio");
  validateFrontEnds(config);
  oneOf(c.fusion, "fusion", FUSION_KINDS, "fusion head");
  const head = checkKeys(c.head, "head", "head");
  posInt(head.hidden, "head.hidden", 65536);
  posInt(head.embedDim, "head.embedDim", 65536);
  const bn = checkKeys(c.batchNorm, "batchNorm", "batchNorm");
  if (typeof bn.momentum !== "number" || !(bn.momentum >= 0 && bn.momentum < 1))
    bad("batchNorm.momentum", `expected a number in [0, 1), got ${JSON.stringify(bn.momentum)}`);
  posNum(bn.epsilon, "batchNorm.epsilon");
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
