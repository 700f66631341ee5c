import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { ConfigError, L3kitError } from "../../util";
import { parseCsv } from "../csv";
import type { ManifestRow } from "../types";
import { type DatasetBuildIssue, type DatasetBuildProgress, type MediaProbeFn, probeMediaMany } from "./probe";
import { checkManifestOut, type DatasetBuildResult, writeBuildOutputs } from "./scan";

/** One Kinetics-Sounds class: its name in the L³ paper and in Kinetics-400 (null when absent). */
export interface KineticsSoundsClass {
  paperName: string;
  k400Name: string | null;
}

/**
 * The 34 Kinetics-Sounds classes of the L³ paper, in the paper's order (same as
 * `data/manifests/kinetics_sounds_34.json`). Three (typing, fingerpicking, patting) are in neither
 * Kinetics-400 nor -600.
 */
export const KINETICS_SOUNDS_34: readonly KineticsSoundsClass[] = [
  { paperName: "blowing nose", k400Name: "blowing nose" },
  { paperName: "bowling", k400Name: "bowling" },
  { paperName: "chopping wood", k400Name: "chopping wood" },
  { paperName: "ripping paper", k400Name: "ripping paper" },
  { paperName: "shuffling cards", k400Name: "shuffling cards" },
  { paperName: "singing", k400Name: "singing" },
  { paperName: "tapping pen", k400Name: "tapping pen" },
  { paperName: "typing", k400Name: null },
  { paperName: "blowing out", k400Name: "blowing out candles" },
  { paperName: "dribbling ball", k400Name: "dribbling basketball" },
  { paperName: "laughing", k400Name: "laughing" },
  { paperName: "mowing the lawn by pushing lawnmower", k400Name: "mowing lawn" },
  { paperName: "shoveling snow", k400Name: "shoveling snow" },
  { paperName: "stomping", k400Name: "stomping grapes" },
  { paperName: "tap dancing", k400Name: "tap dancing" },
  { paperName: "tapping guitar", k400Name: "tapping guitar" },
  { paperName: "tickling", k400Name: "tickling" },
  { paperName: "fingerpicking", k400Name: null },
  { paperName: "patting", k400Name: null },
  { paperName: "playing accordion", k400Name: "playing accordion" },
  { paperName: "playing bagpipes", k400Name: "playing bagpipes" },
  { paperName: "playing bass guitar", k400Name: "playing bass guitar" },
  { paperName: "playing clarinet", k400Name: "playing clarinet" },
  { paperName: "playing drums", k400Name: "playing drums" },
  { paperName: "playing guitar", k400Name: "playing guitar" },
  { paperName: "playing harmonica", k400Name: "playing harmonica" },
  { paperName: "playing keyboard", k400Name: "playing keyboard" },
  { paperName: "playing organ", k400Name: "playing organ" },
  { paperName: "playing piano", k400Name: "playing piano" },
  { paperName: "playing saxophone", k400Name: "playing saxophone" },
  { paperName: "playing trombone", k400Name: "playing trombone" },
  { paperName: "playing trumpet", k400Name: "playing trumpet" },
  { paperName: "playing violin", k400Name: "playing violin" },
  { paperName: "playing xylophone", k400Name: "playing xylophone" },
];

/** The 31 Kinetics-Sounds classes that exist in Kinetics-400, by Kinetics-400 name, sorted (= `kinetics_sounds_31.json`). */
export const KINETICS_SOUNDS_31: readonly string[] = KINETICS_SOUNDS_34.flatMap((c) => (c.k400Name ? [c.k400Name] : [])).sort();

/** File name of a downloaded Kinetics clip by the common downloader convention: `<id>_<start:06d>_<end:06d>`. */
export function kineticsClipName(youtubeId: string, timeStart: number, timeEnd: number): string {
  const pad = (n: number) => String(Math.trunc(n)).padStart(6, "0");
  return `${youtubeId}_${pad(timeStart)}_${pad(timeEnd)}`;
}

export interface KineticsSoundsOptions {
  /** Official Kinetics CSV file(s): `label,youtube_id,time_start,time_end,split[,is_cc]`. */
  csv: string | readonly string[];
  /** Folder of downloaded clips `<youtube_id>_<start:06d>_<end:06d>.<ext>` (searched recursively). */
  clipsDir: string;
  /** Manifest to write (and its `.errors.jsonl`). */
  out?: string;
  errorsOut?: string;
  /** Which classes: the 31 Kinetics-400 ones (default), or explicit Kinetics class names. */
  classes?: "kinetics-sounds-31" | readonly string[];
  /** Row labels: the Kinetics-400 names (default) or the paper's names. */
  labelNames?: "k400" | "paper";
  /** Probe each clip for its real duration, fps and audio, and report unreadable clips (default true). */
  probe?: boolean;
  /** With `probe`, also decode near the end of each clip to catch truncated downloads. */
  verifyDecode?: boolean;
  /** Custom probe function (default media's probeMedia). */
  probeFn?: MediaProbeFn;
  concurrency?: number;
  /** Rename splits, e.g. `{ val: "test" }`. */
  splitMap?: Record<string, string>;
  /** Clip extensions to look for, in order of preference (default .mp4, .mkv, .webm). */
  extensions?: readonly string[];
  onProgress?: (p: DatasetBuildProgress) => void;
}

export interface KineticsSoundsResult extends DatasetBuildResult {
  /** CSV rows of the chosen classes whose clip was not found in `clipsDir`. */
  missing: Array<{ csv: string; line: number; id: string; label: string; expected: string }>;
  /** CSV rows of the chosen classes (before looking for clips). */
  wanted: number;
}

/**
 * Builds a Kinetics-Sounds manifest: keeps the CSV rows of the Kinetics-Sounds classes, finds each
 * row's downloaded clip, probes it, and reports rows whose clip is missing or unreadable.
 */
export async function buildKineticsSounds(opts: KineticsSoundsOptions): Promise<KineticsSoundsResult> {
  if (opts.out) await checkManifestOut(opts.out); // before any file is read or probed
  const csvFiles = typeof opts.csv === "string" ? [opts.csv] : [...opts.csv];
  if (csvFiles.length === 0) throw new ConfigError("no CSV given", { subject: "csv" });
  const classes = new Set(opts.classes === undefined || opts.classes === "kinetics-sounds-31" ? KINETICS_SOUNDS_31 : opts.classes);
  const toPaper = new Map(KINETICS_SOUNDS_34.flatMap((c) => (c.k400Name ? [[c.k400Name, c.paperName] as const] : [])));
  const exts = opts.extensions ?? [".mp4", ".mkv", ".webm"];

  const clips = new Map<string, string>();
  await indexFiles(path.resolve(opts.clipsDir), clips);

  type Wanted = { row: ManifestRow; csv: string; line: number; expected: string };
  const found: Wanted[] = [];
  const missing: KineticsSoundsResult["missing"] = [];
  const errors: DatasetBuildIssue[] = [];
  const seen = new Set<string>();
  let wanted = 0;
  for (const csv of csvFiles) {
    const text = await fsp.readFile(csv, "utf8").catch((err) => {
      throw new L3kitError(`cannot read CSV: ${(err as Error).message}`, { subject: csv, reason: "missing", cause: err });
    });
    const { header, records } = parseCsv(text, csv);
    for (const col of ["label", "youtube_id", "time_start", "time_end"]) {
      if (!header.includes(col))
        throw new L3kitError(`missing column '${col}' (header: ${header.join(",")})`, { subject: csv, reason: "bad-csv" });
    }
    for (const rec of records) {
      const v = rec.values;
      const label = v.label as string;
      if (!classes.has(label)) continue;
      wanted++;
      const start = Number(v.time_start);
      const end = Number(v.time_end);
      if (!Number.isFinite(start) || !Number.isFinite(end) || !(end > start)) {
        errors.push({
          path: `${csv}:${rec.line}`,
          reason: "bad-csv-row",
          message: `bad time_start/time_end '${v.time_start}'/'${v.time_end}'`,
        });
        continue;
      }
      const id = kineticsClipName(v.youtube_id as string, start, end);
      if (seen.has(id)) continue;
      seen.add(id);
      const file = exts.map((e) => clips.get(id + e)).find((f) => f !== undefined);
      const expected = `${id}${exts[0] ?? ".mp4"}`;
      if (!file) {
        missing.push({ csv, line: rec.line, id, label, expected });
        continue;
      }
      const split = v.split ?? "train";
      found.push({
        csv,
        line: rec.line,
        expected,
        row: {
          id,
          path: file,
          split: opts.splitMap?.[split] ?? split,
          label: opts.labelNames === "paper" ? (toPaper.get(label) ?? label) : label,
          durationSec: end - start,
          hasAudio: true,
          meta: { youtubeId: v.youtube_id as string, timeStart: start, timeEnd: end },
        },
      });
    }
  }

  let rows = found.map((f) => f.row);
  if (opts.probe ?? true) {
    const results = await probeMediaMany(
      rows.map((r) => r.path),
      { concurrency: opts.concurrency, onProgress: opts.onProgress, probe: opts.probeFn, verifyDecode: opts.verifyDecode },
    );
    rows = [];
    results.forEach((res, i) => {
      const row = (found[i] as Wanted).row;
      if ("issue" in res) errors.push({ ...res.issue, id: row.id });
      else {
        row.durationSec = res.info.durationSec;
        row.hasAudio = res.info.audio !== null;
        if (res.info.video && res.info.video.fps > 0) row.fps = res.info.video.fps;
        rows.push(row);
      }
    });
  }
  const written = await writeBuildOutputs(rows, errors, opts.out, opts.errorsOut);
  return { rows, errors, missing, wanted, ...written };
}

/** Maps each file name to its path (first found wins), recursively. */
async function indexFiles(dir: string, into: Map<string, string>): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((err) => {
    throw new ConfigError(`cannot read clips folder: ${(err as Error).message}`, { subject: dir, reason: "missing" });
  });
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) await indexFiles(full, into);
    else {
      if (!into.has(e.name)) into.set(e.name, full);
    }
  }
}
