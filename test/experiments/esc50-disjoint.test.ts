import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { runExperiment } from "../../src/experiments";
import { esc50ProbeClips, type ProbeClipRecord } from "../../src/experiments/esc50-probe";
import { loadManifest, type ManifestRow } from "../../src/lib/data";
import { L3kitError } from "../../src/lib/util";
import { tempDir } from "../helpers";

const tmp = tempDir("l3kit-esc50-");
after(() => tmp.cleanup());

const row = (id: string, split: string, dir = "/data/synth"): ManifestRow =>
  ({ id, path: `${dir}/${id}.mp4`, split, label: "a", durationSec: 3, hasAudio: true }) as ManifestRow;

test("esc50ProbeClips: probing the dataset the encoder was trained on leaves out its train and val splits", () => {
  const rows = [row("a", "train"), row("b", "val"), row("c", "test"), row("d", "test"), row("e", "train")];
  const m = "/data/synth/manifest.jsonl";
  const r = esc50ProbeClips({ rows, manifest: m, pretraining: { rows, manifest: m } });
  assert.deepEqual(
    r.rows.map((x) => x.id),
    ["c", "d"],
  );
  assert.deepEqual(r.record.pretraining.ids, ["a", "b", "e"]);
  assert.deepEqual(r.record.pretraining.splits, ["train", "val"]);
  assert.equal(r.record.probed.count, 2);
  assert.equal(r.record.disjoint, true);
  // Another manifest (ESC-50) is probed whole; a clip file shared with pretraining is refused.
  const esc = [row("x", "train", "/esc"), row("y", "test", "/esc")];
  assert.equal(esc50ProbeClips({ rows: esc, manifest: "/esc/m.jsonl", pretraining: { rows, manifest: m } }).rows.length, 2);
  assert.throws(
    () => esc50ProbeClips({ rows: [row("a", "test")], manifest: "/other.jsonl", pretraining: { rows, manifest: m } }),
    (e: Error) => e instanceof L3kitError && /seen in pretraining/.test(e.message),
  );
  // A loaded checkpoint: unknown pretraining clips, every row probed, disjointness not claimed.
  const loaded = esc50ProbeClips({ rows, manifest: m, pretraining: null, checkpoint: "/ck/best" });
  assert.equal(loaded.rows.length, 5);
  assert.equal(loaded.record.disjoint, null);
});

test("esc50-probe (ci) probes only clips the encoder was not pretrained on, and provenance lists both", async () => {
  const out = path.join(tmp.dir, "esc50");
  await runExperiment("esc50-probe", {
    set: ["profile=ci", `data.cacheRoot=${path.join(tmp.dir, "cache")}`],
    out,
    backend: "wasm",
    quiet: true,
    resultsRoot: tmp.dir,
  });
  const prov = JSON.parse(readFileSync(path.join(out, "provenance.json"), "utf8"));
  const clips = prov.probeClips as ProbeClipRecord;
  assert.equal(clips.disjoint, true);
  const manifest = await loadManifest(prov.dataset.manifest);
  const split = new Map(manifest.rows.map((r) => [r.id, r.split]));
  const pre = new Set(clips.pretraining.ids);
  assert.ok(clips.probed.ids.length > 0);
  for (const id of clips.probed.ids) {
    assert.ok(!pre.has(id), `probed clip ${id} was not seen in pretraining`);
    assert.equal(split.get(id), "test");
  }
  // The pretraining clips are exactly the splits the training fitted (train) and validated on (val).
  assert.deepEqual(
    [...pre].sort(),
    manifest.rows
      .filter((r) => r.split === "train" || r.split === "val")
      .map((r) => r.id)
      .sort(),
  );
  assert.equal(clips.probed.count + (clips.pretraining.count ?? 0), manifest.rows.length);
  const md = readFileSync(path.join(out, "table.md"), "utf8");
  assert.match(md, /none of them among the \d+ clips that pretrained the encoder/);
  assert.match(md.split("\n")[2] ?? "", /^\*\*Recipe:\*\* `tiny` L³-Net, concat head; 6 steps of batch 16, in-batch negatives \(15 per frame\)/);
});
