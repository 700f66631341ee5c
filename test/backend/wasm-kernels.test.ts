// The wasm backend (threaded, with l3kit's training kernels) against tfjs's cpu backend:
// single kernels first, then every variable's gradient of a small conv net, then an Adam step.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend, registeredWasmTrainingKernels, timeKernels } from "../../src/lib/backend";
import { Adam } from "../../src/lib/train";
import { Rng } from "../../src/lib/util";

/** max|a−b| / max(max|b|, 1e-6). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

function randn(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

type Arrays = Record<string, { data: Float32Array; shape: number[] }>;

/** Runs `fn` on a backend with fresh tensors made from `arrays`; returns every output's values. */
async function onBackend(name: string, arrays: Arrays, fn: (t: Record<string, tf.Tensor>) => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(name);
  return tf.tidy(() => {
    const ts: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(arrays)) ts[k] = tf.tensor(v.data, v.shape);
    return fn(ts).map((t) => t.dataSync() as Float32Array);
  });
}

async function compare(arrays: Arrays, fn: (t: Record<string, tf.Tensor>) => tf.Tensor[], tol = 1e-4): Promise<number> {
  const want = await onBackend("cpu", arrays, fn);
  const got = await onBackend("wasm", arrays, fn);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = relErr(got[i]!, want[i]!);
    assert.ok(e < tol, `output ${i}: relative error ${e.toExponential(2)} ≥ ${tol}`);
    worst = Math.max(worst, e);
  }
  return worst;
}

before(async () => {
  const info = await initBackend({ backend: "wasm", threads: 2, quiet: true });
  assert.equal(info.name, "wasm");
  console.log(`# wasm backend: ${info.threads} threads; ${info.reason}`);
});

describe("single kernels match cpu", () => {
  const rng = new Rng("wasm-kernels");
  const convCases: {
    h: number;
    w: number;
    c: number;
    co: number;
    k: number;
    s: number;
    pad: "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];
  }[] = [
    { h: 9, w: 7, c: 3, co: 4, k: 3, s: 1, pad: "same" },
    { h: 9, w: 7, c: 1, co: 5, k: 3, s: 1, pad: "valid" },
    { h: 9, w: 7, c: 3, co: 4, k: 3, s: 2, pad: "same" },
    { h: 9, w: 7, c: 3, co: 2, k: 3, s: 2, pad: "valid" },
    { h: 8, w: 10, c: 2, co: 3, k: 2, s: 2, pad: "same" },
    { h: 11, w: 6, c: 4, co: 3, k: 5, s: 3, pad: "valid" },
    {
      h: 7,
      w: 9,
      c: 2,
      co: 3,
      k: 3,
      s: 1,
      pad: [
        [0, 0],
        [2, 0],
        [1, 3],
        [0, 0],
      ],
    },
    { h: 6, w: 6, c: 8, co: 8, k: 1, s: 1, pad: "valid" },
  ];
  for (const cc of convCases) {
    const label = `conv ${cc.h}x${cc.w}x${cc.c}→${cc.co} k${cc.k} s${cc.s} ${typeof cc.pad === "string" ? cc.pad : "explicit"}`;
    test(`Conv2DBackpropFilter and Conv2DBackpropInput: ${label}`, async () => {
      const n = 2;
      const x = { data: randn(rng, n * cc.h * cc.w * cc.c), shape: [n, cc.h, cc.w, cc.c] };
      const w = { data: randn(rng, cc.k * cc.k * cc.c * cc.co), shape: [cc.k, cc.k, cc.c, cc.co] };
      const outShape = tf.backend_util.computeConv2DInfo([n, cc.h, cc.w, cc.c], [cc.k, cc.k, cc.c, cc.co], cc.s, 1, cc.pad).outShape;
      const dy = {
        data: randn(
          rng,
          outShape.reduce((a, b) => a * b, 1),
        ),
        shape: outShape,
      };
      // d/dx and d/dw of Σ conv(x, w)·dy are exactly Conv2DBackpropInput and Conv2DBackpropFilter of dy.
      await compare({ x, w, dy }, (t) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, cc.s, cc.pad)
            .mul(t.dy!)
            .sum(),
        )([t.x!, t.w!]),
      );
    });
  }

  test("BatchMatMul with transposes and batches", async () => {
    const a = { data: randn(rng, 3 * 17 * 23), shape: [3, 17, 23] };
    const b = { data: randn(rng, 3 * 23 * 19), shape: [3, 23, 19] };
    const a2 = { data: randn(rng, 40 * 33), shape: [40, 33] };
    const b2 = { data: randn(rng, 40 * 21), shape: [40, 21] };
    const b1 = { data: randn(rng, 23 * 19), shape: [1, 23, 19] };
    await compare({ a, b, a2, b2, b1 }, (t) => [
      tf.matMul(t.a!, t.b!),
      tf.matMul(t.a!, t.b!.transpose([0, 2, 1]), false, true),
      tf.matMul(t.a!.transpose([0, 2, 1]), t.b!, true, false),
      tf.matMul(t.a2!, t.b2!, true, false),
      tf.matMul(t.b2!, t.a2!, true, false),
      tf.matMul(t.a2!.transpose(), t.b2!.transpose(), false, true),
      tf.matMul(t.a!, t.b1!),
    ]);
  });

  test("Tile, Sum, Mean and MaxPoolGrad (ties included)", async () => {
    const x = { data: randn(rng, 2 * 9 * 7 * 3), shape: [2, 9, 7, 3] };
    // Many exact ties: a ReLU of a coarse grid.
    const r = randn(rng, 2 * 9 * 7 * 3).map((v) => Math.max(0, Math.round(v)));
    const xr = { data: r, shape: [2, 9, 7, 3] };
    const v = { data: randn(rng, 3), shape: [1, 1, 1, 3] };
    await compare({ x, xr, v }, (t) => {
      const poolW = (z: tf.Tensor, pad: "valid" | "same") => {
        const y = tf.maxPool(z as tf.Tensor4D, 2, 2, pad);
        const wts = tf.linspace(0.5, 2, y.size).reshape(y.shape);
        return tf.grad((u: tf.Tensor) =>
          tf
            .maxPool(u as tf.Tensor4D, 2, 2, pad)
            .mul(wts)
            .sum(),
        )(z);
      };
      return [
        tf.tile(t.v!, [2, 9, 7, 1]),
        tf.tile(t.x!, [1, 2, 1, 3]),
        tf.sum(t.x!, [0, 1, 2]),
        tf.sum(t.x!, [0, 1], true),
        tf.sum(t.x!, [1, 2]),
        tf.mean(t.x!, [0, 1, 2]),
        tf.moments(t.x!, [0, 1, 2]).variance,
        poolW(t.x!, "valid"),
        poolW(t.x!, "same"),
        poolW(t.xr!, "valid"),
        poolW(t.xr!, "same"),
        tf.grad((u: tf.Tensor) => tf.maxPool(u as tf.Tensor4D, 3, 2, "same").sum())(t.x!),
        tf.grad((u: tf.Tensor) =>
          tf
            .maxPool(u as tf.Tensor4D, [3, 2], 1, "valid")
            .mul(2)
            .sum(),
        )(t.xr!),
        tf.grad((u: tf.Tensor) => tf.max(u, [1, 2]).sum())(t.xr!),
      ];
    });
  });

  // XNNPACK's multipass average pooling (the fast Sum/Mean) hung on [8, 18432] and crashed on [12, 30000]: stack overflow.
  test("Sum and Mean over the leading axis of very wide rows", { timeout: 60_000 }, async () => {
    const w = { data: randn(rng, 12 * 30000), shape: [12, 30000] };
    const f = { data: randn(rng, 2 * 112 * 112 * 3), shape: [2, 112, 112, 3] };
    await compare({ w, f }, (t) => [
      tf.sum(t.w!, 0),
      tf.mean(t.w!, 0, true),
      tf.mean(t.f!, 0),
      tf.sum(t.f!, [0, 1]),
      tf.sum(t.w!.reshape([12, 10, 3000]), 0),
    ]);
  });

  test("FusedBatchNorm and Equal", async () => {
    const x = { data: randn(rng, 2 * 9 * 70 * 13).map((z) => 3 + 2 * z), shape: [2, 9, 70, 13] };
    const r = { data: randn(rng, 2 * 9 * 70 * 13).map((z) => Math.round(z)), shape: [2, 9, 70, 13] };
    const v = { data: randn(rng, 13), shape: [13] };
    await compare({ x, r, v }, (t) => {
      const { mean, variance } = tf.moments(t.x!, [0, 1, 2]);
      const m4 = mean.reshape([1, 1, 1, 13]);
      return [
        tf.batchNorm(t.x!, mean, variance, t.v!, t.v!.abs(), 1e-3),
        tf.batchNorm(t.x!, m4, variance.reshape([1, 1, 1, 13]), undefined, undefined, 1e-5),
        tf.batchNorm(t.x!, tf.scalar(3), tf.scalar(4), tf.scalar(0.5), tf.scalar(1.5), 1e-3),
        tf.equal(t.r!, t.r!.max([1, 2], true)).cast("float32"),
        tf.equal(t.r!, tf.scalar(0)).cast("float32"),
        tf.equal(t.r!.cast("int32"), t.r!.reverse(3).cast("int32")).cast("float32"),
      ];
    });
  });

  test("broadcasting binary ops on wide rows", async () => {
    const x = { data: randn(rng, 2 * 9 * 70 * 13), shape: [2, 9, 70, 13] };
    const v = { data: randn(rng, 13).map((z) => 1 + Math.abs(z)), shape: [13] };
    const u = { data: randn(rng, 70 * 13), shape: [1, 70, 13] };
    await compare({ x, v, u }, (t) => [
      tf.mul(t.x!, t.v!),
      tf.mul(t.v!, t.x!),
      tf.sub(t.v!, t.x!),
      tf.sub(t.x!, t.u!),
      tf.div(t.x!, t.v!),
      tf.div(t.u!, t.x!.add(10)),
      tf.add(t.x!, t.v!.reshape([1, 1, 1, 13])),
      tf.squaredDifference(t.x!, t.u!),
    ]);
  });

  test("no tensor or wasm-memory leaks in the replaced kernels", async () => {
    await tf.setBackend("wasm");
    const backend = tf.backend() as tf.KernelBackend & { numDataIds(): number };
    const x = tf.randomNormal([2, 9, 7, 3]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 4]) as tf.Tensor4D;
    const big = tf.randomNormal([4, 16, 16, 8]) as tf.Tensor4D;
    const run = () =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"), 2, 2, "same").sum(),
        )([x, w]);
        const { mean, variance } = tf.moments(big, [0, 1, 2]);
        const parts = [
          g[0]!.sum(),
          g[1]!.sum(),
          tf.tile(x, [1, 1, 1, 2]).sum(),
          tf.matMul(x.reshape([18, 21]), x.reshape([18, 21]), true).sum(),
          tf.batchNorm(big, mean, variance, undefined, undefined, 1e-3).sum(),
          tf
            .equal(big, big.max([1, 2], true))
            .cast("float32")
            .sum(),
          big.mul(mean).clone().cast("float32").sum(),
          tf.conv2dTranspose(big, tf.ones([3, 3, 2, 8]) as tf.Tensor4D, [4, 33, 33, 2], 2, "valid").sum(),
        ];
        return tf.addN(parts);
      });
    run().dispose();
    const tensors = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    const ids = backend.numDataIds();
    run().dispose();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.memory().numBytes, bytes);
    assert.equal(backend.numDataIds(), ids, "wasm data ids leaked");
    tf.dispose([x, w, big]);
  });
});

/** A small VGG-style net as plain variables: [conv3x3 → BN(train) → ReLU → maxPool] blocks. */
function makeNet(rng: Rng, cin: number): Arrays {
  const arrays: Arrays = {};
  const widths = [4, 6];
  let c = cin;
  widths.forEach((co, i) => {
    arrays[`w${i}`] = { data: randn(rng, 9 * c * co).map((v) => v * Math.sqrt(2 / (9 * c))), shape: [3, 3, c, co] };
    arrays[`g${i}`] = { data: randn(rng, co).map((v) => 1 + 0.1 * v), shape: [co] };
    arrays[`b${i}`] = { data: randn(rng, co).map((v) => 0.1 * v), shape: [co] };
    c = co;
  });
  arrays.ws = { data: randn(rng, 3 * 3 * c * 5).map((v) => v * 0.3), shape: [3, 3, c, 5] };
  arrays.wd = { data: randn(rng, 5 * 3).map((v) => v * 0.5), shape: [5, 3] };
  arrays.bd = { data: randn(rng, 3).map((v) => v * 0.1), shape: [3] };
  return arrays;
}

function netLoss(p: Record<string, tf.Tensor>, x: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  let h = x as tf.Tensor4D;
  for (let i = 0; i < 2; i++) {
    h = tf.conv2d(h, p[`w${i}`] as tf.Tensor4D, 1, "same");
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    h = tf.batchNorm(h, mean, variance, p[`b${i}`], p[`g${i}`], 1e-3).relu();
    h = tf.maxPool(h, 2, 2, i === 0 ? "same" : "valid");
  }
  h = tf.conv2d(h, p.ws as tf.Tensor4D, 2, "same").relu();
  const pooled = tf.max(h, [1, 2]);
  const logits = tf.matMul(pooled, p.wd!).add(p.bd!);
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

describe("conv net gradients match cpu", () => {
  for (const [cin, batch] of [
    [1, 2],
    [3, 3],
  ] as const) {
    test(`depth ${cin}, batch ${batch}, 9×7 input: every variable's gradient within 1e-4`, async () => {
      const rng = new Rng(`net-${cin}-${batch}`);
      const params = makeNet(rng, cin);
      const x = { data: randn(rng, batch * 9 * 7 * cin), shape: [batch, 9, 7, cin] };
      const lab = new Float32Array(batch * 3);
      for (let i = 0; i < batch; i++) lab[i * 3 + (i % 3)] = 1;
      const names = Object.keys(params);
      const fn = (t: Record<string, tf.Tensor>) => {
        const vs = names.map((n) => t[n]!);
        const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
          const p: Record<string, tf.Tensor> = {};
          names.forEach((n, i) => {
            p[n] = ps[i]!;
          });
          return netLoss(p, t.x!, t.lab!);
        })(vs);
        return [value, ...grads];
      };
      const worst = await compare({ ...params, x, lab: { data: lab, shape: [batch, 3] } }, fn);
      console.log(`# depth ${cin} batch ${batch}: worst relative gradient error ${worst.toExponential(2)} over ${names.length} variables`);
    });
  }
});

describe("training on wasm", () => {
  test("an Adam step runs multi-threaded, uses the l3kit kernels, and lowers the loss", async () => {
    await tf.setBackend("wasm");
    const wasm = require("@tensorflow/tfjs-backend-wasm") as { getThreadsCount(): number };
    const threads = wasm.getThreadsCount();
    console.log(`# wasm threads running: ${threads}`);
    assert.ok(threads >= 2, `expected ≥ 2 wasm threads, got ${threads}`);
    const rng = new Rng("adam");
    const arrays = makeNet(rng, 3);
    const p: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(arrays)) p[k] = tf.variable(tf.tensor(v.data, v.shape), true, `adam-${k}`);
    const x = tf.tensor(randn(rng, 3 * 9 * 7 * 3), [3, 9, 7, 3]);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2], "int32"), 3);
    const opt = tf.train.adam(0.01);
    const losses: number[] = [];
    const { kernels } = await timeKernels("wasm", () => {
      for (let i = 0; i < 5; i++) {
        const cost = opt.minimize(() => netLoss(p, x, labels), true) as tf.Scalar;
        losses.push(cost.dataSync()[0]!);
        cost.dispose();
      }
    });
    const used = new Set(kernels.map((k) => k.kernel));
    for (const k of ["Conv2DBackpropFilter", "Conv2DBackpropInput", "MaxPoolGrad", "Tile", "Sum", "Mean"]) {
      assert.ok(registeredWasmTrainingKernels().includes(k), `${k} not registered`);
      assert.ok(used.has(k), `${k} was not used by the step`);
    }
    assert.ok(losses.every(Number.isFinite), `non-finite loss: ${losses}`);
    assert.ok(losses[4]! < losses[0]!, `loss did not fall: ${losses.map((l) => l.toFixed(4)).join(" ")}`);
    opt.dispose();
    tf.dispose([x, labels, ...Object.values(p)]);
  });
});

describe("l3kit Adam on wasm", () => {
  test("the fused heap update equals the tf-op update on cpu, and leaves tensors sharing a variable's storage alone", async () => {
    const rng = new Rng("fused-adam");
    const shapes: Record<string, number[]> = { k: [3, 3, 4, 5], g: [5], b: [7, 2] };
    const init = Object.fromEntries(
      Object.entries(shapes).map(([k, s]) => [
        k,
        randn(
          rng,
          s.reduce((a, b) => a * b, 1),
        ),
      ]),
    );
    const grads = Array.from({ length: 4 }, () =>
      Object.fromEntries(
        Object.entries(shapes).map(([k, s]) => [
          k,
          randn(
            rng,
            s.reduce((a, b) => a * b, 1),
          ),
        ]),
      ),
    );
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const original = Object.fromEntries(Object.entries(init).map(([k, d]) => [k, tf.tensor(d, shapes[k])]));
      // tf.variable shares the initial tensor's storage: an in-place update would change `original` too.
      const vars = Object.fromEntries(Object.entries(original).map(([k, t]) => [k, tf.variable(t, true, `fused-adam-${backend}-${k}`)]));
      const opt = new Adam({ weightDecay: 0.01 });
      for (const g of grads) {
        tf.tidy(() => {
          const gt = Object.fromEntries(Object.entries(g).map(([k, d]) => [k, tf.tensor(d, shapes[k])]));
          opt.apply(vars, gt, 0.01, new Set(["k"]));
        });
      }
      const out = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.dataSync() as Float32Array]));
      const untouched = Object.entries(original).every(([k, t]) => relErr(t.dataSync() as Float32Array, init[k]!) === 0);
      const state = await opt.getState();
      opt.dispose();
      tf.dispose([...Object.values(vars), ...Object.values(original)]);
      return { out, untouched, state };
    };
    const before = tf.memory().numTensors;
    const want = await run("cpu");
    const got = await run("wasm");
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
    assert.ok(want.untouched && got.untouched, "a tensor sharing a variable's initial storage changed");
    for (const k of Object.keys(shapes)) {
      const e = relErr(got.out[k]!, want.out[k]!);
      assert.ok(e < 1e-5, `${k}: relative error ${e.toExponential(2)}`);
      assert.ok(relErr(got.state.m[k]!.data, want.state.m[k]!.data) < 1e-5, `${k}: first moment differs`);
      assert.ok(relErr(got.state.v[k]!.data, want.state.v[k]!.data) < 1e-5, `${k}: second moment differs`);
      assert.ok(relErr(got.out[k]!, init[k]!) > 1e-3, `${k}: not updated`);
    }
    assert.equal(got.state.step, 4);
  });
});
