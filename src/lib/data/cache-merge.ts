/**
 * `l3kit data merge` for sample caches: joins the parts of a sharded build (`data cache --shard
 * i/N`, each in `<out>/parts/<i>-of-<N>/`) into one cache in `<out>`, byte for byte the cache a
 * one-process build of the same manifest and settings writes: every shard file holds its clips in
 * manifest order whichever part decoded them, and the index lists them the same way.
 */
import { existsSync, promises as fsp } from "node:fs";
import * as path from "node:path";
import { ConfigError, L3kitError, writeFileAtomic, writeJsonAtomic } from "../util";
import { type CacheShard, type CacheShardClip, type SampleCacheIndex, sampleCacheInternals } from "./cache";
import { findShardParts } from "./shard";

const { readIndex, shardFile, frameStride, writeHeader, claimCacheFolder, HEADER_BYTES } = sampleCacheInternals;

/** What {@link mergeSampleCacheParts} did. */
export interface CacheMergeResult {
  dir: string;
  parts: number;
  shards: number;
  clips: number;
  samples: number;
  /** Whether the parts' folder was removed (it is unless `keepParts`). */
  removedParts: boolean;
}

/**
 * Joins the parts of a sharded cache build in `out` into the cache in `out` (shard files and
 * index.json, each written atomically, the index last), then removes `out/parts` unless
 * `keepParts`. Every part must be complete and built with the same manifest and settings.
 */
export async function mergeSampleCacheParts(
  out: string,
  opts: { keepParts?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<CacheMergeResult> {
  const dir = path.resolve(out);
  const parts = await findShardParts(dir);
  const indexes = parts.map((p) => {
    if (!existsSync(path.join(p.dir, "index.json")))
      throw new L3kitError("has no index.json: this shard's build has not started or is not a cache shard", {
        subject: p.dir,
        reason: "bad-part",
      });
    const index = readIndex(p.dir);
    if (!index.partition || index.partition.index !== p.spec.index || index.partition.count !== p.spec.count)
      throw new L3kitError(`index.json is not shard ${p.spec.index}/${p.spec.count}'s`, { subject: p.dir, reason: "bad-part" });
    if (!index.complete)
      throw new L3kitError("this shard's build has not finished: run it again (it resumes), then merge", { subject: p.dir });
    return index;
  });
  const first = indexes[0] as SampleCacheIndex;
  const key = (i: SampleCacheIndex) =>
    JSON.stringify({ config: i.config, manifest: i.manifest, audioSamples: i.audioSamples, shards: i.shards.length, version: i.version });
  for (const [k, index] of indexes.entries())
    if (key(index) !== key(first))
      throw new ConfigError(
        `shard ${k} was built with other settings or another manifest than shard 0 (${key(index)} vs ${key(first)}); rebuild it`,
        { subject: (parts[k] as { dir: string }).dir, reason: "cache-mismatch" },
      );
  await claimCacheFolder(dir, first.config, { hash: first.manifest.hash, rows: first.manifest.rows }, first.shards.length);
  const audioBytes = first.audioSamples * (first.config.audioFormat === "int16" ? 2 : 4);
  const shards: CacheShard[] = [];
  let clips = 0;
  let samples = 0;
  for (let s = 0; s < first.shards.length; s++) {
    const pieces: Array<{ clip: CacheShardClip; bytes: Uint8Array }> = [];
    const skipped: CacheShard["skipped"] = [];
    let rows: [number, number] | null = null;
    for (const [k, index] of indexes.entries()) {
      const sh = index.shards[s];
      if (!sh) throw new L3kitError(`shard file ${s} is missing from this part's index`, { subject: (parts[k] as { dir: string }).dir });
      rows ??= sh.rows;
      const file = path.join((parts[k] as { dir: string }).dir, sh.file);
      const buf = await fsp.readFile(file);
      if (buf.length !== sh.bytes)
        throw new L3kitError(`is ${buf.length} bytes, its index says ${sh.bytes}; rebuild this shard`, {
          subject: file,
          reason: "truncated",
        });
      let off = HEADER_BYTES;
      for (const clip of sh.clips) {
        const len = clip.times.length * (frameStride(clip.frame) + audioBytes);
        pieces.push({ clip, bytes: buf.subarray(off, off + len) });
        off += len;
      }
      skipped.push(...sh.skipped);
    }
    pieces.sort((a, b) => a.clip.rowIndex - b.clip.rowIndex);
    skipped.sort((a, b) => a.rowIndex - b.rowIndex);
    const numSamples = pieces.reduce((n, p) => n + p.clip.times.length, 0);
    const buf = new Uint8Array(HEADER_BYTES + pieces.reduce((n, p) => n + p.bytes.length, 0));
    writeHeader(buf, numSamples, first.config, first.audioSamples);
    let off = HEADER_BYTES;
    for (const p of pieces) {
      buf.set(p.bytes, off);
      off += p.bytes.length;
    }
    const file = shardFile(s);
    await writeFileAtomic(path.join(dir, file), buf);
    shards.push({ file, rows: rows as [number, number], clips: pieces.map((p) => p.clip), numSamples, bytes: buf.length, skipped });
    clips += pieces.length;
    samples += numSamples;
    opts.onProgress?.(s + 1, first.shards.length);
  }
  // The same fields, in the same order, as a one-process build's index.
  const index: SampleCacheIndex = {
    kind: first.kind,
    version: first.version,
    manifest: first.manifest,
    config: first.config,
    audioSamples: first.audioSamples,
    headerBytes: first.headerBytes,
    shards,
    complete: true,
  };
  await writeJsonAtomic(path.join(dir, "index.json"), index);
  if (!opts.keepParts) await fsp.rm(path.join(dir, "parts"), { recursive: true, force: true });
  return { dir, parts: parts.length, shards: shards.length, clips, samples, removedParts: !opts.keepParts };
}
