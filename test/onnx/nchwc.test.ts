// The training graph's NCHWc conv path (onnxruntime's blocked kernels on kernels reordered in-graph)
// computes the same gradients as plain Conv nodes, and is really taken where the CPU has it.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { initBackend } from "../../src/lib/backend";
import { buildL3Net, onnxRuntimeStatus } from "../../src/lib/models";
import { buildEvalGraph, buildTrainGraph, trainNames } from "../../src/lib/models/onnx/train-graph";
import { hwioToOihw, nchwcBlockSize } from "../../src/lib/train/onnx-engine";
import { kinkFreeBatchNorm, kinkFreeInputs } from "./helpers";

const ort = onnxRuntimeStatus();
const skip = ort.available ? false : `onnxruntime-node not available: ${ort.reason}`;

before(async () => {
  await initBackend({ backend: "wasm", quiet: true });
});

describe("ONNX training graph: NCHWc convs", { skip, timeout: 300_000 }, () => {
  it("lite: the blocked graph's gradients and loss equal the plain-Conv graph's", async (t) => {
    const runtime = require("onnxruntime-node");
    const block = await nchwcBlockSize(runtime);
    if (!block) return t.skip("this CPU provider has no NCHWc kernels");
    const model = buildL3Net({ preset: "lite", fusion: "concat" }, { seed: "nchwc" });
    kinkFreeBatchNorm(model, "nchwc-bn");
    const batch = 2;
    const inputs = kinkFreeInputs(model, batch, "nchwc-x");
    const shapeOf = (name: string) => [batch, ...(model.graph.nodes.find((n) => n.name === name)?.shape ?? [])];
    const run = async (nchwcBlock: number) => {
      const info = buildTrainGraph(model.graph, { batch, pairing: { kind: "sampled" }, mode: "gradients", weightDecay: 0, nchwcBlock });
      const text = Buffer.from(info.bytes).toString("latin1");
      const session = await runtime.InferenceSession.create(info.bytes, { intraOpNumThreads: 1 });
      const conv = new Set(info.convKernels);
      const feeds: Record<string, unknown> = {
        frames: new runtime.Tensor("float32", inputs.frames, shapeOf(model.graph.outputs.frames)),
        audio: new runtime.Tensor("float32", inputs.audio, shapeOf(model.graph.outputs.audio)),
        targets: new runtime.Tensor("float32", Float32Array.of(0, 1, 1, 0), [2, 2]),
        weights: new runtime.Tensor("float32", Float32Array.of(0.5, 0.5), [2]),
      };
      for (const v of model.namedVariables()) {
        const d = v.variable.dataSync() as Float32Array;
        const a = conv.has(v.name) ? hwioToOihw(d, v.variable.shape) : { data: d, shape: [...v.variable.shape] };
        feeds[v.trainable ? trainNames.param(v.name) : trainNames.stat(v.name)] = new runtime.Tensor("float32", a.data, a.shape);
      }
      const out = await session.run(feeds);
      await session.release();
      const grads = info.trainable.map((n) => out[trainNames.grad(n)].data as Float32Array);
      return { blocked: text.includes("com.microsoft.nchwc"), loss: out.loss.data[0] as number, grads, names: info.trainable };
    };
    const plain = await run(0);
    const blocked = await run(block);
    assert.equal(plain.blocked, false);
    assert.equal(blocked.blocked, true, "no NCHWc op in the graph built with a block size");
    assert.ok(Math.abs(blocked.loss - plain.loss) <= 1e-5 * Math.abs(plain.loss), `loss ${blocked.loss} vs ${plain.loss}`);
    // Float rounding differs between the two conv kernels (≈1e-6 per conv) and grows through the
    // batch norms' backward (Σdy over thousands of positions cancels): about 1e-5 over the whole
    // gradient vector and up to ~2% on single small gradients (measured). A wrong kernel reorder or
    // layout differs by O(1) in every parameter it feeds.
    let diff = 0;
    let norm = 0;
    const rel = plain.grads.map((g, i) => {
      const h = blocked.grads[i] as Float32Array;
      let d = 0;
      let n = 0;
      for (let j = 0; j < g.length; j++) {
        d += ((h[j] as number) - (g[j] as number)) ** 2;
        n += (g[j] as number) ** 2;
      }
      diff += d;
      norm += n;
      return { name: blocked.names[i] as string, rel: Math.sqrt(d / Math.max(n, 1e-30)) };
    });
    const worst = rel.sort((a, b) => b.rel - a.rel)[0];
    assert.ok(Math.sqrt(diff / norm) <= 1e-3, `gradient vector differs by ${Math.sqrt(diff / norm)} (L2, relative)`);
    assert.ok((worst?.rel ?? 1) <= 0.1, `${worst?.name}: gradient differs by ${worst?.rel} (L2, relative)`);
  });

  it("lite: the blocked evaluation graph's logits equal the plain one's", async (t) => {
    const runtime = require("onnxruntime-node");
    const block = await nchwcBlockSize(runtime);
    if (!block) return t.skip("this CPU provider has no NCHWc kernels");
    const model = buildL3Net({ preset: "lite", fusion: "concat" }, { seed: "nchwc-eval" });
    kinkFreeBatchNorm(model, "nchwc-eval-bn");
    const batch = 2;
    const inputs = kinkFreeInputs(model, batch, "nchwc-eval-x");
    const shapeOf = (name: string) => [batch, ...(model.graph.nodes.find((n) => n.name === name)?.shape ?? [])];
    const conv = new Set(model.graph.nodes.flatMap((n) => (n.op === "conv2d" ? [n.kernel] : [])));
    const run = async (nchwcBlock: number) => {
      const bytes = buildEvalGraph(model.graph, batch, nchwcBlock);
      const session = await runtime.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
      const feeds: Record<string, unknown> = {
        frames: new runtime.Tensor("float32", inputs.frames, shapeOf(model.graph.outputs.frames)),
        audio: new runtime.Tensor("float32", inputs.audio, shapeOf(model.graph.outputs.audio)),
      };
      const wanted = new Set<string>(session.inputNames);
      for (const v of model.namedVariables()) {
        const d = v.variable.dataSync() as Float32Array;
        const a = conv.has(v.name) ? hwioToOihw(d, v.variable.shape) : { data: d, shape: [...v.variable.shape] };
        const name = v.trainable ? trainNames.param(v.name) : trainNames.stat(v.name);
        if (wanted.has(name)) feeds[name] = new runtime.Tensor("float32", a.data, a.shape);
      }
      const out = await session.run(feeds);
      await session.release();
      return { blocked: Buffer.from(bytes).toString("latin1").includes("com.microsoft.nchwc"), logits: out.logits.data as Float32Array };
    };
    const plain = await run(0);
    const blocked = await run(block);
    assert.equal(blocked.blocked, true, "no NCHWc op in the evaluation graph built with a block size");
    const scale = Math.max(...plain.logits.map(Math.abs));
    for (const [i, v] of plain.logits.entries())
      assert.ok(Math.abs((blocked.logits[i] as number) - v) <= 1e-4 * scale, `logit ${i}: ${blocked.logits[i]} vs ${v}`);
  });
});
