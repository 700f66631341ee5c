import type { Command } from "commander";
import { ALLOW_FAILURES_HELP, finishBatch, intArg } from "./shared";

/** `--shard` help of `data cache` and `data synth`. */
const SHARD_HELP =
  "do only shard i of N (numbered from 0; clips split by a hash of their id), into <out>/parts/<i>-of-<N>/; run all N (a Slurm array: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, a Kubernetes Indexed Job: $JOB_COMPLETION_INDEX/N, GNU parallel), then `l3kit data merge <out>`";

function buildReport(
  what: string,
  r: {
    rows: unknown[];
    errors: Array<{ path?: string; file?: string; reason?: string; message?: string }>;
    manifestPath?: string;
    errorsPath?: string;
  },
  allowFailures?: boolean,
): void {
  console.log(`${what}: ${r.rows.length} row(s)${r.manifestPath ? ` → ${r.manifestPath}` : ""}`);
  if (r.errors.length) {
    console.log(`${r.errors.length} file(s) skipped${r.errorsPath ? ` (details in ${r.errorsPath})` : ""}:`);
    for (const e of r.errors.slice(0, 20)) console.log(`  ${e.path ?? e.file ?? "?"}: ${e.reason ?? ""} ${e.message ?? ""}`.trimEnd());
    if (r.errors.length > 20) console.log(`  … and ${r.errors.length - 20} more`);
  }
  finishBatch("file(s)", r.errors.length, r.rows.length + r.errors.length, allowFailures);
}

export function registerDataCommand(program: Command): void {
  const data = program.command("data").description("Build datasets: the synthetic benchmark, manifests of real data, sample caches");

  data
    .command("synth")
    .description("Generate the synthetic audio-visual benchmark (H.264/AAC clips of sounding objects with labels and boxes)")
    .requiredOption("--out <dir>", "output folder")
    .requiredOption("--clips <n>", "number of clips")
    .requiredOption("--seed <s>", "seed (same seed → same manifest and pixels)")
    .option("--classes <k>", "number of sounding-object classes (default 10)")
    .option("--duration <sec>", "clip duration in seconds (default: the profile's)")
    .option("--size <WxH>", "frame size (default: the profile's)")
    .option("--fps <f>", "frames per second (default: the profile's)")
    .option(
      "--profile <name>",
      "tiny (tests/CI), default, or realistic (as tiny, with sounding objects covering 15–40% of the frame, for cIoU)",
      "default",
    )
    .option("--concurrency <n>", "clips encoded at once (default: cores)")
    .option("--overwrite", "replace an existing dataset in --out")
    .option("--shard <i/N>", SHARD_HELP)
    .action(async (opts) => {
      const { synthCommand } = require("./data-synth") as typeof import("./data-synth");
      await synthCommand(opts);
    });

  data
    .command("cache")
    .description("Pre-decode K (frame, audio) samples per clip into binary shards (resumable)")
    .requiredOption("--manifest <file>", "manifest (JSONL)")
    .requiredOption("--out <dir>", "cache folder")
    .requiredOption("--per-clip <k>", "samples per clip")
    .option(
      "--frame-size <size>",
      "stored frames: N = short side resized to N, aspect kept (the model's resizeTo: paper 256, lite 128, tiny 73); WxH = stretched to W×H",
      "256",
    )
    .option("--sample-rate <hz>", "audio sample rate (match the model's front-end)", "48000")
    .option("--audio-sec <sec>", "audio window, centred on each sample", "1")
    .option("--seed <s>", "seed of the sample times", "0")
    .option("--audio-format <fmt>", "float32 | int16 (half the size, 1/32767 steps)", "float32")
    .option("--clips-per-shard <n>", "clips per shard file", "32")
    .option("--concurrency <n>", "parallel clip decodes", "2")
    .option("--split <name>", "only rows of this split")
    .option("--limit <n>", "only the first N rows")
    .option("--shard <i/N>", SHARD_HELP)
    .option("--allow-failures", ALLOW_FAILURES_HELP)
    .action(async (opts) => {
      const { cacheCommand } = require("./data-cache") as typeof import("./data-cache");
      const r = await cacheCommand(opts);
      finishBatch("clip(s)", r.skipped.length, r.clips + r.skipped.length, opts.allowFailures);
    });

  data
    .command("merge")
    .description(
      "Join the shards of a sharded build (`data cache --shard i/N` or `data synth --shard i/N` with this --out) into one cache or dataset, byte for byte what one process writes",
    )
    .argument("<out>", "the --out folder the shards were built with (they are in <out>/parts/<i>-of-<N>/)")
    .option("--keep-parts", "keep <out>/parts after merging (default: removed)")
    .action(async (out: string, opts: { keepParts?: boolean }) => {
      const { mergeCommand } = require("./data-merge") as typeof import("./data-merge");
      await mergeCommand(out, opts);
    });

  data
    .command("scan")
    .description("Probe every video under a folder and write a manifest; bad files are reported and skipped")
    .argument("<folder>", "folder of videos")
    .requiredOption("--out <manifest>", "manifest file to write (.jsonl); errors go beside it")
    .option("--label-from-folder", "label = the file's parent folder name")
    .option("--require-audio", "report files without an audio track as errors")
    .option("--concurrency <n>", "parallel probes", intArg("--concurrency"), 4)
    .option("--allow-failures", ALLOW_FAILURES_HELP)
    .action(
      async (
        folder: string,
        opts: { out: string; labelFromFolder?: boolean; requireAudio?: boolean; concurrency: number; allowFailures?: boolean },
      ) => {
        const { scanVideos } = require("../lib/data") as typeof import("../lib/data");
        const r = await scanVideos(folder, {
          out: opts.out,
          labelFromFolder: opts.labelFromFolder,
          requireAudio: opts.requireAudio,
          concurrency: opts.concurrency,
        });
        buildReport("scan", r, opts.allowFailures);
        for (const w of r.warnings ?? []) console.error(`l3kit: warning: ${w}`);
      },
    );

  data
    .command("kinetics")
    .description("Build a Kinetics-Sounds manifest from official Kinetics CSVs and a folder of downloaded clips")
    .requiredOption("--csv <files...>", "Kinetics CSV file(s): label,youtube_id,time_start,time_end,split")
    .requiredOption("--clips <dir>", "folder of clips named <youtube_id>_<start:06d>_<end:06d>.mp4")
    .requiredOption("--out <manifest>", "manifest file to write")
    .option("--label-names <which>", "k400 | paper", "k400")
    .option("--no-probe", "do not probe clips (faster; durations from the CSV)")
    .option("--allow-failures", ALLOW_FAILURES_HELP)
    .action(
      async (opts: {
        csv: string[];
        clips: string;
        out: string;
        labelNames: "k400" | "paper";
        probe: boolean;
        allowFailures?: boolean;
      }) => {
        const { buildKineticsSounds } = require("../lib/data") as typeof import("../lib/data");
        const r = await buildKineticsSounds({
          csv: opts.csv,
          clipsDir: opts.clips,
          out: opts.out,
          labelNames: opts.labelNames,
          probe: opts.probe,
        });
        buildReport("kinetics-sounds", r, opts.allowFailures);
        if (r.missing.length) console.log(`${r.missing.length} of ${r.wanted} CSV rows have no downloaded clip`);
      },
    );

  data
    .command("esc50")
    .description("Build an ESC-50 manifest (5 folds) from meta/esc50.csv and audio/")
    .requiredOption("--root <dir>", "the ESC-50 folder")
    .requiredOption("--out <manifest>", "manifest file to write")
    .option("--esc10", "only the ESC-10 subset")
    .option("--allow-failures", ALLOW_FAILURES_HELP)
    .action(async (opts: { root: string; out: string; esc10?: boolean; allowFailures?: boolean }) => {
      const { buildEsc50 } = require("../lib/data") as typeof import("../lib/data");
      buildReport("esc50", await buildEsc50({ root: opts.root, out: opts.out, esc10Only: opts.esc10 }), opts.allowFailures);
    });

  data
    .command("flickr")
    .description("Build a Flickr-SoundNet manifest from a plain file list")
    .requiredOption("--list <file>", "one media path per line")
    .requiredOption("--out <manifest>", "manifest file to write")
    .option("--max-duration <sec>", "use at most the first N seconds (paper: 10)", intArg("--max-duration"), 10)
    .option("--allow-failures", ALLOW_FAILURES_HELP)
    .action(async (opts: { list: string; out: string; maxDuration: number; allowFailures?: boolean }) => {
      const { buildFlickrSoundNet } = require("../lib/data") as typeof import("../lib/data");
      buildReport(
        "flickr-soundnet",
        await buildFlickrSoundNet({ list: opts.list, out: opts.out, maxDurationSec: opts.maxDuration }),
        opts.allowFailures,
      );
    });

  data
    .command("summary")
    .description("Validate a manifest and print counts per split and label")
    .argument("<manifest>", "manifest file (JSONL)")
    .action(async (file: string) => {
      const { loadManifest, manifestSummary } = require("../lib/data") as typeof import("../lib/data");
      const m = await loadManifest(file, { onError: "skip" });
      console.log(JSON.stringify(manifestSummary(m.rows), null, 2));
      if (m.errors.length) {
        console.log(`${m.errors.length} bad row(s):`);
        for (const e of m.errors.slice(0, 20)) console.log(`  line ${e.line}: ${e.message}`);
      }
    });
}
