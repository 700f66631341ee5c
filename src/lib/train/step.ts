/**
 * One optimizer step and one evaluation pass on tfjs: the computations the tfjs training engine
 * ({@link TfjsTrainingEngine}) runs, kept apart from the loop so the engine and the loop do not
 * import each other.
 */
import * as tf from "@tensorflow/tfjs";
import type { AvcBatch } from "../data";
import type { L3Net } from "../models";
import { ConfigError } from "../util";
import type { AvcPairing } from "./config";
import type { Adam } from "./optimizer";
import { inBatchLogits, inBatchLossAndAccuracy, inBatchPairs } from "./pairing";

/** A batch's tensors. */
function batchTensors(b: { frames: Float32Array; audio: Float32Array; frameShape: number[]; audioShape: number[] }): {
  frames: tf.Tensor4D;
  audio: tf.Tensor4D;
} {
  return {
    frames: tf.tensor4d(b.frames, b.frameShape as [number, number, number, number]),
    audio: tf.tensor4d(b.audio, b.audioShape as [number, number, number, number]),
  };
}

/** Mean loss and accuracy of the model on prepared batches (inference mode). */
export function evaluateBatches(model: L3Net, batches: readonly AvcBatch[]): { loss: number; accuracy: number; n: number } {
  let lossSum = 0;
  let correct = 0;
  let n = 0;
  for (const b of batches) {
    const [loss, acc] = tf.tidy(() => {
      const { frames, audio } = batchTensors(b);
      const out = model.forward({ frames, audio }, { training: false });
      const r = model.lossAndAccuracy(Array.from(b.labels), out.logits);
      return [r.loss.dataSync()[0] as number, r.accuracy.dataSync()[0] as number];
    });
    lossSum += loss * b.size;
    correct += acc * b.size;
    n += b.size;
  }
  return { loss: n ? lossSum / n : Number.NaN, accuracy: n ? correct / n : Number.NaN, n };
}

/** How {@link trainStep} turns a batch into scored pairs. */
export interface TrainStepOptions {
  /** Gradient accumulation: the batch is split into this many micro-batches (default 1). */
  microBatches?: number;
  /**
   * `sampled` (default, the paper): the batch's own 50/50 pairs. `in-batch`: every pair of the batch
   * is a positive, and each frame is also scored against the audio of `negatives` other pairs of its
   * (micro-)batch ({@link inBatchPairs}).
   */
  pairing?: AvcPairing;
  /** In-batch negatives per frame (default 1; capped at the micro-batch size − 1). */
  negatives?: number;
}

/**
 * One optimizer step on a batch: forward in training mode, softmax cross-entropy, gradients
 * (accumulated over micro-batches), Adam. Everything runs inside one `tf.tidy`, so no tensor
 * survives a step except the variables themselves. The loss and accuracy returned are the batch's
 * (with in-batch pairing: weighted so that positives and negatives count half each).
 */
export function trainStep(
  model: L3Net,
  optimizer: Adam,
  batch: AvcBatch,
  lr: number,
  opts: TrainStepOptions = {},
): { loss: number; accuracy: number } {
  const microBatches = opts.microBatches ?? 1;
  const inBatch = opts.pairing === "in-batch";
  const named = model.namedVariables().filter((v) => v.trainable);
  const vars: Record<string, tf.Variable> = {};
  const byTfName = new Map<string, string>();
  for (const v of named) {
    vars[v.name] = v.variable;
    byTfName.set(v.variable.name, v.name);
  }
  // Which weights decay is the model's call (conv and dense kernels): {@link L3Net.decayVariables}.
  const decay = new Set(model.decayVariables().map((v) => model.nameOf(v)));
  const B = batch.size;
  const mb = B / microBatches;
  if (!Number.isInteger(mb))
    throw new ConfigError(`batch of ${B} does not split into ${microBatches} micro-batches`, { subject: "train.microBatches" });
  return tf.tidy(() => {
    const { frames, audio } = batchTensors(batch);
    const labels = tf.tensor1d(Array.from(batch.labels), "int32");
    let sum: Record<string, tf.Tensor> = {};
    let lossSum = 0;
    let correct = 0;
    for (let k = 0; k < microBatches; k++) {
      const f = microBatches === 1 ? frames : frames.slice([k * mb, 0, 0, 0], [mb, -1, -1, -1]);
      const a = microBatches === 1 ? audio : audio.slice([k * mb, 0, 0, 0], [mb, -1, -1, -1]);
      const y = microBatches === 1 ? labels : labels.slice([k * mb], [mb]);
      const pairs = inBatch
        ? inBatchPairs(
            batch.pairs.slice(k * mb, (k + 1) * mb).map((p) => p.frame.id),
            opts.negatives ?? 1,
          )
        : null;
      let accuracy: tf.Scalar | null = null;
      const { value, grads } = tf.variableGrads(
        () => {
          if (pairs) {
            const r = inBatchLossAndAccuracy(inBatchLogits(model, f, a, pairs), pairs);
            accuracy = tf.keep(r.accuracy);
            return r.loss;
          }
          const out = model.forward({ frames: f, audio: a }, { training: true });
          const r = model.lossAndAccuracy(y, out.logits);
          accuracy = tf.keep(r.accuracy);
          return r.loss;
        },
        named.map((v) => v.variable),
      );
      lossSum += (value.dataSync()[0] as number) * mb;
      const acc = accuracy as unknown as tf.Scalar;
      correct += (acc.dataSync()[0] as number) * mb;
      acc.dispose(); // kept out of variableGrads' own tidy, so freed here
      const next: Record<string, tf.Tensor> = {};
      for (const [tfName, g] of Object.entries(grads)) {
        const name = byTfName.get(tfName);
        if (!name) continue;
        next[name] = sum[name] ? tf.add(sum[name] as tf.Tensor, g) : g;
      }
      sum = next;
    }
    if (microBatches > 1) for (const k of Object.keys(sum)) sum[k] = tf.div(sum[k] as tf.Tensor, microBatches);
    optimizer.apply(vars, sum, lr, decay);
    return { loss: lossSum / B, accuracy: correct / B };
  });
}
