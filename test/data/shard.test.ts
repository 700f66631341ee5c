import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  buildSampleCache,
  generateSynthDataset,
  generateSynthShard,
  loadManifest,
  type ManifestRow,
  mergeSampleCacheParts,
  mergeSynthParts,
  openSampleCache,
  parseShardSpec,
  shardOfId,
} from "../../src/lib/data";
import { cacheCommand } from "../../src/cli/data-cache";
import { mergeCommand } from "../../src/cli/data-merge";
import { tempDir } from "../helpers";

const tmp = tempDir("l3kit-shard-");
after(() => tmp.cleanup());

// The synthetic benchmark at its CI size (tiny profile), made once by one process and once in 3 shards.
const synth = { clips: 18, seed: 5, classes: 4, profile: "tiny" as const, concurrency: 2 };
const one = path.join(tmp.dir, "synth-one");
const sharded = path.join(tmp.dir, "synth-sharded");

before(async () => {
  await generateSynthDataset({ ...synth, out: one });
});

/** Every file under `dir`, relative, sorted. */
function files(dir: string, prefix = ""): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(dir, path.join(prefix, e.name)) : [path.join(prefix, e.name)]))
    .sort();
}

describe("--shard i/N", () => {
  test("parses i/N numbered from 0, with clear errors", () => {
    assert.deepEqual(parseShardSpec("2/4"), { index: 2, count: 4 });
    assert.throws(() => parseShardSpec("4/4"), /shards are numbered 0 … 3/);
    assert.throws(() => parseShardSpec("1/0"), /at least 1/);
    assert.throws(() => parseShardSpec("a/b"), /expected i\/N/);
  });

  test("every clip lands in exactly one shard, whatever the order of the clips", () => {
    const ids = Array.from({ length: 500 }, (_, i) => `clip-${i}`);
    const counts = [0, 0, 0, 0, 0];
    for (const id of ids) counts[shardOfId(id, 5)]++;
    assert.equal(
      counts.reduce((a, b) => a + b),
      500,
    );
    for (const c of counts) assert.ok(c > 60 && c < 140, `balanced: ${counts}`);
    assert.deepEqual(
      [...ids].reverse().map((id) => shardOfId(id, 5)),
      ids.map((id) => shardOfId(id, 5)).reverse(),
    );
  });

  test("synth: 3 shards merged give the one-process dataset (manifest, clips.jsonl, metadata, README, every clip's bytes)", async () => {
    for (let i = 0; i < 3; i++) await generateSynthShard({ ...synth, out: sharded, shard: { index: i, count: 3 } });
    await assert.rejects(mergeSynthParts(path.join(tmp.dir, "nothing")), /no parts\/ folder/);
    const r = await mergeSynthParts(sharded);
    assert.equal(r.rows.length, synth.clips);
    assert.ok(!existsSync(path.join(sharded, "parts")), "parts/ removed after the merge");
    for (const f of ["manifest.jsonl", "clips.jsonl", "metadata.json", "README.md"])
      assert.equal(readFileSync(path.join(sharded, f), "utf8"), readFileSync(path.join(one, f), "utf8"), f);
    const clips = files(one, "clips");
    assert.deepEqual(files(sharded, "clips"), clips);
    for (const c of clips) assert.ok(readFileSync(path.join(sharded, c)).equals(readFileSync(path.join(one, c))), c);
  });

  test("cache: 3 shards merged give the one-process cache byte for byte (index and shard files), skipped clips included", async () => {
    // The benchmark's manifest plus a clip that cannot be decoded (skipped, and listed in the index).
    const manifest = await loadManifest(path.join(one, "manifest.jsonl"));
    const bad = path.join(tmp.dir, "broken.mp4");
    writeFileSync(bad, "not a video\n".repeat(20));
    const rows: ManifestRow[] = [...manifest.rows];
    rows.splice(5, 0, { ...(rows[0] as ManifestRow), id: "broken", path: bad, boxes: undefined });
    const file = path.join(tmp.dir, "with-broken.jsonl");
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const settings = {
      manifest: file,
      perClip: 2,
      frameSize: "40",
      sampleRate: 16000,
      clipsPerShard: 4,
      seed: 3,
      progress: "none" as const,
      log: () => {},
    };
    const oneCache = path.join(tmp.dir, "cache-one");
    const shardedCache = path.join(tmp.dir, "cache-sharded");
    const ref = await cacheCommand({ ...settings, out: oneCache });
    assert.equal(ref.skipped.length, 1, "the broken clip is skipped");
    for (let i = 0; i < 3; i++) await cacheCommand({ ...settings, out: shardedCache, shard: `${i}/3` });
    assert.throws(() => openSampleCache(path.join(shardedCache, "parts", "0-of-3")), /not a cache: join the shards/);
    await mergeCommand(shardedCache, { log: () => {} });
    const names = readdirSync(oneCache).filter((f) => f === "index.json" || f.endsWith(".bin"));
    assert.ok(names.length === 6, `index and 5 shard files: ${names}`);
    for (const f of names)
      assert.ok(readFileSync(path.join(shardedCache, f)).equals(readFileSync(path.join(oneCache, f))), `${f} identical`);
    assert.equal(openSampleCache(shardedCache).numSamples, openSampleCache(oneCache).numSamples);
  });

  test("merge refuses missing shards and parts of other settings", async () => {
    const out = path.join(tmp.dir, "cache-missing");
    const manifest = await loadManifest(path.join(one, "manifest.jsonl"));
    const base = { manifest, perClip: 1, frameSize: { shortSide: 32 }, sampleRate: 8000, clipsPerShard: 8 };
    await buildSampleCache({ ...base, out: path.join(out, "parts", "0-of-2"), partition: { index: 0, count: 2 } });
    await assert.rejects(mergeSampleCacheParts(out), /shard\(s\) 1\/2 missing/);
    await buildSampleCache({ ...base, perClip: 2, out: path.join(out, "parts", "1-of-2"), partition: { index: 1, count: 2 } });
    await assert.rejects(mergeSampleCacheParts(out), /built with other settings/);
  });
});
