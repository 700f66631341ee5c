// Times one training step of a "lite" L³-Net on the cpu and wasm backends.
//
//   node --import tsx bench/wasm-step.ts [--backends wasm[,cpu]] [--threads N] [--batch 8]
//        [--steps 5] [--warmup 2] [--cpu-steps 1] [--kernels all|none|Name,Name] [--profile]
//
// `--kernels none` registers only Conv2DBackpropFilter (without it nothing trains on wasm); the
// cpu backend takes minutes per step at batch 8, so it runs only when asked, without warm-up.
//
// Net: two towers of 4 blocks [conv3x3 → BN (batch statistics) → ReLU] × 2, widths 16/32/64/128,
// 2×2 max-pool after blocks 1–3, global max pool; vision 112×112×3, audio 128×100×1; concat →
// dense 128 ReLU → dense 2; softmax cross-entropy; Adam 1e-4. Prints the median ms/step after
// warm-up, the thread count, and with --profile the kernels that took the time.
import * as tf from "@tensorflow/tfjs";
import { initBackend, type KernelTiming, timeKernels, WASM_TRAINING_KERNELS, type WasmTrainingKernel } from "../src/lib/backend";
import { traceWasmKernelInternals } from "../src/lib/backend/wasm-kernels";
import { Rng } from "../src/lib/util";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] && !process.argv[i + 1]!.startsWith("--") ? process.argv[i + 1]! : fallback;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

const backends = arg("backends", "wasm").split(",");
const threads = Number(arg("threads", "0")) || undefined;
const batch = Number(arg("batch", "8"));
const steps = Number(arg("steps", "5"));
const warmup = Number(arg("warmup", "2"));
const cpuSteps = Number(arg("cpu-steps", "1"));
const kernelsArg = arg("kernels", "all");
const profile = flag("profile");

const WIDTHS = [16, 32, 64, 128];

type Params = Record<string, tf.Variable>;

function heNormal(rng: Rng, shape: number[], fanIn: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < n; i++) data[i] = rng.normal(0, std);
  return tf.tensor(data, shape);
}

function makeParams(rng: Rng): Params {
  const p: Params = {};
  for (const tower of ["v", "a"]) {
    let c = tower === "v" ? 3 : 1;
    WIDTHS.forEach((w, b) => {
      for (let j = 0; j < 2; j++) {
        const k = `${tower}${b}${j}`;
        p[`${k}w`] = tf.variable(heNormal(rng, [3, 3, c, w], 9 * c), true, `${k}w`);
        p[`${k}g`] = tf.variable(tf.ones([w]), true, `${k}g`);
        p[`${k}b`] = tf.variable(tf.zeros([w]), true, `${k}b`);
        c = w;
      }
    });
  }
  const last = WIDTHS[WIDTHS.length - 1]!;
  p.fc1w = tf.variable(heNormal(rng, [2 * last, 128], 2 * last), true, "fc1w");
  p.fc1b = tf.variable(tf.zeros([128]), true, "fc1b");
  p.fc2w = tf.variable(heNormal(rng, [128, 2], 128), true, "fc2w");
  p.fc2b = tf.variable(tf.zeros([2]), true, "fc2b");
  return p;
}

function tower(p: Params, name: string, x: tf.Tensor4D): tf.Tensor2D {
  let h = x;
  WIDTHS.forEach((_, b) => {
    for (let j = 0; j < 2; j++) {
      const k = `${name}${b}${j}`;
      h = tf.conv2d(h, p[`${k}w`] as tf.Tensor4D, 1, "same");
      const { mean, variance } = tf.moments(h, [0, 1, 2]);
      h = tf.batchNorm(h, mean, variance, p[`${k}b`], p[`${k}g`], 1e-3).relu();
    }
    if (b < WIDTHS.length - 1) h = tf.maxPool(h, 2, 2, "valid");
  });
  return tf.max(h, [1, 2]) as tf.Tensor2D;
}

function loss(p: Params, v: tf.Tensor4D, a: tf.Tensor4D, labels: tf.Tensor2D): tf.Scalar {
  const f = tf.concat([tower(p, "v", v), tower(p, "a", a)], 1);
  const h = tf
    .matMul(f, p.fc1w as tf.Tensor2D)
    .add(p.fc1b!)
    .relu();
  const logits = tf.matMul(h, p.fc2w as tf.Tensor2D).add(p.fc2b!);
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function bench(
  backend: string,
  nSteps: number,
): Promise<{ ms: number[]; cpuMs: number[]; kernels?: KernelTiming[]; inner?: KernelTiming[]; loss: number }> {
  await tf.setBackend(backend);
  const rng = new Rng(`bench-${backend}`);
  const p = makeParams(rng);
  const v = tf.randomNormal([batch, 112, 112, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const a = tf.randomNormal([batch, 128, 100, 1], 0, 1, "float32", 2) as tf.Tensor4D;
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % 2),
      "int32",
    ),
    2,
  ) as tf.Tensor2D;
  const opt = tf.train.adam(1e-4);
  let last = Number.NaN;
  const step = (): void => {
    const cost = opt.minimize(() => loss(p, v, a, labels), true) as tf.Scalar;
    last = cost.dataSync()[0]!;
    cost.dispose();
  };
  for (let i = 0; i < (backend === "cpu" ? 0 : warmup); i++) step();
  const ms: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < nSteps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    step();
    const c = process.cpuUsage(c0);
    ms.push(performance.now() - t0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  let kernels: KernelTiming[] | undefined;
  let inner: KernelTiming[] | undefined;
  if (profile) {
    if (backend === "wasm") traceWasmKernelInternals(true);
    kernels = (await timeKernels(backend, step)).kernels;
    if (backend === "wasm") inner = traceWasmKernelInternals(false);
  }
  opt.dispose();
  tf.dispose([v, a, labels, ...Object.values(p)]);
  return { ms, cpuMs, kernels, inner, loss: last };
}

async function main(): Promise<void> {
  let kernelsWanted: readonly WasmTrainingKernel[] | undefined;
  if (kernelsArg === "none")
    kernelsWanted = ["Conv2DBackpropFilter"]; // the minimum to train at all
  else if (kernelsArg !== "all") kernelsWanted = kernelsArg.split(",") as WasmTrainingKernel[];
  for (const k of kernelsWanted ?? []) if (!WASM_TRAINING_KERNELS.includes(k)) throw new Error(`unknown kernel ${k}`);
  const info = await initBackend({ backend: "wasm", threads, quiet: true, wasmKernels: kernelsWanted });
  console.log(`wasm: ${info.threads} threads (${info.reason}); l3kit kernels: ${(kernelsWanted ?? info.kernels ?? []).join(", ")}`);
  console.log(`batch ${batch}, vision 112×112×3, audio 128×100×1, widths ${WIDTHS.join("/")}`);
  for (const b of backends) {
    const n = b === "cpu" ? cpuSteps : steps;
    const r = await bench(b, n);
    console.log(
      `${b.padEnd(5)} ${median(r.ms).toFixed(0).padStart(6)} ms/step (median of ${n} after ${b === "cpu" ? 0 : warmup} warm-up; ` +
        `min ${Math.min(...r.ms).toFixed(0)}; process CPU ${median(r.cpuMs).toFixed(0)} ms/step; loss ${r.loss.toFixed(4)})` +
        `${b === "wasm" ? `, ${info.threads} threads` : ""}`,
    );
    if (r.kernels) {
      const total = r.kernels.reduce((s, k) => s + k.cpuMs, 0);
      console.log("    kernel                  wall ms   CPU ms  calls  CPU share");
      for (const k of [...r.kernels].sort((p, q) => q.cpuMs - p.cpuMs).slice(0, 16)) {
        console.log(
          `    ${k.kernel.padEnd(22)} ${k.ms.toFixed(1).padStart(8)} ${k.cpuMs.toFixed(1).padStart(8)} ${String(k.calls).padStart(6)} ${((100 * k.cpuMs) / total).toFixed(1).padStart(6)}%`,
        );
      }
    }
    if (r.inner?.length) {
      console.log("    inside l3kit's kernels:");
      for (const k of [...r.inner].sort((p, q) => q.cpuMs - p.cpuMs).slice(0, 10)) {
        console.log(
          `      ${k.kernel.padEnd(20)} ${k.ms.toFixed(1).padStart(8)} ${k.cpuMs.toFixed(1).padStart(8)} ${String(k.calls).padStart(6)}`,
        );
      }
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
