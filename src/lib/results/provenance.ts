import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { installedVersions, packageRoot } from "../util";

/** The engine that trained a run's model(s), and why; when its training runs used different engines, each one. */
export interface EngineRecord {
  /** `onnx` or `tfjs`; `none` when nothing was trained (a checkpoint was loaded); several joined by `+`. */
  name: string;
  reason: string;
  /** Per training run, when they differ. */
  runs?: Array<{ run: string; name: string; reason: string }>;
}

/** Where training stopped when a time guard cut it short before its configured steps. */
export interface CutShortRecord {
  /** The step training reached (the earliest, with several runs). */
  step: number;
  /** The configured steps. */
  steps: number;
  /** The guard that cut it short, e.g. `train.maxSeconds = 300 s`. */
  reason: string;
  /** With several training runs (seeds, cells): each one that was cut short. */
  runs?: Array<{ run: string; step: number; steps: number }>;
}

/** The sentence that marks a cut-short run in its table's notes and rows. */
export function cutShortNote(c: CutShortRecord): string {
  const runs = c.runs?.length ? `; ${c.runs.map((r) => `${r.run} at step ${r.step} of ${r.steps}`).join(", ")}` : "";
  return `cut short by the time guard at step ${c.step} of ${c.steps} (${c.reason}${runs})`;
}

/** Everything needed to reproduce (or distrust) a result. Written beside every table. */
export interface Provenance {
  experiment: string;
  config: unknown;
  seeds: number[];
  backend: { name: string; threads?: number; tfBackend?: string } | null;
  /** The engine that trained, and why (null: not recorded). */
  engine: EngineRecord | null;
  /** Set when a time guard stopped training before its steps: the results are partial. */
  cutShort: CutShortRecord | null;
  /** The training recipe the numbers come from, as the table's header line states it (set by writeResults). */
  recipe?: string;
  versions: Record<string, string>;
  git: { commit: string | null; dirty: boolean | null };
  dataset: { manifest: string | null; sha256: string | null };
  machine: { platform: string; arch: string; cpus: number; cpuModel: string; memGiB: number };
  command: string;
  startedAt: string;
  finishedAt: string;
  wallTimeSec: number;
}

/** Versions of node and the packages that shape results. Missing optional packages are omitted. */
export function packageVersions(): Record<string, string> {
  return installedVersions([
    "l3kit",
    "@tensorflow/tfjs-core",
    "@tensorflow/tfjs-backend-wasm",
    "@tensorflow/tfjs-node",
    "@tensorflow/tfjs-node-gpu",
    "onnxruntime-node",
    "danfojs-node",
    "@ffmpeg-installer/ffmpeg",
  ]);
}

/** The git commit of the l3kit checkout and whether it has uncommitted changes (null outside git). */
export function gitState(cwd: string = packageRoot()): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
    const status = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd,
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** sha256 of a file's bytes (null when it cannot be read). */
export function fileSha256(file: string | null | undefined): string | null {
  if (!file) return null;
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch {
    return null;
  }
}

/** Collects provenance for a finished run. */
export function collectProvenance(args: {
  experiment: string;
  config: unknown;
  seeds: number[];
  backend?: Provenance["backend"];
  engine?: EngineRecord | null;
  cutShort?: CutShortRecord | null;
  manifest?: string | null;
  startedAt: Date;
  finishedAt?: Date;
}): Provenance {
  const finished = args.finishedAt ?? new Date();
  const cpus = os.cpus();
  return {
    experiment: args.experiment,
    config: args.config,
    seeds: args.seeds,
    backend: args.backend ?? null,
    engine: args.engine ?? null,
    cutShort: args.cutShort ?? null,
    versions: packageVersions(),
    git: gitState(),
    dataset: { manifest: args.manifest ?? null, sha256: fileSha256(args.manifest) },
    machine: {
      platform: process.platform,
      arch: process.arch,
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? "unknown",
      memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    },
    command: process.argv.slice(1).join(" "),
    startedAt: args.startedAt.toISOString(),
    finishedAt: finished.toISOString(),
    wallTimeSec: Math.round((finished.getTime() - args.startedAt.getTime()) / 100) / 10,
  };
}
