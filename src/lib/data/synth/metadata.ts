// The dataset's parameters and metadata.json, apart from the generator so that the README writer
// (readme.ts) and the generator (generate.ts) both read them without importing each other.
import type { SynthKnownAnswers } from "./baselines";
import type { SynthClass } from "./classes";
import type { SynthOcclusion, SynthRenderConfig } from "./clip";

/** Named size/rate/duration (and object size) presets. */
export type SynthProfileName = "tiny" | "default" | "realistic";

/** The resolved parameters of a dataset (what must match to resume into a folder). */
export interface SynthParams extends SynthRenderConfig {
  generator: string;
  version: string;
  seed: number | string;
  clips: number;
  classes: number;
  profile: SynthProfileName | "custom";
  crf: number;
  preset: string;
  splits: Record<string, number>;
}

/** Contents of metadata.json. */
export interface SynthMetadata {
  params: SynthParams;
  classes: SynthClass[];
  counts: Record<string, Record<string, number>>;
  occlusion: Record<SynthOcclusion, number>;
  answers: SynthKnownAnswers;
  boxDefinition: string;
  files: { manifest: string; clips: string; readme: string; videos: string };
  stats: { elapsedSec: number; clipsPerSec: number; reused: number; repaired: number; bytes: number };
}
