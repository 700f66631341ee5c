/**
 * #20 item 1, as the issue reproduced it: `avc-train --set profile=ci` with its data cache on a full
 * 20 MB tmpfs fails; after freeing the space, the rerun reuses only intact clips (none skipped) and
 * trains exactly as a run on a clean disk does.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { tempDir } from "../helpers";
import { runCli } from "./cli";
import { mountSmallDisk, type SmallDisk, smallDiskSkip } from "./disk";

const skip = smallDiskSkip();
const tmp = tempDir("l3kit-diskfull-exp-");
let disk: SmallDisk | undefined;
before(() => {
  if (!skip) disk = mountSmallDisk(20);
});
after(() => {
  disk?.cleanup();
  tmp.cleanup();
});

const run = (cacheRoot: string, out: string) =>
  runCli([
    "experiment",
    "avc-train",
    ...["profile=ci", `data.cacheRoot=${cacheRoot}`].flatMap((s) => ["--set", s]),
    "--out",
    out,
    "--backend",
    "wasm",
    "--engine",
    "tfjs",
  ]);

interface Summary {
  steps: number;
  skipped: unknown[];
  final: { loss: number };
}

test("avc-train on a full disk fails; the rerun after freeing space skips no clip and matches a clean run", { skip }, async () => {
  const d = disk as SmallDisk;
  d.fill(60);
  const failed = await run(path.join(d.dir, "c"), path.join(tmp.dir, "run-full"));
  assert.equal(failed.code, 1, `exit ${failed.code}; free ${d.freeKb()} KB\n${failed.stdout}\n${failed.stderr}`);
  assert.match(failed.stderr, /no space left on device|the disk is full/i);
  const clips = path.join(d.dir, "c", "synth", "tiny-k10-n24-seed1", "clips");
  assert.deepEqual(
    readdirSync(clips).filter((n) => n.endsWith(".tmp")),
    [],
    "no temp file is left",
  );
  d.free();
  const again = await run(path.join(d.dir, "c"), path.join(tmp.dir, "run-again"));
  assert.equal(again.code, 0, again.stderr);
  const clean = await run(path.join(tmp.dir, "clean-cache"), path.join(tmp.dir, "run-clean"));
  assert.equal(clean.code, 0, clean.stderr);
  const a = JSON.parse(readFileSync(path.join(tmp.dir, "run-again", "summary.json"), "utf8")) as Summary;
  const b = JSON.parse(readFileSync(path.join(tmp.dir, "run-clean", "summary.json"), "utf8")) as Summary;
  assert.deepEqual(a.skipped, [], "no clip skipped after the resume");
  assert.equal(a.steps, b.steps);
  assert.equal(a.final.loss, b.final.loss, "the same loss as a clean run");
});
