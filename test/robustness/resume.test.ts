/**
 * #20 item 6: a resumed run says where it resumed; a damaged newest checkpoint is refused with the
 * newest intact one named and how to resume from it; summary.json lists only checkpoints that exist;
 * item 5: stale temp folders of killed runs are cleared on resume.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { SampleCache } from "../../src/lib/data";
import { buildL3Net } from "../../src/lib/models";
import { splitSource, type TrainAvcConfig, trainAvc } from "../../src/lib/train";
import { L3kitError } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { tinyTrainingData } from "../train/fixture";

const tmp = tempDir("l3kit-resume-");
let cache: SampleCache;
before(async () => {
  ({ cache } = await tinyTrainingData(tmp.dir));
});
after(() => {
  cache?.close();
  tmp.cleanup();
});

const CONFIG: Partial<TrainAvcConfig> = {
  steps: 8,
  batchSize: 8,
  lr: 1e-3,
  evalEvery: 4,
  valPairs: 16,
  checkpointEvery: 2,
  logEvery: 2,
  keepLast: 3,
  engine: "tfjs",
  seed: 3,
};

test("damaged newest checkpoint: the error names the newest intact one and --resume-from; resuming from it works and says so", async () => {
  const out = path.join(tmp.dir, "run");
  const train = splitSource(cache, "train");
  const model = buildL3Net("tiny", { seed: 1 });
  const r = await trainAvc({ model, train, out, config: CONFIG, progress: false });
  model.dispose();
  const ckpts = path.join(out, "checkpoints");
  // summary.json lists exactly the periodic checkpoints that exist (keepLast 3 of 4 written)
  const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8")) as { checkpoints: string[] };
  assert.deepEqual(
    summary.checkpoints.map((c) => path.basename(c)),
    ["step-00000004", "step-00000006", "step-00000008"],
  );
  for (const c of summary.checkpoints) assert.ok(existsSync(c), `${c} is listed but was pruned`);
  assert.deepEqual(r.checkpoints, summary.checkpoints);

  // damage the newest: flip bytes of its weights
  const newest = path.join(ckpts, "step-00000008");
  const wfile = readdirSync(newest).find((f) => f.startsWith("weights-")) as string;
  const bytes = readFileSync(path.join(newest, wfile));
  bytes[100] = (bytes[100] as number) ^ 0xff;
  writeFileSync(path.join(newest, wfile), bytes);
  // debris of a killed run: a temp checkpoint folder of a process that is gone
  const debris = path.join(ckpts, ".step-00000010.999999.abcdef12.tmp");
  mkdirSync(debris);

  const m2 = buildL3Net("tiny", { seed: 2 });
  const intact = path.join(ckpts, "step-00000006");
  await assert.rejects(trainAvc({ model: m2, train, out, config: CONFIG, resume: true, progress: false }), (err: unknown) => {
    assert.ok(err instanceof L3kitError);
    assert.equal(err.reason, "bad-checkpoint");
    assert.ok(err.message.startsWith(newest), err.message);
    assert.match(err.message, /SHA-256/);
    assert.ok(err.message.includes(`The newest intact checkpoint is ${intact} (step 6)`), err.message);
    assert.ok(err.message.includes(`--resume-from ${intact}`), err.message);
    return true;
  });
  assert.ok(!existsSync(debris), "the stale temp folder was removed");

  const lines: string[] = [];
  const r2 = await trainAvc({ model: m2, train, out, config: CONFIG, resume: true, resumeFrom: intact, log: (l) => lines.push(l) });
  m2.dispose();
  assert.equal(r2.resumedFrom, 6);
  assert.equal(r2.steps, 8);
  assert.ok(
    lines.some((l) => l.includes("resumed from step 6 of 8")),
    lines.join("\n"),
  );
  assert.ok(
    readdirSync(ckpts).some((n) => n.startsWith("step-00000008.superseded-")),
    "the damaged checkpoint was set aside",
  );
  const s2 = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8")) as { checkpoints: string[] };
  for (const c of s2.checkpoints) assert.ok(existsSync(path.join(c, "trainer.json")), `${c} listed but missing`);
});

test("a plain resume prints the step it resumed from", async () => {
  const out = path.join(tmp.dir, "run2");
  const train = splitSource(cache, "train");
  const m = buildL3Net("tiny", { seed: 1 });
  await trainAvc({ model: m, train, out, config: { ...CONFIG, steps: 4 }, progress: false });
  const lines: string[] = [];
  const r = await trainAvc({ model: m, train, out, config: { ...CONFIG, steps: 6 }, resume: true, log: (l) => lines.push(l) });
  m.dispose();
  assert.equal(r.resumedFrom, 4);
  assert.ok(
    lines.some((l) => /resumed from step 4 of 6 \(.*step-00000004\)/.test(l)),
    lines.join("\n"),
  );
});
