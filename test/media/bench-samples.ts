/**
 * Throughput of {@link readSamples}: samples/s, where a sample is one frame + `audioSec` of audio.
 * Not a test (node:test does not pick it up). Usage:
 *   node --import tsx test/media/bench-samples.ts <video> [clips=24] [perClip=4] [concurrency=2] [size=224] [threads=1] [windowSec]
 * Make a 10 s H.264/AAC test video with:
 *   $(node -p 'require("@ffmpeg-installer/ffmpeg").path') -f lavfi -i testsrc2=size=640x360:rate=25:duration=10 \
 *     -f lavfi -i sine=frequency=440:sample_rate=44100:duration=10 -ac 2 -c:v libx264 -crf 23 -c:a aac -shortest /tmp/bench10.mp4
 */
import { probeMedia, readSamples, setMediaConcurrency } from "../../src/lib/media";
import { Rng } from "../../src/lib/util";

async function main(): Promise<void> {
  const [file, clipsArg, perClipArg, concArg, sizeArg, threadsArg, windowArg] = process.argv.slice(2);
  if (!file) throw new Error("usage: bench-samples.ts <video> [clips] [perClip] [concurrency] [size] [threads]");
  const clips = Number(clipsArg ?? 24);
  const perClip = Number(perClipArg ?? 4);
  const conc = Number(concArg ?? 2);
  const size = Number(sizeArg ?? 224);
  const threads = Number(threadsArg ?? 1);
  const windowSec = windowArg ? Number(windowArg) : undefined;
  setMediaConcurrency(conc);
  const info = await probeMedia(file);
  const rng = new Rng(1);
  const jobs = Array.from({ length: clips }, () => Array.from({ length: perClip }, () => rng.uniform(0.5, info.durationSec - 0.5)));
  const t0 = performance.now();
  let samples = 0;
  // clips in flight: 2 ffmpeg runs each, so keep the pool busy with `conc` clips at once
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const times = jobs[next++]!;
      const r = await readSamples(file, times, { size: { width: size, height: size }, sampleRate: 48000, threads, windowSec });
      samples += r.frames.length;
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  const sec = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      file,
      video: info.video,
      clips,
      perClip,
      concurrency: conc,
      size,
      threads,
      windowSec,
      samples,
      seconds: +sec.toFixed(2),
      samplesPerSec: +(samples / sec).toFixed(1),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
