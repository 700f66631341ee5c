/**
 * #20 items 1 and 5: a full disk (a real tmpfs) never leaves a truncated clip, a temp file or an
 * error without a file name, and a resumed generation checks the clips it reuses.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { generateSynthDataset, SYNTH_SUMS_FILE, type SynthRepair } from "../../src/lib/data/synth";
import { encodeVideo, MediaError } from "../../src/lib/media";
import { buildL3Net } from "../../src/lib/models";
import { DEFAULT_TRAIN_CONFIG, saveCheckpoint } from "../../src/lib/train";
import { L3kitError, writeFileAtomic } from "../../src/lib/util";
import { tempDir } from "../helpers";
import { mountSmallDisk, type SmallDisk, smallDiskSkip } from "./disk";

const skip = smallDiskSkip();
const base = { clips: 6, seed: 7, classes: 2, profile: "tiny" as const, concurrency: 2 };

function noise(w: number, h: number, n: number): Uint8Array[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    const f = new Uint8Array(w * h * 3);
    for (let i = 0; i < f.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      f[i] = x >>> 24;
    }
    return f;
  });
}

function tempFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => path.basename(f).endsWith(".tmp"));
}

describe("disk full (tmpfs)", { skip }, () => {
  let disk: SmallDisk;
  before(() => {
    disk = mountSmallDisk(20);
  });
  after(() => disk?.cleanup());

  test("encodeVideo: ffmpeg's exit 0 after 'No space left on device' is an error, and no file or temp file stays", async () => {
    disk.fill(40);
    const file = path.join(disk.dir, "enc", "noise.mp4");
    await assert.rejects(encodeVideo({ path: file, width: 64, height: 64, fps: 8, frames: noise(64, 64, 24), crf: 0 }), (err: unknown) => {
      assert.ok(err instanceof MediaError, String(err));
      assert.ok(err.message.startsWith(file), err.message);
      assert.match(err.message, /No space left on device|damaged/);
      return true;
    });
    assert.deepEqual(readdirSync(path.dirname(file)), []);
    disk.free();
  });

  test("writeFileAtomic: ENOSPC names the file and removes the temp file", async () => {
    disk.fill(16);
    const file = path.join(disk.dir, "w", "shard-00001.bin");
    await assert.rejects(writeFileAtomic(file, new Uint8Array(256 * 1024)), (err: unknown) => {
      assert.ok(err instanceof L3kitError);
      assert.equal(err.reason, "disk-full");
      assert.equal(err.message, `${file}: cannot write: no space left on device (ENOSPC)`);
      return true;
    });
    assert.deepEqual(readdirSync(path.dirname(file)), []);
    disk.free();
  });

  test("saveCheckpoint on a full disk: the error names the checkpoint and no temp folder stays", async () => {
    const model = buildL3Net("tiny", { seed: 1 });
    const root = path.join(disk.dir, "ckpt");
    disk.fill(200);
    try {
      await assert.rejects(
        saveCheckpoint(
          root,
          "step-00000002",
          model,
          { step: 0, m: {}, v: {} },
          {
            step: 2,
            epoch: 0,
            pairsPerEpoch: 16,
            sampler: {} as never,
            best: null,
            elapsedSec: 0,
            config: DEFAULT_TRAIN_CONFIG,
          },
        ),
        (err: unknown) => {
          assert.ok(err instanceof L3kitError, String(err));
          assert.equal(err.reason, "disk-full");
          assert.match(
            err.message,
            new RegExp(`^${root}/step-00000002: cannot write the checkpoint \\(.*\\): .*no space left on device \\(ENOSPC\\)`),
          );
          return true;
        },
      );
      assert.deepEqual(readdirSync(root), []);
    } finally {
      model.dispose();
      disk.free();
    }
  });

  test("synthetic generation on a full disk fails; after freeing space the resumed run gives a clean run's clips", async () => {
    const clean = tempDir();
    try {
      const ref = await generateSynthDataset({ ...base, out: clean.dir });
      const out = path.join(disk.dir, "synth");
      disk.fill(60);
      await assert.rejects(generateSynthDataset({ ...base, out }), (err: unknown) => {
        assert.ok(err instanceof L3kitError, String(err));
        assert.match(err.message, new RegExp(`^${disk.dir}`), "the error names a file on the full disk");
        return true;
      });
      disk.free();
      const repairs: SynthRepair[] = [];
      const r = await generateSynthDataset({ ...base, out, onRepair: (x) => repairs.push(x) });
      assert.equal(
        readFileSync(r.manifestPath, "utf8").replaceAll(out, "X"),
        readFileSync(ref.manifestPath, "utf8").replaceAll(clean.dir, "X"),
      );
      for (const row of ref.rows) {
        const rel = row.path;
        assert.ok(readFileSync(path.join(out, rel)).equals(readFileSync(path.join(clean.dir, rel))), `${rel} differs from a clean run`);
      }
      assert.deepEqual(tempFilesUnder(out), []);
    } finally {
      clean.cleanup();
    }
  });
});

describe("resumed generation checks the clips it reuses", () => {
  test("a truncated clip, a clip with changed bytes and a damaged clip the journal lacks are made again and reported", async () => {
    const tmp = tempDir();
    try {
      const out = path.join(tmp.dir, "d");
      const first = await generateSynthDataset({ ...base, out });
      const files = first.rows.map((r) => path.join(out, r.path));
      const original = files.map((f) => readFileSync(f));
      const [a, b, c] = files as [string, string, string];
      truncateSync(a, Math.floor(statSync(a).size / 2)); // what a full disk left before this fix
      const bytes = readFileSync(b);
      bytes[bytes.length - 100] ^= 0xff; // same size, other bytes
      writeFileSync(b, bytes);
      // c: damaged and unknown to the journal (as if the run died before recording it)
      const sums = path.join(out, SYNTH_SUMS_FILE);
      const cId = path.basename(c, ".mp4");
      writeFileSync(
        sums,
        readFileSync(sums, "utf8")
          .split("\n")
          .filter((l) => !l.includes(`"${cId}"`))
          .join("\n"),
      );
      truncateSync(c, 1000);
      // debris of a killed run: a temp file whose process is gone
      const debris = path.join(out, "clips", `.${path.basename(a)}.999999.abcdef12.tmp`);
      writeFileSync(debris, "x");

      const repairs: SynthRepair[] = [];
      const r = await generateSynthDataset({ ...base, out, onRepair: (x) => repairs.push(x) });
      assert.deepEqual(repairs.map((x) => x.file).sort(), [a, b, c].sort());
      assert.match(repairs.find((x) => x.file === a)?.reason ?? "", /size/);
      assert.match(repairs.find((x) => x.file === b)?.reason ?? "", /SHA-256/);
      assert.match(repairs.find((x) => x.file === c)?.reason ?? "", /damaged/);
      assert.equal(r.metadata.stats.repaired, 3);
      assert.equal(r.metadata.stats.reused, base.clips - 3);
      files.forEach((f, i) => {
        assert.ok(readFileSync(f).equals(original[i] as Buffer), `${f} was not restored`);
      });
      assert.deepEqual(tempFilesUnder(out), []);
      // a third run finds everything intact
      const again: SynthRepair[] = [];
      const r3 = await generateSynthDataset({ ...base, out, onRepair: (x) => again.push(x) });
      assert.deepEqual(again, []);
      assert.equal(r3.metadata.stats.reused, base.clips);
    } finally {
      tmp.cleanup();
    }
  });
});
