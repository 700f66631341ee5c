import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { L3kitError } from "../../util";
import { parseCsv } from "../csv";
import type { ManifestRow } from "../types";
import { type BuilderRunOptions, type DatasetBuildIssue, probeMediaMany } from "./probe";
import { checkManifestOut, type DatasetBuildResult, writeBuildOutputs } from "./scan";

export interface Esc50Options extends BuilderRunOptions {
  /** The ESC-50 folder, holding `meta/esc50.csv` and `audio/`. */
  root: string;
  /** Manifest to write (and its `.errors.jsonl`). */
  out?: string;
  errorsOut?: string;
  /** Only the ESC-10 subset (rows with esc10 = True). Default false. */
  esc10Only?: boolean;
  /** Check that each audio file exists and is not empty (default true). */
  checkFiles?: boolean;
  /** Probe each file for its real duration (default false: ESC-50 clips are all 5 s). */
  probe?: boolean;
}

/**
 * Builds an ESC-50 manifest from `meta/esc50.csv` (filename, fold, target, category, esc10,
 * src_file, take): one row per clip, label = category, `fold` 1–5 and split `fold<k>` (ESC-50 is
 * evaluated by 5-fold cross-validation, so there is no train/test split in the data itself).
 */
export async function buildEsc50(opts: Esc50Options): Promise<DatasetBuildResult> {
  const root = path.resolve(opts.root);
  if (opts.out) await checkManifestOut(opts.out); // before any file is read or probed
  const csv = path.join(root, "meta", "esc50.csv");
  const text = await fsp.readFile(csv, "utf8").catch((err) => {
    throw new L3kitError(`cannot read ESC-50 metadata: ${(err as Error).message}`, { subject: csv, reason: "missing", cause: err });
  });
  const { header, records } = parseCsv(text, csv);
  for (const col of ["filename", "fold", "target", "category"]) {
    if (!header.includes(col))
      throw new L3kitError(`missing column '${col}' (header: ${header.join(",")})`, { subject: csv, reason: "bad-csv" });
  }
  let rows: ManifestRow[] = [];
  const errors: DatasetBuildIssue[] = [];
  for (const rec of records) {
    const v = rec.values;
    const filename = v.filename as string;
    const fold = Number(v.fold);
    const esc10 = /^true$/i.test(v.esc10 ?? "");
    if (opts.esc10Only && !esc10) continue;
    if (!Number.isInteger(fold) || fold < 1 || fold > 5) {
      errors.push({ path: `${csv}:${rec.line}`, reason: "bad-csv-row", message: `fold must be an integer 1-5, got '${v.fold}'` });
      continue;
    }
    if (!filename || !v.category) {
      errors.push({ path: `${csv}:${rec.line}`, reason: "bad-csv-row", message: "empty filename or category" });
      continue;
    }
    const meta: NonNullable<ManifestRow["meta"]> = { target: Number(v.target), esc10 };
    if (v.src_file !== undefined) meta.srcFile = v.src_file;
    if (v.take !== undefined) meta.take = v.take;
    rows.push({
      id: filename.replace(/\.[^.]+$/, ""),
      path: path.join(root, "audio", filename),
      split: `fold${fold}`,
      label: v.category,
      durationSec: 5,
      hasAudio: true,
      fold,
      meta,
    });
  }
  if (opts.probe) {
    const results = await probeMediaMany(
      rows.map((r) => r.path),
      { concurrency: opts.concurrency, onProgress: opts.onProgress, probe: opts.probeFn, requireVideo: false, requireAudio: true },
    );
    const kept: ManifestRow[] = [];
    results.forEach((res, i) => {
      const row = rows[i] as ManifestRow;
      if ("issue" in res) errors.push({ ...res.issue, id: row.id });
      else kept.push({ ...row, durationSec: res.info.durationSec });
    });
    rows = kept;
  } else if (opts.checkFiles ?? true) {
    const kept: ManifestRow[] = [];
    for (const row of rows) {
      const st = await fsp.stat(row.path).catch(() => null);
      if (!st) errors.push({ path: row.path, id: row.id, reason: "missing", message: "audio file not found" });
      else if (st.size === 0) errors.push({ path: row.path, id: row.id, reason: "empty", message: "file is empty (0 bytes)" });
      else kept.push(row);
    }
    rows = kept;
  }
  const written = await writeBuildOutputs(rows, errors, opts.out, opts.errorsOut);
  return { rows, errors, ...written };
}
