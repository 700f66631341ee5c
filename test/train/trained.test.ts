/**
 * The notebooks' two set-up calls: openDataset (manifest + sample cache, made once and reused) and
 * trainedModel (trained once per data and settings, loaded by later calls). Both refuse bad options
 * before doing any work.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { initBackend } from "../../src/lib/backend";
import { type DatasetHandle, openDataset } from "../../src/lib/data";
import { resolveL3Config } from "../../src/lib/models";
import { trainedModel } from "../../src/lib/train";
import { ConfigError } from "../../src/lib/util";
import { tempDir } from "../helpers";

const tmp = tempDir("l3kit-trained-");
after(() => tmp.cleanup());
const model = resolveL3Config("tiny");
const synth = { clips: 16, classes: 4, profile: "tiny" as const, seed: 7 };

test("openDataset and trainedModel check their options before any work", async () => {
  const root = path.join(tmp.dir, "never");
  const bad: Array<[Parameters<typeof openDataset>[0], RegExp]> = [
    [{ model, perClip: 2, cacheRoot: root } as never, /manifest file or synth/],
    [{ synth, manifest: "m.jsonl", model, perClip: 2, cacheRoot: root }, /not both/],
    [{ manifest: path.join(root, "missing.jsonl"), model, perClip: 2, cacheRoot: root }, /manifest not found/],
    [{ synth: { ...synth, clips: 1.5 }, model, perClip: 2, cacheRoot: root }, /synth\.clips[\s\S]*integer ≥ 2/],
    [{ synth: { ...synth, profile: "huge" as never }, model, perClip: 2, cacheRoot: root }, /tiny/],
    [{ synth, model, perClip: 0, cacheRoot: root }, /perClip[\s\S]*integer ≥ 1/],
    [{ synth, model: "tiny" as never, perClip: 2, cacheRoot: root }, /resolved model config/],
  ];
  for (const [opts, message] of bad) {
    await assert.rejects(openDataset(opts), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(opts));
  }
  assert.equal(existsSync(root), false, "nothing was generated");
  const data = { manifest: { hash: "x" }, cacheDir: "c", split: () => ({}) } as never;
  await assert.rejects(trainedModel({ data: {} as never, model: "tiny", config: { steps: 2 } }), /openDataset/);
  await assert.rejects(trainedModel({ data, model: "tiny", config: { steps: 0 } }), /steps[\s\S]*integer ≥ 1/);
  await assert.rejects(trainedModel({ data, model: "tiny", config: { steps: 2 }, seed: 0.5 }), /seed/);
});

test("openDataset makes the data once; trainedModel trains once and later calls load the same run", { timeout: 600_000 }, async () => {
  await initBackend({ backend: "wasm", quiet: true });
  const cacheRoot = path.join(tmp.dir, "cache");
  const lines: string[] = [];
  const open = () => openDataset({ synth, model, perClip: 2, cacheRoot, log: (l) => lines.push(l) });
  const first = await open();
  assert.ok(lines.some((l) => /generating the synthetic benchmark/.test(l)) && lines.some((l) => /pre-decoding/.test(l)), lines.join("\n"));
  assert.equal(first.manifest.rows.length, 16);
  assert.equal(first.cache.numSamples, 32);
  assert.ok(first.synthDir && existsSync(path.join(first.synthDir, "metadata.json")));
  assert.ok(first.split("train").clips.length > 0 && first.split("val").clips.length > 0);
  assert.throws(() => first.split("nope"), /no clips in split 'nope'/);
  first.close();
  lines.length = 0;
  const data: DatasetHandle = await open();
  assert.deepEqual(lines, [], "the second call generates and decodes nothing");
  assert.equal(data.cacheDir, first.cacheDir);

  const config = { steps: 2, batchSize: 4, evalEvery: 2, valPairs: 8, logEvery: 1, checkpointEvery: 0 };
  const rows: number[] = [];
  const a = await trainedModel({ data, model: "tiny", config, cacheRoot, callbacks: { onStep: (r) => void rows.push(r.step) } });
  assert.equal(a.trainedNow, true);
  assert.deepEqual(rows, [1, 2]);
  assert.equal(a.run.steps, 2);
  assert.ok(existsSync(path.join(a.checkpoint, "model.json")), a.checkpoint);
  assert.equal(path.dirname(path.dirname(a.out)), path.resolve(cacheRoot));
  const b = await trainedModel({ data, model: model, config: { ...config, maxSeconds: 600 }, cacheRoot });
  assert.equal(b.trainedNow, false, "the same settings (the time guard aside) reuse the run");
  assert.equal(b.out, a.out);
  assert.equal(b.checkpoint, a.checkpoint);
  assert.equal(b.model.config.name, "tiny");
  const c = await trainedModel({ data, model: "tiny", config: { ...config, steps: 3 }, cacheRoot });
  assert.notEqual(c.out, a.out, "other settings: another run");
  for (const m of [a.model, b.model, c.model]) m.dispose();
  data.close();
});
