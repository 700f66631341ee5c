// The sample cache keeps each video's aspect (short side = the model's resizeTo), so the frames it
// gives are the pixels the direct decoding paths (probes, localization, embed) give; a cache of the
// old format (every frame stretched to a square) is refused, or rebuilt by the experiments.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { DEFAULT_DATA, prepareCache } from "../../src/experiments/common";
import { buildSampleCache, loadManifest, type ManifestRow, openSampleCache, saveManifest } from "../../src/lib/data";
import { readFrames } from "../../src/lib/media";
import { computeFrameInput, resolveL3Config } from "../../src/lib/models";
import { Rng } from "../../src/lib/util";
import { trainTransform } from "../../src/lib/vision";
import { realdata, tempDir } from "../helpers";
import { ffmpegBin } from "./fixtures";

const tmp = tempDir("l3kit-cache-aspect-");
after(() => tmp.cleanup());
const config = resolveL3Config("tiny"); // resizeTo 73, crop 64
const bento = realdata("openl3", "video", "bento.mp4"); // 320×568 portrait, 1.1 s

/** A 2 s H.264/AAC test pattern (detail everywhere, so a squashed or shifted frame shows). */
function makePattern(file: string, width: number, height: number): string {
  execFileSync(
    ffmpegBin,
    [
      "-y",
      "-hide_banner",
      "-loglevel",
      "error",
      "-f",
      "lavfi",
      "-i",
      `testsrc2=s=${width}x${height}:r=25:d=2`,
      "-f",
      "lavfi",
      "-i",
      "sine=f=440:d=2:sample_rate=48000",
      "-c:v",
      "libx264",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      "-shortest",
      file,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return file;
}

const rows: ManifestRow[] = [];
let manifestFile = "";

before(async () => {
  const row = (id: string, file: string, durationSec: number, split: string): ManifestRow => ({
    id,
    path: file,
    split,
    durationSec,
    hasAudio: true,
  });
  rows.push(row("landscape", makePattern(path.join(tmp.dir, "landscape-160x90.mp4"), 160, 90), 2, "train"));
  rows.push(row("portrait", makePattern(path.join(tmp.dir, "portrait-90x160.mp4"), 90, 160), 2, "val"));
  if (existsSync(bento)) rows.push(row("bento", bento, 1.1, "test"));
  manifestFile = path.join(tmp.dir, "manifest.jsonl");
  await saveManifest(manifestFile, rows);
});

describe("sample cache: aspect kept, the same pixels as the direct path", () => {
  test("portrait and 16:9 videos: short side = resizeTo, frames and model inputs equal the direct decode", async () => {
    const manifest = await loadManifest(manifestFile);
    const data = { ...DEFAULT_DATA, cacheRoot: path.join(tmp.dir, "root"), perClip: 3 };
    const cache = await prepareCache(data, { manifest, manifestPath: manifestFile, synthetic: false }, config, () => {});
    try {
      assert.equal(cache.clips.length, rows.length);
      // 160×90 → 130×73, 90×160 → 73×130, 320×568 (bento) → 73×130 (568·73/320 = 129.6)
      const expected: Record<string, [number, number]> = { landscape: [130, 73], portrait: [73, 130], bento: [73, 130] };
      for (const clip of cache.clips) {
        const row = rows.find((r) => r.id === clip.id) as ManifestRow;
        const direct = await readFrames(row.path, clip.times, { shortSide: config.vision.frontEnd.resizeTo });
        clip.times.forEach((_, k) => {
          const i = clip.firstSample + k;
          const cached = cache.getFrame(i);
          assert.deepEqual([cached.width, cached.height], expected[clip.id], `${clip.id}: stored frame size`);
          assert.deepEqual(cached, direct[k], `${clip.id} sample ${k}: cached frame vs direct decode`);
          assert.deepEqual(cache.getSample(i).frame, direct[k]);
          // what evaluation feeds the model (centre crop): identical through both paths
          assert.deepEqual(computeFrameInput(config, cached), computeFrameInput(config, direct[k]!), `${clip.id} sample ${k}: model input`);
        });
        // training takes its random crop from the whole stored frame (resizing the short side is a no-op)
        const f = cache.getFrame(clip.firstSample);
        const crop = trainTransform(f, new Rng(`crop-${clip.id}`), { resizeTo: config.vision.frontEnd.resizeTo, cropTo: 64 });
        assert.deepEqual([crop.width, crop.height], [64, 64]);
      }
      // audio is unchanged by the frame format: aligned windows at the front-end's rate
      assert.equal(cache.audioSamples, config.audio.frontEnd.sampleRate * config.audio.frontEnd.durationSec);
    } finally {
      cache.close();
    }
  });

  test("a cache of the old format (frames stretched to a square) is refused with a clear message; prepareCache rebuilds it", async () => {
    const manifest = await loadManifest(manifestFile);
    const data = { ...DEFAULT_DATA, cacheRoot: path.join(tmp.dir, "root-old"), perClip: 2 };
    const prepared = { manifest, manifestPath: manifestFile, synthetic: false };
    const first = await prepareCache(data, prepared, config, () => {});
    const dir = first.dir;
    first.close();
    // turn it into what l3kit wrote before: format 1, one fixed frame size for every clip
    const indexFile = path.join(dir, "index.json");
    const index = JSON.parse(readFileSync(indexFile, "utf8"));
    index.version = 1;
    index.config.frameSize = { width: 73, height: 73 };
    index.frameBytes = 73 * 73 * 3;
    index.sampleStride = 16000 * 4 + Math.ceil((73 * 73 * 3) / 4) * 4;
    for (const s of index.shards) for (const c of s.clips) delete c.frame;
    writeFileSync(indexFile, JSON.stringify(index));

    assert.throws(
      () => openSampleCache(dir),
      (err: Error) =>
        /older l3kit \(cache format 1\).*stretched every frame to 73x73.*aspect kept.*build the cache again/s.test(err.message),
    );
    await assert.rejects(
      buildSampleCache({ manifest, out: dir, perClip: 2, frameSize: { shortSide: 73 }, sampleRate: 16000 }),
      /older l3kit \(cache format 1\)/,
    );
    const lines: string[] = [];
    const rebuilt = await prepareCache(data, prepared, config, (l) => lines.push(l));
    try {
      assert.ok(
        lines.some((l) => /format 1 \(frames stretched to a square\); rebuilding it .*short side 73, aspect kept/.test(l)),
        lines.join("\n"),
      );
      assert.equal(rebuilt.index.version, 2);
      const landscape = rebuilt.clips.find((c) => c.id === "landscape")!;
      const f = rebuilt.getFrame(landscape.firstSample);
      assert.deepEqual([f.width, f.height], [130, 73]);
    } finally {
      rebuilt.close();
    }
  });
});
