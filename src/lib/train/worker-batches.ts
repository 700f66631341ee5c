/**
 * Training batches made in a worker thread.
 *
 * Why: onnxruntime-node runs a session synchronously on the main thread, so batches "prefetched"
 * there are made between steps, not during them. Made in a worker, they overlap the step: the
 * quickstart's 1,500 steps took 316 s with the main-thread pipeline and 280 s with this one (README,
 * "Outside the step": the same clone, one sitting).
 *
 * The batches are the ones {@link avcBatches} makes in the main thread (the same code, from the same
 * sampler state and seed), so results do not change. Used by the {@link Trainer} when the source can
 * be reopened in a worker (a sample cache: {@link PairSource.origin}) and the transforms are the
 * model's own; `L3KIT_DATA_WORKER=0` turns it off.
 */
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { AvcBatch, AvcSamplerState, PairSourceOrigin, SkippedClip } from "../data";
import type { L3NetConfig } from "../models";
import { ConfigError, L3kitError } from "../util";

/** What the worker needs: all plain data. */
export interface BatchWorkerSpec {
  origin: PairSourceOrigin;
  samplerState: AvcSamplerState;
  modelConfig: L3NetConfig;
  batchSize: number;
  prefetch: number;
  concurrency: number;
  seed: number | string;
}

/** Worker → main thread. */
export type BatchWorkerReply =
  | { t: "batch"; batch: AvcBatch }
  | { t: "skip"; clip: SkippedClip }
  | { t: "end" }
  | { t: "error"; name: string; message: string; subject?: string; reason?: string };

/** Whether {@link workerAvcBatches} is on (it is unless `L3KIT_DATA_WORKER=0`). */
export function dataWorkerEnabled(): boolean {
  return process.env.L3KIT_DATA_WORKER !== "0";
}

function startWorker(spec: BatchWorkerSpec): Worker {
  const ts = path.extname(__filename) === ".ts";
  const entry = path.join(__dirname, `batch-worker${ts ? ".ts" : ".js"}`);
  // From the sources (tests, tsx) the worker loads tsx first, by path: the cwd may be anywhere.
  return ts
    ? new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(entry)});`, {
        eval: true,
        workerData: spec,
      })
    : new Worker(entry, { workerData: spec });
}

function rebuildError(msg: Extract<BatchWorkerReply, { t: "error" }>): Error {
  const prefix = msg.subject ? `${msg.subject}: ` : "";
  const text = prefix && msg.message.startsWith(prefix) ? msg.message.slice(prefix.length) : msg.message;
  const opts = { subject: msg.subject, reason: msg.reason };
  const err = msg.name === "ConfigError" ? new ConfigError(text, opts) : msg.reason ? new L3kitError(text, opts) : new Error(msg.message);
  err.name = msg.name;
  return err;
}

/**
 * Endless training batches (epoch after epoch, last partial batch dropped) from `spec`, made in a
 * worker thread `spec.prefetch` batches ahead. Breaking out of the loop ends the worker.
 */
export async function* workerAvcBatches(spec: BatchWorkerSpec, onSkip?: (clip: SkippedClip) => void): AsyncGenerator<AvcBatch> {
  const worker = startWorker(spec);
  const queue: BatchWorkerReply[] = [];
  let wake: (() => void) | null = null;
  const push = (msg: BatchWorkerReply) => {
    queue.push(msg);
    wake?.();
    wake = null;
  };
  worker.on("message", push);
  worker.on("error", (err: Error) => push({ t: "error", name: err.name, message: `the data worker failed: ${err.message}` }));
  worker.on("exit", (code) => push({ t: "error", name: "Error", message: `the data worker exited (code ${code})` }));
  try {
    for (let i = 0; i < Math.max(1, spec.prefetch); i++) worker.postMessage(1);
    while (true) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const msg = queue.shift() as BatchWorkerReply;
      if (msg.t === "skip") onSkip?.(msg.clip);
      else if (msg.t === "error") throw rebuildError(msg);
      else if (msg.t === "end") return;
      else {
        worker.postMessage(1);
        yield msg.batch;
      }
    }
  } finally {
    worker.removeAllListeners("exit");
    await worker.terminate();
  }
}
