import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { VIDEO_EXTENSIONS } from "../../media";
import { ConfigError, checkWritableDir, writeFileAtomic } from "../../util";
import { saveManifest } from "../manifest";
import { DEFAULT_SPLIT_RATIOS, type SplitRatios, splitForId } from "../split";
import type { ManifestRow } from "../types";
import { type DatasetBuildIssue, type DatasetBuildProgress, type MediaProbeFn, probeMediaMany } from "./probe";

export interface ScanVideosOptions {
  /** Manifest file to write (JSONL). An errors file is written beside it (see `errorsOut`). */
  out?: string;
  /** Errors file; default `<out without .jsonl>.errors.jsonl`. */
  errorsOut?: string;
  /** Parallel probes (default 4). */
  concurrency?: number;
  /** Descend into subfolders (default true). */
  recursive?: boolean;
  /** Label = name of the file's parent folder (files directly in `folder` get no label). Default false. */
  labelFromFolder?: boolean;
  /** Split ratios; a file's split comes from a hash of its id (default 0.8/0.1/0.1). */
  splits?: SplitRatios;
  /** Salt for the split hash (change it to draw a different split). */
  splitSalt?: string;
  /** Id of a row: its path relative to `folder` without extension (default) or its base name without extension. */
  idFrom?: "relpath" | "basename";
  /** Extensions to consider (default {@link VIDEO_EXTENSIONS}). */
  extensions?: readonly string[];
  /** Keep files without a video stream (default false: reported as "no-video-stream"). */
  allowAudioOnly?: boolean;
  /** Report files without an audio stream as errors (default false: kept with hasAudio false). */
  requireAudio?: boolean;
  /** Also decode near the end of each file to catch truncated data (two short ffmpeg runs per file). */
  verifyDecode?: boolean;
  onProgress?: (p: DatasetBuildProgress) => void;
  /** Probe function (default media's probeMedia). */
  probe?: MediaProbeFn;
}

/** What a builder made: the rows, the files it could not use, and the files it wrote. */
export interface DatasetBuildResult {
  rows: ManifestRow[];
  errors: DatasetBuildIssue[];
  manifestPath?: string;
  errorsPath?: string;
}

export interface ScanResult extends DatasetBuildResult {
  /** Files skipped because of their extension (relative to the folder). */
  ignored: string[];
  /** Problems of the manifest as a whole, e.g. a split with no clip (training needs `train` and `val`). */
  warnings: string[];
}

/**
 * Probes every media file under `folder` (bounded parallelism) and builds manifest rows. Bad files
 * (empty, not media, truncated, no video) are skipped and reported with their reason; it never
 * throws for a bad file. Rows are sorted by path; splits come from a hash of the id.
 */
export async function scanVideos(folder: string, opts: ScanVideosOptions = {}): Promise<ScanResult> {
  const root = path.resolve(folder);
  const st = await fsp.stat(root).catch(() => null);
  if (!st?.isDirectory()) throw new ConfigError("not a folder", { subject: root, reason: "missing" });
  if (opts.out) await checkManifestOut(opts.out);
  const exts = new Set((opts.extensions ?? VIDEO_EXTENSIONS).map((e) => e.toLowerCase()));
  const files: string[] = [];
  const ignored: string[] = [];
  await walk(root, opts.recursive ?? true, (file) => {
    if (exts.has(path.extname(file).toLowerCase())) files.push(file);
    else ignored.push(path.relative(root, file));
  });
  files.sort();
  const results = await probeMediaMany(files, {
    concurrency: opts.concurrency,
    onProgress: opts.onProgress,
    probe: opts.probe,
    requireVideo: !opts.allowAudioOnly,
    requireAudio: opts.requireAudio,
    verifyDecode: opts.verifyDecode,
  });
  const rows: ManifestRow[] = [];
  const errors: DatasetBuildIssue[] = [];
  const ids = new Map<string, string>();
  results.forEach((res, i) => {
    const file = files[i] as string;
    const rel = path.relative(root, file);
    const id = (opts.idFrom === "basename" ? path.basename(rel) : rel.split(path.sep).join("/")).replace(/\.[^./]+$/, "");
    if ("issue" in res) {
      errors.push({ ...res.issue, id });
      return;
    }
    const other = ids.get(id);
    if (other !== undefined) {
      errors.push({ path: file, id, reason: "duplicate-id", message: `id '${id}' is already used by ${other}` });
      return;
    }
    ids.set(id, file);
    const parent = path.dirname(rel);
    const row: ManifestRow = {
      id,
      path: file,
      split: splitForId(id, opts.splits ?? DEFAULT_SPLIT_RATIOS, opts.splitSalt),
      durationSec: res.info.durationSec,
      hasAudio: res.info.audio !== null,
    };
    if (opts.labelFromFolder && parent !== ".") row.label = path.basename(parent);
    if (res.info.video && Number.isFinite(res.info.video.fps) && res.info.video.fps > 0) row.fps = res.info.video.fps;
    rows.push(row);
  });
  const written = await writeBuildOutputs(rows, errors, opts.out, opts.errorsOut);
  return { rows, errors, ignored, warnings: emptySplitWarnings(rows, opts.splits ?? DEFAULT_SPLIT_RATIOS), ...written };
}

/**
 * A warning for each split with a positive ratio that got no clip (a small folder: splits come from
 * a hash of each id), e.g. no `val` split, which training needs; none when there are no rows.
 */
export function emptySplitWarnings(rows: readonly ManifestRow[], ratios: SplitRatios): string[] {
  if (rows.length === 0) return [];
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.split, (counts.get(r.split) ?? 0) + 1);
  const have = [...counts].map(([s, n]) => `${s} ${n}`).join(", ");
  return Object.entries(ratios)
    .filter(([s, ratio]) => (ratio as number) > 0 && !counts.has(s))
    .map(
      ([s]) =>
        `no clip landed in split '${s}' (${rows.length} clip(s): ${have}); training needs 'train' and 'val' clips — add clips, or set the split column of some rows by hand`,
    );
}

/**
 * Checks, before any file is probed, that a manifest can be written to `out`: not a folder, and its
 * folder writable (not created here). Throws a ConfigError naming `--out`.
 */
export async function checkManifestOut(out: string): Promise<void> {
  const abs = path.resolve(out);
  const st = await fsp.stat(abs).catch(() => null);
  if (st?.isDirectory())
    throw new ConfigError(`${abs} is a folder; give the manifest file to write (e.g. ${path.join(abs, "manifest.jsonl")})`, {
      subject: "--out",
      reason: "is-a-folder",
    });
  await checkWritableDir(path.dirname(abs), "--out", { create: false });
}

/** Writes the manifest and its errors file when `out` is given. */
export async function writeBuildOutputs(
  rows: ManifestRow[],
  errors: DatasetBuildIssue[],
  out: string | undefined,
  errorsOut?: string,
): Promise<{ manifestPath?: string; errorsPath?: string }> {
  if (!out) return {};
  const manifestPath = path.resolve(out);
  const errorsPath = path.resolve(errorsOut ?? manifestPath.replace(/\.jsonl?$/i, "") + ".errors.jsonl");
  await saveManifest(manifestPath, rows);
  await writeFileAtomic(errorsPath, errors.map((e) => JSON.stringify(e)).join("\n") + (errors.length ? "\n" : ""));
  return { manifestPath, errorsPath };
}

async function walk(dir: string, recursive: boolean, onFile: (file: string) => void): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) await walk(full, recursive, onFile);
    } else if (e.isFile() || e.isSymbolicLink()) onFile(full);
  }
}
