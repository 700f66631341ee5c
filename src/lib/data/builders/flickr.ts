import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { L3kitError } from "../../util";
import { DEFAULT_SPLIT_RATIOS, type SplitRatios, splitForId } from "../split";
import type { ManifestRow } from "../types";
import { type BuilderRunOptions, type DatasetBuildIssue, probeMediaMany } from "./probe";
import { checkManifestOut, type DatasetBuildResult, writeBuildOutputs } from "./scan";

export interface FlickrSoundNetOptions extends BuilderRunOptions {
  /** A plain text file, one media path per line (blank lines and `#` comments ignored). */
  list: string;
  /** Folder that relative paths in the list are relative to (default: the list's folder). */
  root?: string;
  out?: string;
  errorsOut?: string;
  /** Put every row in this split (e.g. "test" for a test list) instead of hashing ids into `splits`. */
  split?: string;
  /** Ratios for hashed splits (default 0.8/0.1/0.1, the paper's 400k/50k/50k). */
  splits?: SplitRatios;
  splitSalt?: string;
  /** Use at most the first N seconds of each video (the paper uses the first 10 s). */
  maxDurationSec?: number;
  /** Probe each file (default true; without it durations are unknown and rows get `maxDurationSec`). */
  probe?: boolean;
  /** With `probe`, also decode near the end of each clip to catch truncated downloads. */
  verifyDecode?: boolean;
}

/**
 * Builds a Flickr-SoundNet manifest from a file list: id = base name without extension, split from
 * `split` or a hash of the id. Missing or unreadable files are reported and left out.
 */
export async function buildFlickrSoundNet(opts: FlickrSoundNetOptions): Promise<DatasetBuildResult> {
  const listFile = path.resolve(opts.list);
  if (opts.out) await checkManifestOut(opts.out); // before any file is read or probed
  const root = path.resolve(opts.root ?? path.dirname(listFile));
  const text = await fsp.readFile(listFile, "utf8").catch((err) => {
    throw new L3kitError(`cannot read file list: ${(err as Error).message}`, { subject: listFile, reason: "missing", cause: err });
  });
  const errors: DatasetBuildIssue[] = [];
  const candidates: ManifestRow[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const file = path.resolve(root, line);
    const id = path.basename(line).replace(/\.[^.]+$/, "");
    const first = seen.get(id);
    if (first !== undefined) {
      errors.push({ path: file, id, reason: "duplicate-id", message: `${listFile} line ${i + 1}: id '${id}' already on line ${first}` });
      return;
    }
    seen.set(id, i + 1);
    candidates.push({
      id,
      path: file,
      split: opts.split ?? splitForId(id, opts.splits ?? DEFAULT_SPLIT_RATIOS, opts.splitSalt),
      durationSec: opts.maxDurationSec ?? 0,
      hasAudio: true,
    });
  });
  let rows = candidates;
  if (opts.probe ?? true) {
    const results = await probeMediaMany(
      candidates.map((r) => r.path),
      { concurrency: opts.concurrency, onProgress: opts.onProgress, probe: opts.probeFn, verifyDecode: opts.verifyDecode },
    );
    rows = [];
    results.forEach((res, i) => {
      const row = candidates[i] as ManifestRow;
      if ("issue" in res) {
        errors.push({ ...res.issue, id: row.id });
        return;
      }
      row.durationSec = Math.min(res.info.durationSec, opts.maxDurationSec ?? Number.POSITIVE_INFINITY);
      row.hasAudio = res.info.audio !== null;
      if (res.info.video && res.info.video.fps > 0) row.fps = res.info.video.fps;
      rows.push(row);
    });
  }
  const written = await writeBuildOutputs(rows, errors, opts.out, opts.errorsOut);
  return { rows, errors, ...written };
}
