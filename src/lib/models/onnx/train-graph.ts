/**
 * The AVC training step of an L³-Net as one ONNX graph, derived from the graph IR by reverse-mode
 * differentiation: forward in training mode (batch statistics), softmax cross-entropy over the
 * pairing's scored combinations, the hand-written backward of every IR op, L2 weight decay and Adam
 * with bias correction — the same arithmetic as the tfjs engine (`trainStep` + `Adam`).
 *
 * Tensors run NCHW inside the graph (the layout onnxruntime's CPU convolutions are fastest at);
 * conv kernels are held OIHW by the caller, every other parameter in l3kit's own layout. How each
 * gradient is computed was chosen by measurement on onnxruntime's CPU provider:
 * - input gradient of a conv: a Conv of the output gradient with the flipped, channel-swapped kernel
 *   (≈ one forward conv; ConvTranspose was 1.3–2.5× slower);
 * - weight gradient: one `com.microsoft.FusedMatMul` per kernel tap on Slices of the zero-padded
 *   input (no k²-sized patch tensor; Conv with batch and channel axes swapped was 2–5× slower, see
 *   `convWeightGrad`), or on maps 24 or more wide one per column tap with the 3 row taps stacked
 *   (`stackedTapsWeightGrad`);
 * - max-pool: MaxPool's argmax indices and MaxUnpool (first maximum wins ties, as tfjs);
 *   global max: the gradient goes to every position equal to the maximum (tfjs' rule for `max`);
 * - ReLU: dy·[y > 0], on the pooled map where a max-pool alone reads it; batch norm: batch
 *   statistics and a hand-derived gradient, its per-channel affine passes as inference-mode
 *   BatchNormalization, its scale applied by the conv before it on large maps (`foldsBatchNormScale`);
 * - in-batch pairing: the joint cut's rows copied per combination (`selectRows`), except for AVOL,
 *   whose per-location dot scores every frame against every audio in one GEMM (`pairedLocationDot`);
 * - Adam and the moving statistics: over flat vectors of all parameters ({@link FlatLayout}).
 */
import { L3kitError } from "../../util";
import { type GraphNode, jointCut, type L3Graph } from "../graph";
import { neededNodes } from "../runtime";
import { type Attr, OnnxGraphBuilder, valueInfo } from "./export";
import { PbWriter } from "./protobuf";

/** How a step scores pairs: the batch's own 50/50 pairs, or in-batch negatives. */
export interface TrainGraphPairing {
  kind: "sampled" | "in-batch";
  /** In-batch: negatives per frame (capped at batch − 1). */
  negatives?: number;
}

/** Options of {@link buildTrainGraph}. */
export interface TrainGraphOptions {
  /** Pairs per step (a static dimension: the engine builds one graph per batch size). */
  batch: number;
  pairing: TrainGraphPairing;
  /** `step`: outputs new parameters and Adam moments. `gradients`: outputs each parameter's gradient instead (tests, tools). */
  mode: "step" | "gradients";
  /** L2 weight decay λ on kernels; the gradient gets 2λw (Keras' l2(λ)), as the tfjs engine. */
  weightDecay: number;
  /**
   * onnxruntime's NCHWc block size on this CPU ({@link nchwcProbeModel}; 8 with AVX2, 16 with
   * AVX-512), or 0 / absent for plain Conv. With a block size, the forward and input-gradient convs
   * whose channels fit the blocks run as `com.microsoft.nchwc` Convs on kernels reordered in-graph.
   */
  nchwcBlock?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** Names of a built training graph's inputs and outputs. */
export interface TrainGraphInfo {
  bytes: Uint8Array;
  /** Number of scored combinations per step (batch for sampled pairs; (shifts + 1)·batch in-batch). */
  combinations: number;
  /** In-batch: blocks of negatives (0 for sampled pairs). */
  shifts: number;
  /** Trainable parameters (model names), in input order. */
  trainable: string[];
  /** Batch-norm moving statistics (model names). */
  stats: string[];
  /** Conv kernels, held OIHW by the engine (HWIO in the model). */
  convKernels: string[];
  /** `step` mode: the flat vectors' layout (inputs `params`, `m`, `v`, `stats`; outputs with a prime). */
  layout?: FlatLayout;
}

/**
 * Input / output names: per parameter in `gradients` mode and the inference graph (a parameter, its
 * gradient, a statistic and its new value); the flat vectors in `step` mode.
 */
export const trainNames = {
  param: (n: string) => `p:${n}`,
  grad: (n: string) => `g:${n}`,
  stat: (n: string) => `s:${n}`,
  newStat: (n: string) => `s':${n}`,
  /** Step graphs: every trainable parameter, its moments and the statistics as flat vectors ({@link FlatLayout}). */
  flat: { params: "params", newParams: "params'", m: "m", newM: "m'", v: "v", newV: "v'", stats: "stats", newStats: "stats'" },
};

/** Where one parameter or statistic sits in a flat vector. */
export interface FlatSlot {
  name: string;
  offset: number;
  size: number;
  /** As the engine holds it (conv kernels OIHW). */
  shape: number[];
}

/**
 * The flat vectors of a step graph: the trainable parameters the logits read (their moments share
 * the layout), and the batch-norm statistics. One vector per kind keeps the graph's Adam and
 * statistics updates to a few ops over all parameters instead of a dozen per parameter (node
 * overhead was 13% of a `tiny` step) and lets the engine hand over four buffers.
 */
export interface FlatLayout {
  params: FlatSlot[];
  stats: FlatSlot[];
  paramSize: number;
  statSize: number;
}

/** The flat layout of a graph's step: parameters in the graph's parameter order. */
export function trainLayout(graph: L3Graph): FlatLayout {
  const { used, convKernels } = logitNodes(graph);
  const slots = (trainable: boolean) => {
    let offset = 0;
    const out: FlatSlot[] = [];
    for (const p of graph.params) {
      if (!used.has(p.name) || p.trainable !== trainable) continue;
      const shape = engineShape(graph, p.name, convKernels);
      const size = shape.reduce((a, b) => a * b, 1);
      out.push({ name: p.name, offset, size, shape });
      offset += size;
    }
    return { out, offset };
  };
  const params = slots(true);
  const stats = slots(false);
  return { params: params.out, stats: stats.out, paramSize: params.offset, statSize: stats.offset };
}

/** How a value is laid out: NCHW maps, rows [R, d], per-location rows [R·hw, d], or flat maps [R, hw]. */
type Layout =
  | { kind: "nchw"; c: number; h: number; w: number }
  | { kind: "rows"; d: number }
  | { kind: "rowsMap"; h: number; w: number; d: number }
  | { kind: "map"; hw: number };

interface Value {
  name: string;
  layout: Layout;
  /** Batch rows R (the batch, or the scored combinations after the joint cut). */
  rows: number;
  /** Whether a gradient must flow into it. */
  grad: boolean;
  /** A ReLU still to apply: deferred past the max-pool that alone reads it (see {@link emitRelu}). */
  reluPending?: boolean;
  /**
   * In-batch pairing left to the reader: the rows are the batch, and scored combination s·B + i reads
   * row i ("frame") or row (i + s) mod B ("audio"), as {@link selectRows} would have copied them.
   */
  pairing?: "frame" | "audio";
}

/** Gradients a node's backward returns: one per input (undefined when not needed), and per parameter. */
interface Back {
  inputs: Array<string | undefined>;
  params: Record<string, string>;
}

type Backward = (dy: string) => Back;

function fail(message: string): never {
  throw new L3kitError(message, { subject: "ONNX training graph", reason: "onnx-train-graph" });
}

/** Emits forward and backward nodes for the graph IR's ops. */
class TrainEmitter {
  readonly b = new OnnxGraphBuilder();
  private n = 0;
  readonly inputs: PbWriter[] = [];
  readonly outputs: PbWriter[] = [];

  /** Whether any `com.microsoft.nchwc` op was emitted (its opset is imported then). */
  usedNchwc = false;

  constructor(
    readonly training: boolean,
    /** NCHWc block size for the convs, 0 for plain Conv. */
    readonly nchwcBlock = 0,
  ) {}

  /** A fresh value name. */
  fresh(base: string): string {
    return `${base}#${this.n++}`;
  }

  op(op: string, inputs: readonly string[], base: string, attrs: readonly Attr[] = [], domain?: string): string {
    const out = this.fresh(base);
    this.b.node(op, inputs, [out], attrs, undefined, domain);
    return out;
  }

  input(name: string, dims: ReadonlyArray<number | string>): string {
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(value: string, name: string, dims: ReadonlyArray<number | string>): void {
    this.b.node("Identity", [value], [name], [], `output:${name}`);
    this.outputs.push(valueInfo(name, dims));
  }

  /**
   * A graph output written by the op itself (no Identity): with a pre-allocated output buffer,
   * onnxruntime computes straight into it.
   */
  opOutput(op: string, inputs: readonly string[], name: string, dims: ReadonlyArray<number | string>): void {
    this.b.node(op, inputs, [name]);
    this.outputs.push(valueInfo(name, dims));
  }

  reshape(x: string, shape: readonly number[], base: string): string {
    return this.op("Reshape", [x, this.b.ints(shape)], `${base}:reshape`);
  }

  /** Σ over axes (keepdims as given). */
  sum(x: string, axes: readonly number[], keepdims: boolean, base: string): string {
    return this.op("ReduceSum", [x, this.b.ints(axes)], `${base}:sum`, [{ name: "keepdims", i: keepdims ? 1 : 0 }]);
  }

  mul(a: string, b: string, base: string): string {
    return this.op("Mul", [a, b], `${base}:mul`);
  }

  add(a: string, b: string, base: string): string {
    return this.op("Add", [a, b], `${base}:add`);
  }

  sub(a: string, b: string, base: string): string {
    return this.op("Sub", [a, b], `${base}:sub`);
  }

  scalar(v: number): string {
    return this.b.scalar(v);
  }

  /** Sums several gradient contributions. */
  sumAll(parts: readonly string[], base: string): string {
    if (parts.length === 1) return parts[0] as string;
    return this.op("Sum", parts, `${base}:gradsum`);
  }

  finish(name: string, doc: string, opset = 17): Uint8Array {
    const g = new PbWriter();
    for (const n of this.b.nodes) g.message(1, n);
    g.string(2, name);
    for (const t of this.b.initializers) g.message(5, t);
    for (const i of this.inputs) g.message(11, i);
    for (const o of this.outputs) g.message(12, o);
    const model = new PbWriter()
      .int(1, 8)
      .string(2, "l3kit")
      .string(3, "1")
      .string(6, doc)
      .message(7, g)
      .message(8, new PbWriter().string(1, "").int(2, opset))
      .message(8, new PbWriter().string(1, "com.microsoft").int(2, 1));
    if (this.usedNchwc) model.message(8, new PbWriter().string(1, NCHWC_DOMAIN).int(2, 1));
    return model.finish();
  }
}

/** Per-node context of the forward emitters. */
interface Ctx {
  e: TrainEmitter;
  graph: L3Graph;
  /** Value name of a parameter (graph input). */
  param: (name: string) => string;
  /** Records a moving statistic's batch value [C] and its momentum (the caller blends). */
  statOut: (name: string, batch: string, momentum: number) => void;
  /** The node that reads this one, when there is exactly one (for conv → BN folding in inference). */
  consumers: Map<string, GraphNode[]>;
  /** A parameter as a flat value and the offset it starts at (read by Gathers, see {@link KernelRef}). */
  flatParam: (name: string) => { flat: string; offset: number };
  /**
   * Batch norms (by name) whose scale the conv before them applies in its backward pass (see
   * {@link foldsBatchNormScale}); the batch norm fills in its scale [C] when it is emitted.
   */
  scaleFolds: Map<string, ScaleFold>;
  /** In-batch pairing (batch B, shifts, N = (shifts + 1)·B combinations), for values with `pairing`. */
  pairs?: { batch: number; shifts: number; combinations: number };
}

/** A batch norm's per-channel scale, applied to the gradient by the conv that feeds it. */
interface ScaleFold {
  scale?: string;
}

/**
 * A conv kernel as a conv reads it: the OIHW kernel [o, i, k, k] held in `flat` from `offset`, used
 * as is or (the input gradient's conv) with in/out channels swapped and the taps flipped.
 */
interface KernelRef {
  flat: string;
  offset: number;
  o: number;
  i: number;
  k: number;
  swapFlip: boolean;
}

/** A whole OIHW kernel value as a {@link KernelRef}. */
function denseKernel(e: TrainEmitter, value: string, o: number, i: number, k: number): KernelRef {
  return { flat: e.reshape(value, [o * i * k * k], value), offset: 0, o, i, k, swapFlip: false };
}

/**
 * Where each value of the kernel a conv reads comes from in `ref.flat`, in the order the conv wants:
 * OIHW, or MLAS' NCHWc order (OIHWBiBo, OIHWBo for an NCHW input) when `block` > 0.
 */
function kernelIndex(ref: KernelRef, block: number, nchwIn: boolean): Int32Array {
  const { o: O, i: I, k } = ref;
  const [cout, cin] = ref.swapFlip ? [I, O] : [O, I];
  // source of the conv's kernel value (co, ci, y, x)
  const src = (co: number, ci: number, y: number, x: number) =>
    ref.offset + (ref.swapFlip ? ((ci * I + co) * k + (k - 1 - y)) * k + (k - 1 - x) : ((co * I + ci) * k + y) * k + x);
  const idx = new Int32Array(cout * cin * k * k);
  let n = 0;
  if (block <= 0) {
    for (let co = 0; co < cout; co++)
      for (let ci = 0; ci < cin; ci++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) idx[n++] = src(co, ci, y, x);
  } else if (nchwIn) {
    for (let o1 = 0; o1 < cout / block; o1++)
      for (let ci = 0; ci < cin; ci++)
        for (let y = 0; y < k; y++)
          for (let x = 0; x < k; x++) for (let ob = 0; ob < block; ob++) idx[n++] = src(o1 * block + ob, ci, y, x);
  } else {
    for (let o1 = 0; o1 < cout / block; o1++)
      for (let i1 = 0; i1 < cin / block; i1++)
        for (let y = 0; y < k; y++)
          for (let x = 0; x < k; x++)
            for (let ib = 0; ib < block; ib++) for (let ob = 0; ob < block; ob++) idx[n++] = src(o1 * block + ob, i1 * block + ib, y, x);
  }
  return idx;
}

/** The conv's kernel [cout, cin, k, k] (values in `block` order): one Gather from the flat source. */
function gatherKernel(e: TrainEmitter, ref: KernelRef, block: number, nchwIn: boolean, base: string): string {
  const idx = kernelIndex(ref, block, nchwIn);
  const [cout, cin] = ref.swapFlip ? [ref.i, ref.o] : [ref.o, ref.i];
  const gathered = e.op("Gather", [ref.flat, e.b.int32Init(`${base}:kidx`, idx)], `${base}:kernel`, [{ name: "axis", i: 0 }]);
  return e.reshape(gathered, [cout, cin, ref.k, ref.k], base);
}

type Emitted = { out: Value; back?: Backward };

function convForward(c: Ctx, node: Extract<GraphNode, { op: "conv2d" }>, x: Value, weight: KernelRef, bias?: string): string {
  if (x.layout.kind !== "nchw") fail(`conv '${node.name}' needs an NCHW map`);
  return sameConv(c.e, x.name, x.layout.c, weight, node.filters, node.kernelSize, node.name, bias);
}

const NCHWC_DOMAIN = "com.microsoft.nchwc";

/** A tiny model whose output's channel count is onnxruntime's NCHWc block size on this CPU. */
export function nchwcProbeModel(): Uint8Array {
  const e = new TrainEmitter(false);
  e.input("x", [1, 4, 1, 1]);
  const y = e.op("ReorderInput", ["x"], "blocked", [], NCHWC_DOMAIN);
  e.usedNchwc = true;
  e.output(y, "y", [1, "blocked_channels", 1, 1]);
  return e.finish("nchwc_probe", "onnxruntime's NCHWc block size");
}

/**
 * A stride-1 same-padded conv: onnxruntime's NCHWc Conv when the emitter has a block size and the
 * channels fit it, a plain Conv otherwise. Fitting: output channels a multiple of the block, input
 * channels fewer than the block (read as NCHW) or a multiple of it. The kernel is gathered in-graph
 * into the layout MLAS expects (OIHWBiBo, or OIHWBo for a NCHW input; one Gather measured 1.6×
 * faster than Reshape-Transpose-Reshape, and it also swaps and flips the input gradient's kernel),
 * activations by ReorderInput/Output. With runtime weights onnxruntime's own NCHWc rewrite never
 * applies (it needs constant kernels); measured 15–30% faster than Conv on lite's shapes (1 thread,
 * reorders included).
 */
function sameConv(
  e: TrainEmitter,
  x: string,
  cin: number,
  weight: KernelRef,
  cout: number,
  k: number,
  base: string,
  bias?: string,
): string {
  const p = (k - 1) / 2;
  const attrs: Attr[] = [
    { name: "kernel_shape", ints: [k, k] },
    { name: "pads", ints: [p, p, p, p] },
  ];
  const bs = e.nchwcBlock;
  if (bs <= 1 || cout % bs !== 0 || !(cin < bs || cin % bs === 0)) {
    const plain = gatherKernel(e, weight, 0, false, base);
    return e.op("Conv", bias ? [x, plain, bias] : [x, plain], base, attrs);
  }
  e.usedNchwc = true;
  const nchwIn = cin < bs;
  const reordered = gatherKernel(e, weight, bs, nchwIn, `${base}:w`);
  const input = nchwIn ? x : e.op("ReorderInput", [x], `${base}:xblocked`, [], NCHWC_DOMAIN);
  const y = e.op("Conv", bias ? [input, reordered, bias] : [input, reordered], `${base}:blocked`, attrs, NCHWC_DOMAIN);
  return e.op("ReorderOutput", [y], base, [{ name: "channels", i: cout }], NCHWC_DOMAIN);
}

/** conv2d (stride 1, same padding, no bias). */
function emitConv(c: Ctx, node: Extract<GraphNode, { op: "conv2d" }>, x: Value): Emitted {
  if (x.layout.kind !== "nchw") fail(`conv '${node.name}' needs an NCHW map`);
  const { e } = c;
  const { c: cin, h, w } = x.layout;
  const k = node.kernelSize;
  const cout = node.filters;
  const source = c.flatParam(node.kernel);
  const W: KernelRef = { ...source, o: cout, i: cin, k, swapFlip: false };
  const next = c.consumers.get(node.name);
  const bn = next?.length === 1 && next[0]?.op === "batchNorm" ? next[0] : undefined;
  if (!c.e.training && bn) {
    // inference: batch norm folded into the convolution (kernel·scale, bias = shift)
    const { scale, shift } = inferenceBatchNorm(c, bn);
    const scaled = e.mul(c.param(node.kernel), e.reshape(scale, [cout, 1, 1, 1], node.name), node.name);
    const out = convForward(c, node, x, denseKernel(e, scaled, cout, cin, k), shift);
    return { out: { name: out, layout: { kind: "nchw", c: cout, h, w }, rows: x.rows, grad: false } };
  }
  const out = convForward(c, node, x, W);
  const fold: ScaleFold | undefined = bn && foldsBatchNormScale(x, node) ? {} : undefined;
  if (bn && fold) c.scaleFolds.set(bn.name, fold);
  const back: Backward = (dy) => {
    // with a folded batch-norm scale s, dy is the gradient divided by s: the input gradient reads the
    // kernel times s per output channel, and the weight gradient is scaled per output channel
    const scale = fold ? (fold.scale ?? fail(`batch norm after '${node.name}' left no scale`)) : undefined;
    let dx: string | undefined;
    if (x.grad) {
      // Conv with the kernel flipped in space and its in/out channels swapped
      const kernel = scale ? scaledKernel(e, source, { o: cout, i: cin, k }, scale, node.name) : W;
      dx = sameConv(e, dy, cout, { ...kernel, swapFlip: true }, cin, k, `${node.name}:dx`);
    }
    let dW = convWeightGrad(e, node, x, dy);
    if (scale) dW = e.mul(dW, e.reshape(scale, [cout, 1, 1, 1], node.name), `${node.name}:dw`);
    return { inputs: [dx], params: { [node.kernel]: dW } };
  };
  return { out: { name: out, layout: { kind: "nchw", c: cout, h, w }, rows: x.rows, grad: true }, back };
}

/**
 * Whether the batch norm after a conv hands back its input gradient divided by its scale γ·rstd,
 * leaving the conv to apply it: to its kernel (for the input gradient) and to the weight gradient,
 * both kernel-sized, instead of one pass over the map. Only where the map is at least 4× the
 * kernel (the early, large maps; on late maps the kernel is the bigger tensor).
 */
function foldsBatchNormScale(x: Value, node: Extract<GraphNode, { op: "conv2d" }>): boolean {
  if (x.layout.kind !== "nchw") return false;
  return x.rows * x.layout.h * x.layout.w >= 4 * x.layout.c * node.kernelSize * node.kernelSize;
}

/** The OIHW kernel at `source` times `scale` [O] per output channel, as a dense {@link KernelRef}. */
function scaledKernel(
  e: TrainEmitter,
  source: { flat: string; offset: number },
  shape: { o: number; i: number; k: number },
  scale: string,
  base: string,
): KernelRef {
  const { o, i, k } = shape;
  const size = o * i * k * k;
  const kernel = e.op("Slice", [source.flat, e.b.ints([source.offset]), e.b.ints([source.offset + size])], `${base}:wslice`);
  const scaled = e.mul(e.reshape(kernel, [o, i * k * k], base), e.reshape(scale, [o, 1], base), `${base}:wscaled`);
  return denseKernel(e, scaled, o, i, k);
}

/**
 * Maps at most this many positions fold the batch into each tap's product (one 2-D GEMM, K = R·H·W)
 * instead of one product per sample summed afterwards: measured faster on 14²–28² maps with
 * 64–128 channels (1 thread, lite shapes), slower on 56²–112² maps.
 */
const BATCH_IN_K_MAX_POSITIONS = 28 * 28;

/**
 * The weight gradient of a stride-1 same-padded conv, OIHW, one product per kernel tap:
 * dW[:, :, ky, kx] = Σ_batch x shifted by (ky, kx) [Cin, HW] · dy [Cout, HW]ᵀ. The shifted inputs are
 * Slices of one zero-padded copy (the centre tap is x itself), so no k²-sized patch tensor is built.
 * Computing dWᵀ (patches on the left) keeps the big operand unpacked in the GEMM. Measured on lite's
 * shapes (1 thread, batch 8): 10–30% faster than patches from a grouped one-hot Conv times dyᵀ,
 * and 1.5–2.2× faster than that with dy on the left, the previous form.
 */
function convWeightGrad(e: TrainEmitter, node: Extract<GraphNode, { op: "conv2d" }>, x: Value, dy: string): string {
  if (x.layout.kind !== "nchw") fail(`conv '${node.name}' needs an NCHW map`);
  const { c: cin, h, w } = x.layout;
  const k = node.kernelSize;
  if (k === 3 && w >= STACKED_TAPS_MIN_WIDTH) return stackedTapsWeightGrad(e, node, x, dy);
  const cout = node.filters;
  const p = (k - 1) / 2;
  const R = x.rows;
  const s = node.name;
  const batchInK = h * w <= BATCH_IN_K_MAX_POSITIONS;
  const axes01: Attr[] = [{ name: "perm", ints: [1, 0, 2, 3] }];
  // batch folded into K: [Cin, R, H, W] and [Cout, R·H·W]; otherwise [R, Cin, H·W] and [R, Cout, H·W]
  const src = batchInK ? e.op("Transpose", [x.name], `${s}:xT`, axes01) : x.name;
  const dyM = batchInK
    ? e.reshape(e.op("Transpose", [dy], `${s}:dyT`, axes01), [cout, R * h * w], `${s}:dy2`)
    : e.reshape(dy, [R, cout, h * w], `${s}:dy3`);
  const tapShape = batchInK ? [cin, R * h * w] : [R, cin, h * w];
  const padded = k > 1 ? e.op("Pad", [src, e.b.ints([0, 0, p, p, 0, 0, p, p])], `${s}:xpad`) : src;
  const parts: string[] = [];
  for (let ky = 0; ky < k; ky++) {
    for (let kx = 0; kx < k; kx++) {
      const tap =
        ky === p && kx === p ? src : e.op("Slice", [padded, e.b.ints([ky, kx]), e.b.ints([ky + h, kx + w]), e.b.ints([2, 3])], `${s}:tap`);
      let product = e.op(
        "FusedMatMul",
        [e.reshape(tap, tapShape, `${s}:tap`), dyM],
        `${s}:dwt`,
        [{ name: "transB", i: 1 }],
        "com.microsoft",
      );
      if (!batchInK) product = e.sum(product, [0], false, `${s}:dwt`);
      parts.push(e.reshape(product, [cin, 1, cout], `${s}:dwt`));
    }
  }
  const byTap = parts.length === 1 ? (parts[0] as string) : e.op("Concat", parts, `${s}:dwtaps`, [{ name: "axis", i: 1 }]);
  // [Cin, k², Cout] → [Cout, Cin, k²] → OIHW
  const oik = e.op("Transpose", [byTap], `${s}:dw`, [{ name: "perm", ints: [2, 0, 1] }]);
  return e.reshape(oik, [cout, cin, k, k], `${s}:dw`);
}

/**
 * Maps at least this wide take {@link stackedTapsWeightGrad}: in onnxruntime's profile (lite and
 * tiny, batch 8, 2 threads) it cut the weight gradient's kernel time by 7% and 14% with this
 * bound; from 12 columns on it was no faster.
 */
const STACKED_TAPS_MIN_WIDTH = 24;

/**
 * The weight gradient of a stride-1 same-padded 3×3 conv as 3 GEMMs with the 3 row taps stacked:
 * one Gather of whole rows of the zero-padded input gives, per channel, its 3 row shifts
 * [3·Cin, H·(W+2)]; the column shift kx moves to the output gradient, zero-padded to W+2 columns
 * at offset kx. Then dW[:, :, ·, kx] is one product with M = 3·Cin, so the output gradient is
 * packed 3 times instead of 9 and the input is copied 3 times (whole rows) instead of 8.
 */
function stackedTapsWeightGrad(e: TrainEmitter, node: Extract<GraphNode, { op: "conv2d" }>, x: Value, dy: string): string {
  if (x.layout.kind !== "nchw") fail(`conv '${node.name}' needs an NCHW map`);
  const { c: cin, h, w } = x.layout;
  const cout = node.filters;
  const R = x.rows;
  const s = node.name;
  const wp = w + 2;
  const batchInK = h * w <= BATCH_IN_K_MAX_POSITIONS;
  const axes01: Attr[] = [{ name: "perm", ints: [1, 0, 2, 3] }];
  // rows of the padded input, gathered as (c, ky, y) or, batch folded into K, (ky, r, y) per channel
  const src = batchInK ? e.op("Transpose", [x.name], `${s}:xT`, axes01) : x.name;
  const inner = batchInK ? R : cin;
  const padded = e.op("Pad", [src, e.b.ints([0, 0, 1, 1, 0, 0, 1, 1])], `${s}:xpad`);
  const rows = e.reshape(padded, [batchInK ? cin : R, inner * (h + 2), wp], `${s}:xrows`);
  const idx = new Int32Array(3 * inner * h);
  let n = 0;
  if (batchInK) for (let ky = 0; ky < 3; ky++) for (let r = 0; r < R; r++) for (let y = 0; y < h; y++) idx[n++] = r * (h + 2) + ky + y;
  else for (let c = 0; c < cin; c++) for (let ky = 0; ky < 3; ky++) for (let y = 0; y < h; y++) idx[n++] = c * (h + 2) + ky + y;
  const gathered = e.op("Gather", [rows, e.b.int32Init(`${s}:rowidx`, idx)], `${s}:taps`, [{ name: "axis", i: 1 }]);
  const stacked = e.reshape(gathered, batchInK ? [3 * cin, R * h * wp] : [R, 3 * cin, h * wp], `${s}:taps`);
  const grad = batchInK ? e.op("Transpose", [dy], `${s}:dyT`, axes01) : dy;
  const parts: string[] = [];
  for (let kx = 0; kx < 3; kx++) {
    const shifted = e.op("Pad", [grad, e.b.ints([0, 0, 0, kx, 0, 0, 0, 2 - kx])], `${s}:dycol`);
    const dyM = e.reshape(shifted, batchInK ? [cout, R * h * wp] : [R, cout, h * wp], `${s}:dycol`);
    let product = e.op("FusedMatMul", [stacked, dyM], `${s}:dwt`, [{ name: "transB", i: 1 }], "com.microsoft");
    if (!batchInK) product = e.sum(product, [0], false, `${s}:dwt`);
    parts.push(e.reshape(product, [cin, 3, 1, cout], `${s}:dwt`));
  }
  // [Cin, ky, kx, Cout] → OIHW
  const byTap = e.op("Concat", parts, `${s}:dwtaps`, [{ name: "axis", i: 2 }]);
  return e.op("Transpose", [byTap], `${s}:dw`, [{ name: "perm", ints: [3, 0, 1, 2] }]);
}

/** Inference batch norm as per-channel scale and shift vectors (from the moving statistics inputs). */
function inferenceBatchNorm(c: Ctx, bn: Extract<GraphNode, { op: "batchNorm" }>): { scale: string; shift: string } {
  const { e } = c;
  const rstd = e.op("Reciprocal", [e.op("Sqrt", [e.add(c.param(bn.movingVariance), e.scalar(bn.epsilon), bn.name)], bn.name)], bn.name);
  const scale = e.mul(c.param(bn.gamma), rstd, `${bn.name}:scale`);
  const shift = e.sub(c.param(bn.beta), e.mul(c.param(bn.movingMean), scale, bn.name), `${bn.name}:shift`);
  return { scale, shift };
}

/**
 * x·scale + shift per channel of an NCHW map in one pass: an inference-mode BatchNormalization with
 * mean 0, variance 1 and ε 0 (measured faster than Mul then Add on lite's maps).
 */
function channelAffine(e: TrainEmitter, x: string, scale: string, shift: string, channels: number, base: string): string {
  const zeros = e.b.filled(0, channels);
  const ones = e.b.filled(1, channels);
  return e.op("BatchNormalization", [x, scale, shift, zeros, ones], `${base}:affine`, [{ name: "epsilon", f: 0 }]);
}

/** Batch norm with batch statistics over R, H, W (training) and its gradient; moving statistics as extra outputs. */
function emitBatchNorm(c: Ctx, node: Extract<GraphNode, { op: "batchNorm" }>, x: Value): Emitted {
  if (x.layout.kind !== "nchw") fail(`batch norm '${node.name}' needs an NCHW map`);
  const { e } = c;
  const ch = x.layout.c;
  const s = node.name;
  if (!e.training) {
    // only reached when the BN does not follow a conv (folded otherwise)
    const { scale, shift } = inferenceBatchNorm(c, node);
    const y = e.add(e.mul(x.name, e.reshape(scale, [1, ch, 1, 1], s), s), e.reshape(shift, [1, ch, 1, 1], s), s);
    return { out: { ...x, name: y, grad: false } };
  }
  const count = x.rows * x.layout.h * x.layout.w;
  const axes: Attr[] = [
    { name: "axes", ints: [0, 2, 3] },
    { name: "keepdims", i: 1 },
  ];
  const mean = e.op("ReduceMean", [x.name], `${s}:mean`, axes);
  const d = e.sub(x.name, mean, s);
  const variance = e.mul(e.op("ReduceSumSquare", [d], `${s}:ss`, axes), e.scalar(1 / count), `${s}:var`);
  const rstd = e.op("Reciprocal", [e.op("Sqrt", [e.add(variance, e.scalar(node.epsilon), s)], s)], `${s}:rstd`);
  const gamma4 = e.reshape(c.param(node.gamma), [1, ch, 1, 1], s);
  const scale = e.mul(gamma4, rstd, `${s}:scale`);
  const y = channelAffine(e, d, e.reshape(scale, [ch], s), c.param(node.beta), ch, s);
  // the batch's statistics for the moving ones (the variance unbiased, as PyTorch and the tfjs engine)
  const unbiased = count > 1 ? e.mul(variance, e.scalar(count / (count - 1)), s) : variance;
  c.statOut(node.movingMean, e.reshape(mean, [ch], s), node.momentum);
  c.statOut(node.movingVariance, e.reshape(unbiased, [ch], s), node.momentum);
  const fold = c.scaleFolds.get(node.name);
  if (fold) fold.scale = e.reshape(scale, [ch], s);
  const back: Backward = (dy) => {
    // x̂ = d·rstd; dβ = Σdy; dγ = rstd·Σ(dy·d); dx = scale·(dy − d·(rstd·dγ/n) − dβ/n), where the
    // conv before applies `scale` when it is folded (one pass over the map fewer)
    const dBeta4 = e.op("ReduceSum", [dy, e.b.ints([0, 2, 3])], `${s}:dbeta`, [{ name: "keepdims", i: 1 }]);
    const dyd = e.op("ReduceSum", [e.mul(dy, d, s), e.b.ints([0, 2, 3])], `${s}:dyd`, [{ name: "keepdims", i: 1 }]);
    const dGamma4 = e.mul(dyd, rstd, `${s}:dgamma`);
    const negC = (v: string) => e.reshape(e.op("Neg", [v], s), [ch], s);
    let dx: string;
    if (fold) {
      const k2 = e.mul(dBeta4, e.scalar(1 / count), s);
      const k3 = e.mul(rstd, e.mul(dGamma4, e.scalar(1 / count), s), s);
      dx = e.add(dy, channelAffine(e, d, negC(k3), negC(k2), ch, `${s}:corr`), `${s}:dx`);
    } else {
      const c2 = e.mul(scale, e.mul(dBeta4, e.scalar(1 / count), s), s);
      const c3 = e.mul(e.mul(scale, rstd, s), e.mul(dGamma4, e.scalar(1 / count), s), s);
      const correction = channelAffine(e, d, negC(c3), negC(c2), ch, `${s}:corr`);
      dx = e.add(e.mul(dy, scale, s), correction, `${s}:dx`);
    }
    return {
      inputs: [x.grad ? dx : undefined],
      params: { [node.gamma]: e.reshape(dGamma4, [ch], s), [node.beta]: e.reshape(dBeta4, [ch], s) },
    };
  };
  return { out: { ...x, name: y, grad: true }, back };
}

/**
 * ReLU, and its gradient as dy·[y > 0] (Greater, Cast, Mul: measured 1.5× faster than Where on
 * lite's first maps). In training, a ReLU whose only reader is a max-pool is deferred past the pool
 * (max(relu(x)) = relu(max(x))), so the ReLU and its gradient run on the pooled map, a quarter of the
 * size. The gradient is the same: where the pooled maximum is positive both pools pick the same first
 * maximum, and where it is not, both gradients are 0.
 */
function emitRelu(c: Ctx, node: GraphNode, x: Value): Emitted {
  const { e } = c;
  const readers = c.consumers.get(node.name);
  if (e.training && x.layout.kind === "nchw" && readers?.length === 1 && readers[0]?.op === "maxPool") {
    return { out: { ...x, reluPending: true }, back: x.grad ? (dy) => ({ inputs: [dy], params: {} }) : undefined };
  }
  return applyRelu(e, node.name, x);
}

function applyRelu(e: TrainEmitter, base: string, x: Value): Emitted {
  const y = e.op("Relu", [x.name], base);
  const back: Backward = (dy) => {
    const positive = e.op("Cast", [e.op("Greater", [y, e.scalar(0)], `${base}:pos`)], `${base}:mask`, [{ name: "to", i: 1 }]);
    return { inputs: [e.mul(dy, positive, `${base}:dx`)], params: {} };
  };
  return { out: { ...x, name: y, reluPending: false }, back: x.grad ? back : undefined };
}

function emitMaxPool(c: Ctx, node: Extract<GraphNode, { op: "maxPool" }>, x: Value): Emitted {
  if (x.layout.kind !== "nchw") fail(`max-pool '${node.name}' needs an NCHW map`);
  const { e } = c;
  const [h, w] = node.shape as [number, number];
  const out: Value = { ...x, name: "", layout: { kind: "nchw", c: x.layout.c, h, w } };
  const pool: Attr[] = [
    { name: "kernel_shape", ints: [node.size, node.size] },
    { name: "strides", ints: [node.stride, node.stride] },
  ];
  if (!e.training || !x.grad) {
    out.name = e.op("MaxPool", [x.name], node.name, pool);
    return x.reluPending ? applyRelu(e, `${node.name}:relu`, out) : { out };
  }
  out.name = e.fresh(node.name);
  const indices = e.fresh(`${node.name}:argmax`);
  e.b.node("MaxPool", [x.name], [out.name, indices], pool);
  const inShape = [x.rows, x.layout.c, x.layout.h, x.layout.w];
  const unpool = (dy: string) => e.op("MaxUnpool", [dy, indices, e.b.ints(inShape)], `${node.name}:dx`, pool);
  if (!x.reluPending) return { out, back: (dy) => ({ inputs: [unpool(dy)], params: {} }) };
  const relu = applyRelu(e, `${node.name}:relu`, out);
  const reluBack = relu.back as Backward;
  return { out: relu.out, back: (dy) => ({ inputs: [unpool(reluBack(dy).inputs[0] as string)], params: {} }) };
}

function emitGlobalMax(c: Ctx, node: GraphNode, x: Value): Emitted {
  const { e } = c;
  let y: string;
  let layout: Layout;
  let keptShape: number[];
  if (x.layout.kind === "nchw") {
    y = e.op("ReduceMax", [x.name], node.name, [
      { name: "axes", ints: [2, 3] },
      { name: "keepdims", i: 0 },
    ]);
    layout = { kind: "rows", d: x.layout.c };
    keptShape = [x.rows, x.layout.c, 1, 1];
  } else if (x.layout.kind === "map") {
    y = e.op("ReduceMax", [x.name], node.name, [
      { name: "axes", ints: [1] },
      { name: "keepdims", i: 1 },
    ]);
    layout = { kind: "rows", d: 1 };
    keptShape = [x.rows, 1];
  } else fail(`global max '${node.name}' on a ${x.layout.kind} value`);
  const back: Backward = (dy) => {
    // every position equal to the maximum gets the gradient (tfjs' rule for max)
    const yk = e.reshape(y, keptShape, node.name);
    const dyk = e.reshape(dy, keptShape, node.name);
    const isMax = e.op("Equal", [x.name, yk], `${node.name}:ismax`);
    return { inputs: [e.op("Where", [isMax, dyk, e.scalar(0)], `${node.name}:dx`)], params: {} };
  };
  return { out: { name: y, layout, rows: x.rows, grad: x.grad }, back: x.grad ? back : undefined };
}

/** Dense over the last axis; an NCHW map becomes per-location rows first. */
function emitDense(c: Ctx, node: Extract<GraphNode, { op: "dense" }>, x0: Value): Emitted {
  const { e } = c;
  let x = x0;
  let toMap: ((d: string) => string) | undefined;
  if (x0.layout.kind === "nchw") {
    const { c: ch, h, w } = x0.layout;
    const nhwc = e.op("Transpose", [x0.name], `${node.name}:nhwc`, [{ name: "perm", ints: [0, 2, 3, 1] }]);
    x = { ...x0, name: e.reshape(nhwc, [x0.rows * h * w, ch], node.name), layout: { kind: "rowsMap", h, w, d: ch } };
    toMap = (d) =>
      e.op("Transpose", [e.reshape(d, [x0.rows, h, w, ch], node.name)], `${node.name}:dxnchw`, [{ name: "perm", ints: [0, 3, 1, 2] }]);
  }
  if (x.layout.kind !== "rows" && x.layout.kind !== "rowsMap") fail(`dense '${node.name}' on a ${x.layout.kind} value`);
  const W = c.param(node.kernel);
  const y = e.op("Gemm", [x.name, W, c.param(node.bias)], node.name);
  const layout: Layout = x.layout.kind === "rows" ? { kind: "rows", d: node.units } : { ...x.layout, d: node.units };
  const back: Backward = (dy) => {
    let dx: string | undefined;
    if (x.grad) {
      dx = e.op("Gemm", [dy, W], `${node.name}:dx`, [{ name: "transB", i: 1 }]);
      if (toMap) dx = toMap(dx);
    }
    const dW = e.op("Gemm", [x.name, dy], `${node.name}:dw`, [{ name: "transA", i: 1 }]);
    const db = e.sum(dy, [0], false, `${node.name}:db`);
    return { inputs: [dx], params: { [node.kernel]: dW, [node.bias]: db } };
  };
  return { out: { name: y, layout, rows: x.rows, grad: true }, back: e.training ? back : undefined };
}

function emitConcat(c: Ctx, node: GraphNode, xs: Value[]): Emitted {
  const { e } = c;
  if (xs.some((x) => x.layout.kind !== "rows")) fail(`concat '${node.name}' needs row values`);
  const widths = xs.map((x) => (x.layout as { d: number }).d);
  const y = e.op(
    "Concat",
    xs.map((x) => x.name),
    node.name,
    [{ name: "axis", i: 1 }],
  );
  const back: Backward = (dy) => {
    const parts = xs.map(() => e.fresh(`${node.name}:split`));
    e.b.node("Split", [dy, e.b.ints(widths)], parts, [{ name: "axis", i: 1 }]);
    return { inputs: parts.map((p, i) => (xs[i]?.grad ? p : undefined)), params: {} };
  };
  const d = widths.reduce((a, b) => a + b, 0);
  const grad = xs.some((x) => x.grad);
  return { out: { name: y, layout: { kind: "rows", d }, rows: xs[0]?.rows ?? 0, grad }, back: grad ? back : undefined };
}

function emitL2Normalize(c: Ctx, node: Extract<GraphNode, { op: "l2Normalize" }>, x: Value): Emitted {
  const { e } = c;
  const s = node.name;
  const ss = e.op("ReduceSumSquare", [x.name], `${s}:ss`, [
    { name: "axes", ints: [1] },
    { name: "keepdims", i: 1 },
  ]);
  const norm = e.op("Sqrt", [e.op("Max", [ss, e.scalar(node.epsilon)], s)], `${s}:norm`);
  const y = e.op("Div", [x.name, norm], s);
  const back: Backward = (dy) => {
    // dx = dy/n − x·Σ(dy·x)/n³ (the second term only where Σx² ≥ ε, as tfjs' maximum)
    const t = e.sum(e.mul(dy, x.name, s), [1], true, s);
    const n3 = e.mul(e.mul(norm, norm, s), norm, s);
    const active = e.op("Cast", [e.op("GreaterOrEqual", [ss, e.scalar(node.epsilon)], s)], s, [{ name: "to", i: 1 }]);
    const coef = e.mul(e.op("Div", [t, n3], s), active, s);
    const dx = e.sub(e.op("Div", [dy, norm], s), e.mul(x.name, coef, s), `${s}:dx`);
    return { inputs: [dx], params: {} };
  };
  return { out: { ...x, name: y }, back: x.grad ? back : undefined };
}

function emitPairScore(c: Ctx, node: GraphNode, x: Value, y: Value): Emitted {
  const { e } = c;
  const s = node.name;
  const out = (name: string, back: Backward): Emitted => ({
    out: { name, layout: { kind: "rows", d: 1 }, rows: x.rows, grad: x.grad || y.grad },
    back: x.grad || y.grad ? back : undefined,
  });
  if (node.op === "euclideanDistance") {
    const diff = e.sub(x.name, y.name, s);
    const ss = e.op("ReduceSumSquare", [diff], `${s}:ss`, [
      { name: "axes", ints: [1] },
      { name: "keepdims", i: 1 },
    ]);
    const dist = e.op("Sqrt", [e.add(ss, e.scalar(node.epsilon), s)], s);
    return out(dist, (dd) => {
      const g = e.mul(diff, e.op("Div", [dd, dist], s), `${s}:g`);
      return { inputs: [g, e.op("Neg", [g], `${s}:dy`)], params: {} };
    });
  }
  if (node.op === "dot") {
    const dot = e.sum(e.mul(x.name, y.name, s), [1], true, s);
    return out(dot, (dd) => ({ inputs: [e.mul(dd, y.name, `${s}:dx`), e.mul(dd, x.name, `${s}:dy`)], params: {} }));
  }
  fail(`'${node.op}' is not a pair score`);
}

/** AVOL: per-location dot of vision rows [R·hw, E] with audio [R, E] → [R, hw]. */
function emitLocationDot(c: Ctx, node: GraphNode, x: Value, y: Value): Emitted {
  const { e } = c;
  const s = node.name;
  if (x.layout.kind !== "rowsMap" || y.layout.kind !== "rows") fail(`'${s}' needs per-location vision rows and audio rows`);
  const hw = x.layout.h * x.layout.w;
  const E = x.layout.d;
  if (x.pairing === "frame" && y.pairing === "audio" && c.pairs) return pairedLocationDot(c, node, x, y, { hw, E }, c.pairs);
  const R = x.rows;
  const x3 = e.reshape(x.name, [R, hw, E], s);
  const y3 = e.reshape(y.name, [R, E, 1], s);
  const sim = e.reshape(e.op("MatMul", [x3, y3], s), [R, hw], s);
  const back: Backward = (dsim) => {
    const d3 = e.reshape(dsim, [R, hw, 1], s);
    const dx = e.reshape(e.op("MatMul", [d3, e.reshape(y.name, [R, 1, E], s)], `${s}:dx`), [R * hw, E], s);
    const dy = e.reshape(e.op("MatMul", [e.reshape(dsim, [R, 1, hw], s), x3], `${s}:dy`), [R, E], s);
    return { inputs: [x.grad ? dx : undefined, y.grad ? dy : undefined], params: {} };
  };
  return { out: { name: sim, layout: { kind: "map", hw }, rows: R, grad: x.grad || y.grad }, back };
}

/**
 * Whether in-batch pairing can be left to the head: the only reader of both cut values is one
 * per-location dot (AVOL). Then {@link pairedLocationDot} scores every frame against every audio in
 * one GEMM instead of copying the per-location vision rows once per combination (the copies and
 * their gradient's sum took 16% of a `tiny` AVOL step at batch 32).
 */
function pairedByLocationDot(graph: L3Graph, cut: { vision: string; audio: string }): boolean {
  const readers = consumersOf(logitNodes(graph).nodes);
  const [v, a] = [readers.get(cut.vision), readers.get(cut.audio)];
  return v?.length === 1 && a?.length === 1 && v[0] === a[0] && v[0]?.op === "locationDot" && v[0].inputs[0] === cut.vision;
}

/**
 * AVOL's per-location dot for in-batch combinations, on batch rows: all = V·Aᵀ [B·hw, B] (every
 * frame location against every audio), then each combination's [hw] similarities by one Gather.
 * Backward: the combinations' gradients scattered back by one Gather of the inverse index (a zero
 * where a pair is not scored), then dV = dAll·A and dA = dAllᵀ·V.
 */
function pairedLocationDot(
  c: Ctx,
  node: GraphNode,
  x: Value,
  y: Value,
  { hw, E }: { hw: number; E: number },
  pairs: NonNullable<Ctx["pairs"]>,
): Emitted {
  const { e } = c;
  const s = node.name;
  const { batch: B, shifts, combinations: N } = pairs;
  const v2 = e.reshape(x.name, [B * hw, E], s);
  const all = e.op("Gemm", [v2, y.name], `${s}:all`, [{ name: "transB", i: 1 }]);
  // combination s·B + i, location l ← all[(i·hw + l)·B + (i + s) mod B]
  const pick = new Int32Array(N * hw);
  const back = new Int32Array(B * hw * B).fill(N * hw);
  for (let sh = 0; sh <= shifts; sh++)
    for (let i = 0; i < B; i++)
      for (let l = 0; l < hw; l++) {
        const src = (i * hw + l) * B + ((i + sh) % B);
        pick[(sh * B + i) * hw + l] = src;
        back[src] = (sh * B + i) * hw + l;
      }
  const flatAll = e.reshape(all, [B * hw * B], s);
  const sim = e.reshape(e.op("Gather", [flatAll, e.b.int32Init(`${s}:pick`, pick)], `${s}:pick`, [{ name: "axis", i: 0 }]), [N, hw], s);
  const backward: Backward = (dsim) => {
    const withZero = e.op("Concat", [e.reshape(dsim, [N * hw], s), e.b.filled(0, 1)], `${s}:dsim`, [{ name: "axis", i: 0 }]);
    const scattered = e.op("Gather", [withZero, e.b.int32Init(`${s}:unpick`, back)], `${s}:dall`, [{ name: "axis", i: 0 }]);
    const dAll = e.reshape(scattered, [B * hw, B], s);
    const dx = x.grad ? e.op("MatMul", [dAll, y.name], `${s}:dx`) : undefined;
    const dy = y.grad ? e.op("Gemm", [dAll, v2], `${s}:dy`, [{ name: "transA", i: 1 }]) : undefined;
    return { inputs: [dx, dy], params: {} };
  };
  return { out: { name: sim, layout: { kind: "map", hw }, rows: N, grad: x.grad || y.grad }, back: backward };
}

function emitNode(c: Ctx, node: GraphNode, xs: Value[]): Emitted {
  const x = xs[0] as Value;
  switch (node.op) {
    case "affine": {
      const y = c.e.add(c.e.mul(x.name, c.e.scalar(node.mul), node.name), c.e.scalar(node.add), node.name);
      return {
        out: { ...x, name: y },
        back: x.grad ? (dy) => ({ inputs: [c.e.mul(dy, c.e.scalar(node.mul), node.name)], params: {} }) : undefined,
      };
    }
    case "conv2d":
      return emitConv(c, node, x);
    case "batchNorm": {
      const prev = c.graph.nodes.find((n) => n.name === node.inputs[0]);
      // folded into the conv when the conv feeds only this batch norm (see emitConv)
      if (!c.e.training && prev?.op === "conv2d" && c.consumers.get(prev.name)?.length === 1) return { out: x };
      return emitBatchNorm(c, node, x);
    }
    case "relu":
      return emitRelu(c, node, x);
    case "maxPool":
      return emitMaxPool(c, node, x);
    case "globalMaxPool":
      return emitGlobalMax(c, node, x);
    case "dense":
      return emitDense(c, node, x);
    case "concat":
      return emitConcat(c, node, xs);
    case "l2Normalize":
      return emitL2Normalize(c, node, x);
    case "euclideanDistance":
    case "dot":
      return emitPairScore(c, node, x, xs[1] as Value);
    case "locationDot":
      return emitLocationDot(c, node, x, xs[1] as Value);
    default:
      return fail(`op '${node.op}' is not supported in the training graph (node '${node.name}')`);
  }
}

/**
 * The joint-cut value of every scored combination. Frames: combination s·B + i reads frame i, so the
 * vision side is the batch repeated (Tile; its gradient sums the copies). Audio: combination
 * s·B + i reads the audio of (i + s) mod B, a constant 0/1 matrix S [N, B] applied as S·V (exact
 * row copies, gradient Sᵀ·dV). Per-location rows are selected sample by sample. (A MatMul for the
 * frames too cost 48 ms a step on AVOL's per-location vision side, `tiny`, batch 32.)
 */
function selectRows(e: TrainEmitter, v: Value, side: "vision" | "audio", N: number): { value: Value; back: (d: string) => string } {
  const per = v.layout.kind === "rowsMap" ? v.layout.h * v.layout.w * v.layout.d : v.layout.kind === "rows" ? v.layout.d : fail("bad cut");
  const back2 = v.layout.kind === "rowsMap" ? [v.rows * v.layout.h * v.layout.w, v.layout.d] : [v.rows, per];
  const out2 = v.layout.kind === "rowsMap" ? [N * v.layout.h * v.layout.w, v.layout.d] : [N, per];
  const flat = e.reshape(v.name, [v.rows, per], "select");
  if (side === "vision") {
    const copies = N / v.rows;
    const tiled = e.op("Tile", [flat, e.b.ints([copies, 1])], "select:tile");
    return {
      value: { ...v, name: e.reshape(tiled, out2, "select"), rows: N },
      back: (d) => e.reshape(e.sum(e.reshape(d, [copies, v.rows, per], "select"), [0], false, "select:back"), back2, "select"),
    };
  }
  const S = "select:audio";
  const picked = e.op("MatMul", [S, flat], "select");
  return {
    value: { ...v, name: e.reshape(picked, out2, "select"), rows: N },
    back: (d) => e.reshape(e.op("Gemm", [S, e.reshape(d, [N, per], "select")], "select:back", [{ name: "transA", i: 1 }]), back2, "select"),
  };
}

/** The audio selection of in-batch negatives: row s·B + i takes the audio of (i + s) mod B (as `inBatchPairs`). */
function inBatchAudioSelection(batch: number, shifts: number): Float32Array {
  const N = (shifts + 1) * batch;
  const audio = new Float32Array(N * batch);
  for (let s = 0; s <= shifts; s++) for (let i = 0; i < batch; i++) audio[(s * batch + i) * batch + ((i + s) % batch)] = 1;
  return audio;
}

/** The frames and audio inputs (NHWC, transposed to NCHW in the graph). */
function emitInputs(e: TrainEmitter, graph: L3Graph, batch: number): Map<string, Value> {
  const env = new Map<string, Value>();
  for (const [which, nodeName] of [
    ["frames", graph.outputs.frames],
    ["audio", graph.outputs.audio],
  ] as const) {
    const node = graph.nodes.find((n) => n.name === nodeName) as GraphNode;
    const [h, w, c] = node.shape as [number, number, number];
    e.input(which, [batch, h, w, c]);
    const nchw = e.op("Transpose", [which], `${which}:nchw`, [{ name: "perm", ints: [0, 3, 1, 2] }]);
    env.set(nodeName, { name: nchw, layout: { kind: "nchw", c, h, w }, rows: batch, grad: false });
  }
  return env;
}

/** Names of the conv kernels a graph's nodes read (held OIHW by the engine). */
function convKernelsOf(nodes: readonly GraphNode[]): string[] {
  return nodes.flatMap((n) => (n.op === "conv2d" ? [n.kernel] : []));
}

/** A parameter's shape as the engine holds it: conv kernels OIHW, everything else as in the model. */
function engineShape(graph: L3Graph, name: string, convKernels: ReadonlySet<string>): number[] {
  const s = graph.params.find((p) => p.name === name)?.shape ?? fail(`no parameter '${name}'`);
  return convKernels.has(name) ? ([s[3], s[2], s[0], s[1]] as number[]) : s;
}

/**
 * Parameter and statistics inputs of a graph: one input each, or (with a layout) the flat vectors,
 * each parameter a Reshape of a Slice made when first read.
 */
function declareParams(
  e: TrainEmitter,
  graph: L3Graph,
  used: ReadonlySet<string>,
  convKernels: ReadonlySet<string>,
  flat?: FlatLayout,
): Pick<Ctx, "param" | "flatParam"> {
  const names = new Map<string, string>();
  const flats = new Map<string, { flat: string; offset: number }>();
  if (!flat) {
    for (const p of graph.params) {
      if (!used.has(p.name)) continue;
      const name = p.trainable ? trainNames.param(p.name) : trainNames.stat(p.name);
      names.set(p.name, e.input(name, engineShape(graph, p.name, convKernels)));
    }
    const param = (n: string) => names.get(n) ?? fail(`parameter '${n}' is not an input`);
    const flatParam = (n: string) => {
      let f = flats.get(n);
      if (!f) {
        const size = engineShape(graph, n, convKernels).reduce((a, b) => a * b, 1);
        f = { flat: e.reshape(param(n), [size], n), offset: 0 };
        flats.set(n, f);
      }
      return f;
    };
    return { param, flatParam };
  }
  const slots = new Map<string, [string, FlatSlot]>();
  const params = e.input(trainNames.flat.params, [flat.paramSize]);
  for (const slot of flat.params) slots.set(slot.name, [params, slot]);
  if (flat.statSize > 0) {
    const stats = e.input(trainNames.flat.stats, [flat.statSize]);
    for (const slot of flat.stats) slots.set(slot.name, [stats, slot]);
  }
  const slotOf = (n: string) => slots.get(n) ?? fail(`parameter '${n}' is not an input`);
  const param = (n: string) => {
    let v = names.get(n);
    if (v) return v;
    const [vector, slot] = slotOf(n);
    const piece = e.op("Slice", [vector, e.b.ints([slot.offset]), e.b.ints([slot.offset + slot.size]), e.b.ints([0])], `${n}:slice`);
    v = e.reshape(piece, slot.shape, n);
    names.set(n, v);
    return v;
  };
  const flatParam = (n: string) => {
    const [vector, slot] = slotOf(n);
    return { flat: vector, offset: slot.offset };
  };
  return { param, flatParam };
}

/** The nodes the logits need, in order, the parameters they read and their conv kernels. */
function logitNodes(graph: L3Graph): { nodes: GraphNode[]; used: Set<string>; convKernels: Set<string> } {
  const need = neededNodes(graph, [graph.outputs.logits]);
  const nodes = graph.nodes.filter((n) => need.has(n.name));
  return { nodes, used: paramsOf(nodes), convKernels: new Set(convKernelsOf(nodes)) };
}

/** Parameters read by a set of nodes. */
function paramsOf(nodes: readonly GraphNode[]): Set<string> {
  const out = new Set<string>();
  for (const n of nodes) {
    if (n.op === "conv2d") out.add(n.kernel);
    else if (n.op === "dense") {
      out.add(n.kernel);
      out.add(n.bias);
    } else if (n.op === "batchNorm") for (const p of [n.gamma, n.beta, n.movingMean, n.movingVariance]) out.add(p);
  }
  return out;
}

function consumersOf(nodes: readonly GraphNode[]): Map<string, GraphNode[]> {
  const m = new Map<string, GraphNode[]>();
  for (const n of nodes) for (const i of n.inputs) m.set(i, [...(m.get(i) ?? []), n]);
  return m;
}

/** What {@link emitForward} leaves for the rest of a graph. */
interface Forward {
  /** The nodes the logits need, in order. */
  nodes: GraphNode[];
  /** Parameters they read. */
  used: Set<string>;
  convKernels: Set<string>;
  /** Each node's value (after `replace`). */
  env: Map<string, Value>;
  /** Each node's backward (training). */
  backs: Map<string, Backward>;
  /** Batch-norm statistics (training): model name, batch value [C], momentum. */
  statOuts: Array<[string, string, number]>;
  /** A parameter's value in the graph. */
  param: (name: string) => string;
}

/**
 * Declares the inputs and parameter inputs and emits every node the logits need. `replace` may
 * substitute the value a node hands on (the in-batch selection at the joint cut).
 */
function emitForward(
  e: TrainEmitter,
  graph: L3Graph,
  batch: number,
  replace?: (node: GraphNode, out: Value) => Value,
  flat?: FlatLayout,
  pairs?: Ctx["pairs"],
): Forward {
  const { nodes, used, convKernels } = logitNodes(graph);
  const env = emitInputs(e, graph, batch);
  const { param, flatParam } = declareParams(e, graph, used, convKernels, flat);
  const statOuts: Array<[string, string, number]> = [];
  const ctx: Ctx = {
    e,
    graph,
    param,
    flatParam,
    statOut: (n, v, momentum) => statOuts.push([n, v, momentum]),
    consumers: consumersOf(nodes),
    scaleFolds: new Map(),
    ...(pairs ? { pairs } : {}),
  };
  const backs = new Map<string, Backward>();
  for (const node of nodes) {
    if (node.op === "input") continue;
    const xs = node.inputs.map((i) => env.get(i) ?? fail(`node '${i}' has no value`));
    const { out, back } = emitNode(ctx, node, xs);
    if (back) backs.set(node.name, back);
    env.set(node.name, replace ? replace(node, out) : out);
  }
  return { nodes, used, convKernels, env, backs, statOuts, param };
}

/**
 * Builds the training-step graph of an L³-Net graph.
 *
 * Inputs: `frames` [B,H,W,3] and `audio` [B,bins,frames,1] (NHWC, as l3kit's batches), `targets`
 * [N,2] one-hot and `weights` [N] of the N scored combinations (sampled: N = B, weights 1/B;
 * in-batch: {@link inBatchPairs}' labels and weights), `lr` and `t` (the Adam step count after this
 * update) as scalars, and the flat vectors `params`, `m`, `v` (Adam's moments) and `stats` (the
 * batch-norm statistics) laid out as `info.layout`. Outputs: `loss`, `accuracy` (weighted; balanced
 * in-batch), `params'`, `m'`, `v'`, `stats'`. In `gradients` mode the inputs are per parameter
 * (`p:<name>`, `s:<name>`, no `lr`, `t`, moments) and the outputs `g:<name>` and `s':<name>`.
 */
export function buildTrainGraph(graph: L3Graph, opts: TrainGraphOptions): TrainGraphInfo {
  const B = opts.batch;
  if (!(Number.isInteger(B) && B >= 1)) fail(`batch must be an integer >= 1, got ${B}`);
  const inBatch = opts.pairing.kind === "in-batch";
  const shifts = inBatch ? Math.max(0, Math.min(opts.pairing.negatives ?? 1, B - 1)) : 0;
  const N = (shifts + 1) * B;
  const e = new TrainEmitter(true, opts.nchwcBlock ?? 0);
  const cut = jointCut(graph);
  const selectBack = new Map<string, (d: string) => string>();
  const lazy = inBatch && pairedByLocationDot(graph, cut);
  if (inBatch && !lazy) e.b.floatInit("select:audio", [N, B], inBatchAudioSelection(B, shifts));
  const layout = opts.mode === "step" ? trainLayout(graph) : undefined;
  const replaceAtCut = (node: GraphNode, out: Value) => {
    if (!inBatch || (node.name !== cut.vision && node.name !== cut.audio)) return out;
    if (lazy) return { ...out, pairing: node.name === cut.vision ? ("frame" as const) : ("audio" as const) };
    const picked = selectRows(e, out, node.name === cut.vision ? "vision" : "audio", N);
    selectBack.set(node.name, picked.back);
    return picked.value;
  };
  const pairs = { batch: B, shifts, combinations: N };
  const { nodes, used, convKernels, env, backs, statOuts, param } = emitForward(e, graph, B, replaceAtCut, layout, pairs);
  const logits = env.get(graph.outputs.logits) as Value;
  const { loss, accuracy, dlogits } = emitLoss(e, logits.name, N);
  e.output(loss, "loss", []);
  e.output(accuracy, "accuracy", []);

  // reverse pass
  const grads = new Map<string, string[]>([[graph.outputs.logits, [dlogits]]]);
  const paramGrads = new Map<string, string>();
  for (const node of [...nodes].reverse()) {
    const parts = grads.get(node.name);
    const back = backs.get(node.name);
    if (!parts || !back) continue;
    let dy = e.sumAll(parts, node.name);
    const sb = selectBack.get(node.name);
    if (sb) dy = sb(dy);
    const r = back(dy);
    r.inputs.forEach((g, i) => {
      if (!g) return;
      const src = node.inputs[i] as string;
      grads.set(src, [...(grads.get(src) ?? []), g]);
    });
    for (const [p, g] of Object.entries(r.params)) paramGrads.set(p, g);
  }
  const trainable = graph.params.filter((p) => p.trainable && used.has(p.name)).map((p) => p.name);
  for (const p of trainable) if (!paramGrads.has(p)) fail(`no gradient reaches '${p}'`);
  const shapeOf = (name: string) => engineShape(graph, name, convKernels);
  if (layout) {
    emitFlatAdam(e, graph, layout, paramGrads, opts);
    emitFlatStats(e, layout, statOuts);
  } else {
    for (const p of trainable) e.output(paramGrads.get(p) as string, trainNames.grad(p), shapeOf(p));
    // moving statistics: m·old + (1 − m)·batch (the variance unbiased, as PyTorch and the tfjs engine)
    for (const [name, batch, m] of statOuts) {
      const blended = e.add(e.mul(param(name), e.scalar(m), name), e.mul(batch, e.scalar(1 - m), name), name);
      e.output(blended, trainNames.newStat(name), shapeOf(name));
    }
  }
  const bytes = e.finish(
    `l3net_${graph.config.name}_${graph.config.fusion}_train`,
    `L³-Net '${graph.config.name}' (${graph.config.fusion} head) training ${opts.mode}: batch ${B}, ${inBatch ? `in-batch, ${shifts} shifts` : "sampled pairs"}`,
  );
  return {
    bytes,
    combinations: N,
    shifts,
    trainable,
    stats: statOuts.map(([n]) => n),
    convKernels: [...convKernels],
    layout,
  };
}

/** Weighted softmax cross-entropy, its gradient, and the weighted accuracy (tfjs' argmax: ties → class 0). */
function emitLoss(e: TrainEmitter, logits: string, N: number): { loss: string; accuracy: string; dlogits: string } {
  const targets = e.input("targets", [N, 2]);
  const weights = e.input("weights", [N]);
  const w2 = e.reshape(weights, [N, 1], "loss");
  const logp = e.op("LogSoftmax", [logits], "loss:logp", [{ name: "axis", i: 1 }]);
  const loss = e.op("Neg", [e.sum(e.mul(e.mul(targets, logp, "loss"), w2, "loss"), [0, 1], false, "loss")], "loss");
  const probs = e.op("Softmax", [logits], "loss:probs", [{ name: "axis", i: 1 }]);
  const dlogits = e.mul(e.sub(probs, targets, "loss"), w2, "loss:dlogits");
  const parts = [e.fresh("logit0"), e.fresh("logit1")];
  e.b.node("Split", [logits, e.b.ints([1, 1])], parts, [{ name: "axis", i: 1 }]);
  const says = e.op("Cast", [e.op("Greater", [parts[1] as string, parts[0] as string], "acc")], "acc", [{ name: "to", i: 1 }]);
  const t1 = e.op("Slice", [targets, e.b.ints([1]), e.b.ints([2]), e.b.ints([1])], "acc:t1");
  const wrong = e.op("Abs", [e.sub(says, t1, "acc")], "acc");
  const correct = e.sub(e.scalar(1), wrong, "acc");
  const accuracy = e.sum(e.mul(correct, w2, "acc"), [0, 1], false, "acc");
  return { loss, accuracy, dlogits };
}

/** Adam with bias correction and L2 decay on kernels, as the tfjs engine's `Adam`, over the flat vectors. */
function emitFlatAdam(
  e: TrainEmitter,
  graph: L3Graph,
  layout: FlatLayout,
  grads: ReadonlyMap<string, string>,
  opts: TrainGraphOptions,
): void {
  const b1 = opts.beta1 ?? 0.9;
  const b2 = opts.beta2 ?? 0.999;
  const eps = opts.epsilon ?? 1e-7;
  const P = layout.paramSize;
  const names = trainNames.flat;
  const lr = e.input("lr", []);
  const t = e.input("t", []);
  const m = e.input(names.m, [P]);
  const v = e.input(names.v, [P]);
  // alpha = lr·√(1 − β2^t)/(1 − β1^t)
  const c2 = e.op("Sqrt", [e.sub(e.scalar(1), e.op("Pow", [e.scalar(b2), t], "adam"), "adam")], "adam");
  const c1 = e.sub(e.scalar(1), e.op("Pow", [e.scalar(b1), t], "adam"), "adam");
  const alpha = e.op("Div", [e.mul(lr, c2, "adam"), c1], "adam:alpha");
  const parts = layout.params.map((slot) =>
    e.reshape(grads.get(slot.name) ?? fail(`no gradient reaches '${slot.name}'`), [slot.size], "adam:g"),
  );
  let g = parts.length === 1 ? (parts[0] as string) : e.op("Concat", parts, "adam:g", [{ name: "axis", i: 0 }]);
  const decay = 2 * opts.weightDecay;
  if (decay > 0) {
    // 2λ on kernels, 0 elsewhere
    const perValue = new Float32Array(P);
    for (const slot of layout.params)
      if (graph.params.find((p) => p.name === slot.name)?.role === "kernel") perValue.fill(decay, slot.offset, slot.offset + slot.size);
    e.b.floatInit("adam:decay", [P], perValue);
    g = e.add(g, e.mul(names.params, "adam:decay", "adam"), "adam:g");
  }
  e.opOutput("Add", [e.mul(m, e.scalar(b1), "adam"), e.mul(g, e.scalar(1 - b1), "adam")], names.newM, [P]);
  e.opOutput("Add", [e.mul(v, e.scalar(b2), "adam"), e.mul(e.mul(g, g, "adam"), e.scalar(1 - b2), "adam")], names.newV, [P]);
  const step = e.op("Div", [e.mul(names.newM, alpha, "adam"), e.add(e.op("Sqrt", [names.newV], "adam"), e.scalar(eps), "adam")], "adam");
  e.opOutput("Sub", [names.params, step], names.newParams, [P]);
}

/** The moving statistics, m·old + (1 − m)·batch, over the flat statistics vector. */
function emitFlatStats(e: TrainEmitter, layout: FlatLayout, statOuts: ReadonlyArray<[string, string, number]>): void {
  if (layout.statSize === 0) return;
  const byName = new Map(statOuts.map(([name, batch, m]) => [name, { batch, m }]));
  const momentum = new Float32Array(layout.statSize);
  const keep = new Float32Array(layout.statSize);
  const parts = layout.stats.map((slot) => {
    const s = byName.get(slot.name) ?? fail(`statistic '${slot.name}' gets no batch value`);
    momentum.fill(s.m, slot.offset, slot.offset + slot.size);
    keep.fill(1 - s.m, slot.offset, slot.offset + slot.size);
    return s.batch;
  });
  const batch = parts.length === 1 ? (parts[0] as string) : e.op("Concat", parts, "stats:batch", [{ name: "axis", i: 0 }]);
  e.b.floatInit("stats:momentum", [layout.statSize], momentum);
  e.b.floatInit("stats:keep", [layout.statSize], keep);
  const old = e.mul(trainNames.flat.stats, "stats:momentum", "stats");
  e.opOutput("Add", [old, e.mul(batch, "stats:keep", "stats")], trainNames.flat.newStats, [layout.statSize]);
}

/**
 * The inference graph of the same parameters (batch norm on the moving statistics, folded into
 * the convolutions): inputs `frames`, `audio` (`batch` samples), `p:<name>` and `s:<name>` as in the
 * training graph; output `logits`. Evaluates the engine's current parameters without exporting them.
 * `nchwcBlock` as in {@link TrainGraphOptions}.
 */
export function buildEvalGraph(graph: L3Graph, batch: number, nchwcBlock = 0): Uint8Array {
  const e = new TrainEmitter(false, nchwcBlock);
  const { env } = emitForward(e, graph, batch);
  e.output((env.get(graph.outputs.logits) as Value).name, "logits", [batch, 2]);
  return e.finish(`l3net_${graph.config.name}_${graph.config.fusion}_eval`, `L³-Net '${graph.config.name}' inference on parameter inputs`);
}
