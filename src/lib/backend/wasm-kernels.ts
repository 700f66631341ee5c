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
 */
import * as tf from "@tensorflow/tfjs";

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type Inputs = Record<string, Info>;

/** The part of tfjs-backend-wasm's BackendWasm that the kernels use. */
interface WasmBackendLike {
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): Info;
  incRef(dataId: tf.DataId): void;
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number }; delete(dataId: tf.DataId): boolean };
  wasm: { tfjs: { disposeData(id: number): void }; HEAPU8: Uint8Array; wasmMemory?: WebAssembly.Memory };
}

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

const stock = new Map<string, tf.KernelConfig>();
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
const registered = new Set<string>();

/** Calls kernels on one backend and disposes the intermediates it made. */
class Scope {
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

function stockKernel(name: string): tf.KernelConfig {
  const k = stock.get(name) ?? tf.getKernel(name, "wasm");
  if (!k) throw new Error(`wasm kernel ${name} is not registered (is @tensorflow/tfjs-backend-wasm loaded?)`);
  return k;
}

/** Runs `body` in a scope; intermediates are freed whether it returns or throws. */
function scoped(backend: unknown, body: (s: Scope) => Info): Info {
  const s = new Scope(backend as WasmBackendLike);
  try {
    return s.finish(body(s));
  } catch (err) {
    s.abort();
    throw err;
  }
}

function stride2(v: unknown): [number, number] {
  if (typeof v === "number") return [v, v];
  const a = v as number[];
  return [a[0]!, a[1]!];
}

function channelsLast(attrs: Attrs): boolean {
  return attrs.dataFormat === undefined || attrs.dataFormat === "NHWC" || attrs.dataFormat === "channelsLast";
}

function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: dW[a,b,c,o] = Σ_{n,i,j} xpad[n, i·s+a, j·s+b, c] · dy[n,i,j,o].
//
// The padded input (each of its s×s stride phases when s > 1) is transposed to X[c, q] with
// q = n·P + p running over an Hq × Wq grid per image (P = Hq·Wq), and dy is zero-padded onto the
// same grid. Kernel tap (a, b) then reads X at a fixed offset, off = (a/s)·Wq + (b/s): the
// [C, N·P] matrix starting there is a *view* of X (rows keep stride N·P; positions that run past a
// row's end meet zeros in dy). So each tap is one XNNPACK fully-connected GEMM,
// X_tap[C, N·P] · dy[N·P, Co], with no im2col copy; the packed dy is shared by all taps.
// ---------------------------------------------------------------------------------------------
/** Up to this many tap rows (kh·kw·C), the filter gradient copies them into one GEMM. */
const SMALL_TAP_ROWS = 64;

function conv2DBackpropFilter(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs;
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (!channelsLast(attrs) || x.dtype !== "float32") {
    throw new Error("l3kit wasm Conv2DBackpropFilter supports float32 NHWC only");
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    stride2(attrs.strides),
    1,
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const [kh, kw, , Co] = filterShape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const Ho = info.outHeight;
  const Wo = info.outWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const Hq = Ho + Math.floor((kh - 1) / sh);
  const Wq = Wo + Math.floor((kw - 1) / sw);
  const P = Hq * Wq;
  const K = N * P;
  // Taps read up to `slack` values past the end of X's last row (they meet zeros in dy).
  const slack = Math.floor((kh - 1) / sh) * Wq + Math.floor((kw - 1) / sw) + 1;
  return scoped(args.backend, (s) => {
    const xp = s.pad(x, [
      [0, 0],
      [top, Hq * sh - H - top],
      [left, Wq * sw - W - left],
      [0, 0],
    ]);
    // phases[ph·sw + pw]: X of that phase, [1, C·K + slack].
    const phases: Info[] = [];
    const toX = (t: Info): Info => {
      const xt = C === 1 ? t : s.run("Transpose", { x: s.reshape(t, [K, C]) }, { perm: [1, 0] });
      return s.pad(s.reshape(xt, [1, C * K]), [
        [0, 0],
        [0, slack],
      ]);
    };
    if (sh === 1 && sw === 1) phases.push(toX(xp));
    else {
      const x6 = s.reshape(xp, [N, Hq, sh, Wq, sw, C]);
      for (let ph = 0; ph < sh; ph++) {
        for (let pw = 0; pw < sw; pw++) phases.push(toX(s.slice(x6, [0, 0, ph, 0, pw, 0], [N, Hq, 1, Wq, 1, C])));
      }
    }
    const dyGrid = s.pad(dy, [
      [0, 0],
      [0, Hq - Ho],
      [0, Wq - Wo],
      [0, 0],
    ]);
    const b = s.view(dyGrid, [1, K, Co]);
    const plain = { transposeA: false, transposeB: false };
    const tapStart = (ta: number, tb: number): [Info, number] => [
      phases[(ta % sh) * sw + (tb % sw)]!,
      Math.floor(ta / sh) * Wq + Math.floor(tb / sw),
    ];
    if (kh * kw * C <= SMALL_TAP_ROWS) {
      // Few input channels (the first layer): one GEMM over all taps' rows uses the GEMM's row
      // tiles better than kh·kw GEMMs of C ≤ 3 rows; copying kh·kw·C rows is cheap.
      const a = s.alloc([1, kh * kw * C, K]);
      const heap = s.heap32();
      let dst = s.offset32(a);
      for (let ta = 0; ta < kh; ta++) {
        for (let tb = 0; tb < kw; tb++) {
          const [phase, off] = tapStart(ta, tb);
          const src = s.offset32(phase) + off;
          heap.copyWithin(dst, src, src + C * K);
          dst += C * K;
        }
      }
      return s.reshape(s.run("BatchMatMul", { a, b }, plain), [kh, kw, C, Co]);
    }
    const taps: Info[] = [];
    for (let ta = 0; ta < kh; ta++) {
      for (let tb = 0; tb < kw; tb++) {
        const [phase, off] = tapStart(ta, tb);
        taps.push(s.run("BatchMatMul", { a: s.view(phase, [1, C, K], off), b }, plain));
      }
    }
    const stacked = taps.length === 1 ? taps[0]! : s.run("Concat", taps, { axis: 0 });
    return s.reshape(stacked, [kh, kw, C, Co]);
  });
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput: dx = valid correlation of the (zero-dilated, padded) dy with the filter
// flipped in space and transposed to [kh, kw, Co, C]: one XNNPACK convolution.
// ---------------------------------------------------------------------------------------------
function conv2DBackpropInput(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = args.attrs;
  if (!channelsLast(attrs) || dy.dtype !== "float32") {
    return stockKernel("Conv2DBackpropInput").kernelFunc(args as never) as Info;
  }
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    stride2(attrs.strides),
    1,
    attrs.pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const [N, H, W] = inputShape;
  const [kh, kw, C, Co] = filter.shape as [number, number, number, number];
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const Ho = info.outHeight;
  const Wo = info.outWidth;
  return scoped(args.backend, (s) => {
    let d = dy;
    if (sh > 1 || sw > 1) {
      // Zero-dilate: [N,Ho,1,Wo,1,Co] padded to [N,Ho,sh,Wo,sw,Co] -> [N, Ho·sh, Wo·sw, Co].
      const d6 = s.reshape(d, [N, Ho, 1, Wo, 1, Co]);
      const p6 = s.pad(d6, [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]);
      d = s.reshape(p6, [N, Ho * sh, Wo * sw, Co]);
    }
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = H + kh - 1 - top - d.shape[1]!;
    const right = W + kw - 1 - left - d.shape[2]!;
    // Non-negative pads go to XNNPACK's implicit padding; otherwise pad (and crop) explicitly.
    const implicit = top >= 0 && left >= 0 && bottom >= 0 && right >= 0;
    const ext = implicit
      ? d
      : s.pad(d, [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ]);
    const convPad = implicit
      ? [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ]
      : "valid";
    // wT[kh-1-a, kw-1-b, o, c] = filter[a, b, c, o]: a small tensor, rearranged in JS.
    const wT = s.alloc([kh, kw, Co, C]);
    const heap = s.heap32();
    const src = s.offset32(filter);
    const dst = s.offset32(wT);
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const from = src + (a * kw + b) * C * Co;
        const to = dst + ((kh - 1 - a) * kw + (kw - 1 - b)) * C * Co;
        for (let c = 0; c < C; c++) for (let o = 0; o < Co; o++) heap[to + o * C + c] = heap[from + c * Co + o]!;
      }
    }
    const out = s.run("Conv2D", { x: ext, filter: wT }, { strides: [1, 1], pad: convPad, dataFormat: "NHWC", dilations: [1, 1] });
    if (out.shape[3] !== C) throw new Error("internal: Conv2DBackpropInput channel mismatch");
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul: the wasm backend uses XNNPACK only for [1,m,k]·[1,k,n] without transposes and a
// scalar triple loop otherwise. Transpose explicitly (XNNPACK) and split batches into GEMMs.
// ---------------------------------------------------------------------------------------------
function batchMatMul(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const transposeA = Boolean(args.attrs.transposeA);
  const transposeB = Boolean(args.attrs.transposeB);
  const stockFn = stockKernel("BatchMatMul").kernelFunc;
  if (a.dtype !== "float32" || b.dtype !== "float32") return stockFn(args as never) as Info;
  const ar = a.shape.length;
  const br = b.shape.length;
  const batchA = prod(a.shape.slice(0, -2));
  const batchB = prod(b.shape.slice(0, -2));
  const m = transposeA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const k = transposeA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const n = transposeB ? b.shape[br - 2]! : b.shape[br - 1]!;
  const batch = Math.max(batchA, batchB);
  if (batch === 1 && !transposeA && !transposeB) return stockFn(args as never) as Info;
  // Small products: the scalar loop beats transposes plus per-batch operator creation.
  if (m * n * k < 4096 || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return stockFn(args as never) as Info;
  const outShape = [...tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  return scoped(args.backend, (s) => {
    let a3 = s.reshape(a, [batchA, transposeA ? k : m, transposeA ? m : k]);
    let b3 = s.reshape(b, [batchB, transposeB ? n : k, transposeB ? k : n]);
    if (transposeA) a3 = s.run("Transpose", { x: a3 }, { perm: [0, 2, 1] });
    if (transposeB) b3 = s.run("Transpose", { x: b3 }, { perm: [0, 2, 1] });
    const plain = { transposeA: false, transposeB: false };
    if (batch === 1) return s.reshape(s.run("BatchMatMul", { a: a3, b: b3 }, plain), outShape);
    const parts: Info[] = [];
    for (let i = 0; i < batch; i++) {
      const ai = batchA === 1 ? a3 : s.slice(a3, [i, 0, 0], [1, m, k]);
      const bi = batchB === 1 ? b3 : s.slice(b3, [i, 0, 0], [1, k, n]);
      parts.push(s.run("BatchMatMul", { a: ai, b: bi }, plain));
    }
    return s.reshape(s.run("Concat", parts, { axis: 0 }), outShape);
  });
}

// ---------------------------------------------------------------------------------------------
// Tile: out viewed as [r0, d0, r1, d1, ...] is x viewed as [1, d0, 1, d1, ...] broadcast; a
// broadcasting add onto zeros does it in XNNPACK.
// ---------------------------------------------------------------------------------------------
function tile(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x } = args.inputs as { x: Info };
  const reps = args.attrs.reps as number[];
  if (x.dtype !== "float32") return stockKernel("Tile").kernelFunc(args as never) as Info;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  // Collapse to the dims that matter: drop r=1 or d=1 halves and merge neighbours of one kind.
  const xView: number[] = [];
  const target: number[] = [];
  const push = (xd: number, td: number): void => {
    const last = xView.length - 1;
    if (last >= 0 && (xView[last] === 1) === (xd === 1)) {
      xView[last]! *= xd;
      target[last]! *= td;
    } else {
      xView.push(xd);
      target.push(td);
    }
  };
  x.shape.forEach((d, i) => {
    if (reps[i]! !== 1) push(1, reps[i]!);
    if (d !== 1) push(d, d);
  });
  if (target.length === 0 || target.length > 6 || prod(outShape) === 0) return stockKernel("Tile").kernelFunc(args as never) as Info;
  return scoped(args.backend, (s) => {
    const xv = s.reshape(x, xView);
    const zeros = s.run("Fill", {}, { shape: target, value: 0, dtype: "float32" });
    const sum = s.run("Add", { a: zeros, b: xv });
    return s.reshape(sum, outShape);
  });
}

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad: each window's gradient goes to its first maximum in row-major order (a value must
// be strictly greater to replace the current one), exactly as on the cpu backend. The stock wasm
// kernel takes the last maximum and loses the gradient of windows whose values are all ≤ 0. One
// pass in JS over the wasm heap, channels innermost; any window, stride, padding or dilation.
// ---------------------------------------------------------------------------------------------
function maxPoolGrad(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { dy, input: x } = args.inputs as { dy: Info; input: Info };
  const attrs = args.attrs;
  if (x.dtype !== "float32" || dy.dtype !== "float32" || x.shape.length !== 4) {
    return stockKernel("MaxPoolGrad").kernelFunc(args as never) as Info;
  }
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    stride2(attrs.filterSize),
    stride2(attrs.strides),
    1,
    attrs.pad as "valid",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const { outHeight: Ho, outWidth: Wo, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  return scoped(args.backend, (s) => {
    const dx = s.alloc([N, H, W, C]);
    const heap = s.heap32();
    const xo = s.offset32(x);
    const dyo = s.offset32(dy);
    const dxo = s.offset32(dx);
    heap.fill(0, dxo, dxo + N * H * W * C);
    if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && dh === 1 && dw === 1 && top === 0 && left === 0 && 2 * Ho <= H && 2 * Wo <= W) {
      maxPoolGrad2x2(heap, xo, dyo, dxo, N, H, W, C, Ho, Wo);
      return dx;
    }
    const best = new Float32Array(C);
    const where = new Int32Array(C);
    for (let n = 0; n < N; n++) {
      for (let yr = 0; yr < Ho; yr++) {
        const r0 = yr * sh - top;
        for (let yc = 0; yc < Wo; yc++) {
          const c0 = yc * sw - left;
          best.fill(Number.NEGATIVE_INFINITY);
          where.fill(-1);
          for (let wr = 0; wr < fh; wr += dh) {
            const r = r0 + wr;
            if (r < 0 || r >= H) continue;
            for (let wc = 0; wc < fw; wc += dw) {
              const c = c0 + wc;
              if (c < 0 || c >= W) continue;
              const base = ((n * H + r) * W + c) * C;
              for (let d = 0; d < C; d++) {
                const v = heap[xo + base + d]!;
                if (v > best[d]!) {
                  best[d] = v;
                  where[d] = base + d;
                }
              }
            }
          }
          const g = dyo + ((n * Ho + yr) * Wo + yc) * C;
          for (let d = 0; d < C; d++) {
            const at = where[d]!;
            if (at >= 0) heap[dxo + at] += heap[g + d]!;
          }
        }
      }
    }
    return dx;
  });
}

/**
 * The L³-Net's pooling (2×2, stride 2, no padding) without the per-window bookkeeping: the same
 * first-strict-maximum rule, windows do not overlap, so each gradient is written once (dx is zeroed).
 */
function maxPoolGrad2x2(
  heap: Float32Array,
  xo: number,
  dyo: number,
  dxo: number,
  N: number,
  H: number,
  W: number,
  C: number,
  Ho: number,
  Wo: number,
): void {
  const row = W * C;
  for (let n = 0; n < N; n++) {
    for (let yr = 0; yr < Ho; yr++) {
      for (let yc = 0; yc < Wo; yc++) {
        const b00 = (n * H + 2 * yr) * row + 2 * yc * C;
        const b01 = b00 + C;
        const b10 = b00 + row;
        const b11 = b10 + C;
        const g = dyo + ((n * Ho + yr) * Wo + yc) * C;
        for (let d = 0; d < C; d++) {
          let m = Number.NEGATIVE_INFINITY;
          let at = -1;
          let v = heap[xo + b00 + d]!;
          if (v > m) {
            m = v;
            at = b00;
          }
          v = heap[xo + b01 + d]!;
          if (v > m) {
            m = v;
            at = b01;
          }
          v = heap[xo + b10 + d]!;
          if (v > m) {
            m = v;
            at = b10;
          }
          v = heap[xo + b11 + d]!;
          if (v > m) at = b11;
          if (at >= 0) heap[dxo + at + d] = heap[g + d]!;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// FusedBatchNorm (forward) with per-channel statistics: ((x − mean) · s) + offset with
// s = scale / sqrt(variance + ε), as three wide-row XNNPACK ops instead of the scalar C++ loop.
// ---------------------------------------------------------------------------------------------
function fusedBatchNorm(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x, mean, variance, offset, scale } = args.inputs as Record<string, Info | undefined> as {
    x: Info;
    mean: Info;
    variance: Info;
    offset?: Info;
    scale?: Info;
  };
  const eps = Number(args.attrs.varianceEpsilon ?? 0.001);
  const C = x.shape[x.shape.length - 1] ?? 1;
  const perChannel = (t: Info | undefined): boolean =>
    t === undefined || (t.dtype === "float32" && (prod(t.shape) === 1 || (prod(t.shape) === C && t.shape[t.shape.length - 1] === C)));
  const stockFn = stockKernel("FusedBatchNorm").kernelFunc;
  if (x.dtype !== "float32" || x.shape.length < 2 || ![mean, variance, offset, scale].every(perChannel) || prod(x.shape) < 4 * WIDE_ROW) {
    return stockFn(args as never) as Info;
  }
  return scoped(args.backend, (s) => {
    const negMean = s.alloc([C]);
    const mul = s.alloc([C]);
    const add = s.alloc([C]);
    const heap = s.heap32();
    const at = (t: Info | undefined, d: number, dflt: number): number => {
      if (!t) return dflt;
      return heap[s.offset32(t) + (prod(t.shape) === 1 ? 0 : d)]!;
    };
    for (let d = 0; d < C; d++) {
      heap[s.offset32(negMean) + d] = -at(mean, d, 0);
      heap[s.offset32(mul) + d] = at(scale, d, 1) / Math.sqrt(at(variance, d, 0) + eps);
      heap[s.offset32(add) + d] = at(offset, d, 0);
    }
    const centred = s.run("Add", { a: x, b: negMean });
    const scaled = s.run("Multiply", { a: centred, b: mul });
    return s.run("Add", { a: scaled, b: add });
  });
}

// ---------------------------------------------------------------------------------------------
// Equal on 4-byte inputs (the max-pool and reduce-max gradients compare x with the broadcast max):
// the stock kernel spends ~10 ns per element on broadcast index arithmetic; a JS loop does ~1.
// ---------------------------------------------------------------------------------------------
function equal(args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const four = (t: Info): boolean => t.dtype === "float32" || t.dtype === "int32";
  if (!four(a) || a.dtype !== b.dtype) return stockKernel("Equal").kernelFunc(args as never) as Info;
  const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const r = Math.max(1, out.length);
  const outShape = out.length === 0 ? [1] : out;
  const stridesFor = (shape: number[]): number[] => {
    const sh = [...new Array<number>(r - shape.length).fill(1), ...shape];
    const st = [...tf.util.computeStrides(sh), 1];
    return sh.map((d, i) => (d === 1 ? 0 : st[i]!));
  };
  const sa = stridesFor(a.shape);
  const sb = stridesFor(b.shape);
  return scoped(args.backend, (s) => {
    const res = s.backend.makeOutput(out, "bool");
    s.track(res);
    const w = s.backend.wasm;
    const buf = (w.wasmMemory?.buffer ?? w.HEAPU8.buffer) as ArrayBuffer;
    const view = a.dtype === "int32" ? new Int32Array(buf) : new Float32Array(buf);
    const bytes = new Uint8Array(buf);
    const ao = s.offset32(a);
    const bo = s.offset32(b);
    let o = s.backend.dataIdMap.get(res.dataId).memoryOffset;
    const last = r - 1;
    const n = outShape[last]!;
    const ia = sa[last]!;
    const ib = sb[last]!;
    const outer = outShape.slice(0, last);
    const idx = new Array<number>(last).fill(0);
    const total = prod(outShape);
    for (let done = 0; done < total; done += n) {
      let pa = ao;
      let pb = bo;
      for (let i = 0; i < last; i++) {
        pa += idx[i]! * sa[i]!;
        pb += idx[i]! * sb[i]!;
      }
      for (let j = 0; j < n; j++) {
        bytes[o++] = view[pa]! === view[pb]! ? 1 : 0;
        pa += ia;
        pb += ib;
      }
      let i = last - 1;
      while (i >= 0 && ++idx[i]! === outer[i]) idx[i--] = 0;
    }
    return res;
  });
}

// ---------------------------------------------------------------------------------------------
// Sum and Mean over leading axes (the batch-norm reductions over N, H, W of NHWC): one XNNPACK
// average pooling, instead of a full transpose followed by a scalar loop.
// ---------------------------------------------------------------------------------------------
/**
 * The most channels {@link reduceLeading} hands to XNNPACK's average pooling. Its multipass kernel
 * (windows of more than 9) keeps a row of channels on the wasm stack; past about 16,000 channels
 * it overflows (a hang, or "memory access out of bounds"), so wider rows go to the stock kernel.
 */
const MAX_POOL_CHANNELS = 8192;

function reduceLeading(name: "Sum" | "Mean", args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info {
  const { x } = args.inputs as { x: Info };
  const stockFn = stockKernel(name).kernelFunc;
  if (x.dtype !== "float32" || x.shape.length < 2) return stockFn(args as never) as Info;
  const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape).sort((p, q) => p - q);
  const leading = axes.every((ax, i) => ax === i);
  if (!leading || axes.length === 0 || axes.length === x.shape.length) return stockFn(args as never) as Info;
  const M = prod(x.shape.slice(0, axes.length));
  const rest = x.shape.slice(axes.length);
  const C = prod(rest);
  if (M * C < 4096 || C > MAX_POOL_CHANNELS) return stockFn(args as never) as Info;
  const outShape = args.attrs.keepDims ? [...axes.map(() => 1), ...rest] : rest;
  return scoped(args.backend, (s) => {
    // XNNPACK average pooling over one [M, 1] window of x viewed as [1, M, 1, C].
    const pooled = s.run("AvgPool", { x: s.reshape(x, [1, M, 1, C]) }, { filterSize: [M, 1], strides: [M, 1], pad: "valid" });
    const out =
      name === "Mean" ? pooled : s.run("Multiply", { a: pooled, b: s.run("Fill", {}, { shape: [1], value: M, dtype: "float32" }) });
    return s.reshape(out, outShape);
  });
}

const sum = (args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info => reduceLeading("Sum", args);
const mean = (args: { inputs: Inputs; backend: unknown; attrs: Attrs }): Info => reduceLeading("Mean", args);

// ---------------------------------------------------------------------------------------------
// Broadcasting binary ops such as x[N,H,W,C] · v[C] (everywhere in batch norm): XNNPACK runs one
// microkernel call per innermost row, so with C = 16 it spends its time in call overhead. Tile the
// small operand k times (a few KiB) and view the big one as [M/k, k·T]: the same op on rows of
// ~2048 values.
// ---------------------------------------------------------------------------------------------
const WIDE_ROW = 2048;

function wideBroadcast(name: string): (args: { inputs: Inputs; backend: unknown; attrs: Attrs }) => Info {
  return (args) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const stockFn = stockKernel(name).kernelFunc;
    if (a.dtype !== "float32" || b.dtype !== "float32") return stockFn(args as never) as Info;
    const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const sizeA = prod(a.shape);
    const sizeB = prod(b.shape);
    const total = prod(out);
    if (total < 4 * WIDE_ROW) return stockFn(args as never) as Info;
    const bigIsA = sizeA === total && sizeB < total;
    const bigIsB = sizeB === total && sizeA < total;
    if (!bigIsA && !bigIsB) return stockFn(args as never) as Info;
    const small = bigIsA ? b : a;
    // The small operand must be a trailing block of the output: [1, …, 1, out[j], …, out[r-1]].
    const r = out.length;
    const sh = [...new Array<number>(r - small.shape.length).fill(1), ...small.shape];
    let j = r;
    while (j > 0 && sh[j - 1] === out[j - 1]) j--;
    if (sh.slice(0, j).some((d) => d !== 1)) return stockFn(args as never) as Info;
    const T = prod(out.slice(j));
    const M = total / T;
    if (T >= WIDE_ROW / 2 || M < 2) return stockFn(args as never) as Info;
    let k = Math.min(M, Math.floor(WIDE_ROW / T));
    while (k > 1 && M % k !== 0) k--;
    if (k < 2) return stockFn(args as never) as Info;
    return scoped(args.backend, (s) => {
      const wide = s.alloc([k * T]);
      const heap = s.heap32();
      const src = s.offset32(small);
      const dst = s.offset32(wide);
      for (let i = 0; i < k; i++) heap.copyWithin(dst + i * T, src, src + T);
      const big2 = s.reshape(bigIsA ? a : b, [M / k, k * T]);
      const res = s.runStock(name, bigIsA ? { a: big2, b: wide } : { a: wide, b: big2 });
      return s.reshape(res, out);
    });
  };
}

/** Binary kernels that get {@link wideBroadcast}. */
const WIDE_BINARY = ["Multiply", "Add", "Sub", "RealDiv", "SquaredDifference"] as const;

// ---------------------------------------------------------------------------------------------
// Identity and same-dtype Cast copy the whole tensor on wasm; gradients call them a lot
// (`cast(x, "float32")` on float32 inputs). Tensors are immutable, so share the data as the cpu
// backend does.
// ---------------------------------------------------------------------------------------------
function shareOrStock(name: "Identity" | "Cast"): (args: { inputs: Inputs; backend: unknown; attrs: Attrs }) => Info {
  return (args) => {
    const { x } = args.inputs as { x: Info };
    const same = name === "Identity" || args.attrs.dtype === x.dtype;
    if (!same || x.dtype === "string") return stockKernel(name).kernelFunc(args as never) as Info;
    (args.backend as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

const ownKernels = new Map<string, tf.KernelFunc>([
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
]);

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
