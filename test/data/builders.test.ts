import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  attachBoxes,
  buildEsc50,
  buildFlickrSoundNet,
  buildKineticsSounds,
  type DatasetBuildProgress,
  KINETICS_SOUNDS_31,
  KINETICS_SOUNDS_34,
  kineticsClipName,
  loadManifest,
  loadVggssBoxes,
  manifestSummary,
  scanVideos,
} from "../../src/lib/data";
import { needsRealdata, realdata, repoRoot, tempDir } from "../helpers";
import { ffmpegBin, makeClockVideo } from "./fixtures";

const tmp = tempDir("l3kit-builders-");
after(() => tmp.cleanup());
let goodVideo = "";
let silentVideo = "";

before(() => {
  goodVideo = makeClockVideo(path.join(tmp.dir, "src", "good.mp4"), { durationSec: 2 });
  silentVideo = makeClockVideo(path.join(tmp.dir, "src", "silent.mp4"), { durationSec: 2, audio: false });
});

describe("scanVideos", () => {
  test("lists every good file, reports every bad one with its reason, writes manifest + errors", async () => {
    const root = path.join(tmp.dir, "scan");
    mkdirSync(path.join(root, "dog"), { recursive: true });
    mkdirSync(path.join(root, "cat", "deep"), { recursive: true });
    copyFileSync(goodVideo, path.join(root, "dog", "a.mp4"));
    copyFileSync(goodVideo, path.join(root, "cat", "b.mp4"));
    copyFileSync(goodVideo, path.join(root, "cat", "deep", "c.mkv.mp4"));
    copyFileSync(silentVideo, path.join(root, "dog", "silent.mp4"));
    writeFileSync(path.join(root, "dog", "empty.mp4"), "");
    writeFileSync(path.join(root, "cat", "text.mp4"), "this is not a video\n".repeat(20));
    const full = readFileSync(goodVideo);
    writeFileSync(path.join(root, "cat", "truncated.mp4"), full.subarray(0, Math.floor(full.length / 2)));
    writeFileSync(path.join(root, "notes.txt"), "ignored");
    const progress: DatasetBuildProgress[] = [];
    const out = path.join(tmp.dir, "manifests", "scan.jsonl");
    const res = await scanVideos(root, { out, labelFromFolder: true, concurrency: 3, onProgress: (p) => progress.push(p) });

    assert.deepEqual(res.rows.map((r) => r.id).sort(), ["cat/b", "cat/deep/c.mkv", "dog/a", "dog/silent"]);
    const byId = new Map(res.rows.map((r) => [r.id, r]));
    assert.equal(byId.get("dog/a")!.label, "dog");
    assert.equal(byId.get("cat/deep/c.mkv")!.label, "deep");
    assert.equal(byId.get("dog/silent")!.hasAudio, false);
    assert.equal(byId.get("dog/a")!.hasAudio, true);
    assert.ok(Math.abs(byId.get("dog/a")!.durationSec - 2) < 0.1);
    assert.equal(byId.get("dog/a")!.fps, 25);

    const reasons = Object.fromEntries(res.errors.map((e) => [path.basename(e.path), e.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), ["empty.mp4", "text.mp4", "truncated.mp4"]);
    assert.equal(reasons["empty.mp4"], "empty");
    for (const f of ["text.mp4", "truncated.mp4"]) assert.ok(["corrupt", "truncated"].includes(reasons[f]!), `${f}: ${reasons[f]}`);
    for (const e of res.errors) assert.ok(e.message.length > 0);
    assert.deepEqual(res.ignored, ["notes.txt"]);
    assert.equal(progress.length, 7);
    assert.equal(progress.at(-1)!.done, 7);

    // files written, and the manifest loads back with the same rows
    const m = await loadManifest(out);
    assert.deepEqual(m.rows, res.rows);
    const errLines = readFileSync(res.errorsPath!, "utf8").trim().split("\n");
    assert.equal(errLines.length, 3);
    assert.equal(path.basename(res.errorsPath!), "scan.errors.jsonl");

    // deterministic: a second scan gives identical rows (same splits)
    const again = await scanVideos(root, { labelFromFolder: true });
    assert.deepEqual(again.rows, res.rows);
  });

  test("verifyDecode catches a faststart mp4 cut short, which probing alone accepts", async () => {
    const root = path.join(tmp.dir, "scan-fast");
    mkdirSync(root, { recursive: true });
    const whole = path.join(tmp.dir, "src", "fast.mp4");
    execFileSync(ffmpegBin, ["-y", "-loglevel", "error", "-i", goodVideo, "-c", "copy", "-movflags", "+faststart", whole]);
    const bytes = readFileSync(whole);
    writeFileSync(path.join(root, "cut.mp4"), bytes.subarray(0, Math.floor(bytes.length * 0.5)));
    copyFileSync(goodVideo, path.join(root, "ok.mp4"));
    const probed = await scanVideos(root);
    assert.deepEqual(
      probed.rows.map((r) => r.id),
      ["cut", "ok"],
    );
    const verified = await scanVideos(root, { verifyDecode: true });
    assert.deepEqual(
      verified.rows.map((r) => r.id),
      ["ok"],
    );
    assert.equal(verified.errors.length, 1);
    assert.equal(verified.errors[0]!.id, "cut");
    assert.match(verified.errors[0]!.message, /decoding near the end fails/);
  });

  test("a missing folder is a config error", async () => {
    await assert.rejects(scanVideos(path.join(tmp.dir, "nope")), /not a folder/);
  });
});

describe("Kinetics-Sounds", () => {
  test("class lists match data/manifests and the realdata files", needsRealdata(), () => {
    assert.equal(KINETICS_SOUNDS_34.length, 34);
    assert.equal(KINETICS_SOUNDS_31.length, 31);
    assert.equal(KINETICS_SOUNDS_34.filter((c) => c.k400Name === null).length, 3);
    const j34 = JSON.parse(readFileSync(path.join(repoRoot, "data/manifests/kinetics_sounds_34.json"), "utf8"));
    const j31 = JSON.parse(readFileSync(path.join(repoRoot, "data/manifests/kinetics_sounds_31.json"), "utf8"));
    assert.deepEqual(j34.classes, KINETICS_SOUNDS_34);
    assert.deepEqual(j31.classes, KINETICS_SOUNDS_31);
    const paper = readFileSync(realdata("kinetics/kinetics_sounds_34_paper_names.txt"), "utf8").trim().split("\n");
    assert.deepEqual(
      KINETICS_SOUNDS_34.map((c) => c.paperName),
      paper,
    );
    const k400 = readFileSync(realdata("kinetics/kinetics_sounds_31_k400_names.txt"), "utf8").trim().split("\n");
    assert.deepEqual([...KINETICS_SOUNDS_31], k400);
  });

  test("builds from the real Kinetics-400 val CSV with a fake clips folder", needsRealdata(), async () => {
    const csv = realdata("kinetics/kinetics-400_val.csv");
    const lines = readFileSync(csv, "utf8").trim().split("\n").slice(1);
    const pick = (label: string, n: number) =>
      lines
        .map((l) => l.split(",").map((f) => f.replace(/^"|"$/g, "")))
        .filter((f) => f[0] === label)
        .slice(0, n);
    const clipsDir = path.join(tmp.dir, "kinetics-clips");
    mkdirSync(path.join(clipsDir, "sub"), { recursive: true });
    const chosen = [...pick("playing bagpipes", 2), ...pick("tap dancing", 1), ...pick("blowing out candles", 1)];
    chosen.forEach((f, i) => {
      const name = `${kineticsClipName(f[1]!, Number(f[2]), Number(f[3]))}.mp4`;
      symlinkSync(goodVideo, path.join(clipsDir, i === 3 ? "sub" : "", name));
    });
    // a clip of a non-Kinetics-Sounds class is ignored even when present
    const other = pick("abseiling", 1)[0]!;
    symlinkSync(goodVideo, path.join(clipsDir, `${kineticsClipName(other[1]!, Number(other[2]), Number(other[3]))}.mp4`));
    // a present but corrupt clip is reported
    const bad = pick("playing bagpipes", 3)[2]!;
    writeFileSync(path.join(clipsDir, `${kineticsClipName(bad[1]!, Number(bad[2]), Number(bad[3]))}.mp4`), "garbage");

    const out = path.join(tmp.dir, "manifests", "ks.jsonl");
    const res = await buildKineticsSounds({ csv, clipsDir, out, labelNames: "paper" });
    assert.equal(res.wanted, 1544);
    assert.equal(res.rows.length, 4);
    assert.equal(res.errors.length, 1);
    assert.equal(res.errors[0]!.id, kineticsClipName(bad[1]!, Number(bad[2]), Number(bad[3])));
    assert.equal(res.missing.length, 1544 - 5);
    assert.match(res.missing[0]!.expected, /^[\w-]{11}_\d{6}_\d{6}\.mp4$/);
    const labels = manifestSummary(res.rows).perLabel;
    assert.deepEqual(labels, { "playing bagpipes": 2, "tap dancing": 1, "blowing out": 1 });
    for (const r of res.rows) {
      assert.equal(r.split, "val");
      assert.match(r.id, /_\d{6}_\d{6}$/);
      assert.ok(Math.abs(r.durationSec - 2) < 0.1, "probed duration replaces time_end - time_start");
      assert.equal(typeof r.meta?.youtubeId, "string");
    }
    assert.equal((await loadManifest(out)).rows.length, 4);
    // without probing, the CSV's times give the duration; Kinetics-400 names by default
    const fast = await buildKineticsSounds({ csv, clipsDir, probe: false, splitMap: { val: "test" } });
    assert.equal(fast.rows.length, 5);
    assert.ok(fast.rows.every((r) => r.durationSec === 10 && r.split === "test"));
    assert.ok(fast.rows.some((r) => r.label === "blowing out candles"));
  });
});

describe("ESC-50 and Flickr-SoundNet", () => {
  test("ESC-50 rows from meta/esc50.csv with folds and categories", async () => {
    const root = path.join(tmp.dir, "ESC-50-master");
    mkdirSync(path.join(root, "meta"), { recursive: true });
    mkdirSync(path.join(root, "audio"), { recursive: true });
    const meta = [
      "filename,fold,target,category,esc10,src_file,take",
      "1-100032-A-0.wav,1,0,dog,True,100032,A",
      "1-100038-A-14.wav,1,14,chirping_birds,False,100038,A",
      "2-100648-A-43.wav,2,43,chirping_birds,False,100648,A",
      "5-9032-A-0.wav,5,0,dog,True,9032,A",
      "3-1-A-1.wav,3,1,rooster,False,1,A",
      "6-1-A-1.wav,6,1,rooster,False,1,A",
    ];
    writeFileSync(path.join(root, "meta", "esc50.csv"), `${meta.join("\n")}\n`);
    for (const l of meta.slice(1, 5)) copyFileSync(realdataOr(goodVideo), path.join(root, "audio", l.split(",")[0]!));
    // 3-1-A-1.wav is missing; fold 6 is invalid
    const res = await buildEsc50({ root });
    assert.deepEqual(
      res.rows.map((r) => [r.id, r.fold, r.label, r.split]),
      [
        ["1-100032-A-0", 1, "dog", "fold1"],
        ["1-100038-A-14", 1, "chirping_birds", "fold1"],
        ["2-100648-A-43", 2, "chirping_birds", "fold2"],
        ["5-9032-A-0", 5, "dog", "fold5"],
      ],
    );
    assert.deepEqual(res.errors.map((e) => e.reason).sort(), ["bad-csv-row", "missing"]);
    assert.equal(res.rows[0]!.meta?.esc10, true);
    assert.equal(res.rows[0]!.durationSec, 5);
    const esc10 = await buildEsc50({ root, esc10Only: true });
    assert.equal(esc10.rows.length, 2);
  });

  test("Flickr-SoundNet rows from a file list", async () => {
    const dir = path.join(tmp.dir, "flickr");
    mkdirSync(path.join(dir, "videos"), { recursive: true });
    for (const id of ["10000130166", "10007936344"]) symlinkSync(goodVideo, path.join(dir, "videos", `${id}.mp4`));
    writeFileSync(
      path.join(dir, "list.txt"),
      "# test list\nvideos/10000130166.mp4\n\nvideos/10007936344.mp4\nvideos/missing.mp4\nvideos/10000130166.mp4\n",
    );
    const res = await buildFlickrSoundNet({ list: path.join(dir, "list.txt"), split: "test", maxDurationSec: 1.5 });
    assert.deepEqual(
      res.rows.map((r) => [r.id, r.split, r.durationSec]),
      [
        ["10000130166", "test", 1.5],
        ["10007936344", "test", 1.5],
      ],
    );
    assert.deepEqual(res.errors.map((e) => e.reason).sort(), ["duplicate-id", "missing"]);
  });
});

describe("VGG-SS boxes", () => {
  test("the real file has 18 corrupt boxes, all dropped with a reason", needsRealdata(), async () => {
    const v = await loadVggssBoxes(realdata("localization/vggss.json"));
    assert.equal(v.entries.length, 5158);
    assert.equal(v.totalBoxes, 5941);
    assert.equal(v.dropped.length, 18);
    assert.equal(v.keptBoxes, 5941 - 18);
    const reasons = new Set(v.dropped.map((d) => d.reason));
    assert.ok(reasons.has("out-of-range") && reasons.has("empty-box"), [...reasons].join(","));
    for (const e of v.entries) {
      for (const b of e.boxes) {
        assert.ok(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= 1 && b.y2 <= 1 && b.x2 > b.x1 && b.y2 > b.y1, JSON.stringify(b));
      }
    }
    const e = v.byId.get("zpWuikVorYg_000032")!;
    assert.equal(e.label, "elk bugling");
    assert.deepEqual(e.boxes, [{ x1: 0.403125, y1: 0.253125, x2: 0.6, y2: 0.75, label: "elk bugling" }]);

    const rows = [
      { id: "zpWuikVorYg_000032", path: "/x/a.mp4", split: "test", durationSec: 10, hasAudio: true },
      { id: "not-annotated", path: "/x/b.mp4", split: "test", durationSec: 10, hasAudio: true },
    ];
    const att = attachBoxes(rows, v);
    assert.equal(att.matched, 1);
    assert.deepEqual(att.unmatched, ["not-annotated"]);
    assert.equal(att.rows[0]!.boxes![0]!.t, 5);
    assert.equal(att.rows[0]!.boxes![0]!.sounding.length, 1);
    assert.equal(att.rows[1]!.boxes, undefined);
    assert.equal(manifestSummary(att.rows).boxes, 1);
  });
});

function realdataOr(fallback: string): string {
  const wav = realdata("openl3/audio/chirp_1s.wav");
  try {
    readFileSync(wav);
    return wav;
  } catch {
    return fallback;
  }
}
