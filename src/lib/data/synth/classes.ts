/**
 * The sounding-object classes of the synthetic benchmark. Class `i` is a pure function of `i`: a
 * visual identity (shape, hue range, texture) and a sound identity (temporal pattern, pitch register,
 * timbre, tempo). Clips draw instances inside these ranges, so hue, size, pitch, tempo and loudness
 * vary within a class and only the combination identifies it.
 */

/** Shape families; index `i % length` picks a class's shape. */
export const SYNTH_SHAPES = [
  "circle",
  "square",
  "triangle",
  "star",
  "ring",
  "cross",
  "diamond",
  "hexagon",
  "crescent",
  "pentagon",
  "arrow",
  "halfdisc",
] as const;
export type SynthShape = (typeof SYNTH_SHAPES)[number];

/** Surface textures (in the object's own rotating frame). */
export const SYNTH_TEXTURES = ["solid", "stripes", "dots", "checker", "gradient"] as const;
export type SynthTexture = (typeof SYNTH_TEXTURES)[number];

/** Temporal sound patterns; index `i % length` picks a class's pattern. */
export const SYNTH_SOUND_PATTERNS = [
  "sustained",
  "plucked",
  "percussive",
  "noiseband",
  "chirp",
  "tremolo",
  "buzz",
  "bell",
  "rattle",
  "vowel",
  "siren",
] as const;
export type SynthSoundPattern = (typeof SYNTH_SOUND_PATTERNS)[number];

/** Visual identity of a class. */
export interface SynthVisualIdentity {
  shape: SynthShape;
  texture: SynthTexture;
  /** Hue centre in [0, 1); clips draw hue in `hue ± hueJitter`. */
  hue: number;
  hueJitter: number;
  /** Colour word for the hue centre ("red", "teal", …). */
  colour: string;
  /** Texture period in the object's unit frame (stripes/dots/checker cells per unit length). */
  textureFreq: number;
  /** The texture's second colour: `alt` darker (<1) or lighter (>1) than the base value. */
  altValue: number;
}

/** Sound identity of a class. */
export interface SynthSoundIdentity {
  pattern: SynthSoundPattern;
  /** Pitch (or band centre) range in Hz; clips draw log-uniformly inside. */
  pitchHz: [number, number];
  /** Spectral tilt: harmonic k has amplitude k^-tilt. Clips jitter it by ±0.15. */
  tilt: number;
  /** Number of harmonics (tonal patterns). */
  harmonics: number;
  /** Event rate range in events per second (onsets, sweeps, swells, tremolo rate …). */
  rateHz: [number, number];
}

/** One class: index, readable name, visual and sound identity. */
export interface SynthClass {
  index: number;
  /** e.g. "red-stripes-star/plucked"; unique within a class list. */
  name: string;
  visual: SynthVisualIdentity;
  sound: SynthSoundIdentity;
}

const COLOUR_WORDS: Array<[number, string]> = [
  [0, "red"],
  [25, "orange"],
  [50, "yellow"],
  [80, "lime"],
  [115, "green"],
  [155, "teal"],
  [185, "cyan"],
  [210, "azure"],
  [235, "blue"],
  [265, "violet"],
  [290, "purple"],
  [315, "magenta"],
  [340, "pink"],
  [360, "red"],
];

/** The colour word nearest to a hue in [0, 1). */
export function synthColourWord(hue: number): string {
  const deg = (((hue % 1) + 1) % 1) * 360;
  let best = "red";
  let bestD = Infinity;
  for (const [h, w] of COLOUR_WORDS) {
    const d = Math.abs(deg - h);
    if (d < bestD) {
      bestD = d;
      best = w;
    }
  }
  return best;
}

/** Per-pattern base register (Hz at register 0) and base event-rate range. */
const PATTERN_BASE: Record<SynthSoundPattern, { hz: number; rate: [number, number]; harmonics: number }> = {
  sustained: { hz: 220, rate: [0.6, 1.2], harmonics: 8 },
  plucked: { hz: 330, rate: [2.5, 4.5], harmonics: 10 },
  percussive: { hz: 1800, rate: [3, 6], harmonics: 1 },
  noiseband: { hz: 700, rate: [0.5, 1.5], harmonics: 1 },
  chirp: { hz: 450, rate: [1.5, 2.5], harmonics: 3 },
  tremolo: { hz: 260, rate: [4, 9], harmonics: 6 },
  buzz: { hz: 140, rate: [1.2, 2.2], harmonics: 15 },
  bell: { hz: 520, rate: [1, 2], harmonics: 1 },
  rattle: { hz: 2600, rate: [1.5, 3], harmonics: 1 },
  vowel: { hz: 120, rate: [1.5, 3], harmonics: 24 },
  siren: { hz: 600, rate: [0.6, 1.6], harmonics: 3 },
};

/** Octave offsets given to the 1st, 2nd, 3rd … class that shares a pattern (K > 11). */
const REGISTER_OCTAVES = [0, 1.25, -0.75, 2, 0.5];

function frac(x: number): number {
  return x - Math.floor(x);
}

/** Class `index` of the benchmark (a pure function of the index). */
export function synthClass(index: number): SynthClass {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`synthClass: index must be an integer >= 0, got ${index}`);
  const shape = SYNTH_SHAPES[index % SYNTH_SHAPES.length] as SynthShape;
  const texture = SYNTH_TEXTURES[(index + Math.floor(index / SYNTH_SHAPES.length) * 2) % SYNTH_TEXTURES.length] as SynthTexture;
  const hue = frac(0.02 + index * 0.6180339887);
  const pattern = SYNTH_SOUND_PATTERNS[index % SYNTH_SOUND_PATTERNS.length] as SynthSoundPattern;
  const cycle = Math.floor(index / SYNTH_SOUND_PATTERNS.length);
  const base = PATTERN_BASE[pattern];
  const octave = (REGISTER_OCTAVES[cycle % REGISTER_OCTAVES.length] as number) + 0.37 * Math.floor(cycle / REGISTER_OCTAVES.length);
  const centre = base.hz * 2 ** octave;
  const spread = 2 ** 0.3; // ±0.3 octave inside the class
  const tilt = 0.7 + 1.2 * frac(0.31 + index * 0.7548776662);
  const rateScale = 0.85 + 0.3 * frac(0.5 + index * 0.569840291);
  const colour = synthColourWord(hue);
  const visual: SynthVisualIdentity = {
    shape,
    texture,
    hue,
    hueJitter: 0.045,
    colour,
    textureFreq: 1.6 + 1.4 * frac(index * 0.4142135624),
    altValue: index % 2 === 0 ? 0.45 : 1.6,
  };
  const sound: SynthSoundIdentity = {
    pattern,
    pitchHz: [round3(centre / spread), round3(centre * spread)],
    tilt: round3(tilt),
    harmonics: base.harmonics,
    rateHz: [round3(base.rate[0] * rateScale), round3(base.rate[1] * rateScale)],
  };
  return { index, name: `${colour}-${texture}-${shape}/${pattern}`, visual, sound };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The first `k` classes, with names made unique (a numeric suffix where two would collide). */
export function synthClasses(k: number): SynthClass[] {
  if (!Number.isInteger(k) || k < 2) throw new RangeError(`synthClasses: need an integer k >= 2, got ${k}`);
  const out: SynthClass[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < k; i++) {
    const c = synthClass(i);
    if (seen.has(c.name)) c.name = `${c.name}-${i}`;
    seen.add(c.name);
    out.push(c);
  }
  return out;
}
