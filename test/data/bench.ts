/**
 * Throughput of the data pipeline (not a test; run by hand):
 *   node --import tsx test/data/bench.ts [--clips 8] [--seconds 3]
 * Measures: cache build (clips/s), samples/s served from the cache (one 224×224 frame + 1 s of
 * 48 kHz audio each: raw reads, and through avcBatches with light transforms and with the paper's
 * spectrogram), and samples/s through avcBatches straight from video.
 */
import * as path from "node:path";
import { linearSpectrogram } from "../../src/lib/audio";
import {
  type AvcTransforms,
  avcBatches,
  buildSampleCache,
  createPairSampler,
  type ManifestRow,
  openSampleCache,
  videoPairSource,
} from "../../src/lib/data";
import { Rng } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { makeClockVideo } from "./fixtures";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const nClips = arg("clips", 8);

/** Wall-clock rate and rate per CPU-second of this process (the latter is steadier on a busy machine). */
function rates(n: number, t0: number, c0: NodeJS.CpuUsage): string {
  const wall = (Date.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  return `${(n / wall).toFixed(1)} samples/s wall, ${(n / cpu).toFixed(1)} per CPU-second`;
}
const seconds = arg("seconds", 3);

const light: AvcTransforms = {
  frame: (f) => {
    const data = new Float32Array(f.data.length);
    for (let i = 0; i < data.length; i++) data[i] = (f.data[i] as number) * (1 / 255);
    return { data, shape: [f.height, f.width, 3] };
  },
  audio: (s) => ({ data: s, shape: [1, s.length, 1] }),
};
const paper: AvcTransforms = {
  frame: light.frame,
  audio: (s) => {
    const sp = linearSpectrogram(s);
    return { data: sp.data, shape: [sp.bins, sp.frames, 1] };
  },
};

async function main(): Promise<void> {
  const tmp = tempDir("l3kit-bench-");
  try {
    const rows: ManifestRow[] = [];
    let t0 = Date.now();
    for (let i = 0; i < nClips; i++) {
      const file = makeClockVideo(path.join(tmp.dir, `v${i}.mp4`), { durationSec: 10, freq: 200 + 100 * i, size: 256 });
      rows.push({ id: `v${i}`, path: file, split: "train", durationSec: 10, hasAudio: true });
    }
    console.log(`made ${nClips} 10 s 256×256 clips in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    for (const audioFormat of ["int16", "float32"] as const) {
      const out = path.join(tmp.dir, `cache-${audioFormat}`);
      const res = await buildSampleCache({
        manifest: rows,
        out,
        perClip: 16,
        frameSize: { width: 224, height: 224 },
        sampleRate: 48000,
        audioFormat,
        clipsPerShard: 4,
      });
      console.log(
        `cache build (${audioFormat}): ${res.clips} clips, ${res.samples} samples in ${res.seconds.toFixed(1)} s = ${(res.clips / res.seconds).toFixed(2)} clips/s, ${(res.samples / res.seconds).toFixed(1)} samples/s`,
      );
      const cache = openSampleCache(out);
      const rng = new Rng(1);
      let n = 0;
      t0 = Date.now();
      let c0 = process.cpuUsage();
      while (Date.now() - t0 < seconds * 1000) {
        for (let k = 0; k < 100; k++) cache.getSample(rng.int(cache.numSamples));
        n += 100;
      }
      console.log(`  getSample random access (${audioFormat}): ${rates(n, t0, c0)}`);
      for (const [name, tf] of [
        ["light transforms", light],
        ["paper spectrogram", paper],
      ] as const) {
        const sampler = createPairSampler(cache.clips, { seed: 1, pairsPerEpoch: 1_000_000 });
        let count = 0;
        t0 = Date.now();
        c0 = process.cpuUsage();
        for await (const b of avcBatches({ source: cache, sampler, transform: tf, batchSize: 32, prefetch: 2, maxBatches: 10_000 })) {
          count += b.size;
          if (Date.now() - t0 > seconds * 1000) break;
        }
        console.log(`  avcBatches from cache, ${name} (${audioFormat}): ${rates(count, t0, c0)}`);
      }
      cache.close();
    }

    const source = videoPairSource(rows, { frameSize: { width: 224, height: 224 }, sampleRate: 48000 });
    for (const [name, tf] of [
      ["light transforms", light],
      ["paper spectrogram", paper],
    ] as const) {
      const sampler = createPairSampler(rows, { seed: 1, pairsPerEpoch: 1_000_000 });
      let count = 0;
      t0 = Date.now();
      for await (const b of avcBatches({
        source,
        sampler,
        transform: tf,
        batchSize: 16,
        prefetch: 2,
        concurrency: 4,
        maxBatches: 10_000,
      })) {
        count += b.size;
        if (Date.now() - t0 > seconds * 2000) break;
      }
      console.log(
        `avcBatches from video, ${name}: ${(count / ((Date.now() - t0) / 1000)).toFixed(1)} samples/s wall (ffmpeg runs in child processes)`,
      );
    }
  } finally {
    tmp.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
