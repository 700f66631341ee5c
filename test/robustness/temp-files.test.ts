/** #20 item 5: temp files of dead writers are cleared on start; live writers' files are kept. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { buildSampleCache, type ManifestRow } from "../../src/lib/data";
import { parseTempName, removeStaleTempFiles, tempPathFor } from "../../src/lib/util";
import { makeClockVideo } from "../data/fixtures";
import { tempDir } from "../helpers";

/** A pid that ran and exited (so no process has it now, barring reuse). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("temp names carry pid and host; old-style names parse too", () => {
  const t = path.basename(tempPathFor("/x/shard-00001.bin"));
  const host = hostname()
    .replace(/[^A-Za-z0-9-]/g, "-")
    .slice(0, 32);
  assert.deepEqual(parseTempName(t), { pid: process.pid, host });
  assert.deepEqual(parseTempName(".step-00000010.1234.tmp"), { pid: 1234 });
  assert.deepEqual(parseTempName(".best.77.0a1b2c3d.tmp.old"), { pid: 77 });
  assert.equal(parseTempName("shard-00001.bin"), null);
  assert.equal(parseTempName(".hidden"), null);
});

test("removeStaleTempFiles removes dead writers' files, keeps live ones and recent ones of other machines", async () => {
  const tmp = tempDir();
  try {
    const dead = deadPid();
    const live = path.basename(tempPathFor(path.join(tmp.dir, "a.bin")));
    const files = {
      live,
      deadNew: `.shard-00001.bin.${dead}.0a1b2c3d.${hostname()
        .replace(/[^A-Za-z0-9-]/g, "-")
        .slice(0, 32)}.tmp`,
      deadOld: `.clip-000001.mp4.${dead}.tmp`,
      foreignRecent: `.b.bin.${dead}.0a1b2c3d.some-other-host.tmp`,
      foreignOld: `.c.bin.${dead}.0a1b2c3d.some-other-host.tmp`,
      normal: "index.json",
    };
    for (const f of Object.values(files)) writeFileSync(path.join(tmp.dir, f), "x");
    mkdirSync(path.join(tmp.dir, `.step-00000004.${dead}.0a1b2c3d.tmp`)); // a temp checkpoint folder
    const old = new Date(Date.now() - 3 * 24 * 3600 * 1000);
    utimesSync(path.join(tmp.dir, files.foreignOld), old, old);
    const removed = (await removeStaleTempFiles(tmp.dir)).map((p) => path.basename(p)).sort();
    assert.deepEqual(removed, [files.deadNew, files.deadOld, files.foreignOld, `.step-00000004.${dead}.0a1b2c3d.tmp`].sort());
    assert.deepEqual(readdirSync(tmp.dir).sort(), [files.foreignRecent, files.live, files.normal].sort());
  } finally {
    tmp.cleanup();
  }
});

test("a cache build clears the shard temp files a killed build left", async () => {
  const tmp = tempDir();
  try {
    const v = makeClockVideo(path.join(tmp.dir, "v.mp4"), { durationSec: 2 });
    const rows: ManifestRow[] = [{ id: "v", path: v, split: "train", durationSec: 2, hasAudio: true }];
    const out = path.join(tmp.dir, "cache");
    mkdirSync(out);
    const debris = path.join(out, `.shard-00000.bin.${deadPid()}.0a1b2c3d.tmp`);
    writeFileSync(debris, Buffer.alloc(100000));
    await buildSampleCache({ manifest: rows, out, perClip: 1, frameSize: { shortSide: 16 } });
    assert.ok(!existsSync(debris));
    assert.deepEqual(
      readdirSync(out).filter((n) => n.endsWith(".tmp")),
      [],
    );
  } finally {
    tmp.cleanup();
  }
});
