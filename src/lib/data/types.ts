/**
 * The manifest row: one media file of a dataset. Manifests are JSONL files of these rows; paths are
 * stored relative to the manifest's folder (absolute paths are kept as they are) and resolved on load.
 */

/** A box in normalised image coordinates: 0 ≤ x1 < x2 ≤ 1, 0 ≤ y1 < y2 ≤ 1 (x right, y down). */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** The class of the object in the box, when known. */
  label?: string;
}

/** The boxes at one instant of a clip (time in seconds from the start of the file). */
export interface BoxFrame {
  t: number;
  /** Boxes of the object(s) making the sound (one for the synthetic benchmark; several for VGG-SS). */
  sounding: Box[];
  /** Boxes of visible objects that make no sound (synthetic distractors). */
  distractors?: Box[];
}

/** Dataset split names used by l3kit's builders; other strings are allowed for custom datasets. */
export type Split = "train" | "val" | "test" | (string & {});

export interface ManifestRow {
  /** Unique within the manifest. */
  id: string;
  /** Path of the media file; relative paths are relative to the manifest's folder. */
  path: string;
  split: Split;
  /** Class name, for labelled datasets. */
  label?: string;
  durationSec: number;
  /** Frames per second of the video stream, when there is one. */
  fps?: number;
  hasAudio: boolean;
  /** Localization ground truth, per second or per frame. */
  boxes?: BoxFrame[];
  /** Cross-validation fold (ESC-50: 1–5). */
  fold?: number;
  /** Free-form extra facts from the source dataset (e.g. Kinetics youtube id, ESC-10 flag). */
  meta?: Record<string, string | number | boolean | null>;
}
