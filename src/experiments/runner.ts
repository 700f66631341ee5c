import * as path from "node:path";
import { cutShortNote } from "../lib/results";
import { ConfigError, configFields } from "../lib/util";
import { formatConfig, resolveConfig, suggest } from "./config";
import { ALLOW_PARTIAL_HELP, CUT_SHORT_EXIT_CODE, ENGINE_HELP, QUEUE_HELP, QUEUE_NAME_HELP } from "./options";
import { preflightExperiment } from "./preflight";
import { experiments } from "./registry";
import type { ConfigObject, Experiment, ExperimentContext, ExperimentResult } from "./types";

/** Options of `npm run experiment -- <name> ...`. */
export interface RunOptions {
  config?: string;
  set?: string[];
  seed?: number;
  seeds?: number;
  out?: string;
  backend?: string;
  /** Training engine: auto | onnx | tfjs (the same as `--set train.engine=…`, applied after the other sets). */
  engine?: string;
  resume?: boolean;
  /**
   * Continue from this checkpoint folder (inside the run folder) instead of the newest one: the
   * later checkpoints of its folder are set aside first. Implies `resume`.
   */
  resumeFrom?: string;
  /** Accept results that the time guard cut short (the CLI exits 0 instead of {@link CUT_SHORT_EXIT_CODE}). */
  allowPartial?: boolean;
  /** Root folder for results (default `results/`). */
  resultsRoot?: string;
  quiet?: boolean;
  /** Run the experiment's cells as jobs on this queue (`redis://…` or `rediss://…`) instead of here; `l3kit worker` processes run them. */
  queue?: string;
  /** The queue's name (default `L3KIT_QUEUE_NAME` or `l3kit-cells`). */
  queueName?: string;
}

/** Looks an experiment up by name; unknown names fail with a suggestion. */
export function getExperiment(name: string): Experiment {
  const exp = experiments[name];
  if (!exp) {
    const names = Object.keys(experiments);
    const hint = suggest(name, names);
    throw new ConfigError(`unknown experiment '${name}'${hint ? ` — did you mean '${hint}'?` : ""}. Experiments: ${names.join(", ")}`, {
      subject: "experiment",
    });
  }
  return exp;
}

/** `experiment list` text. */
export function listExperiments(): string {
  const names = Object.keys(experiments);
  const width = Math.max(...names.map((n) => n.length));
  return names.map((n) => `  ${n.padEnd(width)}  ${experiments[n]?.summary}`).join("\n");
}

/** `experiment <name> --help` text: description, options and the config with its defaults. */
export function experimentHelp(name: string): string {
  const exp = getExperiment(name);
  const profiles = Object.keys(exp.profiles);
  return `Usage: npm run experiment -- ${name} [--config FILE] [--set key=value ...] [--seed N] [--seeds N] [--out DIR] [--backend B] [--engine E] [--resume] [--resume-from DIR] [--allow-partial]${exp.cells ? " [--queue URL]" : ""}

${exp.description}

Options:
  --config FILE      JSON file with config overrides (nested or dotted keys)
  --set key=value    override one config key (repeatable); values parse as JSON, else as text
  --seed N           first seed (default: config seed)
  --seeds N          number of seeds: N, N+1, ... (default: config seeds)
  --out DIR          run folder (default: results/${name}/<profile>-seed<seed>)
  --backend B        auto | tensorflow-gpu | tensorflow | wasm | cpu (default: $L3KIT_BACKEND or auto)
  --engine E         ${ENGINE_HELP}
  --resume           continue an interrupted run in --out (finished parts are skipped)
  --resume-from DIR  continue from this checkpoint (e.g. the intact one a damaged-checkpoint error names); implies --resume
  --allow-partial    ${ALLOW_PARTIAL_HELP}${exp.cells ? `\n  --queue URL        ${QUEUE_HELP}\n  --queue-name NAME  ${QUEUE_NAME_HELP}` : ""}

Training length is set in steps (train.steps), so results do not depend on the machine's speed;
train.maxSeconds (default 0: none) is only a guard. When it stops training early, the table is
marked as cut short (a note and a cutShort column) and provenance.json records cutShort.

Profiles (--set profile=NAME): default${profiles.length ? `, ${profiles.join(", ")}` : ""}

Config (defaults):
${formatConfig(configFields(exp.schema))}
`;
}

/** The lines the CLI prints after a run: the engine that trained, and a cut-short warning. */
export function runReport(
  result: ExperimentResult,
  opts: Pick<RunOptions, "allowPartial">,
): { engine: string | null; partial: string | null } {
  const engine = result.engine ? `engine: ${result.engine.name} (${result.engine.reason})` : null;
  if (!result.cutShort) return { engine, partial: null };
  const what = `the results in ${path.relative(process.cwd(), result.out) || "."} are partial: ${cutShortNote(result.cutShort)}`;
  return {
    engine,
    partial: opts.allowPartial
      ? `${what} (accepted: --allow-partial)`
      : `${what}. Exiting with status ${CUT_SHORT_EXIT_CODE}; raise train.maxSeconds (0: no guard) and rerun with --resume, or pass --allow-partial to accept partial results`,
  };
}

/** Resolves config, picks the backend, runs the experiment, and handles SIGINT/SIGTERM gracefully. */
export async function runExperiment(name: string, opts: RunOptions = {}): Promise<ExperimentResult> {
  const exp = getExperiment(name);
  const sets = [...(opts.set ?? []), ...(opts.engine !== undefined ? [`train.engine=${opts.engine}`] : [])];
  const config = resolveConfig({
    defaults: exp.defaults,
    profiles: exp.profiles,
    choices: exp.choices,
    configFile: opts.config,
    sets,
  });
  const baseSeed = opts.seed ?? (typeof config.seed === "number" ? config.seed : 0);
  const nSeeds = opts.seeds ?? (typeof config.seeds === "number" ? config.seeds : 1);
  if (!Number.isInteger(nSeeds) || nSeeds < 1)
    throw new ConfigError(`--seeds must be a positive integer, got ${nSeeds}`, { subject: "--seeds" });
  const seeds = Array.from({ length: nSeeds }, (_, i) => baseSeed + i);
  if (typeof config.seed === "number") config.seed = baseSeed;
  if (typeof config.seeds === "number") config.seeds = nSeeds;
  const resultsRoot = path.resolve(opts.resultsRoot ?? "results");
  const profile = typeof config.profile === "string" ? config.profile : "default";
  const out = path.resolve(opts.out ?? path.join(resultsRoot, name, `${profile}-seed${baseSeed}${nSeeds > 1 ? `x${nSeeds}` : ""}`));
  // Every config value and output location is checked before any data is generated, decoded or trained on.
  exp.check(config);
  await preflightExperiment(name, config, out);
  const resume = !!opts.resume || opts.resumeFrom !== undefined;
  if (opts.resumeFrom !== undefined) {
    const from = path.resolve(opts.resumeFrom);
    if (path.relative(out, from).startsWith("..") || path.isAbsolute(path.relative(out, from)))
      throw new ConfigError(`${from} is not inside the run folder ${out} (pass the same --out as the run it belongs to)`, {
        subject: "--resume-from",
      });
    const { rollBackToCheckpoint } = require("../lib/train/checkpoint") as typeof import("../lib/train/checkpoint");
    const step = await rollBackToCheckpoint(from);
    process.stderr.write(
      `${name}: resuming from ${path.relative(process.cwd(), from) || from} (step ${step}); later checkpoints set aside\n`,
    );
  }

  const quiet = opts.quiet ?? process.env.L3KIT_QUIET === "1";
  const log = (line: string) => {
    if (!quiet) process.stderr.write(`${line}\n`);
  };
  const { initBackend, parseBackendName } = require("../lib/backend") as typeof import("../lib/backend");
  const backend = await initBackend({ backend: parseBackendName(opts.backend ?? process.env.L3KIT_BACKEND ?? "auto"), quiet });

  const controller = new AbortController();
  const onSignal = (sig: string) => {
    if (controller.signal.aborted) process.exit(130); // second signal: give up at once
    log(`\n${name}: ${sig} received — saving and stopping (press again to quit at once)`);
    controller.abort(new Error(sig));
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    log(`${name}: profile ${profile}, seeds ${seeds.join(",")}, backend ${backend.name}, out ${path.relative(process.cwd(), out) || "."}`);
    const ctx: ExperimentContext<ConfigObject> = {
      config,
      seeds,
      out,
      resultsRoot,
      resume,
      backend,
      startedAt: new Date(),
      log,
      quiet,
      signal: controller.signal,
    };
    if (opts.queue) {
      const { runOnQueue } = require("./queue") as typeof import("./queue");
      return await runOnQueue(exp, ctx, { queue: opts.queue, queueName: opts.queueName });
    }
    return await exp.run(ctx);
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}
