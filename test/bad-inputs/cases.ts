/**
 * Every bad input tried against l3kit, with the error it must give (#20 item 7). Each case is run
 * as a test by bad-inputs.test.ts: a real `l3kit` process (or, for library-only inputs, a call),
 * its exit status and a pattern its output must match. Add a row whenever a new bad input is found.
 *
 * Placeholders in `command`: `{case}` is a fresh folder for the case, `{good}` a valid clip,
 * `{model}` a saved tiny model, `{manifest}` a valid manifest (train and val clips).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import * as path from "node:path";

/** Paths every case may use. */
export interface Fixture {
  /** A fresh folder of this case. */
  case: string;
  /** A valid mp4 with video and audio (2 s). */
  good: string;
  /** A saved tiny model folder (loadModel / --checkpoint). */
  model: string;
  /** A valid manifest of 4 clips: 2 train, 2 val. */
  manifest: string;
}

export interface BadInputCase {
  /** What is wrong, in a few words. */
  kind: string;
  area: "media" | "manifest" | "config" | "output" | "checkpoint" | "cache";
  /** `l3kit` arguments (placeholders as in the module comment). */
  command?: string[];
  /** A library call instead of a command (`command` is then absent); it must throw. */
  call?: { shown: string; run: (f: Fixture) => Promise<unknown> | unknown };
  /** Makes the bad input in `f.case`. */
  setup?: (f: Fixture) => Promise<void> | void;
  /** Expected exit status (1: error before or during work; 2: some items failed). Library calls: "throws". */
  exit: number | "throws";
  /** A pattern the output (stdout + stderr), or the thrown message, must match. */
  message: RegExp;
  /** Undoes what `setup` did outside `f.case` (e.g. unmounts). */
  teardown?: (f: Fixture) => void;
  /** Why it cannot run here (e.g. needs root), or false. */
  skip?: () => string | false;
}

const write = (f: string, text: string | Buffer) => {
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, text);
};
const c = (f: Fixture, ...p: string[]) => path.join(f.case, ...p);
const rootOnly = () => (process.getuid?.() === 0 ? false : "needs root to mount a read-only tmpfs (CI runs as root)");
/** A manifest line for `file` (a valid row unless changed by `extra`). */
const row = (id: string, file: string, split = "train", extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id, path: file, split, durationSec: 2, hasAudio: true, ...extra });

/** A cache built in `{case}/cache` with seed 0 (the CLI command that builds it). */
const cacheCmd = (out: string, seed = 0) => [
  "data",
  "cache",
  "--manifest",
  "{manifest}",
  "--out",
  out,
  "--per-clip",
  "1",
  "--frame-size",
  "16",
  "--seed",
  String(seed),
];

export const BAD_INPUTS: BadInputCase[] = [
  // ── media ────────────────────────────────────────────────────────────────────────────────
  {
    kind: "a text file named .mp4",
    area: "media",
    setup: (f) => write(c(f, "fake.mp4"), "this is not a video\n".repeat(20)),
    command: ["embed", "{case}/fake.mp4", "--checkpoint", "{model}", "--out", "{case}/out", "--backend", "wasm"],
    exit: 2,
    message: /fake\.mp4: FAILED \(corrupt\)[\s\S]*embed: 0 written, 1 failed[\s\S]*1 of 1 file\(s\) failed; exiting with status 2/,
  },
  {
    kind: "a file that does not exist",
    area: "media",
    command: ["embed", "{case}/nowhere.mp4", "--checkpoint", "{model}", "--out", "{case}/out", "--backend", "wasm"],
    exit: 2,
    message: /nowhere\.mp4: FAILED \(missing\)/,
  },
  {
    kind: "an empty (0-byte) file",
    area: "media",
    setup: (f) => write(c(f, "empty.mp4"), ""),
    command: ["embed", "{case}/empty.mp4", "--checkpoint", "{model}", "--out", "{case}/out", "--backend", "wasm"],
    exit: 2,
    message: /empty\.mp4: FAILED \(empty\)/,
  },
  {
    kind: "a truncated mp4 (first 3 KB)",
    area: "media",
    setup: (f) => {
      copyFileSync(f.good, c(f, "cut.mp4"));
      truncateSync(c(f, "cut.mp4"), 3000);
    },
    command: ["embed", "{case}/cut.mp4", "--checkpoint", "{model}", "--out", "{case}/out", "--backend", "wasm"],
    exit: 2,
    message: /cut\.mp4: FAILED \((truncated|corrupt)\)/,
  },
  {
    kind: "a bad file among good ones, failures accepted",
    area: "media",
    setup: (f) => {
      copyFileSync(f.good, c(f, "good.mp4"));
      write(c(f, "bad.mp4"), "junk");
    },
    command: ["embed", "{case}", "--checkpoint", "{model}", "--out", "{case}/out", "--backend", "wasm", "--allow-failures"],
    exit: 0,
    message: /embed: 1 written, 1 failed[\s\S]*1 of 2 file\(s\) failed \(accepted: --allow-failures\)/,
  },
  {
    kind: "a folder with no media file",
    area: "media",
    setup: (f) => write(c(f, "in", "notes.txt"), "hello"),
    command: ["embed", "{case}/in", "--checkpoint", "{model}", "--out", "{case}/out", "--backend", "wasm"],
    exit: 1,
    message: /in: holds no media file/,
  },
  {
    kind: "a folder to scan with a bad video",
    area: "media",
    setup: (f) => {
      mkdirSync(c(f, "v"), { recursive: true });
      copyFileSync(f.good, c(f, "v", "good.mp4"));
      write(c(f, "v", "bad.mp4"), "junk");
    },
    command: ["data", "scan", "{case}/v", "--out", "{case}/m.jsonl"],
    exit: 2,
    message: /1 file\(s\) skipped[\s\S]*bad\.mp4: corrupt[\s\S]*1 of 2 file\(s\) failed/,
  },
  {
    kind: "a folder too small to give a val split",
    area: "media",
    setup: (f) => {
      mkdirSync(c(f, "v"), { recursive: true });
      copyFileSync(f.good, c(f, "v", "only.mp4"));
    },
    command: ["data", "scan", "{case}/v", "--out", "{case}/m.jsonl"],
    exit: 0,
    message: /warning: no clip landed in split '(train|val)'/,
  },
  {
    kind: "scan of a file, not a folder",
    area: "media",
    command: ["data", "scan", "{good}", "--out", "{case}/m.jsonl"],
    exit: 1,
    message: /: not a folder/,
  },
  // ── manifests ────────────────────────────────────────────────────────────────────────────
  {
    kind: "a manifest that does not exist",
    area: "manifest",
    command: ["data", "summary", "{case}/none.jsonl"],
    exit: 1,
    message: /none\.jsonl: cannot read manifest \(ENOENT\)/,
  },
  {
    kind: "a manifest line that is not JSON",
    area: "manifest",
    setup: (f) => write(c(f, "m.jsonl"), `${row("a", f.good)}\n{"id": "b", oops\n`),
    command: ["data", "cache", "--manifest", "{case}/m.jsonl", "--out", "{case}/cache", "--per-clip", "1"],
    exit: 1,
    message: /m\.jsonl line 2: invalid JSON/,
  },
  {
    kind: "a manifest row without a required field",
    area: "manifest",
    setup: (f) => write(c(f, "m.jsonl"), `${JSON.stringify({ id: "a", path: f.good, split: "train", hasAudio: true })}\n`),
    command: ["data", "cache", "--manifest", "{case}/m.jsonl", "--out", "{case}/cache", "--per-clip", "1"],
    exit: 1,
    message: /m\.jsonl line 1: field 'durationSec': expected number, got nothing \(missing\)/,
  },
  {
    kind: "a manifest with a duplicate id",
    area: "manifest",
    setup: (f) => write(c(f, "m.jsonl"), `${row("a", f.good)}\n${row("a", f.good)}\n`),
    command: ["data", "cache", "--manifest", "{case}/m.jsonl", "--out", "{case}/cache", "--per-clip", "1"],
    exit: 1,
    message: /line 2: field 'id': duplicate id 'a' \(first on line 1\)/,
  },
  {
    kind: "a manifest row whose video is not media",
    area: "manifest",
    setup: (f) => {
      write(c(f, "bad.mp4"), "junk junk junk");
      write(c(f, "m.jsonl"), `${row("a", f.good)}\n${row("b", c(f, "bad.mp4"))}\n`);
    },
    command: ["data", "cache", "--manifest", "{case}/m.jsonl", "--out", "{case}/cache", "--per-clip", "1", "--frame-size", "16"],
    exit: 2,
    message: /1 clips, .* 1 skipped[\s\S]*skipped b \(corrupt\)[\s\S]*1 of 2 clip\(s\) failed; exiting with status 2/,
  },
  {
    kind: "a split with no rows",
    area: "manifest",
    setup: (f) => write(c(f, "m.jsonl"), `${row("a", f.good)}\n`),
    command: ["data", "cache", "--manifest", "{case}/m.jsonl", "--out", "{case}/cache", "--per-clip", "1", "--split", "val"],
    exit: 1,
    message: /m\.jsonl: no rows to cache in split 'val'/,
  },
  {
    kind: "a training manifest with no val clips",
    area: "manifest",
    setup: (f) => write(c(f, "m.jsonl"), `${row("a", f.good)}\n${row("b", f.good, "test")}\n`),
    command: [
      "experiment",
      "avc-train",
      "--set",
      "data.manifest={case}/m.jsonl",
      "--set",
      "data.cacheRoot={case}/c",
      "--out",
      "{case}/run",
    ],
    exit: 1,
    message: /data\.manifest: .*m\.jsonl has no clip in split 'val' \(splits: train 1, test 1\)/,
  },
  {
    kind: "data.manifest that does not exist",
    area: "manifest",
    command: ["experiment", "avc-train", "--set", "data.manifest={case}/none.jsonl", "--out", "{case}/run"],
    exit: 1,
    message: /data\.manifest: manifest not found: .*none\.jsonl/,
  },
  // ── configs ──────────────────────────────────────────────────────────────────────────────
  {
    kind: "a negative batch size",
    area: "config",
    command: ["experiment", "avc-train", "--set", "train.batchSize=-1", "--set", "data.cacheRoot={case}/c", "--out", "{case}/run"],
    exit: 1,
    message: /train\.batchSize: must be an integer >= 1, got -1/,
  },
  {
    kind: "an unknown engine",
    area: "config",
    command: ["experiment", "avc-train", "--set", "train.engine=gpu", "--out", "{case}/run"],
    exit: 1,
    message: /train\.engine/,
  },
  {
    kind: "an unknown config key",
    area: "config",
    command: ["experiment", "avc-train", "--set", "train.batchsize=8", "--out", "{case}/run"],
    exit: 1,
    message: /unknown config key 'train\.batchsize' — did you mean 'train\.batchSize'\?/,
  },
  {
    kind: "zero synthetic clips",
    area: "config",
    command: ["experiment", "avc-train", "--set", "data.synthClips=0", "--set", "data.cacheRoot={case}/c", "--out", "{case}/run"],
    exit: 1,
    message: /data\.synthClips: must be an integer in \[1, ∞\], got 0/,
  },
  {
    kind: "zero samples per clip",
    area: "config",
    command: ["data", "cache", "--manifest", "{manifest}", "--out", "{case}/cache", "--per-clip", "0"],
    exit: 1,
    message: /perClip: must be a positive integer, got 0/,
  },
  {
    kind: "a frame size that is not a number",
    area: "config",
    command: ["data", "cache", "--manifest", "{manifest}", "--out", "{case}/cache", "--per-clip", "1", "--frame-size", "big"],
    exit: 1,
    message: /frameSize: expected a short side such as 256/,
  },
  {
    kind: "zero clips for the generator",
    area: "config",
    command: ["data", "synth", "--out", "{case}/s", "--clips", "0", "--seed", "1", "--profile", "tiny"],
    exit: 1,
    message: /clips: must be an integer >= 1, got 0/,
  },
  // ── output locations ─────────────────────────────────────────────────────────────────────
  {
    kind: "experiment --out is a file",
    area: "output",
    setup: (f) => write(c(f, "file"), "x"),
    command: ["experiment", "avc-train", "--set", "data.cacheRoot={case}/c", "--out", "{case}/file"],
    exit: 1,
    message: /--out: .*file is a file, not a folder/,
  },
  {
    kind: "experiment --out on a read-only file system",
    area: "output",
    skip: rootOnly,
    setup: (f) => {
      mkdirSync(c(f, "ro"));
      execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", c(f, "ro")]);
    },
    teardown: (f) => execFileSync("umount", [c(f, "ro")]),
    command: ["experiment", "avc-train", "--set", "data.cacheRoot={case}/c", "--out", "{case}/ro/run"],
    exit: 1,
    message: /--out: .*ro\/run cannot be created: read-only file system \(EROFS\)/,
  },
  {
    kind: "data.cacheRoot under a file",
    area: "output",
    setup: (f) => write(c(f, "file"), "x"),
    command: ["experiment", "avc-train", "--set", "data.cacheRoot={case}/file/c", "--out", "{case}/run"],
    exit: 1,
    message: /data\.cacheRoot: .*file\/c cannot be created: a part of its path is a file/,
  },
  {
    kind: "data cache --out is a file",
    area: "output",
    setup: (f) => write(c(f, "file"), "x"),
    command: ["data", "cache", "--manifest", "{manifest}", "--out", "{case}/file", "--per-clip", "1"],
    exit: 1,
    message: /--out: .*file is a file, not a folder/,
  },
  {
    kind: "embed --out is a file",
    area: "output",
    setup: (f) => write(c(f, "file"), "x"),
    command: ["embed", "{good}", "--checkpoint", "{model}", "--out", "{case}/file", "--backend", "wasm"],
    exit: 1,
    message: /--out: .*file is a file, not a folder/,
  },
  {
    kind: "data synth --out is a file",
    area: "output",
    setup: (f) => write(c(f, "file"), "x"),
    command: ["data", "synth", "--out", "{case}/file", "--clips", "2", "--seed", "1", "--profile", "tiny"],
    exit: 1,
    message: /--out: .*file is a file, not a folder/,
  },
  {
    kind: "data scan --out is a folder",
    area: "output",
    setup: (f) => {
      mkdirSync(c(f, "v"));
      copyFileSync(f.good, c(f, "v", "a.mp4"));
      mkdirSync(c(f, "outdir"));
    },
    command: ["data", "scan", "{case}/v", "--out", "{case}/outdir"],
    exit: 1,
    message: /--out: .*outdir is a folder; give the manifest file to write/,
  },
  {
    kind: "data scan --out under a file",
    area: "output",
    setup: (f) => {
      mkdirSync(c(f, "v"));
      copyFileSync(f.good, c(f, "v", "a.mp4"));
      write(c(f, "file"), "x");
    },
    command: ["data", "scan", "{case}/v", "--out", "{case}/file/m.jsonl"],
    exit: 1,
    message: /--out: .*file cannot be created: a part of its path is a file|--out: .*file is a file, not a folder/,
  },
  // ── checkpoints ──────────────────────────────────────────────────────────────────────────
  {
    kind: "a checkpoint folder that does not exist",
    area: "checkpoint",
    command: ["embed", "{good}", "--checkpoint", "{case}/nomodel", "--out", "{case}/out", "--backend", "wasm"],
    exit: 1,
    message: /nomodel\/model\.json: cannot read the model file/,
  },
  {
    kind: "model.json that is not JSON",
    area: "checkpoint",
    setup: (f) => {
      mkdirSync(c(f, "m"));
      for (const n of readdirSync(f.model)) copyFileSync(path.join(f.model, n), c(f, "m", n));
      writeFileSync(c(f, "m", "model.json"), "{ not json");
    },
    command: ["embed", "{good}", "--checkpoint", "{case}/m", "--out", "{case}/out", "--backend", "wasm"],
    exit: 1,
    message: /m\/model\.json: model\.json is not valid JSON/,
  },
  {
    kind: "weights with changed bytes",
    area: "checkpoint",
    setup: (f) => {
      mkdirSync(c(f, "m"));
      for (const n of readdirSync(f.model)) copyFileSync(path.join(f.model, n), c(f, "m", n));
      const w = readdirSync(c(f, "m")).find((n) => n.startsWith("weights-")) as string;
      const b = readFileSync(c(f, "m", w));
      b[64] = (b[64] as number) ^ 0xff;
      writeFileSync(c(f, "m", w), b);
    },
    command: ["embed", "{good}", "--checkpoint", "{case}/m", "--out", "{case}/out", "--backend", "wasm"],
    exit: 1,
    message: /weights-[0-9a-f]+\.bin: weights file does not match its SHA-256 in model\.json/,
  },
  {
    kind: "--resume-from a folder outside the run",
    area: "checkpoint",
    command: ["experiment", "avc-train", "--set", "data.cacheRoot={case}/c", "--out", "{case}/run", "--resume-from", "{model}"],
    exit: 1,
    message: /--resume-from: .* is not inside the run folder/,
  },
  {
    kind: "--resume-from a damaged checkpoint",
    area: "checkpoint",
    setup: (f) => write(c(f, "run", "checkpoints", "step-00000010", "trainer.json"), "{"),
    command: [
      "experiment",
      "avc-train",
      "--set",
      "data.cacheRoot={case}/c",
      "--out",
      "{case}/run",
      "--resume-from",
      "{case}/run/checkpoints/step-00000010",
    ],
    exit: 1,
    message: /step-00000010: cannot resume from this checkpoint: .*step-00000010\/trainer\.json: not valid JSON/,
  },
  // ── caches ───────────────────────────────────────────────────────────────────────────────
  {
    kind: "a cache folder of other settings",
    area: "cache",
    setup: (f) => {
      execFileSync(
        process.execPath,
        [
          path.join(__dirname, "..", "..", "bin", "l3kit.js"),
          ...cacheCmd(c(f, "cache"), 0).map((a) => a.replace("{manifest}", f.manifest)),
        ],
        {
          env: { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1" },
          stdio: "ignore",
        },
      );
    },
    command: cacheCmd("{case}/cache", 1),
    exit: 1,
    message: /cache: this cache folder belongs to different settings .*seed: "0" there, "1" asked/,
  },
  {
    kind: "a cache index that is not JSON",
    area: "cache",
    setup: (f) => write(c(f, "cache", "index.json"), "{ broken"),
    command: cacheCmd("{case}/cache"),
    exit: 1,
    message: /index\.json: cannot read cache index/,
  },
  {
    kind: "a cache of the old format (1)",
    area: "cache",
    setup: (f) =>
      write(
        c(f, "cache", "index.json"),
        JSON.stringify({ kind: "l3kit-sample-cache", version: 1, config: { frameSize: { width: 16, height: 16 } }, shards: [] }),
      ),
    command: cacheCmd("{case}/cache"),
    exit: 1,
    message: /built by an older l3kit \(cache format 1\)/,
  },
  {
    kind: "a cache settings file that is not JSON",
    area: "cache",
    setup: (f) => write(c(f, "cache", "cache-settings.json"), "{"),
    command: cacheCmd("{case}/cache"),
    exit: 1,
    message: /cache-settings\.json: cannot read the cache's settings/,
  },
  {
    kind: "a truncated cache shard",
    area: "cache",
    setup: (f) => {
      execFileSync(
        process.execPath,
        [
          path.join(__dirname, "..", "..", "bin", "l3kit.js"),
          ...cacheCmd(c(f, "cache"), 0).map((a) => a.replace("{manifest}", f.manifest)),
        ],
        {
          env: { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1" },
          stdio: "ignore",
        },
      );
      truncateSync(c(f, "cache", "shard-00000.bin"), 100);
    },
    call: {
      shown: "openSampleCache('{case}/cache')",
      run: (f) => {
        const { openSampleCache } = require("../../src/lib/data") as typeof import("../../src/lib/data");
        openSampleCache(c(f, "cache"));
      },
    },
    exit: "throws",
    message: /shard-00000\.bin: shard is 100 bytes, index\.json says \d+; delete the cache folder and build it again/,
  },
];
