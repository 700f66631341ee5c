// Speed of the synthetic benchmark generator, per profile: clips/s of a full run (render + audio +
// concurrent ffmpeg encodes + manifest), and where one clip's time goes (JS synthesis vs encoding).
//
//   node --import tsx bench/synth.ts [--tiny-clips 40] [--default-clips 12] [--concurrency N]
//
// Prints one line per profile; `benchSynth()` returns the same numbers for the bench runner.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  createSynthClipRenderer,
  generateSynthDataset,
  planSynthClip,
  SYNTH_PROFILES,
  type SynthProfileName,
  synthClasses,
  synthesizeSynthClipAudio,
} from "../src/lib/data/synth";

/** One profile's numbers. */
export interface SynthBenchResult {
  profile: SynthProfileName;
  width: number;
  height: number;
  fps: number;
  durationSec: number;
  clips: number;
  concurrency: number;
  /** Whole-run throughput (clips per second of wall time). */
  clipsPerSec: number;
  /** Single-thread JS time per clip: audio synthesis and frame rendering (ms). */
  audioMs: number;
  renderMs: number;
  /** Mean mp4 size (bytes). */
  bytesPerClip: number;
}

/** Runs the generator for each profile into a temp folder (removed afterwards). */
export async function benchSynth(
  opts: { tinyClips?: number; defaultClips?: number; concurrency?: number } = {},
): Promise<SynthBenchResult[]> {
  const concurrency = opts.concurrency ?? Math.max(2, os.availableParallelism?.() ?? os.cpus().length);
  const out: SynthBenchResult[] = [];
  for (const [profile, clips] of [
    ["tiny", opts.tinyClips ?? 40],
    ["default", opts.defaultClips ?? 12],
  ] as const) {
    const p = SYNTH_PROFILES[profile];
    const cfg = { width: p.width, height: p.height, fps: p.fps, durationSec: p.durationSec, sampleRate: 48000 };
    // JS cost per clip, single-threaded (no encoding).
    const classes = synthClasses(10);
    let audioMs = 0;
    let renderMs = 0;
    const probe = 6;
    for (let i = -2; i < probe; i++) {
      if (i < 0) {
        // JIT warm-up, not timed.
        const spec = planSynthClip(cfg, classes, "warm", -i, -i);
        const audio = synthesizeSynthClipAudio(spec);
        const r = createSynthClipRenderer(spec, audio.envelopes);
        for (let f = 0; f < spec.frames; f++) r.frame(f);
        continue;
      }
      const spec = planSynthClip(cfg, classes, "bench", i, i % 10);
      let t = performance.now();
      const audio = synthesizeSynthClipAudio(spec);
      audioMs += performance.now() - t;
      t = performance.now();
      const r = createSynthClipRenderer(spec, audio.envelopes);
      for (let f = 0; f < spec.frames; f++) r.frame(f);
      renderMs += performance.now() - t;
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), "l3kit-bench-synth-"));
    try {
      const res = await generateSynthDataset({ out: dir, clips, seed: "bench", profile, concurrency });
      const bytes = res.rows.reduce((s, r) => s + statSync(path.join(dir, r.path)).size, 0) / clips;
      out.push({
        profile,
        ...p,
        clips,
        concurrency,
        clipsPerSec: res.clipsPerSec,
        audioMs: audioMs / probe,
        renderMs: renderMs / probe,
        bytesPerClip: bytes,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

if (require.main === module) {
  benchSynth({ tinyClips: arg("tiny-clips"), defaultClips: arg("default-clips"), concurrency: arg("concurrency") })
    .then((rows) => {
      console.log(
        `cores: ${os.availableParallelism?.() ?? os.cpus().length}, load average: ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(" ")}`,
      );
      for (const r of rows) {
        console.log(
          `synth ${r.profile.padEnd(7)} ${r.width}x${r.height} ${r.fps} fps ${r.durationSec} s: ${r.clipsPerSec.toFixed(2)} clips/s ` +
            `(${r.clips} clips, concurrency ${r.concurrency}); per clip single-thread JS: audio ${r.audioMs.toFixed(0)} ms, render ${r.renderMs.toFixed(0)} ms; ` +
            `${(r.bytesPerClip / 1024).toFixed(1)} KiB/clip`,
        );
      }
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
