import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import {
  type AvcBatch,
  AvcPairSampler,
  type AvcTransforms,
  avcBatches,
  buildSampleCache,
  createPairSampler,
  Dataset,
  type ManifestRow,
  openSampleCache,
  type PairSource,
  type SampleCache,
  type SkippedClip,
  videoPairSource,
} from "../../src/lib/data";
import type { Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { audioTime, frameTime, makeClockVideo, zeroCrossingFreq } from "./fixtures";

describe("Dataset", () => {
  test("map, filter, batch, take, skip; re-iterable", async () => {
    const ds = Dataset.range(0, 10)
      .map((x) => x * 2)
      .filter((x) => x % 3 !== 0)
      .batch(3);
    const expect = [
      [2, 4, 8],
      [10, 14, 16],
    ];
    assert.deepEqual(await ds.toArray(), expect);
    assert.deepEqual(await ds.toArray(), expect);
    assert.deepEqual(await Dataset.from([1, 2, 3, 4, 5]).batch(2, { dropRemainder: true }).toArray(), [
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(await Dataset.range(0, 100).skip(3).take(2).toArray(), [3, 4]);
  });

  test("size: known through map, batch, take, skip and prefetch; unknown after filter", () => {
    assert.equal(Dataset.range(0, 10).size, 10);
    assert.equal(Dataset.from([1, 2, 3]).map((x) => x + 1).size, 3);
    assert.equal(Dataset.range(0, 10).batch(3).size, 4);
    assert.equal(Dataset.range(0, 10).batch(3, { dropRemainder: true }).size, 3);
    assert.equal(Dataset.range(0, 10).skip(3).take(4).prefetch(2).size, 4);
    assert.equal(Dataset.range(0, 10).take(40).size, 10);
    assert.equal(Dataset.range(0, 10).mapAsync(async (x) => x, 2).size, 10);
    assert.equal(Dataset.range(0, 10).filter((x) => x > 2).size, null);
    assert.equal(
      Dataset.generate(function* () {
        yield 1;
      }).size,
      null,
    );
  });

  test("mapAsync keeps order and bounds concurrency", async () => {
    let running = 0;
    let peak = 0;
    const out = await Dataset.range(0, 12)
      .mapAsync(async (x) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(x % 3 === 0 ? 15 : 2);
        running--;
        return x * x;
      }, 4)
      .toArray();
    assert.deepEqual(
      out,
      Array.from({ length: 12 }, (_, i) => i * i),
    );
    assert.equal(peak, 4);
  });

  test("prefetch produces ahead of a slow consumer; errors arrive at their element", async () => {
    let produced = 0;
    const ds = Dataset.generate(async function* () {
      for (let i = 0; i < 10; i++) {
        await sleep(1);
        produced++;
        yield i;
      }
    }).prefetch(3);
    const it = ds[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { done: false, value: 0 });
    for (let waited = 0; produced < 4 && waited < 3000; waited += 10) await sleep(10);
    await sleep(50);
    assert.equal(produced, 4, "1 consumed + 3 buffered, and no more");
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    assert.deepEqual(rest, [1, 2, 3, 4, 5, 6, 7, 8, 9]);

    const failing = Dataset.range(0, 5)
      .map((x) => {
        if (x === 3) throw new Error("boom at 3");
        return x;
      })
      .prefetch(2);
    const seen: number[] = [];
    await assert.rejects(
      failing.forEach((x) => void seen.push(x)),
      /boom at 3/,
    );
    assert.deepEqual(seen, [0, 1, 2]);
  });
});

// ---------------------------------------------------------------------------------------------

const tmp = tempDir("l3kit-batches-");
after(() => tmp.cleanup());
const FREQS = [300, 500, 700, 900];
const rows: ManifestRow[] = [];
let cache: SampleCache;
const size = { width: 32, height: 24 };
const SR = 16000;

before(async () => {
  FREQS.forEach((freq, i) => {
    const d = 2 + (i % 2);
    rows.push({
      id: `v${i}`,
      path: makeClockVideo(path.join(tmp.dir, `v${i}.mp4`), { durationSec: d, freq }),
      split: "train",
      durationSec: d,
      hasAudio: true,
    });
  });
  await buildSampleCache({
    manifest: rows,
    out: path.join(tmp.dir, "cache"),
    perClip: 4,
    frameSize: size,
    sampleRate: SR,
    seed: 1,
    clipsPerShard: 2,
  });
  cache = openSampleCache(path.join(tmp.dir, "cache"));
});
after(() => cache?.close());

/** Transforms that keep the content readable: frame bytes / 255 (with a seeded flip), raw audio as [1, n, 1]. */
const transforms: AvcTransforms = {
  frame: (f, rng: Rng) => {
    const data = new Float32Array(f.data.length);
    const flip = rng.bool(0.5);
    for (let y = 0; y < f.height; y++) {
      for (let x = 0; x < f.width; x++) {
        const sx = flip ? f.width - 1 - x : x;
        for (let c = 0; c < 3; c++) data[(y * f.width + x) * 3 + c] = (f.data[(y * f.width + sx) * 3 + c] as number) / 255;
      }
    }
    return { data, shape: [f.height, f.width, 3] };
  },
  audio: (s, rng: Rng) => {
    const g = rng.uniform(0.999, 1.001);
    return { data: s.map((v) => v * g), shape: [1, s.length, 1] };
  },
};

function checkContent(b: AvcBatch, src: readonly { id: string }[]): void {
  const fLen = b.frames.length / b.size;
  const aLen = b.audio.length / b.size;
  b.pairs.forEach((p, i) => {
    const frame = b.frames.subarray(i * fLen, (i + 1) * fLen);
    const bytes = Uint8Array.from(frame, (v) => Math.round(v * 255));
    const audio = b.audio.subarray(i * aLen, (i + 1) * aLen);
    assert.ok(Math.abs(frameTime(bytes) - p.frame.t) < 0.07, `frame of ${p.frame.id} shows t=${frameTime(bytes)}, pair says ${p.frame.t}`);
    assert.ok(Math.abs(audioTime(audio) - p.audio.t) < 0.08, `audio window centre ${audioTime(audio)}, pair says ${p.audio.t}`);
    const clip = Number(src[p.audio.rowIndex]!.id.slice(1));
    assert.ok(Math.abs(zeroCrossingFreq(audio, SR) - FREQS[clip]!) < 5, "the audio comes from the pair's audio clip");
    assert.equal(b.labels[i], p.label);
    if (p.label === 1) assert.equal(p.audio.rowIndex, p.frame.rowIndex);
    else assert.notEqual(p.audio.rowIndex, p.frame.rowIndex);
  });
}

describe("avcBatches", () => {
  test("from the cache: shapes, labels, aligned content, balanced epoch, deterministic", async () => {
    const run = async () => {
      const sampler = createPairSampler(cache.clips, { seed: 5, pairsPerEpoch: 16 });
      return avcBatches({ source: cache, sampler, transform: transforms, batchSize: 6, prefetch: 2 }).toArray();
    };
    const batches = await run();
    assert.deepEqual(
      batches.map((b) => b.size),
      [6, 6, 4],
    );
    const b0 = batches[0]!;
    assert.deepEqual(b0.frameShape, [6, 24, 32, 3]);
    assert.deepEqual(b0.audioShape, [6, 1, SR, 1]);
    assert.equal(b0.frames.length, 6 * 24 * 32 * 3);
    assert.equal(b0.audio.length, 6 * SR);
    assert.equal(
      batches.reduce((n, b) => n + b.labels.reduce((s, l) => s + l, 0), 0),
      8,
    );
    for (const b of batches) checkContent(b, cache.clips);
    assert.deepEqual(await run(), batches);
    assert.deepEqual(batches.at(-1)!.samplerState!.position, 16);
  });

  test("like a tf.data dataset: iterating twice gives the same stream, and the sampler is only read", async () => {
    const sampler = createPairSampler(cache.clips, { seed: 3, pairsPerEpoch: 12 });
    sampler.take(5); // a sampler part-way through an epoch: the pipeline starts where it stands
    const before = sampler.state();
    const ds = avcBatches({ source: cache, sampler, transform: transforms, batchSize: 4, maxBatches: 6, prefetch: 2 });
    assert.deepEqual(sampler.state(), before, "building the pipeline leaves the sampler as it was");
    const first = await ds.toArray();
    const second = await ds.toArray();
    assert.deepEqual(sampler.state(), before, "iterating the pipeline leaves the sampler as it was");
    assert.equal(ds.size, 6);
    assert.equal(first.length, 6);
    assert.deepEqual(second, first);
    assert.deepEqual(first[0]!.pairs[0], sampler.pairAt(0, 5));
    // The default length is the rest of the sampler's epoch, read when the pipeline is made.
    assert.equal(avcBatches({ source: cache, sampler, transform: transforms, batchSize: 7 }).size, 1);
    assert.equal(avcBatches({ source: cache, sampler, transform: transforms, batchSize: 4, maxBatches: Infinity }).size, Infinity);
  });

  test("resuming from a batch's samplerState gives the same next batches", async () => {
    const mk = (s: AvcPairSampler) =>
      avcBatches({ source: cache, sampler: s, transform: transforms, batchSize: 4, maxBatches: 5, prefetch: 3 });
    const full = await mk(createPairSampler(cache.clips, { seed: 8, pairsPerEpoch: 10 })).toArray();
    assert.deepEqual(
      full.map((b) => b.pairs.map((p) => p.epoch)),
      [
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 1, 1],
        [1, 1, 1, 1],
        [1, 1, 1, 1],
      ],
    );
    // consume two batches (the pipeline has prefetched more), then resume from the second one's state
    const first = createPairSampler(cache.clips, { seed: 8, pairsPerEpoch: 10 });
    const it = mk(first)[Symbol.asyncIterator]();
    await it.next();
    const second = (await it.next()).value as AvcBatch;
    await it.return?.();
    const state = JSON.parse(JSON.stringify(second.samplerState));
    const resumed = await mk(AvcPairSampler.fromState(cache.clips, state)).take(3).toArray();
    assert.deepEqual(resumed, full.slice(2));
  });

  test("from video: a clip that fails to decode is skipped, reported once, and replaced; decode overlaps the consumer", async () => {
    const bad = path.join(tmp.dir, "broken.mp4");
    writeFileSync(bad, "not a video\n".repeat(40));
    const vrows: ManifestRow[] = [
      ...rows.slice(0, 2),
      { id: "broken", path: bad, split: "train", durationSec: 2, hasAudio: true },
      ...rows.slice(2),
    ];
    const base = videoPairSource(vrows, { frameSize: size, sampleRate: SR });
    let loads = 0;
    const source: PairSource = {
      clips: base.clips,
      loadPair: (p) => {
        loads++;
        return base.loadPair(p);
      },
      subset: (split) => base.subset(split),
    };
    const sampler = createPairSampler(vrows, { seed: 4, pairsPerEpoch: 20 });
    const skipped: SkippedClip[] = [];
    const ds = avcBatches({
      source,
      sampler,
      transform: transforms,
      batchSize: 4,
      prefetch: 2,
      concurrency: 2,
      onSkip: (s) => skipped.push(s),
    });
    const batches: AvcBatch[] = [];
    const it = ds[Symbol.asyncIterator]();
    let r = await it.next();
    batches.push(r.value as AvcBatch);
    const before = loads;
    await sleep(1500);
    assert.ok(loads >= before + 4, `decoding went on while the consumer was busy (${before} → ${loads} loads)`);
    for (r = await it.next(); !r.done; r = await it.next()) batches.push(r.value as AvcBatch);

    assert.deepEqual(
      batches.map((b) => b.size),
      [4, 4, 4, 4, 4],
    );
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0]!.id, "broken");
    assert.equal(skipped[0]!.rowIndex, 2);
    assert.ok(["corrupt", "truncated"].includes(skipped[0]!.reason), skipped[0]!.reason);
    // The pipeline excludes the clip from its own draws and says so in the batches' sampler state;
    // the sampler it reads from is left as it was.
    assert.deepEqual(batches.at(-1)!.samplerState!.excluded, [2]);
    assert.ok(!sampler.isExcluded(2));
    assert.deepEqual(sampler.state().position, 0);
    const all = batches.flatMap((b) => b.pairs);
    assert.ok(all.every((p) => p.frame.rowIndex !== 2 && p.audio.rowIndex !== 2));
    assert.equal(all.filter((p) => p.label === 1).length, 10, "replacements keep the epoch balanced");
    assert.deepEqual(
      all.map((p) => p.index),
      Array.from({ length: 20 }, (_, i) => i),
    );
    for (const b of batches) checkContent(b, vrows);
  });
});

describe("PairSource.subset", () => {
  const splitOf = (i: number) => (i % 2 === 0 ? "train" : "val");

  test("a cache's split: its clips, loading through the cache; every clip in it gives the cache itself", async () => {
    const mixed = path.join(tmp.dir, "cache-mixed");
    await buildSampleCache({
      manifest: rows.map((r, i) => ({ ...r, split: splitOf(i) })),
      out: mixed,
      perClip: 4,
      frameSize: size,
      sampleRate: SR,
      seed: 1,
      clipsPerShard: 2,
    });
    const c = openSampleCache(mixed);
    try {
      const val = c.subset("val");
      assert.deepEqual(
        val.clips.map((x) => x.id),
        ["v1", "v3"],
      );
      assert.equal(val.subset("val").clips.length, 2);
      assert.equal(val.subset("train").clips.length, 0);
      assert.equal(cache.subset("train"), cache);
      assert.equal(cache.subset("test").clips.length, 0);
      const sampler = createPairSampler(val.clips, { seed: 2, pairsPerEpoch: 8 });
      const [b] = await avcBatches({ source: val, sampler, transform: transforms, batchSize: 8 }).toArray();
      checkContent(b!, val.clips);
    } finally {
      c.close();
    }
  });

  test("video files' split: pairs drawn over the subset's clips load those clips", async () => {
    const all = videoPairSource(
      rows.map((r, i) => ({ ...r, split: splitOf(i) })),
      { frameSize: size, sampleRate: SR },
    );
    const val = all.subset("val");
    assert.deepEqual(
      val.clips.map((x) => x.id),
      ["v1", "v3"],
    );
    assert.equal(videoPairSource(rows, { frameSize: size, sampleRate: SR }).subset("train").clips.length, rows.length);
    const sampler = createPairSampler(val.clips, { seed: 2, pairsPerEpoch: 4 });
    const [b] = await avcBatches({ source: val, sampler, transform: transforms, batchSize: 4 }).toArray();
    checkContent(b!, val.clips);
  });
});
