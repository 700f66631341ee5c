/**
 * Kernels that let a conv net train fast on tfjs's wasm backend.
 *
 * `@tensorflow/tfjs-backend-wasm` 4.22 has no `Conv2DBackpropFilter` (so no conv net trains on it),
 * and much of a training step runs in scalar C++ or JS loops: `Conv2DBackpropInput`, `Tile`, the
 * transposed/batched `BatchMatMul` path, `MaxPoolGrad` (which also differs from the cpu backend on
 * ties and on all-negative windows), `Sum`/`Mean` (a full transpose first), `FusedBatchNorm`,
 * `Equal`, whole-tensor copies in `Identity`/same-dtype `Cast` and in `Slice` (which first copies its
 * entire input out of the heap), and XNNPACK binary ops that broadcast a short channel vector (one
 * microkernel call per 16 values). The replacements here are built from the backend's own
 * XNNPACK-backed kernels (convolution, fully-connected GEMM, average pooling, constant pad,
 * binary ops), called directly on the backend as tfjs's composite kernels do, so they run on the
 * wasm thread pool; the rest are tight copies inside wasm memory. Each replacement hands the
 * cases it does not cover (NCHW, other dtypes, unusual broadcasts) to the stock kernel.
 *
 * They rely on BackendWasm internals (`dataIdMap`, `makeOutput` with a memory offset) as of
 * tfjs-backend-wasm 4.22.0; test/backend checks every one against the cpu backend.
 *
 * One kernel per file in ./wasm/ (as tfjs-backend-wasm's kernels/), each on the Scope of
 * ./wasm/scope.ts; this module names them and registers them.
 */
import * as tf from "@tensorflow/tfjs";
import { batchMatMul } from "./wasm/batch-mat-mul";
import { conv2DBackpropFilter } from "./wasm/conv2d-backprop-filter";
import { conv2DBackpropInput } from "./wasm/conv2d-backprop-input";
import { equal } from "./wasm/equal";
import { fusedBatchNorm } from "./wasm/fused-batch-norm";
import { maxPoolGrad } from "./wasm/max-pool-grad";
import { mean, sum } from "./wasm/reduce";
import { ownKernels, stock } from "./wasm/scope";
import { shareOrStock } from "./wasm/share-or-stock";
import { tile } from "./wasm/tile";
import { WIDE_BINARY, wideBroadcast } from "./wasm/wide-broadcast";

export { type InnerTiming, traceWasmKernelInternals } from "./wasm/scope";

/** Kernel names registered (or replaced) for the wasm backend by {@link registerWasmTrainingKernels}. */
export const WASM_TRAINING_KERNELS = [
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "BatchMatMul",
  "Tile",
  "MaxPoolGrad",
  "Sum",
  "Mean",
  "Multiply",
  "Add",
  "Sub",
  "RealDiv",
  "SquaredDifference",
  "Identity",
  "Cast",
  "FusedBatchNorm",
  "Equal",
] as const;

/** One of {@link WASM_TRAINING_KERNELS}. */
export type WasmTrainingKernel = (typeof WASM_TRAINING_KERNELS)[number];

for (const [name, fn] of [
  ["Conv2DBackpropFilter", conv2DBackpropFilter as unknown as tf.KernelFunc],
  ["Conv2DBackpropInput", conv2DBackpropInput as unknown as tf.KernelFunc],
  ["BatchMatMul", batchMatMul as unknown as tf.KernelFunc],
  ["Tile", tile as unknown as tf.KernelFunc],
  ["MaxPoolGrad", maxPoolGrad as unknown as tf.KernelFunc],
  ["Sum", sum as unknown as tf.KernelFunc],
  ["Mean", mean as unknown as tf.KernelFunc],
  ["FusedBatchNorm", fusedBatchNorm as unknown as tf.KernelFunc],
  ["Equal", equal as unknown as tf.KernelFunc],
  ["Identity", shareOrStock("Identity") as unknown as tf.KernelFunc],
  ["Cast", shareOrStock("Cast") as unknown as tf.KernelFunc],
  ...WIDE_BINARY.map((n) => [n, wideBroadcast(n) as unknown as tf.KernelFunc] as [string, tf.KernelFunc]),
] as Array<[string, tf.KernelFunc]>)
  ownKernels.set(name, fn);

const registered = new Set<string>();

/**
 * Registers l3kit's training kernels for backend "wasm" (see {@link WASM_TRAINING_KERNELS}), or
 * only those named in `only`. Needs `@tensorflow/tfjs-backend-wasm` loaded (its kernels
 * registered); works before or after the backend is initialised. Idempotent; returns the names
 * registered by this call.
 */
export function registerWasmTrainingKernels(only?: readonly WasmTrainingKernel[]): string[] {
  const names = only ?? WASM_TRAINING_KERNELS;
  const done: string[] = [];
  // Our kernels call the stock ones directly (not through the registry, which profilers wrap).
  for (const k of tf.getKernelsForBackend("wasm"))
    if (!registered.has(k.kernelName) && !stock.has(k.kernelName)) stock.set(k.kernelName, k);
  for (const name of names) {
    if (registered.has(name)) continue;
    const fn = ownKernels.get(name);
    if (!fn) throw new Error(`unknown l3kit wasm kernel ${name}`);
    const existing = stock.get(name);
    if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
    // Keep the stock kernel's setup (its cwrap), since the replacement falls back to it.
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: fn, setupFunc: existing?.setupFunc });
    registered.add(name);
    done.push(name);
  }
  return done;
}

/** Names of the l3kit kernels currently registered for wasm. */
export function registeredWasmTrainingKernels(): string[] {
  return [...registered];
}
