import * as path from "node:path";
import { initBackend } from "../../src/lib/backend";
import { buildSampleCache, generateSynthDataset, loadManifest, openSampleCache, type SampleCache } from "../../src/lib/data";
import { l3Preset } from "../../src/lib/models";

/**
 * A small synthetic dataset and its sample cache at the `tiny` preset's sizes, made once per test
 * process in a temp folder; the wasm backend (what users without a native backend train on).
 */
export async function tinyTrainingData(dir: string, clips = 16): Promise<{ cache: SampleCache; manifestPath: string }> {
  await initBackend({ backend: "wasm", quiet: true });
  const ds = await generateSynthDataset({ out: path.join(dir, "synth"), clips, seed: 7, classes: 4, profile: "tiny" });
  const cfg = l3Preset("tiny");
  const side = cfg.vision.frontEnd.resizeTo;
  await buildSampleCache({
    manifest: await loadManifest(ds.manifestPath),
    out: path.join(dir, "cache"),
    perClip: 3,
    frameSize: { width: side, height: side },
    sampleRate: cfg.audio.frontEnd.sampleRate,
    audioSec: 1,
    seed: 0,
  });
  return { cache: openSampleCache(path.join(dir, "cache")), manifestPath: ds.manifestPath };
}
