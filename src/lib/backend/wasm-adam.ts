/**
 * Adam's update for every variable in one pass over tfjs-wasm's heap.
 *
 * Written with tfjs ops, Adam makes about 13 kernel calls per variable (≈680 for the `lite`
 * L³-Net) and on the wasm backend their dispatch and allocation cost more than the arithmetic:
 * 38 ms of a 445 ms `lite` step. Here one loop per variable reads w, g, m and v from the heap and
 * writes w', m' and v' into fresh outputs, which the caller assigns. Fresh outputs, not in-place
 * writes, because a variable's storage may be shared with other tensors (tfjs shares data ids on
 * reshape, clone and variable creation).
 *
 * Relies on BackendWasm internals (`dataIdMap`, `makeOutput`) as tfjs-backend-wasm 4.22.0 has
 * them, like wasm-kernels.ts.
 */
import * as tf from "@tensorflow/tfjs";

interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } | undefined };
  wasm: { HEAPU8: Uint8Array; wasmMemory?: WebAssembly.Memory };
}

/** One variable's tensors for {@link wasmAdamUpdate}. */
export interface AdamSlots {
  variable: tf.Tensor;
  grad: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  /** L2 coefficient added to the gradient (`g + decay·w`), 0 for none. */
  decay: number;
}

/** Adam's coefficients for one step (`alpha` already holds the bias corrections). */
export interface AdamCoefficients {
  beta1: number;
  beta2: number;
  epsilon: number;
  alpha: number;
}

/** Whether {@link wasmAdamUpdate} can run: the wasm backend is active and exposes its heap. */
export function wasmAdamAvailable(): boolean {
  if (tf.getBackend() !== "wasm") return false;
  const b = tf.backend() as unknown as Partial<WasmHeapBackend>;
  return typeof b.makeOutput === "function" && !!b.dataIdMap && !!b.wasm?.HEAPU8;
}

/**
 * The updated (w, m, v) of each variable as new tensors (the caller assigns and disposes them):
 * g' = g + decay·w; m' = β1·m + (1−β1)·g'; v' = β2·v + (1−β2)·g'²; w' = w − α·m'/(√v' + ε).
 * Arithmetic in float64, stored as float32. Returns null (nothing done) unless the wasm backend is
 * active and every tensor is float32.
 */
export function wasmAdamUpdate(
  slots: readonly AdamSlots[],
  c: AdamCoefficients,
): Array<{ variable: tf.Tensor; m: tf.Tensor; v: tf.Tensor }> | null {
  if (!wasmAdamAvailable()) return null;
  for (const s of slots) {
    for (const t of [s.variable, s.grad, s.m, s.v]) if (t.dtype !== "float32" || t.size !== s.variable.size) return null;
  }
  const backend = tf.backend() as unknown as WasmHeapBackend;
  const engine = tf.engine();
  const { beta1: b1, beta2: b2, epsilon: eps, alpha } = c;
  const at = (dataId: tf.DataId): number => {
    const entry = backend.dataIdMap.get(dataId);
    if (!entry) throw new Error("internal: wasm Adam: a tensor is not on the wasm backend");
    return entry.memoryOffset >>> 2;
  };
  const out: Array<{ variable: tf.Tensor; m: tf.Tensor; v: tf.Tensor }> = [];
  for (const s of slots) {
    const shape = s.variable.shape;
    const infos = [backend.makeOutput(shape, "float32"), backend.makeOutput(shape, "float32"), backend.makeOutput(shape, "float32")];
    // Fetched after the allocations: growing wasm memory replaces the buffer.
    const heap = new Float32Array((backend.wasm.wasmMemory?.buffer ?? backend.wasm.HEAPU8.buffer) as ArrayBuffer);
    const w0 = at(s.variable.dataId);
    const g0 = at(s.grad.dataId);
    const m0 = at(s.m.dataId);
    const v0 = at(s.v.dataId);
    const [wo, mo, vo] = infos.map((i) => at(i.dataId)) as [number, number, number];
    const decay = s.decay;
    for (let i = 0, n = s.variable.size; i < n; i++) {
      const w = heap[w0 + i] as number;
      const g = (heap[g0 + i] as number) + decay * w;
      const m = b1 * (heap[m0 + i] as number) + (1 - b1) * g;
      const v = b2 * (heap[v0 + i] as number) + (1 - b2) * g * g;
      heap[mo + i] = m;
      heap[vo + i] = v;
      heap[wo + i] = w - (alpha * m) / (Math.sqrt(v) + eps);
    }
    const [variable, m, v] = infos.map((i) => engine.makeTensorFromTensorInfo(i, backend as unknown as tf.KernelBackend)) as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
    out.push({ variable, m, v });
  }
  return out;
}
