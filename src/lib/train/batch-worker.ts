/**
 * The training input pipeline in a worker thread (entry point; see worker-batches.ts). It reopens
 * the pair source, rebuilds the sampler from its state and the transforms from the model config,
 * and posts the same batches {@link avcBatches} gives in the main thread, one per credit.
 */
import { parentPort, workerData } from "node:worker_threads";
import { AvcPairSampler, avcBatches, reopenPairSource } from "../data";
import { L3kitError } from "../util";
import { avcTransforms } from "./transforms";
import type { BatchWorkerReply, BatchWorkerSpec } from "./worker-batches";

async function run(spec: BatchWorkerSpec, port: NonNullable<typeof parentPort>): Promise<void> {
  const post = (msg: BatchWorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
  let credits = 0;
  let wake: (() => void) | null = null;
  port.on("message", () => {
    credits++;
    wake?.();
    wake = null;
  });
  try {
    const source = reopenPairSource(spec.origin);
    const batches = avcBatches({
      source,
      sampler: AvcPairSampler.fromState(source.clips, spec.samplerState),
      transform: avcTransforms(spec.modelConfig, { augment: true }),
      batchSize: spec.batchSize,
      prefetch: spec.prefetch,
      concurrency: spec.concurrency,
      dropRemainder: true,
      seed: spec.seed,
      maxBatches: Number.POSITIVE_INFINITY,
      onSkip: (clip) => post({ t: "skip", clip }),
    });
    for await (const batch of batches) {
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
      post({ t: "batch", batch }, [batch.frames.buffer as ArrayBuffer, batch.audio.buffer as ArrayBuffer]);
    }
    post({ t: "end" });
  } catch (err) {
    const e = err as Error;
    post({
      t: "error",
      name: e.name,
      message: e.message,
      subject: err instanceof L3kitError ? err.subject : undefined,
      reason: err instanceof L3kitError ? err.reason : undefined,
    });
  }
}

if (parentPort) void run(workerData as BatchWorkerSpec, parentPort);
