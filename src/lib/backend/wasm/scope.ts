// What every l3kit wasm kernel (one file each in this folder) builds on: a Scope that calls the
// backend's own kernels and frees intermediates, the stock kernels l3kit replaces, and the table of
// l3kit's kernels (filled by ../wasm-kernels.ts) that Scope.run dispatches to.
import * as tf from "@tensorflow/tfjs";
export type Info = tf.TensorInfo;
export type Attrs = Record<string, unknown>;
export type Inputs = Record<string, Info>;

/** The part of tfjs-backend-wasm's BackendWasm that the kernels use. */
export interface WasmBackendLike {
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): Info;
  incRef(dataId: tf.DataId): void;
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number }; delete(dataId: tf.DataId): boolean };
  wasm: { tfjs: { disposeData(id: number): void }; HEAPU8: Uint8Array; wasmMemory?: WebAssembly.Memory };
}

/** The stock wasm kernels, saved before l3kit replaces any (ours call them directly). */
export const stock = new Map<string, tf.KernelConfig>();
let innerTimings: Map<string, InnerTiming> | undefined;

/** Time spent in one kernel called from inside l3kit's wasm kernels. */
export interface InnerTiming {
  kernel: string;
  calls: number;
  ms: number;
  cpuMs: number;
}

/**
 * Starts (true) or stops (false) timing the kernels that l3kit's wasm kernels call internally;
 * returns the totals collected since the last start (nested calls count in both levels).
 */
export function traceWasmKernelInternals(on: boolean): InnerTiming[] {
  const out = innerTimings ? [...innerTimings.values()].sort((a, b) => b.ms - a.ms) : [];
  innerTimings = on ? new Map() : undefined;
  return out;
}

/** Calls kernels on one backend and disposes the intermediates it made. */
export class Scope {
  private readonly made: Info[] = [];
  private readonly views: Info[] = [];
  constructor(readonly backend: WasmBackendLike) {}

  /**
   * A view of `x`'s memory under a fresh tensor id. XNNPACK operators that the wasm backend caches
   * per weight-tensor id (fully-connected) must not see one id with two shapes; a fresh id also
   * frees the cached operator (and its packed weights) when the scope ends.
   */
  view(x: Info, shape: number[], elementOffset = 0): Info {
    const { memoryOffset } = this.backend.dataIdMap.get(x.dataId);
    const v = this.backend.makeOutput(shape, x.dtype, memoryOffset + 4 * elementOffset);
    this.views.push(v);
    return v;
  }

  /** Tracks an output made directly with the backend. */
  track(t: Info): Info {
    this.made.push(t);
    return t;
  }

  /** A new uninitialised float32 tensor, tracked for disposal. */
  alloc(shape: number[]): Info {
    const out = this.backend.makeOutput(shape, "float32");
    this.made.push(out);
    return out;
  }

  /** Element index of a 4-byte tensor's first value in {@link Scope.heap32}. */
  offset32(x: Info): number {
    return this.backend.dataIdMap.get(x.dataId).memoryOffset >>> 2;
  }

  /** A Float32Array over the whole wasm memory; fetch it again after allocating. */
  heap32(): Float32Array {
    const w = this.backend.wasm;
    return new Float32Array((w.wasmMemory?.buffer ?? w.HEAPU8.buffer) as ArrayBuffer);
  }

  /**
   * Slice of a 4-byte tensor by contiguous-run copies inside wasm memory (the stock kernel first
   * copies the whole input out of the heap with readSync).
   */
  slice(x: Info, begin: number[], size: number[]): Info {
    if (x.dtype !== "float32" && x.dtype !== "int32") return this.run("Slice", { x }, { begin, size });
    const out = this.backend.makeOutput(size, x.dtype);
    this.made.push(out);
    const rank = x.shape.length;
    if (prod(size) === 0) return out;
    const strides = [...tf.util.computeStrides(x.shape), 1];
    // Trailing dims taken whole merge into one contiguous run.
    let d = rank - 1;
    while (d > 0 && size[d] === x.shape[d]) d--;
    const runLen = size[d]! * strides[d]!;
    const heap = this.heap32();
    let src0 = this.offset32(x);
    for (let i = 0; i < rank; i++) src0 += begin[i]! * strides[i]!;
    let dst = this.offset32(out);
    const outer = size.slice(0, d);
    const idx = new Array<number>(d).fill(0);
    for (;;) {
      let src = src0;
      for (let i = 0; i < d; i++) src += idx[i]! * strides[i]!;
      heap.copyWithin(dst, src, src + runLen);
      dst += runLen;
      let i = d - 1;
      while (i >= 0 && ++idx[i]! === outer[i]) idx[i--] = 0;
      if (i < 0) break;
    }
    return out;
  }

  /** Runs a stock wasm kernel (or one of ours) and tracks its output for disposal. */
  run(name: string, inputs: Inputs | Info[], attrs: Attrs = {}): Info {
    const fn = ownKernels.get(name) ?? stockKernel(name).kernelFunc;
    const t0 = innerTimings ? performance.now() : 0;
    const c0 = innerTimings ? process.cpuUsage() : undefined;
    const out = fn({ inputs: inputs as Inputs, backend: this.backend as unknown as tf.KernelBackend, attrs: attrs as never }) as Info;
    if (innerTimings) {
      const c = process.cpuUsage(c0);
      const e = innerTimings.get(name) ?? { kernel: name, calls: 0, ms: 0, cpuMs: 0 };
      e.calls++;
      e.ms += performance.now() - t0;
      e.cpuMs += (c.user + c.system) / 1000;
      innerTimings.set(name, e);
    }
    this.made.push(out);
    return out;
  }

  /** Runs the stock wasm kernel even where l3kit replaces it. */
  runStock(name: string, inputs: Inputs | Info[], attrs: Attrs = {}): Info {
    const out = stockKernel(name).kernelFunc({
      inputs: inputs as Inputs,
      backend: this.backend as unknown as tf.KernelBackend,
      attrs: attrs as never,
    }) as Info;
    this.made.push(out);
    return out;
  }

  reshape(x: Info, shape: number[]): Info {
    return this.run("Reshape", { x }, { shape });
  }

  /** Constant padding (default 0); negative amounts crop. */
  pad(x: Info, paddings: [number, number][], value = 0): Info {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    let cur = x;
    if (paddings.some(([a, b]) => a < 0 || b < 0)) {
      const begin = paddings.map(([a]) => Math.max(0, -a));
      const size = paddings.map(([a, b], i) => cur.shape[i]! - Math.max(0, -a) - Math.max(0, -b));
      cur = this.slice(cur, begin, size);
    }
    const pos = paddings.map(([a, b]) => [Math.max(0, a), Math.max(0, b)]);
    if (pos.every(([a, b]) => a === 0 && b === 0)) return cur;
    return this.run("PadV2", { x: cur }, { paddings: pos, constantValue: value });
  }

  /** Disposes every intermediate except `keep` (which the engine then owns). */
  finish(keep: Info): Info {
    if (this.views.includes(keep)) throw new Error("internal: a kernel returned a memory view");
    // An input passed through untouched: the engine expects a reference of its own.
    if (!this.made.includes(keep)) this.backend.incRef(keep.dataId);
    this.releaseViews();
    for (const t of this.made) if (t !== keep) this.backend.disposeData(t.dataId);
    return keep;
  }

  /** Disposes everything (on error). */
  abort(): void {
    this.releaseViews();
    for (const t of this.made) this.backend.disposeData(t.dataId);
  }

  private releaseViews(): void {
    for (const v of this.views) {
      // Unregister the id (running its disposal callbacks) without freeing the shared memory.
      this.backend.wasm.tfjs.disposeData(this.backend.dataIdMap.get(v.dataId).id);
      this.backend.dataIdMap.delete(v.dataId);
    }
    this.views.length = 0;
  }
}

export function stockKernel(name: string): tf.KernelConfig {
  const k = stock.get(name) ?? tf.getKernel(name, "wasm");
  if (!k) throw new Error(`wasm kernel ${name} is not registered (is @tensorflow/tfjs-backend-wasm loaded?)`);
  return k;
}

/** Runs `body` in a scope; intermediates are freed whether it returns or throws. */
export function scoped(backend: unknown, body: (s: Scope) => Info): Info {
  const s = new Scope(backend as WasmBackendLike);
  try {
    return s.finish(body(s));
  } catch (err) {
    s.abort();
    throw err;
  }
}

export function stride2(v: unknown): [number, number] {
  if (typeof v === "number") return [v, v];
  const a = v as number[];
  return [a[0]!, a[1]!];
}

export function channelsLast(attrs: Attrs): boolean {
  return attrs.dataFormat === undefined || attrs.dataFormat === "NHWC" || attrs.dataFormat === "channelsLast";
}

export function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** l3kit's kernels by name, filled by the registry (../wasm-kernels.ts); {@link Scope.run} prefers them. */
export const ownKernels = new Map<string, tf.KernelFunc>();
