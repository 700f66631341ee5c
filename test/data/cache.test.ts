import assert from "node:assert/strict";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  buildSampleCache,
  type CacheProgress,
  cacheSampleTimes,
  createPairSampler,
  type ManifestRow,
  openSampleCache,
  saveManifest,
} from "../../src/lib/data";
import { cacheCommand, parseCacheFrameSize } from "../../src/cli/data-cache";
import { readSamples } from "../../src/lib/media";
import { tempDir } from "../helpers";
import { audioTime, frameTime, makeClockVideo, zeroCrossingFreq } from "./fixtures";

const tmp = tempDir("l3kit-cache-");
after(() => tmp.cleanup());
const rows: ManifestRow[] = [];
const FREQS = [300, 500, 700, 900, 1100];
const size = { width: 32, height: 24 };

before(() => {
  FREQS.forEach((freq, i) => {
    const file = makeClockVideo(path.join(tmp.dir, "videos", `v${i}.mp4`), { durationSec: 2 + (i % 2), freq });
    rows.push({ id: `v${i}`, path: file, split: "train", durationSec: 2 + (i % 2), hasAudio: true, fps: 25 });
  });
  const bad = path.join(tmp.dir, "videos", "bad.mp4");
  writeFileSync(bad, "not a video at all\n".repeat(30));
  rows.splice(2, 0, { id: "bad", path: bad, split: "train", durationSec: 2, hasAudio: true });
  const silent = makeClockVideo(path.join(tmp.dir, "videos", "silent.mp4"), { durationSec: 2, audio: false });
  rows.push({ id: "silent", path: silent, split: "train", durationSec: 2, hasAudio: false });
});

describe("sample cache", () => {
  test("build, interrupt, resume (finished shards skipped), read back equals direct decode", async () => {
    const out = path.join(tmp.dir, "cache-f32");
    const base = {
      manifest: rows,
      out,
      perClip: 3,
      frameSize: size,
      sampleRate: 16000,
      audioFormat: "float32" as const,
      clipsPerShard: 2,
      seed: 11,
    };
    // first run: stop (as a crash would) once two shards are on disk
    await assert.rejects(
      buildSampleCache({
        ...base,
        onProgress: (p) => {
          if (p.id === undefined && p.shardsDone === 2) throw new Error("simulated crash");
        },
      }),
      /simulated crash/,
    );
    assert.equal(readdirSync(out).filter((f) => f.endsWith(".bin")).length, 2);
    assert.throws(() => openSampleCache(out), /not complete/);
    const partial = openSampleCache(out, { allowPartial: true });
    assert.equal(partial.clips.length, 3); // v0, v1 (bad skipped), v2
    const mtimes = ["shard-00000.bin", "shard-00001.bin"].map((f) => statSync(path.join(out, f)).mtimeMs);

    // resume: only the clips of the missing shards are decoded
    const decoded: string[] = [];
    const progress: CacheProgress[] = [];
    const res = await buildSampleCache({
      ...base,
      decode: (file, times, opts) => {
        decoded.push(path.basename(file));
        return readSamples(file, times, opts);
      },
      onProgress: (p) => progress.push(p),
    });
    assert.equal(res.shardsResumed, 2);
    assert.equal(res.shardsBuilt, 2);
    assert.deepEqual(decoded.sort(), ["v3.mp4", "v4.mp4"]);
    assert.equal(progress[0]!.clipsResumed, 4);
    assert.equal(progress.at(-1)!.clipsDone, 7);
    assert.deepEqual(
      ["shard-00000.bin", "shard-00001.bin"].map((f) => statSync(path.join(out, f)).mtimeMs),
      mtimes,
    );
    assert.equal(res.clips, 5);
    assert.equal(res.samples, 15);
    assert.deepEqual(res.skipped.map((s) => [s.id, s.reason]).sort(), [
      ["bad", "corrupt"],
      ["silent", "no-audio-stream"],
    ]);
    // a third run does nothing
    const again = await buildSampleCache(base);
    assert.equal(again.shardsBuilt, 0);
    assert.equal(again.shardsResumed, 4);
    // other settings in the same folder are refused
    await assert.rejects(buildSampleCache({ ...base, perClip: 4 }), /different settings/);

    const cache = openSampleCache(out);
    assert.equal(cache.numSamples, 15);
    assert.deepEqual(
      cache.skipped.map((s) => s.id),
      ["bad", "silent"],
    );
    for (let ci = 0; ci < cache.clips.length; ci++) {
      const clip = cache.clips[ci]!;
      const row = rows[clip.rowIndex]!;
      assert.equal(clip.id, row.id);
      assert.deepEqual(clip.times, cacheSampleTimes(row.id, row.durationSec, 3, 1, 11));
      const direct = await readSamples(row.path, clip.times, { size, sampleRate: 16000, audioSec: 1 });
      clip.times.forEach((t, k) => {
        const s = cache.getSample(clip.firstSample + k);
        assert.equal(s.clipIndex, ci);
        assert.equal(s.id, row.id);
        assert.equal(s.t, t);
        assert.deepEqual(s.frame, direct.frames[k]);
        assert.deepEqual(s.audio, direct.audio[k]!.samples);
        assert.deepEqual(cache.getFrame(clip.firstSample + k), direct.frames[k]);
        assert.deepEqual(cache.getAudio(clip.firstSample + k), direct.audio[k]!.samples);
        // content: the frame and the audio window both tell time t; the tone tells the clip
        assert.ok(Math.abs(frameTime(s.frame.data) - t) < 0.07, `frame time ${frameTime(s.frame.data)} vs ${t}`);
        assert.ok(Math.abs(audioTime(s.audio) - t) < 0.08, `audio time ${audioTime(s.audio)} vs ${t}`);
        assert.ok(Math.abs(zeroCrossingFreq(s.audio, 16000) - FREQS[Number(row.id.slice(1))]!) < 5);
      });
      // times are spread over the clip, keeping the 1 s window inside
      assert.ok(clip.times.every((t) => t >= 0.5 && t <= row.durationSec - 0.5));
      assert.ok(clip.times[2]! - clip.times[0]! > (row.durationSec - 1) / 3);
    }
    assert.throws(() => cache.getSample(15), /outside \[0, 15\)/);
    // pairs from a sampler over cache.clips load from the cache
    const sampler = createPairSampler(cache.clips, { seed: 2 });
    for (const p of sampler.take(10)) {
      const { frame, audio } = cache.loadPair(p);
      assert.ok(Math.abs(frameTime(frame.data) - p.frame.t) < 0.07);
      assert.ok(Math.abs(audioTime(audio) - p.audio.t) < 0.08);
    }
    cache.close();
  });

  test("int16 audio is within one quantisation step; cacheCommand prints progress lines", async () => {
    const manifestFile = path.join(tmp.dir, "m.jsonl");
    await saveManifest(manifestFile, rows);
    const out = path.join(tmp.dir, "cache-i16");
    const written: string[] = [];
    const logs: string[] = [];
    const stream = { isTTY: false, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const res = await cacheCommand({
      manifest: manifestFile,
      out,
      perClip: "2",
      frameSize: "32x24",
      sampleRate: "16000",
      seed: 11,
      audioFormat: "int16",
      clipsPerShard: "4",
      limit: "4",
      stream,
      log: (l) => logs.push(l),
    });
    assert.equal(res.clips, 3, logs.join("\n"));
    assert.ok(written.length >= 2 && written.every((l) => /^cache: \d+\/4 clips/.test(l)), written.join(""));
    assert.match(logs[0]!, /3 clips, 6 samples, 1 skipped/);
    assert.match(logs[1]!, /skipped bad \(corrupt\)/);
    const cache = openSampleCache(out);
    for (const clip of cache.clips) {
      const row = rows[clip.rowIndex]!;
      const d = await readSamples(row.path, clip.times, { size, sampleRate: 16000 });
      clip.times.forEach((_, k) => {
        const s = cache.getSample(clip.firstSample + k);
        const ref = d.audio[k]!.samples;
        let maxErr = 0;
        for (let j = 0; j < ref.length; j++) maxErr = Math.max(maxErr, Math.abs(ref[j]! - s.audio[j]!));
        assert.ok(maxErr <= 0.5 / 32767 + 1e-7, `max error ${maxErr}`);
        assert.deepEqual(s.frame, d.frames[k]);
      });
    }
    cache.close();
    // on a TTY: a cli-progress bar with clips/s and ETA (resuming: the cache is already complete)
    const tty: string[] = [];
    const ttyStream = {
      isTTY: true,
      columns: 150,
      write: (s: string) => tty.push(s),
      on: () => ttyStream,
      removeListener: () => ttyStream,
    };
    const res2 = await cacheCommand({
      manifest: manifestFile,
      out,
      perClip: 2,
      frameSize: "32x24",
      sampleRate: 16000,
      seed: 11,
      audioFormat: "int16",
      clipsPerShard: 4,
      limit: 4,
      stream: ttyStream as unknown as NodeJS.WriteStream,
      log: () => {},
    });
    assert.equal(res2.shardsResumed, 1);
    assert.match(tty.join(""), /cache \|.*\| 100% \| 4\/4 clips \| [\d.]+ clips\/s \| ETA \S+ \| 6 samples \| 1 skipped/);
    assert.deepEqual(parseCacheFrameSize("256"), { shortSide: 256 });
    assert.deepEqual(parseCacheFrameSize(undefined), { shortSide: 256 });
    assert.deepEqual(parseCacheFrameSize("320x240"), { width: 320, height: 240 });
    assert.throws(() => parseCacheFrameSize("big"), /WIDTHxHEIGHT/);
  });
});
