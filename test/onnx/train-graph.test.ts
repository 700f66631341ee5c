// The ONNX training-step graph's gradients against tfjs' autodiff (the tfjs engine's `trainStep`),
// for every preset × fusion head × pairing, on the wasm backend.
//
// tiny: random inputs, every parameter's gradient within 1e-4 (‖Δ‖∞/‖g‖∞) on at least one of three
// input draws (see below). The mel models' input batch norm is the exception: its γ and β barely
// move the loss (the first conv's batch norm, on batch statistics, undoes any scale and shift of its
// input but at the zero padding and through ε), so their gradients are differences of large sums,
// 1e-2 to 1e-4 of the others, where float32 rounding is no longer small; they are compared on a
// tenth of the whole gradient's scale (‖Δ‖∞ ≤ 1e-5·max‖g‖∞, the accuracy every other parameter has).
// lite, paper: two correct float32 engines route a gradient differently wherever a value sits
// within rounding of a kink (a ReLU input at 0, two equal maxima of a pool): on these larger maps
// a few such positions per step are expected, and each moves a whole gradient entry (measured: a
// ReLU input of 3e-6 at audio/block2/bn1, two near-tied global maxima of the paper audio tower). So
// these presets run on inputs without near-ties (ramps, BN β = 8) and compare the whole gradient
// vector (‖Δ‖₂/‖g‖₂) and the loss.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/lib/backend";
import { buildL3Net, FUSION_KINDS, type L3Net, onnxRuntimeStatus } from "../../src/lib/models";
import { buildTrainGraph, trainNames } from "../../src/lib/models/onnx/train-graph";
import { inBatchLogits, inBatchLossAndAccuracy, inBatchPairs } from "../../src/lib/train";
import { hwioToOihw, nchwcBlockSize } from "../../src/lib/train/onnx-engine";
import { kinkFreeBatchNorm, kinkFreeInputs, randomInputs, randomizeBatchNorm } from "./helpers";

const ort = onnxRuntimeStatus();
const skip = ort.available ? false : `onnxruntime-node not available: ${ort.reason}`;

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
});

type Pairing = "sampled" | "in-batch";
const NEGATIVES = 3;

/** Both engines' loss and per-parameter gradients (conv kernels compared in OIHW). */
async function gradients(
  model: L3Net,
  pairing: Pairing,
  batch: number,
  inputs: { frames: Float32Array; audio: Float32Array },
  negatives = NEGATIVES,
) {
  const shapeOf = (name: string) =>
    [batch, ...(model.graph.nodes.find((n) => n.name === name)?.shape ?? [])] as [number, number, number, number];
  const labels = Array.from({ length: batch }, (_, i) => i % 2);
  // one repeated clip id, so in-batch pairing also has a zero-weight combination
  const ids = Array.from({ length: batch }, (_, i) => `clip${i === batch - 1 ? 0 : i}`);
  const pairs = pairing === "in-batch" ? inBatchPairs(ids, negatives) : null;
  const trainable = model.namedVariables().filter((v) => v.trainable);
  const ref = tf.variableGrads(
    () => {
      const frames = tf.tensor4d(inputs.frames, shapeOf(model.graph.outputs.frames));
      const audio = tf.tensor4d(inputs.audio, shapeOf(model.graph.outputs.audio));
      if (pairs) return inBatchLossAndAccuracy(inBatchLogits(model, frames, audio, pairs), pairs).loss;
      const out = model.forward({ frames, audio }, { training: true, updateBatchNorm: false });
      return model.lossAndAccuracy(labels, out.logits).loss;
    },
    trainable.map((v) => v.variable),
  );
  const { Tensor, InferenceSession } = require("onnxruntime-node");
  // the engine's conv path: NCHWc Convs where the CPU provider has them
  const nchwcBlock = await nchwcBlockSize(require("onnxruntime-node"));
  const info = buildTrainGraph(model.graph, {
    batch,
    pairing: { kind: pairing, negatives },
    mode: "gradients",
    weightDecay: 0,
    nchwcBlock,
  });
  const session = await InferenceSession.create(info.bytes, { intraOpNumThreads: 2, executionMode: "sequential" });
  const N = info.combinations;
  const targets = new Float32Array(N * 2);
  const weights = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    targets[j * 2 + (pairs ? (pairs.labels[j] as number) : (labels[j] as number))] = 1;
    weights[j] = pairs ? (pairs.weights[j] as number) : 1 / batch;
  }
  const feeds: Record<string, unknown> = {
    frames: new Tensor("float32", inputs.frames, shapeOf(model.graph.outputs.frames)),
    audio: new Tensor("float32", inputs.audio, shapeOf(model.graph.outputs.audio)),
    targets: new Tensor("float32", targets, [N, 2]),
    weights: new Tensor("float32", weights, [N]),
  };
  const conv = new Set(info.convKernels);
  const layout = (name: string, data: Float32Array, shape: readonly number[]) =>
    conv.has(name) ? hwioToOihw(data, shape) : { data, shape };
  for (const v of model.namedVariables()) {
    const a = layout(v.name, v.variable.dataSync() as Float32Array, v.variable.shape);
    feeds[v.trainable ? trainNames.param(v.name) : trainNames.stat(v.name)] = new Tensor("float32", a.data, a.shape);
  }
  const out = await session.run(feeds);
  await session.release();
  const result = trainable.map((v) => {
    const g = ref.grads[v.variable.name] as tf.Tensor;
    return {
      name: v.name,
      want: layout(v.name, g.dataSync() as Float32Array, g.shape).data,
      got: out[trainNames.grad(v.name)].data as Float32Array,
    };
  });
  const wantLoss = ref.value.dataSync()[0] as number;
  tf.dispose([ref.value, ...Object.values(ref.grads)]);
  return { params: result, loss: { want: wantLoss, got: out.loss.data[0] as number } };
}

function globalRel(params: Array<{ got: Float32Array; want: Float32Array }>): number {
  let diff = 0;
  let norm = 0;
  for (const p of params)
    for (let i = 0; i < p.want.length; i++) {
      diff += ((p.got[i] as number) - (p.want[i] as number)) ** 2;
      norm += (p.want[i] as number) ** 2;
    }
  return Math.sqrt(diff / norm);
}

/** ‖got − want‖∞ / max(‖want‖∞, floor). */
function maxRel(got: Float32Array, want: Float32Array, floor = 0): number {
  let d = 0;
  let m = floor;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs((got[i] as number) - (want[i] as number)));
    m = Math.max(m, Math.abs(want[i] as number));
  }
  return m > 0 ? d / m : d;
}

/**
 * The parameter with the largest relative error; the mel models' input batch norm is measured against
 * a floor of 0.1× the largest gradient (its gradients are differences of large sums, see the top).
 */
function worstParam(params: Array<{ name: string; got: Float32Array; want: Float32Array }>): { name: string; rel: number } | undefined {
  const scale = Math.max(...params.map((p) => p.want.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  const floor = (name: string) => (name.startsWith("audio/input_bn/") ? 0.1 * scale : 0);
  return params.map((p) => ({ name: p.name, rel: maxRel(p.got, p.want, floor(p.name)) })).sort((a, b) => b.rel - a.rel)[0];
}

describe("ONNX training graph: gradients equal tfjs' autodiff", { skip, timeout: 600_000 }, () => {
  // AVOL scores in-batch pairs from one all-pairs GEMM; with fewer shifts than B − 1 some pairs are
  // not scored, and their gradient must stay 0
  it("tiny / avol / in-batch, 1 shift of 3 (unscored pairs): every parameter within 1e-4", async () => {
    const model = buildL3Net({ preset: "tiny", fusion: "avol" }, { seed: "grad-avol-1" });
    randomizeBatchNorm(model, "bn-avol-1");
    try {
      const r = await gradients(model, "in-batch", 4, randomInputs(model, 4, "x-avol-1"), 1);
      assert.ok(Math.abs(r.loss.got - r.loss.want) <= 1e-5 * Math.abs(r.loss.want), `loss ${r.loss.got} vs ${r.loss.want}`);
      const worst = worstParam(r.params);
      assert.ok((worst?.rel ?? 0) <= 1e-4, `worst: ${worst?.name} ${worst?.rel}`);
    } finally {
      model.dispose();
    }
  });

  for (const fusion of FUSION_KINDS)
    for (const pairing of ["sampled", "in-batch"] as const) {
      it(`tiny / ${fusion} / ${pairing}: every parameter within 1e-4`, async () => {
        const model = buildL3Net({ preset: "tiny", fusion }, { seed: `grad-${fusion}` });
        randomizeBatchNorm(model, `bn-${fusion}`);
        try {
          // A bug shows on every draw; a near-tie that float rounding resolves differently in the two
          // engines (about one draw in five at this size) does not repeat: up to three draws.
          const tries: string[] = [];
          for (let draw = 0; draw < 3; draw++) {
            const r = await gradients(model, pairing, 4, randomInputs(model, 4, `x-${fusion}-${pairing}-${draw}`));
            assert.ok(Math.abs(r.loss.got - r.loss.want) <= 1e-5 * Math.abs(r.loss.want), `loss ${r.loss.got} vs ${r.loss.want}`);
            assert.equal(r.params.length, model.namedVariables().filter((v) => v.trainable).length);
            const worst = worstParam(r.params);
            if (worst && worst.rel <= 1e-4) return;
            tries.push(`${worst?.name}: ${worst?.rel}`);
          }
          assert.fail(`relative error above 1e-4 on every draw: ${tries.join("; ")}`);
        } finally {
          model.dispose();
        }
      });
    }
  for (const preset of ["lite", "paper"] as const)
    for (const fusion of FUSION_KINDS)
      for (const pairing of ["sampled", "in-batch"] as const) {
        it(`${preset} / ${fusion} / ${pairing}: the gradient vector within 5e-3 (inputs without near-ties)`, async () => {
          const batch = preset === "paper" ? 2 : 4;
          const model = buildL3Net({ preset, fusion }, { seed: `grad-${preset}-${fusion}` });
          kinkFreeBatchNorm(model, `bn-${preset}`);
          try {
            const r = await gradients(model, pairing, batch, kinkFreeInputs(model, batch, `x-${preset}-${pairing}`));
            assert.ok(Math.abs(r.loss.got - r.loss.want) <= 1e-5 * Math.abs(r.loss.want), `loss ${r.loss.got} vs ${r.loss.want}`);
            const rel = globalRel(r.params);
            assert.ok(rel <= 5e-3, `${preset}/${fusion}/${pairing}: relative L2 error ${rel}`);
          } finally {
            model.dispose();
          }
        });
      }
});
