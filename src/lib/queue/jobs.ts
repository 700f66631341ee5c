/**
 * Independent jobs on a BullMQ queue in Redis: a coordinator that enqueues them under deterministic
 * ids (a restarted coordinator re-attaches instead of enqueueing twice) and follows them to their
 * results, and a worker that runs them. BullMQ does the scheduling: locks, stalled-job recovery (a
 * worker killed mid-job loses its lock and another worker takes the job), retries and bookkeeping.
 *
 * Nothing here knows what a job does; `src/experiments/queue.ts` gives jobs their meaning.
 */
import { hostname } from "node:os";
import type { Job } from "bullmq";
import { ConfigError, errorMessage, L3kitError } from "../util";
import { DEFAULT_QUEUE_NAME, type QueueTarget, redactCredentials } from "./url";

/** One job: a deterministic id (letters, digits, `.`, `_`, `-`), a name for dashboards, and JSON data. */
export interface QueueJob<D> {
  id: string;
  name: string;
  data: D;
}

/** What became of a job. */
export type JobOutcome =
  | { id: string; state: "completed"; result: unknown; worker: string | null }
  | { id: string; state: "failed"; error: string; attempts: number };

/** Counts of the jobs a coordinator follows. */
export interface QueueProgress {
  total: number;
  done: number;
  running: number;
  failed: number;
  waiting: number;
  /** Workers connected to the queue (null where Redis does not say: CLIENT LIST is not allowed). */
  workers: number | null;
}

/** Settings of how long jobs are kept and how often they are tried. */
export interface JobPolicy {
  /** Tries of a job that throws (not counting recoveries of a stalled job), default 2. */
  attempts?: number;
  /** Seconds between tries (default 5). */
  backoffSec?: number;
  /** Seconds that finished and failed jobs are kept for re-attaching coordinators (default 7 days). */
  keepSec?: number;
}

/** Thrown by a job handler for a job that must never run (a payload that fails validation): the job fails at once, with no retry. */
export class RejectedJobError extends L3kitError {
  constructor(message: string, opts: { subject?: string; cause?: unknown } = {}) {
    super(message, { reason: "rejected", ...opts });
    this.name = "RejectedJobError";
  }
}

/** Thrown by a job handler that was interrupted (the worker is stopping): the job goes back to the queue untried. */
export class InterruptedJobError extends L3kitError {
  constructor(message = "interrupted: the worker is stopping") {
    super(message, { reason: "interrupted" });
    this.name = "InterruptedJobError";
  }
}

/** BullMQ's connection options for a target (BullMQ opens and closes the connections itself). */
export function connectionOptions(target: QueueTarget): Record<string, unknown> {
  const u = new URL(target.url);
  return {
    host: target.host.replace(/^\[(.*)\]$/, "$1"),
    port: target.port,
    db: target.db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(target.tls ? { tls: { servername: target.host } } : {}),
    // Workers block on Redis; BullMQ requires unlimited retries per request for them.
    maxRetriesPerRequest: null,
  };
}

/**
 * Connects once and pings, failing with a clear error (redacted URL, the cause) within `timeoutMs`
 * instead of retrying for ever as a queue's connection would.
 */
export async function checkQueueReachable(target: QueueTarget, timeoutMs = 5000): Promise<void> {
  const { Redis } = require("ioredis") as typeof import("ioredis");
  const client = new Redis({
    ...(connectionOptions(target) as object),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  let cause: unknown;
  client.on("error", (err) => {
    cause ??= err; // the socket's error (ECONNREFUSED …), more telling than connect()'s "Connection is closed"
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new L3kitError(`cannot reach the queue's Redis: ${redactCredentials(errorMessage(cause ?? err))}`, {
      subject: target.redacted,
      reason: "unreachable",
      cause: err,
    });
  } finally {
    client.disconnect();
  }
}

/** The queue's name: `--queue-name`, else `L3KIT_QUEUE_NAME`, else {@link DEFAULT_QUEUE_NAME}. */
export function queueNameOf(name?: string): string {
  return name || process.env.L3KIT_QUEUE_NAME || DEFAULT_QUEUE_NAME;
}

/**
 * Enqueues `jobs` (a job whose id is already in the queue is re-attached to, not added again; one
 * that failed earlier is retried) and follows them until every one has completed or failed.
 * `onProgress` is called whenever the counts change, `onOutcome` once per finished job. An abort
 * stops following (the jobs stay queued; running the coordinator again re-attaches) and throws.
 */
export async function runJobs<D>(opts: {
  target: QueueTarget;
  queueName?: string;
  jobs: ReadonlyArray<QueueJob<D>>;
  policy?: JobPolicy;
  pollMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
  onProgress?: (p: QueueProgress) => void;
  onOutcome?: (o: JobOutcome) => void | Promise<void>;
}): Promise<Map<string, JobOutcome>> {
  const { Queue } = require("bullmq") as typeof import("bullmq");
  const log = opts.log ?? (() => {});
  const keepSec = opts.policy?.keepSec ?? 7 * 24 * 3600;
  await checkQueueReachable(opts.target);
  const queue = new Queue(queueNameOf(opts.queueName), { connection: connectionOptions(opts.target) as never });
  queue.on("error", (err) => log(`queue: ${redactCredentials(errorMessage(err))}`));
  const outcomes = new Map<string, JobOutcome>();
  try {
    let added = 0;
    let attached = 0;
    for (const j of opts.jobs) {
      const existing = await queue.getJob(j.id);
      if (existing) {
        const state = await existing.getState();
        if (state === "failed") {
          log(`queue: job ${j.id} failed earlier (${existing.failedReason}); trying it again`);
          await existing.retry("failed");
        }
        attached++;
        continue;
      }
      await queue.add(j.name, j.data, {
        jobId: j.id,
        attempts: opts.policy?.attempts ?? 2,
        backoff: { type: "fixed", delay: (opts.policy?.backoffSec ?? 5) * 1000 },
        removeOnComplete: { age: keepSec },
        removeOnFail: { age: keepSec },
      });
      added++;
    }
    log(
      `queue: ${added} job(s) enqueued${attached ? `, ${attached} already queued or finished (re-attached)` : ""} on ${opts.target.redacted} (queue ${queue.name})`,
    );
    let last = "";
    const pending = new Set(opts.jobs.map((j) => j.id));
    for (;;) {
      let running = 0;
      let waiting = 0;
      for (const id of [...pending]) {
        const job = await queue.getJob(id);
        if (!job)
          throw new L3kitError(`job ${id} vanished from the queue (removed by hand, or Redis was flushed)`, { subject: queue.name });
        const state = await job.getState();
        if (state === "completed") {
          const o: JobOutcome = { id, state, result: job.returnvalue, worker: job.processedBy ?? null };
          outcomes.set(id, o);
          pending.delete(id);
          await opts.onOutcome?.(o);
        } else if (state === "failed") {
          const o: JobOutcome = { id, state, error: job.failedReason || "failed", attempts: job.attemptsMade };
          outcomes.set(id, o);
          pending.delete(id);
          await opts.onOutcome?.(o);
        } else if (state === "active") running++;
        else waiting++;
      }
      const failed = [...outcomes.values()].filter((o) => o.state === "failed").length;
      const workers = await queue.getWorkersCount().catch(() => null);
      const p: QueueProgress = { total: opts.jobs.length, done: outcomes.size - failed, running, failed, waiting, workers };
      const key = JSON.stringify(p);
      if (key !== last) {
        last = key;
        opts.onProgress?.(p);
      }
      if (pending.size === 0) return outcomes;
      if (opts.signal?.aborted)
        throw new L3kitError("stopped following the queue; its jobs stay queued, and running the same command again re-attaches to them", {
          reason: "interrupted",
        });
      await sleep(opts.pollMs ?? 500, opts.signal);
    }
  } finally {
    await queue.close();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** What a job handler gets besides the job's data. */
export interface JobInfo {
  id: string;
  name: string;
  /** 1 on the first try. */
  attempt: number;
  /** How many times the job was taken from a worker that stopped renewing its lock (killed, or lost). */
  stalled: number;
  /** Aborted when the worker is stopping: save, and throw {@link InterruptedJobError}. */
  signal: AbortSignal;
  /** Reports progress (any JSON) to the coordinator and dashboards. */
  progress(value: Record<string, unknown>): Promise<void>;
}

/** A running worker. */
export interface QueueWorker {
  /** Stops taking jobs, interrupts the running ones (they go back to the queue) and disconnects. */
  close(): Promise<void>;
  /** Resolves when the worker has closed. */
  closed: Promise<void>;
}

/**
 * Starts a worker that takes jobs from the queue and runs `handler` on each job's data. The handler's
 * return value is the job's result (it must be JSON). A {@link RejectedJobError} fails the job at once
 * with no retry; an {@link InterruptedJobError} puts it back in the queue; any other error fails this
 * try (BullMQ retries it per the coordinator's policy). `lockSec` is BullMQ's lock duration: a
 * worker that has not renewed its lock for that long (killed, machine lost, event loop blocked) loses
 * the job, and another worker's stalled-job check, run every `lockSec`, puts it back in the queue.
 */
export async function startWorker(opts: {
  target: QueueTarget;
  queueName?: string;
  concurrency?: number;
  lockSec?: number;
  /** Recoveries of a stalled job before it fails (BullMQ's maxStalledCount; default 2). */
  maxStalled?: number;
  name?: string;
  log?: (line: string) => void;
  handler: (data: unknown, job: JobInfo) => Promise<unknown>;
  /** Called when BullMQ has recorded a job's result (the job is then complete; a worker that lost its lock never gets here). */
  onCompleted?: (id: string) => void;
  /** Called when a try of a job failed and BullMQ has recorded it. */
  onFailed?: (id: string, error: string) => void;
}): Promise<QueueWorker> {
  const { Worker, UnrecoverableError, WaitingError } = require("bullmq") as typeof import("bullmq");
  const log = opts.log ?? (() => {});
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new ConfigError(`must be a positive integer, got ${concurrency}`, { subject: "--concurrency" });
  const lockSec = opts.lockSec ?? 30;
  if (!(lockSec >= 1)) throw new ConfigError(`must be at least 1 (seconds), got ${lockSec}`, { subject: "--lock-seconds" });
  await checkQueueReachable(opts.target);
  const name = opts.name ?? `${hostname()}:${process.pid}`;
  const worker = new Worker(
    queueNameOf(opts.queueName),
    async (job: Job, token?: string, signal?: AbortSignal) => {
      const controller = new AbortController();
      const onAbort = () => controller.abort(signal?.reason);
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        return await opts.handler(job.data, {
          id: job.id ?? "?",
          name: job.name,
          attempt: job.attemptsMade + 1,
          stalled: job.stalledCounter ?? 0,
          signal: controller.signal,
          progress: (value) => job.updateProgress(value),
        });
      } catch (err) {
        if (err instanceof RejectedJobError) throw new UnrecoverableError(err.message);
        if (err instanceof InterruptedJobError && token) {
          await job.moveToWait(token);
          throw new WaitingError();
        }
        throw err instanceof Error ? err : new Error(String(err));
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },
    {
      connection: connectionOptions(opts.target) as never,
      concurrency,
      name,
      lockDuration: lockSec * 1000,
      stalledInterval: lockSec * 1000,
      maxStalledCount: opts.maxStalled ?? 2,
      autorun: false,
    },
  );
  worker.on("error", (err) => log(`worker: ${redactCredentials(errorMessage(err))}`));
  worker.on("completed", (job) => opts.onCompleted?.(job.id ?? "?"));
  worker.on("failed", (job, err) => {
    if (job) opts.onFailed?.(job.id ?? "?", redactCredentials(errorMessage(err)));
  });
  const closed = worker.run().catch((err) => log(`worker: ${redactCredentials(errorMessage(err))}`));
  await worker.waitUntilReady();
  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        const done = worker.close();
        worker.cancelAllJobs("the worker is stopping");
        await done;
        await closed;
      })();
      return closing;
    },
    closed: closed.then(() => {}),
  };
}
