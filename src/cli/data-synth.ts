/**
 * The `data synth` command: parses CLI strings, runs {@link generateSynthDataset} with a progress
 * bar (cli-progress on a TTY, plain lines otherwise) and prints a summary.
 */
import { SingleBar } from "cli-progress";
import {
  generateSynthDataset,
  generateSynthShard,
  parseShardSpec,
  SYNTH_PROFILES,
  type SynthDatasetResult,
  type SynthProfileName,
  type SynthProgress,
} from "../lib/data";
import { ConfigError, checkWritableDir } from "../lib/util";
import { formatDuration } from "./shared";

/** Options as the CLI gives them (strings or numbers). */
export interface SynthCommandOptions {
  out: string;
  clips: string | number;
  seed: string | number;
  classes?: string | number;
  duration?: string | number;
  /** "WxH", e.g. "128x128". */
  size?: string;
  fps?: string | number;
  profile?: string;
  concurrency?: string | number;
  overwrite?: boolean;
  /** `i/N`: make only shard i of N (by a hash of the clip id) into `<out>/parts/<i>-of-<N>/`; `data merge` joins them. */
  shard?: string;
  /** No progress output (also when L3KIT_QUIET=1). */
  quiet?: boolean;
  /** Where progress and the summary go (default process.stderr / process.stdout). */
  progressStream?: NodeJS.WritableStream;
  summaryStream?: NodeJS.WritableStream;
}

function num(v: string | number | undefined, key: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "number" ? v : Number(v.trim());
  if (typeof v === "string" && v.trim() === "") throw new ConfigError("is empty", { subject: `--${key}` });
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new ConfigError(`expected ${integer ? "an integer" : "a number"}, got '${v}'`, { subject: `--${key}` });
  return n;
}

/** Parses "WxH" (e.g. "128x128"). */
export function parseSynthSize(text: string): { width: number; height: number } {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(text);
  if (!m) throw new ConfigError(`expected WxH such as 128x128, got '${text}'`, { subject: "--size" });
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** Runs `data synth` from CLI options; resolves with the generation result (null for one shard). */
export async function synthCommand(opts: SynthCommandOptions & { shard?: undefined }): Promise<SynthDatasetResult>;
export async function synthCommand(opts: SynthCommandOptions): Promise<SynthDatasetResult | null>;
export async function synthCommand(opts: SynthCommandOptions): Promise<SynthDatasetResult | null> {
  if (!opts.out) throw new ConfigError("is required", { subject: "--out" });
  await checkWritableDir(opts.out, "--out", { create: false });
  const clips = num(opts.clips, "clips", true);
  if (clips === undefined) throw new ConfigError("is required", { subject: "--clips" });
  if (opts.seed === undefined || opts.seed === "") throw new ConfigError("is required", { subject: "--seed" });
  const seed = typeof opts.seed === "number" ? opts.seed : /^-?\d+$/.test(opts.seed.trim()) ? Number(opts.seed.trim()) : opts.seed;
  const profile = opts.profile ?? "default";
  if (!Object.hasOwn(SYNTH_PROFILES, profile))
    throw new ConfigError(`expected one of ${Object.keys(SYNTH_PROFILES).join(", ")}, got '${profile}'`, { subject: "--profile" });
  const quiet = opts.quiet ?? process.env.L3KIT_QUIET === "1";
  const stream = opts.progressStream ?? process.stderr;
  const tty = !!(stream as NodeJS.WriteStream).isTTY;
  let bar: SingleBar | undefined;
  let lastLine = 0;
  const onProgress = quiet
    ? undefined
    : (p: SynthProgress) => {
        if (tty) {
          if (!bar) {
            bar = new SingleBar({
              stream: stream as NodeJS.WriteStream,
              format: "synth |{bar}| {value}/{total} clips | {rate} clips/s | ETA {etaText}",
              hideCursor: true,
              fps: 5,
            });
            bar.start(p.total, 0, { rate: "0.0", etaText: "?" });
          }
          bar.update(p.done, { rate: p.clipsPerSec.toFixed(1), etaText: formatDuration(p.etaSec) });
        } else {
          const now = Date.now();
          if (p.done === p.total || p.done === 1 || now - lastLine >= 2000) {
            lastLine = now;
            stream.write(
              `synth: ${p.done}/${p.total} clips (${p.clipsPerSec.toFixed(1)} clips/s, ETA ${formatDuration(p.etaSec)})${p.reused ? `, ${p.reused} reused` : ""}${p.repaired ? `, ${p.repaired} damaged and made again` : ""}\n`,
            );
          }
        }
      };
  const shard = opts.shard === undefined ? undefined : parseShardSpec(opts.shard);
  try {
    const args = {
      out: opts.out,
      clips,
      seed,
      classes: num(opts.classes, "classes", true),
      durationSec: num(opts.duration, "duration", false),
      size: opts.size ? parseSynthSize(opts.size) : undefined,
      fps: num(opts.fps, "fps", false),
      profile: profile as SynthProfileName,
      concurrency: num(opts.concurrency, "concurrency", true),
      overwrite: opts.overwrite,
      onProgress,
    };
    if (shard) {
      const { dir, part } = await generateSynthShard({ ...args, shard });
      bar?.stop();
      (opts.summaryStream ?? process.stdout).write(
        `synth: shard ${shard.index}/${shard.count}: ${part.rows.length} of ${clips} clips in ${dir} (${part.elapsedSec.toFixed(1)} s); when all ${shard.count} shards are done: l3kit data merge ${opts.out}\n`,
      );
      return null;
    }
    const res = await generateSynthDataset(args);
    bar?.stop();
    if (!quiet) {
      const out = opts.summaryStream ?? process.stdout;
      const a = res.metadata.answers;
      const splits = Object.entries(a.avcClassCeiling)
        .filter(([s]) => s !== "all")
        .map(([s, c]) => `${s} ${c.clips}`)
        .join(", ");
      out.write(
        `synth: ${res.rows.length} clips (${splits}) in ${res.out}\n` +
          `synth: ${res.clipsPerSec.toFixed(2)} clips/s, ${res.elapsedSec.toFixed(1)} s; manifest ${res.manifestPath}\n` +
          `synth: AVC class ceiling (test) ${(100 * (a.avcClassCeiling.test ?? a.avcClassCeiling.all)!.ceiling).toFixed(1)}%, classification chance ${(100 * a.classificationChance).toFixed(1)}%\n`,
      );
    }
    return res;
  } catch (err) {
    bar?.stop();
    throw err;
  }
}
