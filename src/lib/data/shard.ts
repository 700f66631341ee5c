/**
 * `--shard i/N`: a deterministic partition of a dataset's clips into N shards by a hash of each
 * clip's id, so that every clip lands in exactly one shard whatever the order of the manifest, and
 * N processes (a Slurm array, a Kubernetes Indexed Job, GNU parallel) split the work between them.
 * Each shard writes its own files under `<out>/parts/<i>-of-<N>/`; `l3kit data merge` joins them.
 */
import { existsSync, promises as fsp } from "node:fs";
import * as path from "node:path";
import { ConfigError, idBucket, L3kitError } from "../util";

/** Shard `index` of `count` (0 ≤ index < count). */
export interface ShardSpec {
  index: number;
  count: number;
}

/**
 * Parses `i/N` (0-based: shards 0 … N−1, as `$SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)` and
 * `$JOB_COMPLETION_INDEX` give them). Throws a ConfigError that says what is wrong.
 */
export function parseShardSpec(text: string, subject = "--shard"): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new ConfigError(`expected i/N (shard i of N, numbered from 0), got '${text}'`, { subject, reason: "bad-shard" });
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new ConfigError(`N must be at least 1, got ${text}`, { subject, reason: "bad-shard" });
  if (index >= count)
    throw new ConfigError(`shard ${index} of ${count} does not exist: shards are numbered 0 … ${count - 1}`, {
      subject,
      reason: "bad-shard",
    });
  return { index, count };
}

/** The shard (0 … count−1) a clip id belongs to: {@link idBucket} over the first 6 bytes of SHA-256(id). */
export function shardOfId(id: string, count: number): number {
  return idBucket(id, count, { bytes: 6 });
}

/** The folder of a shard's files, relative to the output folder: `parts/<i>-of-<N>`. */
export function shardPartDir(spec: ShardSpec): string {
  return `parts/${spec.index}-of-${spec.count}`;
}

/** Parses a part folder's name `<i>-of-<N>`; null when it is not one. */
export function parseShardPartName(name: string): ShardSpec | null {
  const m = /^(\d+)-of-(\d+)$/.exec(name);
  if (!m) return null;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return index < count ? { index, count } : null;
}

/** The part folders of a sharded build in `dir` (`parts/<i>-of-<N>`), checked to be all N of one N. */
export async function findShardParts(dir: string): Promise<Array<{ spec: ShardSpec; dir: string }>> {
  const partsDir = path.join(dir, "parts");
  if (!existsSync(partsDir))
    throw new ConfigError("has no parts/ folder: build the shards first (`--shard i/N` with this --out), then merge", {
      subject: dir,
      reason: "no-parts",
    });
  const parts = (await fsp.readdir(partsDir))
    .map((name) => ({ spec: parseShardPartName(name), dir: path.join(partsDir, name) }))
    .filter((p): p is { spec: ShardSpec; dir: string } => p.spec !== null);
  if (parts.length === 0) throw new ConfigError("parts/ holds no shard folders (<i>-of-<N>)", { subject: dir, reason: "no-parts" });
  const counts = [...new Set(parts.map((p) => p.spec.count))];
  if (counts.length > 1)
    throw new ConfigError(`parts/ mixes shardings of ${counts.join(" and ")}; remove the stale ones`, {
      subject: dir,
      reason: "mixed-parts",
    });
  const n = counts[0] as number;
  const have = new Set(parts.map((p) => p.spec.index));
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(i));
  if (missing.length)
    throw new L3kitError(`shard(s) ${missing.map((i) => `${i}/${n}`).join(", ")} missing: run them, then merge again`, {
      subject: dir,
      reason: "missing-parts",
    });
  return parts.sort((a, b) => a.spec.index - b.spec.index);
}
