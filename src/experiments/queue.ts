/**
 * Experiments on a job queue: `npm run experiment -- <name> --queue redis://…` enqueues the
 * experiment's cells (its {@link CellPlan}) as BullMQ jobs and follows them; `l3kit worker --queue
 * redis://…` runs them anywhere. The coordinator writes the same table, provenance and index as a
 * one-process run, from the results the jobs return.
 *
 * A job's payload is checked before anything runs: its envelope by {@link CellPayloadSchema}, its
 * config by the rules the CLI resolves configs with ({@link checkResolvedConfig}, the experiment's
 * choices and checks), its cell against the experiment's cells, and its run id against the rest.
 * Only registered experiments run; a payload that fails is rejected (the job fails at once, with the
 * reason, and is never retried).
 */
import { createHash } from "node:crypto";
import { existsSync, promises as fsp, mkdtempSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import * as path from "node:path";
import { z } from "zod";
import type { BackendInfo } from "../lib/backend";
import {
  checkQueueName,
  type JobOutcome,
  parseQueueUrl,
  type QueueJob,
  type QueueTarget,
  RejectedJobError,
  redactCredentials,
} from "../lib/queue";
import { createProgress } from "../lib/train/progress";
import { ConfigError, errorMessage, L3kitError, writeJsonAtomic } from "../lib/util";
import { checkChoice, checkResolvedConfig } from "./config";
import { experiments } from "./registry";
import type {
  CellContext,
  CellOutcome,
  CellSpec,
  ConfigObject,
  Experiment,
  ExperimentContext,
  ExperimentResult,
  PreparedCells,
  QueueCells,
} from "./types";

/** The version of the job payload's layout. */
export const CELL_PAYLOAD_VERSION = 1;

/** A cell job's payload: which experiment, the run's full resolved config and seeds, and the cell. */
export const CellPayloadSchema = z
  .object({
    v: z.literal(CELL_PAYLOAD_VERSION),
    experiment: z.string().min(1).max(100),
    /** {@link runIdOf} the experiment, config and seeds. */
    run: z.string().regex(/^[0-9a-f]{16}$/, "a run id is 16 hex digits"),
    cell: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, "a cell key is letters, digits, '.', '_' or '-'"),
    seeds: z.array(z.number().int()).min(1).max(10000),
    config: z.record(z.string(), z.unknown()),
  })
  .strict();
export type CellPayload = z.infer<typeof CellPayloadSchema>;

/** JSON with object keys sorted, so that equal configs hash equally whatever their key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

/**
 * A run's id: a hash of the experiment, its resolved config, its seeds and l3kit's version. It
 * names the jobs (so a restarted coordinator finds its jobs instead of enqueueing them twice) and a
 * worker's artifacts folder.
 */
export function runIdOf(experiment: string, config: ConfigObject, seeds: readonly number[]): string {
  const { packageVersion } = require("../cli/shared") as typeof import("../cli/shared");
  return createHash("sha256")
    .update(canonicalJson({ experiment, config, seeds, l3kit: packageVersion() }))
    .digest("hex")
    .slice(0, 16);
}

/** A cell's job id: `<experiment>.<run>.<cell>` (BullMQ ids may not hold ':'). */
export function jobIdOf(experiment: string, run: string, cell: string): string {
  return `${experiment}.${run}.${cell}`;
}

/** A checked payload: the experiment to run, its config and seeds, and the cell. */
export interface CheckedPayload {
  exp: Experiment;
  plan: QueueCells;
  config: ConfigObject;
  seeds: number[];
  cell: CellSpec;
  run: string;
}

/**
 * Checks a job's payload (see the module's comment) and returns what it asks for; throws a
 * {@link RejectedJobError} that says what is wrong otherwise.
 */
export function checkCellPayload(data: unknown): CheckedPayload {
  const reject = (msg: string, cause?: unknown): never => {
    throw new RejectedJobError(`invalid job payload: ${msg}`, { cause });
  };
  const parsed = CellPayloadSchema.safeParse(data);
  if (!parsed.success) return reject(z.prettifyError(parsed.error).replace(/\n/g, "; "));
  const p = parsed.data;
  const exp = Object.hasOwn(experiments, p.experiment) ? experiments[p.experiment] : undefined;
  if (!exp) return reject(`unknown experiment '${p.experiment}'; this worker runs: ${Object.keys(experiments).join(", ")}`);
  const plan = exp.cells;
  if (!plan) return reject(`experiment '${p.experiment}' does not run on a queue (it has no cells)`);
  let config: ConfigObject;
  try {
    config = checkResolvedConfig({ defaults: exp.defaults, choices: exp.choices, value: p.config, source: "config" });
    if (typeof config.profile === "string") checkChoice("profile", config.profile, ["default", ...Object.keys(exp.profiles)]);
    plan.check(config);
  } catch (err) {
    return reject(errorMessage(err), err);
  }
  if (
    typeof config.seed === "number" &&
    typeof config.seeds === "number" &&
    (p.seeds[0] !== config.seed || p.seeds.length !== config.seeds)
  )
    return reject(`seeds ${p.seeds.join(",")} do not match the config's seed ${config.seed} and seeds ${config.seeds}`);
  const cell = plan.list(config, p.seeds).find((c) => c.key === p.cell);
  if (!cell) return reject(`'${p.cell}' is not a cell of this ${p.experiment} run`);
  if (runIdOf(p.experiment, config, p.seeds) !== p.run)
    return reject(
      `run id ${p.run} does not match its experiment, config and seeds (an altered payload, or a coordinator of another l3kit version)`,
    );
  return { exp, plan, config, seeds: p.seeds, cell, run: p.run };
}

/** Options of a coordinator (`--queue`). */
export interface QueueRunOptions {
  /** `redis://…` or `rediss://…`. */
  queue: string;
  /** The queue's name (default `L3KIT_QUEUE_NAME` or `l3kit-cells`). */
  queueName?: string;
  /** Tries of a cell that fails (default 2). */
  attempts?: number;
}

/**
 * Runs an experiment's cells as jobs on a queue and writes its results as `exp.run` would: prepares
 * the data here (workers on this machine then find it made), enqueues the cells not finished yet
 * (with `--resume`, the `cells/<key>/cell.json` of an earlier run count), follows them with a
 * progress bar, saves each result as it arrives, and hands every outcome to the plan's `finish`.
 */
export async function runOnQueue(exp: Experiment, ctx: ExperimentContext<ConfigObject>, opts: QueueRunOptions): Promise<ExperimentResult> {
  const plan = exp.cells;
  if (!plan) {
    const able = Object.values(experiments)
      .filter((e) => e.cells)
      .map((e) => e.name);
    throw new ConfigError(`experiment '${exp.name}' does not run on a queue; these do: ${able.join(", ")}`, { subject: "--queue" });
  }
  const target = parseQueueUrl(opts.queue);
  const queueName = opts.queueName === undefined ? undefined : checkQueueName(opts.queueName);
  const { runJobs, queueNameOf, checkQueueReachable } = require("../lib/queue") as typeof import("../lib/queue");
  const { log } = ctx;
  plan.check(ctx.config);
  // Before minutes of data preparation: the queue must answer.
  await checkQueueReachable(target);
  const cells = plan.list(ctx.config, ctx.seeds);
  const run = runIdOf(exp.name, ctx.config, ctx.seeds);
  const cellCtx: CellContext<ConfigObject> = { config: ctx.config, seeds: ctx.seeds, backend: ctx.backend, log, signal: ctx.signal };
  const prepared = await plan.prepare(cellCtx);
  const cellsDir = path.join(ctx.out, "cells");
  if (!ctx.resume && existsSync(cellsDir)) {
    log(`queue: starting over (no --resume): removing ${path.relative(process.cwd(), cellsDir)}`);
    await fsp.rm(cellsDir, { recursive: true, force: true });
  }
  const results = new Map<string, unknown>();
  if (ctx.resume)
    for (const cell of cells) {
      const file = path.join(cellsDir, cell.key, "cell.json");
      if (!existsSync(file)) continue;
      results.set(cell.key, plan.parseResult(JSON.parse(await fsp.readFile(file, "utf8")), cell));
      log(`queue: ${cell.label}: finished earlier, kept`);
    }
  const todo = cells.filter((c) => !results.has(c.key));
  const byId = new Map(todo.map((c) => [jobIdOf(exp.name, run, c.key), c]));
  const jobs: QueueJob<CellPayload>[] = todo.map((cell) => ({
    id: jobIdOf(exp.name, run, cell.key),
    name: `${exp.name} ${cell.label}`,
    data: { v: CELL_PAYLOAD_VERSION, experiment: exp.name, run, cell: cell.key, seeds: ctx.seeds, config: ctx.config },
  }));
  log(
    `queue: ${exp.name} run ${run}: ${cells.length} cell(s), ${todo.length} to run, on ${target.redacted} (queue ${queueNameOf(queueName)})`,
  );
  const errors = new Map<string, string>();
  const progress = ctx.quiet
    ? { update() {}, log() {}, stop() {} }
    : createProgress({ total: cells.length, label: "queue", unit: "cells", everySec: 10 });
  const kept = results.size;
  progress.update(kept);
  let outcomes: Map<string, JobOutcome>;
  try {
    outcomes = await runJobs({
      target,
      queueName,
      jobs,
      policy: { attempts: opts.attempts },
      signal: ctx.signal,
      log: (line) => progress.log(line),
      onProgress: (p) =>
        progress.update(kept + p.done + p.failed, {
          running: p.running,
          waiting: p.waiting,
          failed: p.failed,
          workers: p.workers ?? "?",
        }),
      onOutcome: async (o) => {
        const cell = byId.get(o.id) as CellSpec;
        if (o.state === "failed") {
          errors.set(cell.key, o.error);
          progress.log(`queue: ${cell.label} FAILED after ${o.attempts} attempt(s): ${o.error}`);
          return;
        }
        try {
          const result = plan.parseResult(o.result, cell);
          results.set(cell.key, result);
          await writeJsonAtomic(path.join(cellsDir, cell.key, "cell.json"), result);
          progress.log(`queue: ${cell.label} done${o.worker ? ` (worker ${o.worker})` : ""}`);
        } catch (err) {
          errors.set(cell.key, `bad result from worker ${o.worker ?? "?"}: ${errorMessage(err)}`);
          progress.log(`queue: ${cell.label} FAILED: ${errors.get(cell.key)}`);
        }
      },
    });
  } finally {
    progress.stop();
  }
  if (outcomes.size !== jobs.length) throw new L3kitError("the queue ended before every cell finished", { subject: target.redacted });
  const all: CellOutcome[] = cells.map((cell) =>
    results.has(cell.key)
      ? { cell, ok: true, result: results.get(cell.key) }
      : { cell, ok: false, error: errors.get(cell.key) ?? "no result" },
  );
  const failed = all.filter((o) => !o.ok).length;
  log(`queue: ${cells.length - failed} cell(s) done${failed ? `, ${failed} FAILED` : ""}; writing the results`);
  return prepared.finish(ctx, all);
}

/** Options of `l3kit worker`. */
export interface WorkerOptions {
  queue: string;
  queueName?: string;
  concurrency?: number;
  /** Where cells keep their checkpoints; when shared, a cell taken over from a lost worker resumes from its last checkpoint. */
  artifacts?: string;
  /** BullMQ's lock duration and stalled-check interval in seconds (default 30). */
  lockSec?: number;
  backend?: string;
  /** Stop after this many jobs (for tests and one-shot batch slots; default: run until stopped). */
  maxJobs?: number;
  log?: (line: string) => void;
}

/**
 * Runs cell jobs from the queue until SIGINT/SIGTERM (the running cells save a checkpoint and go back
 * to the queue; a second signal quits at once). Each job's payload is checked first
 * ({@link checkCellPayload}); a cell runs in `<artifacts>/<experiment>/<run>/<cell>`, resuming from
 * a checkpoint there, or in a private temp folder (removed after) when no artifacts folder is given.
 */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const target = parseQueueUrl(opts.queue);
  const queueName = opts.queueName === undefined ? undefined : checkQueueName(opts.queueName);
  const { startWorker, withLock, queueNameOf, InterruptedJobError } = require("../lib/queue") as typeof import("../lib/queue");
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const name = `${hostname()}:${process.pid}`;
  const { initBackend, parseBackendName } = require("../lib/backend") as typeof import("../lib/backend");
  const backend: BackendInfo = await initBackend({
    backend: parseBackendName(opts.backend ?? process.env.L3KIT_BACKEND ?? "auto"),
    quiet: true,
  });
  const scratch = opts.artifacts ? null : mkdtempSync(path.join(tmpdir(), "l3kit-worker-"));
  const artifacts = opts.artifacts ? path.resolve(opts.artifacts) : (scratch as string);
  // What the last run's cells share (its data), kept for its next cell.
  let shared: { run: string; prepared: Promise<PreparedCells> } | null = null;
  let jobsDone = 0;
  // Cells whose result was handed to BullMQ, until it records them (then "finished" is logged).
  const running = new Map<string, { what: string; t0: number }>();
  let worker: import("../lib/queue").QueueWorker | undefined;
  const handler = async (data: unknown, job: import("../lib/queue").JobInfo): Promise<unknown> => {
    let p: CheckedPayload;
    try {
      p = checkCellPayload(data);
    } catch (err) {
      log(`worker ${name}: rejected job ${job.id}: ${errorMessage(err)}`);
      throw err;
    }
    const t0 = Date.now();
    log(
      `worker ${name}: started ${p.exp.name} ${p.cell.key} (job ${job.id}, attempt ${job.attempt}${job.stalled ? `, taken over from a lost worker ${job.stalled}×` : ""})`,
    );
    const ctx: CellContext<ConfigObject> = {
      config: p.config,
      seeds: p.seeds,
      backend,
      log: (line) => log(`  [${p.cell.key}] ${line}`),
      signal: job.signal,
    };
    if (shared?.run !== p.run) {
      const lock = path.join(tmpdir(), `l3kit-prepare-${p.run}.lock`);
      const prepared = withLock(lock, () => p.plan.prepare(ctx), {
        onWait: (owner) => ctx.log(`waiting for ${owner} to prepare the data`),
      });
      shared = { run: p.run, prepared };
      prepared.catch(() => {
        if (shared?.prepared === prepared) shared = null;
      });
    }
    const prepared = await shared.prepared;
    const dir = path.join(artifacts, p.exp.name, p.run, p.cell.key);
    const resume = !!opts.artifacts;
    if (!resume) await fsp.rm(dir, { recursive: true, force: true });
    try {
      const result = await prepared.run(ctx, p.cell, dir, resume);
      if (result === null) {
        log(`worker ${name}: interrupted ${p.exp.name} ${p.cell.key}; it goes back to the queue`);
        throw new InterruptedJobError();
      }
      running.set(job.id, { what: `${p.exp.name} ${p.cell.key}`, t0 });
      return result;
    } catch (err) {
      if (!(err instanceof InterruptedJobError))
        log(`worker ${name}: ${p.exp.name} ${p.cell.key} failed: ${redactCredentials(errorMessage(err))}`);
      throw err;
    } finally {
      if (!resume) await fsp.rm(dir, { recursive: true, force: true });
      jobsDone++;
      if (opts.maxJobs !== undefined && jobsDone >= opts.maxJobs) setImmediate(() => void worker?.close());
    }
  };
  let signals = 0;
  const onSignal = (sig: string) => {
    if (++signals > 1) process.exit(130);
    log(`worker ${name}: ${sig} received — stopping (running cells save and go back to the queue; press again to quit at once)`);
    void worker?.close();
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    worker = await startWorker({
      target,
      queueName,
      concurrency: opts.concurrency,
      lockSec: opts.lockSec,
      name,
      log,
      handler,
      onCompleted: (id) => {
        const r = running.get(id);
        running.delete(id);
        if (r) log(`worker ${name}: finished ${r.what} (job ${id}) in ${((Date.now() - r.t0) / 1000).toFixed(1)} s`);
      },
    });
    log(
      `worker ${name}: waiting for jobs on ${target.redacted} (queue ${queueNameOf(queueName)}, concurrency ${opts.concurrency ?? 1}, backend ${backend.name}, artifacts ${opts.artifacts ? artifacts : "none (a temp folder)"})`,
    );
    await worker.closed;
    log(`worker ${name}: stopped after ${jobsDone} job(s)`);
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    if (scratch) await fsp.rm(scratch, { recursive: true, force: true });
  }
}

export type { QueueTarget };
