/**
 * #20 item 2: a cache folder belongs to one settings fingerprint. Two real `l3kit data cache`
 * processes started together on one folder: with different settings one fails at once with a clear
 * error and the cache is the other's; with the same settings both succeed and the cache is what one
 * build gives.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { type ManifestRow, openSampleCache, saveManifest } from "../../src/lib/data";
import { makeClockVideo } from "../data/fixtures";
import { tempDir } from "../helpers";
import { runCli } from "./cli";

const tmp = tempDir("l3kit-cache-race-");
after(() => tmp.cleanup());
const manifest = path.join(tmp.dir, "m.jsonl");

before(async () => {
  const rows: ManifestRow[] = [];
  for (let i = 0; i < 4; i++) {
    const file = makeClockVideo(path.join(tmp.dir, "videos", `v${i}.mp4`), { durationSec: 2, freq: 300 + 200 * i });
    rows.push({ id: `v${i}`, path: file, split: "train", durationSec: 2, hasAudio: true, fps: 25 });
  }
  await saveManifest(manifest, rows);
});

const cacheArgs = (out: string, seed: number, perClip = 2) => [
  "data",
  "cache",
  "--manifest",
  manifest,
  "--out",
  out,
  "--per-clip",
  String(perClip),
  "--seed",
  String(seed),
  "--frame-size",
  "16",
  "--clips-per-shard",
  "1",
];

function sampleBytes(dir: string): Buffer[] {
  const c = openSampleCache(dir);
  try {
    return Array.from({ length: c.numSamples }, (_, i) => {
      const s = c.getSample(i);
      return Buffer.concat([Buffer.from(s.frame.data), Buffer.from(s.audio.buffer, s.audio.byteOffset, s.audio.byteLength)]);
    });
  } finally {
    c.close();
  }
}

describe("concurrent cache builds into one folder", () => {
  test("different settings (seed 0 and seed 1; per-clip 2 and 3): one fails at once naming the difference, the cache is the other's", async () => {
    for (const [a, b, key] of [
      [cacheArgs(path.join(tmp.dir, "d1"), 0), cacheArgs(path.join(tmp.dir, "d1"), 1), /seed: "0" there, "1" asked|seed: "1" there, "0" asked/],
      [cacheArgs(path.join(tmp.dir, "d2"), 0, 2), cacheArgs(path.join(tmp.dir, "d2"), 0, 3), /perClip: [23] there, [23] asked/],
    ] as const) {
      const dir = a[a.indexOf("--out") + 1] as string;
      const [ra, rb] = await Promise.all([runCli([...a]), runCli([...b])]);
      const codes = [ra.code, rb.code].sort();
      assert.deepEqual(codes, [0, 1], `one succeeds, one fails:\nA ${ra.code} ${ra.stderr}\nB ${rb.code} ${rb.stderr}`);
      const [won, lost, wonArgs] = ra.code === 0 ? [ra, rb, a] : [rb, ra, b];
      assert.match(lost.stderr, /belongs to different settings/);
      assert.match(lost.stderr, key);
      assert.match(lost.stderr, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
      assert.match(won.stdout, /cache .*: 4 clips/);
      const index = JSON.parse(readFileSync(path.join(dir, "index.json"), "utf8"));
      const seed = Number(wonArgs[wonArgs.indexOf("--seed") + 1]);
      const perClip = Number(wonArgs[wonArgs.indexOf("--per-clip") + 1]);
      assert.equal(String(index.config.seed), String(seed));
      assert.equal(index.config.perClip, perClip);
      assert.equal(index.complete, true);
      // every shard holds the winner's samples: the same bytes as a build of its own
      const ref = path.join(tmp.dir, `ref-${path.basename(dir)}`);
      const r = await runCli(cacheArgs(ref, seed, perClip));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(sampleBytes(dir), sampleBytes(ref));
    }
  });

  test("same settings: both builders succeed and the cache equals a single build", async () => {
    const dir = path.join(tmp.dir, "same");
    const [ra, rb] = await Promise.all([runCli(cacheArgs(dir, 5)), runCli(cacheArgs(dir, 5))]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    const ref = path.join(tmp.dir, "same-ref");
    assert.equal((await runCli(cacheArgs(ref, 5))).code, 0);
    assert.deepEqual(sampleBytes(dir), sampleBytes(ref));
  });
});
