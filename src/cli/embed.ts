import type { Command } from "commander";
import type { EmbeddingPooling, EmbedVideoOptions } from "../lib/models";
import type { EmbedFormat } from "./embed-files";
import { ALLOW_FAILURES_HELP, finishBatch, numArg, withBackend } from "./shared";

/** The parsed flags: the library's pooling and layer options as they are, and the flags named for the CLI. */
type EmbedFlags = Required<Pick<EmbedVideoOptions, "pooling" | "visionPooling" | "layer">> & {
  checkpoint: string;
  out: string;
  format: EmbedFormat;
  /** The library's `hopSec`, `frameHopSec` and `batchSize`, named as the flags. */
  hop: number;
  frameHop: number;
  batch: number;
  backend: string;
  allowFailures?: boolean;
};

function poolingArg(v: string): EmbeddingPooling {
  if (v === "global" || v === "grid") return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--pooling must be global, grid or a dimension such as 512 or 6144, got '${v}'`);
  return n;
}

export function registerEmbedCommand(program: Command): void {
  withBackend(
    program
      .command("embed")
      .description(
        `Compute audio and image embeddings of media files with a saved model (one output file per input; bad files are reported and skipped, and the command then exits with status 2 unless --allow-failures)`,
      )
      .argument("<files...>", "audio, image or video files, or folders of them (searched recursively)")
      .requiredOption("--checkpoint <dir>", "a model folder: a training checkpoint (…/checkpoints/best) or one written by saveModel()")
      .requiredOption("--out <dir>", "output folder")
      .option("--format <fmt>", "json | npy | npz", "json")
      .option("--hop <sec>", "audio hop in seconds (windows centred as openl3's center=True)", numArg("--hop"), 0.1)
      .option("--frame-hop <sec>", "video frame hop in seconds", numArg("--frame-hop"), 1)
      .option(
        "--pooling <p>",
        "audio embedding: global (paper 512-d), grid (paper 4×3×512 = 6144-d), or the dimension",
        poolingArg,
        "global",
      )
      .option("--vision-pooling <p>", "image embedding: global or grid (paper 4×4×512), or the dimension", poolingArg, "global")
      .option(
        "--layer <l>",
        "pooled layer: conv = the last conv's raw output (conv4_2, before batch norm and ReLU; L³, OpenL3), relu = after them",
        "conv",
      )
      .option("--batch <n>", "windows per forward pass", numArg("--batch"), 32)
      .option("--allow-failures", ALLOW_FAILURES_HELP),
  ).action(async (files: string[], opts: EmbedFlags) => {
    const { initBackend, parseBackendName } = require("../lib/backend") as typeof import("../lib/backend");
    await initBackend({ backend: parseBackendName(opts.backend) });
    const { embedCommand } = require("./embed-files") as typeof import("./embed-files");
    const report = await embedCommand({
      files,
      checkpoint: opts.checkpoint,
      out: opts.out,
      format: opts.format,
      hopSec: opts.hop,
      frameHopSec: opts.frameHop,
      pooling: opts.pooling,
      visionPooling: opts.visionPooling,
      layer: opts.layer,
      batchSize: opts.batch,
      log: (line) => console.error(line),
    });
    for (const w of report.written) console.log(`${w.file}: ${w.audioWindows} audio windows, ${w.frames} frames → ${w.outputs.join(", ")}`);
    for (const f of report.failed) console.log(`${f.file}: FAILED (${f.reason}) ${f.error}`);
    console.log(`embed: ${report.written.length} written, ${report.failed.length} failed`);
    finishBatch("file(s)", report.failed.length, report.written.length + report.failed.length, opts.allowFailures);
  });
}
