/**
 * In-batch negatives for AVC training. A batch of B corresponding (frame, audio) pairs runs through
 * each tower once; the head then scores every frame with its own audio (B positives) and with the
 * audio of K other pairs of the batch (up to B·K negatives). The towers dominate the cost of a
 * step, so a step yields (K + 1)·B scored pairs for the price of B, instead of B with independently
 * sampled 50/50 pairs. Positives and negatives weigh half of the loss each, as in a balanced batch.
 */
import * as tf from "@tensorflow/tfjs";
import type { L3Net } from "../models";

/**
 * The frame–audio combinations of one batch of n corresponding pairs, in blocks of n: block s
 * (s = 0 … shifts) pairs frame i with the audio of entry (i + s) mod n. Block 0 holds the positives.
 */
export interface InBatchPairs {
  /** Entries per block (the batch size). */
  n: number;
  /** Blocks of negatives (K, capped at n − 1). */
  shifts: number;
  /** (shifts + 1)·n labels: 1 for the frame's own audio, 0 for another clip's audio. */
  labels: Int32Array;
  /**
   * Loss weights: Σ over positives = Σ over negatives = 1/2 (all weight on positives when no
   * negative exists); 0 for a frame paired with audio of its own clip at another time (neither a
   * positive nor a negative).
   */
  weights: Float32Array;
  positives: number;
  negatives: number;
}

/**
 * Pairs each of the `clipIds.length` frames with its own audio and with the audio of the next `k`
 * batch entries (cyclically), leaving out (weight 0) combinations of a clip with itself.
 */
export function inBatchPairs(clipIds: readonly string[], k: number): InBatchPairs {
  const n = clipIds.length;
  const shifts = Math.max(0, Math.min(k, n - 1));
  const labels = new Int32Array((shifts + 1) * n);
  const valid = new Uint8Array((shifts + 1) * n);
  labels.fill(1, 0, n);
  valid.fill(1, 0, n);
  let negatives = 0;
  for (let s = 1; s <= shifts; s++) {
    for (let i = 0; i < n; i++) {
      if (clipIds[(i + s) % n] === clipIds[i]) continue;
      valid[s * n + i] = 1;
      negatives++;
    }
  }
  const wPos = negatives > 0 ? 0.5 / n : 1 / n;
  const wNeg = negatives > 0 ? 0.5 / negatives : 0;
  const weights = Float32Array.from(labels, (l, j) => (valid[j] ? (l === 1 ? wPos : wNeg) : 0));
  return { n, shifts, labels, weights, positives: n, negatives };
}

/**
 * Logits of the combinations `pairs` of a batch of corresponding frames and audio: each tower runs
 * once (by default in training mode, updating batch-norm statistics), then the head's joint part
 * runs on the tower outputs ({@link L3Net.jointInputs}) with the audio side rotated by each shift.
 * Differentiable w.r.t. the model's variables (slices and concats only: no gather, whose gradient
 * the wasm backend lacks).
 */
export function inBatchLogits(
  model: L3Net,
  frames: tf.Tensor4D,
  audio: tf.Tensor4D,
  pairs: InBatchPairs,
  opts: { training?: boolean } = {},
): tf.Tensor2D {
  const training = opts.training ?? true;
  const cut = model.jointInputs;
  const towers = model.run({ frames, audio }, [cut.vision, cut.audio], { training });
  const v = towers[cut.vision] as tf.Tensor;
  const a = towers[cut.audio] as tf.Tensor;
  const { n, shifts } = pairs;
  const logitsOf = (vision: tf.Tensor, audioSide: tf.Tensor): tf.Tensor =>
    model.run({ [cut.vision]: vision, [cut.audio]: audioSide }, [model.graph.outputs.logits], { training })[
      model.graph.outputs.logits
    ] as tf.Tensor;
  const rotated = (s: number): tf.Tensor => (s === 0 ? a : tf.concat([a.slice(s, n - s), a.slice(0, s)], 0));
  const shiftList = Array.from({ length: shifts + 1 }, (_, s) => s);
  // A small vision side (pooled embeddings) is repeated and the joint part runs once over all
  // blocks; a large one (AVOL's per-location projections) is not copied: one joint pass per shift.
  if (v.size / n <= SMALL_JOINT_INPUT) {
    if (shifts === 0) return logitsOf(v, a) as tf.Tensor2D;
    const repeated = tf.concat(
      shiftList.map(() => v),
      0,
    );
    return logitsOf(repeated, tf.concat(shiftList.map(rotated), 0)) as tf.Tensor2D;
  }
  const blocks = shiftList.map((s) => logitsOf(v, rotated(s)));
  return (blocks.length === 1 ? blocks[0] : tf.concat(blocks, 0)) as tf.Tensor2D;
}

/** Values per sample up to which the vision side of the joint part is repeated rather than re-run per shift. */
const SMALL_JOINT_INPUT = 4096;

/** Weighted softmax cross-entropy of the combinations, and their balanced accuracy (mean of the positive and negative accuracies). */
export function inBatchLossAndAccuracy(logits: tf.Tensor2D, pairs: InBatchPairs): { loss: tf.Scalar; accuracy: tf.Scalar } {
  return tf.tidy(() => {
    const y = tf.tensor1d(pairs.labels, "int32");
    const w = tf.tensor1d(pairs.weights);
    const logp = tf.sum(tf.mul(tf.oneHot(y, 2), tf.logSoftmax(logits)), -1);
    const loss = tf.neg(tf.sum(tf.mul(w, logp))) as tf.Scalar;
    // Weights are 1/(2·count) per group, so Σ w·correct is the balanced accuracy.
    const correct = tf.cast(tf.equal(tf.argMax(logits, 1), y), "float32");
    const accuracy = tf.sum(tf.mul(w, correct)) as tf.Scalar;
    return { loss, accuracy };
  });
}
