import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { generateSynthDataset, type SynthDatasetOptions } from "../../src/lib/data/synth";
import { ConfigError } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { decodeAllAudio, decodeAllFrames } from "./decode";

const tmp = tempDir("l3kit-synth-det-");
after(() => tmp.cleanup());

// A custom, non-square configuration (also exercises the overrides of the profile).
const base: Omit<SynthDatasetOptions, "out"> = {
  clips: 12,
  seed: "det",
  classes: 4,
  profile: "tiny",
  size: { width: 48, height: 32 },
  fps: 10,
  durationSec: 2,
};
const files = ["manifest.jsonl", "clips.jsonl", "metadata.json", "README.md"];
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

test("same seed, any concurrency: identical manifest, metadata, mp4 bytes, decoded frames and audio", async () => {
  const a = await generateSynthDataset({ ...base, out: path.join(tmp.dir, "a"), concurrency: 1 });
  const b = await generateSynthDataset({ ...base, out: path.join(tmp.dir, "b"), concurrency: 3 });
  for (const f of files) assert.equal(readFileSync(path.join(a.out, f), "utf8"), readFileSync(path.join(b.out, f), "utf8"), f);
  assert.equal(a.metadata.params.profile, "custom");
  const clips = readdirSync(path.join(a.out, "clips")).sort();
  assert.equal(clips.length, 12);
  for (const c of clips) assert.equal(sha(path.join(a.out, "clips", c)), sha(path.join(b.out, "clips", c)), c);
  const fa = path.join(a.out, a.rows[3]!.path);
  const fb = path.join(b.out, b.rows[3]!.path);
  const [framesA, framesB, audioA, audioB] = await Promise.all([
    decodeAllFrames(fa, 48, 32),
    decodeAllFrames(fb, 48, 32),
    decodeAllAudio(fa),
    decodeAllAudio(fb),
  ]);
  assert.equal(framesA.length, 20);
  assert.deepEqual(framesA, framesB);
  assert.deepEqual(audioA, audioB);

  // Another seed gives another dataset.
  const c = await generateSynthDataset({ ...base, seed: "other", out: path.join(tmp.dir, "c") });
  assert.notEqual(readFileSync(path.join(c.out, "manifest.jsonl"), "utf8"), readFileSync(path.join(a.out, "manifest.jsonl"), "utf8"));
});

test("resume: re-running into the folder reuses every clip and writes the same files; other parameters are refused", async () => {
  const out = path.join(tmp.dir, "a");
  const before = files.map((f) => readFileSync(path.join(out, f), "utf8"));
  let reused = 0;
  const r = await generateSynthDataset({ ...base, out, onProgress: (p) => (reused = p.reused) });
  assert.equal(reused, 12);
  assert.deepEqual(
    files.map((f) => readFileSync(path.join(out, f), "utf8")),
    before,
  );
  assert.equal(r.rows.length, 12);
  await assert.rejects(
    generateSynthDataset({ ...base, seed: "changed", out }),
    (e: unknown) => e instanceof ConfigError && e.reason === "dataset-exists" && e.message.startsWith(out),
  );
  const foreign = path.join(tmp.dir, "foreign");
  await generateSynthDataset({ ...base, clips: 2, out: path.join(foreign, "x") });
  writeFileSync(path.join(foreign, "notes.txt"), "not a dataset");
  await assert.rejects(
    generateSynthDataset({ ...base, out: foreign }),
    (e: unknown) => e instanceof ConfigError && e.reason === "not-empty",
  );
  // overwrite starts over.
  const o = await generateSynthDataset({ ...base, seed: "changed", clips: 3, out, overwrite: true });
  assert.equal(readdirSync(path.join(out, "clips")).length, 3);
  assert.equal(o.rows.length, 3);
});

test("bad options fail before any work, naming the key", async () => {
  const out = path.join(tmp.dir, "bad");
  await assert.rejects(generateSynthDataset({ ...base, out, clips: 0 }), (e: unknown) => e instanceof ConfigError && e.subject === "clips");
  await assert.rejects(
    generateSynthDataset({ ...base, out, size: { width: 63, height: 64 } }),
    (e: unknown) => e instanceof ConfigError && e.subject === "size.width",
  );
  await assert.rejects(
    generateSynthDataset({ ...base, out, classes: 1 }),
    (e: unknown) => e instanceof ConfigError && e.subject === "classes",
  );
  await assert.rejects(
    generateSynthDataset({ ...base, out, profile: "huge" as "tiny" }),
    (e: unknown) => e instanceof ConfigError && e.subject === "profile",
  );
});
