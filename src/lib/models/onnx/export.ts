/**
 * ONNX export of an L³-Net graph (inference mode), written with a small protobuf writer.
 *
 * Inputs are NHWC as in l3kit (`frames` B×H×W×3 in [0, 1], `audio` B×bins×frames×1) with a dynamic
 * batch dimension; each is transposed to NCHW once, the towers run in NCHW (the layout every ONNX
 * runtime is fastest at), batch norm is folded into the convolutions (moving statistics; one with no
 * conv before it, such as the mel models' input batch norm, becomes a scale and shift), and map
 * outputs are transposed back to NHWC, so every output has the shape `L3Net.forward` gives.
 */
import * as path from "node:path";
import { ConfigError, L3kitError, writeFileAtomic } from "../../util";
import type { GraphNode, GraphOutputs, L3Graph } from "../graph";
import type { L3Net } from "../model";
import { neededNodes } from "../runtime";
import { PbWriter } from "./protobuf";

/** Named outputs of the model that can be exported (the keys of `GraphOutputs` other than the inputs). */
export type OnnxOutputName = Exclude<keyof GraphOutputs, "frames" | "audio">;

/** The outputs exported by default (those the model has: `similarityMap` only for AVOL heads). */
export const ONNX_DEFAULT_OUTPUTS: readonly OnnxOutputName[] = [
  "logits",
  "probs",
  "visionEmbedding",
  "audioEmbedding",
  "visionMap",
  "audioMap",
  "similarityMap",
  "visionGrid",
  "audioGrid",
];

/**
 * Further named outputs, exported only when asked for: the fusion heads' projections and score
 * (some heads), and the raw last conv of each tower with its global and grid max-pools (the
 * features L³ and OpenL3 pool; the last batch norm is then not folded into that conv).
 */
export const ONNX_EXTRA_OUTPUTS: readonly OnnxOutputName[] = [
  "visionProjection",
  "audioProjection",
  "score",
  "visionConv",
  "visionConvEmbedding",
  "visionConvGrid",
  "audioConv",
  "audioConvEmbedding",
  "audioConvGrid",
];

/** Options of {@link exportOnnx}. */
export interface OnnxExportOptions {
  /**
   * Outputs: names of `GraphOutputs` (e.g. "probs", "visionMap", "similarityMap") or node names of the
   * graph (e.g. "vision/block2/relu2"); each becomes an ONNX output of that name. Default
   * {@link ONNX_DEFAULT_OUTPUTS} (those the model has). Only the inputs the outputs need are declared.
   */
  outputs?: readonly string[];
  /** Fold batch norm into the preceding convolution (default true); false keeps BatchNormalization nodes. */
  foldBatchNorm?: boolean;
  /** ONNX opset, 13 to 17 (default 13). */
  opset?: number;
}

/** A parameter's values, HWIO for conv kernels, [in, out] for dense kernels. */
export interface OnnxWeight {
  shape: readonly number[];
  data: Float32Array;
}

/** What an export produced, besides the bytes. */
export interface OnnxExportInfo {
  /** The ModelProto, protobuf-encoded. */
  bytes: Uint8Array;
  /** Graph inputs declared (a subset of "frames", "audio"), with per-sample NHWC shapes. */
  inputs: Array<{ name: "frames" | "audio"; shape: number[] }>;
  /** Graph outputs, in order, with per-sample shapes (NHWC for maps). */
  outputs: Array<{ name: string; node: string; shape: number[] }>;
}

export const FLOAT = 1;
export const INT64 = 7;
export const INT32 = 6;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

/** A node attribute: float, int or ints. */
export type Attr = { name: string; f: number } | { name: string; i: number } | { name: string; ints: readonly number[] };

function attrProto(a: Attr): PbWriter {
  const w = new PbWriter().string(1, a.name);
  if ("f" in a) w.int(20, ATTR_FLOAT).float(2, a.f);
  else if ("i" in a) w.int(20, ATTR_INT).int(3, a.i);
  else {
    w.int(20, ATTR_INTS);
    for (const v of a.ints) w.int(8, v);
  }
  return w;
}

export function tensorProto(name: string, dims: readonly number[], type: number, raw: Uint8Array): PbWriter {
  const w = new PbWriter();
  for (const d of dims) w.int(1, d);
  return w.int(2, type).string(8, name).bytes(9, raw);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function floatBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i] as number, true);
  return out;
}

function int32Bytes(data: Int32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setInt32(i * 4, data[i] as number, true);
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    dv.setBigInt64(i * 8, BigInt(v), true);
  });
  return out;
}

export function valueInfo(name: string, dims: ReadonlyArray<number | string>): PbWriter {
  const shape = new PbWriter();
  for (const d of dims) shape.message(1, typeof d === "number" ? new PbWriter().int(1, d) : new PbWriter().string(2, d));
  const tensorType = new PbWriter().int(1, FLOAT).message(2, shape);
  return new PbWriter().string(1, name).message(2, new PbWriter().message(1, tensorType));
}

/** How a node's value is laid out in the ONNX graph. */
interface Value {
  name: string;
  /** 4-D tensors are NCHW inside the graph; everything else keeps l3kit's layout. */
  nchw: boolean;
  rank: number;
}

/** A graph being assembled. */
export class OnnxGraphBuilder {
  readonly nodes: PbWriter[] = [];
  readonly initializers: PbWriter[] = [];
  private consts = 0;
  private readonly constCache = new Map<string, string>();

  node(
    op: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs: readonly Attr[] = [],
    name?: string,
    domain?: string,
  ): void {
    const w = new PbWriter();
    for (const i of inputs) w.string(1, i);
    for (const o of outputs) w.string(2, o);
    w.string(3, name ?? outputs[0] ?? op).string(4, op);
    for (const a of attrs) w.message(5, attrProto(a));
    if (domain) w.string(7, domain);
    this.nodes.push(w);
  }

  floatInit(name: string, dims: readonly number[], data: Float32Array): string {
    this.initializers.push(tensorProto(name, dims, FLOAT, floatBytes(data)));
    return name;
  }

  /** A named int32 tensor constant (1-D). */
  int32Init(name: string, data: Int32Array): string {
    this.initializers.push(tensorProto(name, [data.length], INT32, int32Bytes(data)));
    return name;
  }

  /** A float scalar constant (shared by value). */
  scalar(v: number): string {
    return this.shared(`f:${v}`, () => ({ dims: [], type: FLOAT, raw: floatBytes(Float32Array.of(v)) }));
  }

  /** A 1-D float constant of `length` copies of `v` (shared by value and length). */
  filled(v: number, length: number): string {
    return this.shared(`F:${v}x${length}`, () => ({
      dims: [length],
      type: FLOAT,
      raw: floatBytes(new Float32Array(length).fill(v)),
    }));
  }

  /** A 1-D int64 constant (shared by value). */
  ints(values: readonly number[]): string {
    return this.shared(`i:${values.join(",")}`, () => ({ dims: [values.length], type: INT64, raw: int64Bytes(values) }));
  }

  /** The constant cached under `key`, or a new one named `const:<n>` from `make` (its name is set here). */
  private shared(key: string, make: () => { dims: readonly number[]; type: number; raw: Uint8Array }): string {
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = `const:${this.consts++}`;
    const { dims, type, raw } = make();
    this.initializers.push(tensorProto(name, dims, type, raw));
    this.constCache.set(key, name);
    return name;
  }
}

function fail(message: string): never {
  throw new L3kitError(message, { subject: "ONNX export", reason: "onnx-export" });
}

/** Resolves output names (`GraphOutputs` keys or node names) to graph nodes; throws a ConfigError for unknown ones. */
export function resolveOnnxOutputs(graph: L3Graph, requested: readonly string[] | undefined): Array<{ name: string; node: string }> {
  const o = graph.outputs as unknown as Record<string, string | undefined>;
  const byName = new Set(graph.nodes.map((n) => n.name));
  const list = requested ?? ONNX_DEFAULT_OUTPUTS.filter((k) => o[k] !== undefined);
  if (list.length === 0) throw new ConfigError("no outputs requested", { subject: "ONNX export", reason: "no-outputs" });
  const seen = new Set<string>();
  return list.map((name) => {
    if (seen.has(name)) throw new ConfigError(`output '${name}' is listed twice`, { subject: "ONNX export", reason: "bad-output" });
    seen.add(name);
    if (name === "frames" || name === "audio")
      throw new ConfigError(`'${name}' is an input, not an output`, { subject: "ONNX export", reason: "bad-output" });
    const key = o[name];
    if ((ONNX_DEFAULT_OUTPUTS as readonly string[]).includes(name) || (ONNX_EXTRA_OUTPUTS as readonly string[]).includes(name)) {
      if (!key)
        throw new ConfigError(`the '${graph.config.fusion}' head has no output '${name}'`, {
          subject: "ONNX export",
          reason: "bad-output",
        });
      return { name, node: key };
    }
    if (byName.has(name)) return { name, node: name };
    throw new ConfigError(
      `unknown output '${name}' (valid: ${[...ONNX_DEFAULT_OUTPUTS, ...ONNX_EXTRA_OUTPUTS].filter((k) => o[k]).join(", ")}, or a node name)`,
      { subject: "ONNX export", reason: "bad-output" },
    );
  });
}

/**
 * A batch norm not folded into a conv (one that follows no conv, such as the mel models' input
 * batch norm, or whose conv is itself an output), on an NCHW value: with `fold`, its moving
 * statistics as a per-channel scale and shift (Mul, Add); without, a BatchNormalization node.
 */
function emitStandaloneBatchNorm(
  b: OnnxGraphBuilder,
  node: Extract<GraphNode, { op: "batchNorm" }>,
  x: string,
  result: string,
  p: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array },
  fold: boolean,
): void {
  const c = p.gamma.length;
  if (!fold) {
    const inputs = [
      x,
      b.floatInit(node.gamma, [c], p.gamma),
      b.floatInit(node.beta, [c], p.beta),
      b.floatInit(node.movingMean, [c], p.mean),
      b.floatInit(node.movingVariance, [c], p.variance),
    ];
    b.node("BatchNormalization", inputs, [result], [{ name: "epsilon", f: node.epsilon }]);
    return;
  }
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const k = (p.gamma[i] as number) / Math.sqrt((p.variance[i] as number) + node.epsilon);
    scale[i] = k;
    shift[i] = (p.beta[i] as number) - (p.mean[i] as number) * k;
  }
  b.node("Mul", [x, b.floatInit(`${node.name}:scale`, [1, c, 1, 1], scale)], [`${result}:scaled`]);
  b.node("Add", [`${result}:scaled`, b.floatInit(`${node.name}:shift`, [1, c, 1, 1], shift)], [result]);
}

/** What an op's emitter gets: the graph being written, and this node's input values and output name. */
interface EmitContext {
  b: OnnxGraphBuilder;
  graph: L3Graph;
  /** Fold batch norms into the preceding convolution. */
  fold: boolean;
  /** Nodes needed for the requested outputs. */
  need: ReadonlySet<string>;
  /** How many needed nodes read each node. */
  consumers: ReadonlyMap<string, number>;
  requestedNodes: ReadonlySet<string>;
  /** Convs waiting for their batch norm to fold into them. */
  deferredConv: Map<string, Extract<GraphNode, { op: "conv2d" }>>;
  values: Map<string, Value>;
  inputs: OnnxExportInfo["inputs"];
  get: (name: string) => Value;
  w: (name: string) => OnnxWeight;
  emitConv: (conv: Extract<GraphNode, { op: "conv2d" }>, x: Value, result: string, scale?: Float64Array, shift?: Float64Array) => void;
  lastAxis: (v: Value) => number;
  out: (n: GraphNode, suffix?: string) => string;
  /** The node's first and second input values (undefined for `input` nodes / one-input ops). */
  x: Value | undefined;
  y: Value | undefined;
  result: string;
  rank: number;
  /** Records the node's value (its output name) and layout. */
  set: (nchw: boolean) => void;
}

/** `result` = Σ `input`² over the last axis of `like`'s layout, the axis kept (L2 norm and euclidean distance). */
function sumSquaresLastAxis(c: EmitContext, input: string, like: Value, result: string): void {
  c.b.node(
    "ReduceSumSquare",
    [input],
    [result],
    [
      { name: "axes", ints: [c.lastAxis(like)] },
      { name: "keepdims", i: 1 },
    ],
  );
}

/** One emitter per op of the graph IR (the mapped type makes the compiler ask for every op). */
const EMITTERS: { [K in GraphNode["op"]]: (c: EmitContext, node: Extract<GraphNode, { op: K }>) => void } = {
  input: (c, node) => {
    const { b, graph, inputs, result, set } = c;
    const name =
      node.name === graph.outputs.frames ? "frames" : node.name === graph.outputs.audio ? "audio" : fail(`unknown input '${node.name}'`);
    if (node.shape.length !== 3) fail(`input '${node.name}' must be H×W×C`);
    inputs.push({ name, shape: [...node.shape] });
    b.node("Transpose", [name], [result], [{ name: "perm", ints: [0, 3, 1, 2] }]);
    set(true);
  },
  affine: (c, node) => {
    const { b, out, x, result, set } = c;
    const xv = x as Value;
    b.node("Mul", [xv.name, b.scalar(node.mul)], [out(node, "mul")]);
    b.node("Add", [out(node, "mul"), b.scalar(node.add)], [result]);
    set(xv.nchw);
  },
  conv2d: (c, node) => {
    const { graph, fold, need, consumers, requestedNodes, deferredConv, values, emitConv, x, result, rank, set } = c;
    const xv = x as Value;
    if (!xv.nchw) fail(`conv '${node.name}' needs a 4-D input`);
    if (node.kernelSize % 2 !== 1) fail(`conv '${node.name}': same padding needs an odd kernel`);
    if (fold && consumers.get(node.name) === 1 && !requestedNodes.has(node.name)) {
      const bn = graph.nodes.find((n) => n.op === "batchNorm" && n.inputs[0] === node.name && need.has(n.name));
      if (bn) {
        deferredConv.set(node.name, node);
        values.set(node.name, { name: xv.name, nchw: true, rank });
        return;
      }
    }
    emitConv(node, xv, result);
    set(true);
  },
  batchNorm: (c, node) => {
    const { b, fold, deferredConv, w, emitConv, x, result, set } = c;
    const conv = deferredConv.get(node.inputs[0] as string);
    const gamma = w(node.gamma).data;
    const beta = w(node.beta).data;
    const mean = w(node.movingMean).data;
    const variance = w(node.movingVariance).data;
    if (conv) {
      const c = gamma.length;
      const scale = new Float64Array(c);
      const shift = new Float64Array(c);
      for (let i = 0; i < c; i++) {
        scale[i] = (gamma[i] as number) / Math.sqrt((variance[i] as number) + node.epsilon);
        shift[i] = (beta[i] as number) - (mean[i] as number) * (scale[i] as number);
      }
      emitConv(conv, x as Value, result, scale, shift);
    } else {
      const xv = x as Value;
      if (!xv.nchw) fail(`batch norm '${node.name}' needs a 4-D input`);
      emitStandaloneBatchNorm(b, node, xv.name, result, { gamma, beta, mean, variance }, fold);
    }
    set(true);
  },
  relu: (c) => {
    const { b, x, result, set } = c;
    b.node("Relu", [(x as Value).name], [result]);
    set((x as Value).nchw);
  },
  maxPool: (c, node) => {
    const { b, x, result, set } = c;
    if (!(x as Value).nchw) fail(`max-pool '${node.name}' needs a 4-D input`);
    b.node(
      "MaxPool",
      [(x as Value).name],
      [result],
      [
        { name: "kernel_shape", ints: [node.size, node.size] },
        { name: "strides", ints: [node.stride, node.stride] },
      ],
    );
    set(true);
  },
  globalMaxPool: (c, node) => {
    const { b, out, x, result, set } = c;
    const xv = x as Value;
    if (xv.nchw) {
      b.node(
        "ReduceMax",
        [xv.name],
        [result],
        [
          { name: "axes", ints: [2, 3] },
          { name: "keepdims", i: 0 },
        ],
      );
    } else {
      b.node("Flatten", [xv.name], [out(node, "flat")], [{ name: "axis", i: 1 }]);
      b.node(
        "ReduceMax",
        [out(node, "flat")],
        [result],
        [
          { name: "axes", ints: [1] },
          { name: "keepdims", i: 1 },
        ],
      );
    }
    set(false);
  },
  gridMaxPool: (c, node) => {
    const { b, graph, out, x, result, set } = c;
    const xv = x as Value;
    if (!xv.nchw) fail(`grid pool '${node.name}' needs a 4-D input`);
    const inShape = graph.nodes.find((n) => n.name === node.inputs[0])?.shape as number[];
    const [h, wd] = inShape as [number, number];
    const [gh, gw] = node.grid;
    if (h % gh === 0 && wd % gw === 0) {
      b.node(
        "MaxPool",
        [xv.name],
        [out(node, "pool")],
        [
          { name: "kernel_shape", ints: [h / gh, wd / gw] },
          { name: "strides", ints: [h / gh, wd / gw] },
        ],
      );
      b.node("Transpose", [out(node, "pool")], [out(node, "nhwc")], [{ name: "perm", ints: [0, 2, 3, 1] }]);
      b.node("Flatten", [out(node, "nhwc")], [result], [{ name: "axis", i: 1 }]);
    } else {
      const cells: string[] = [];
      node.rows.forEach(([y0, y1], r) => {
        node.cols.forEach(([x0, x1], c) => {
          const cell = out(node, `cell${r}_${c}`);
          b.node("Slice", [xv.name, b.ints([y0, x0]), b.ints([y1, x1]), b.ints([2, 3])], [`${cell}:slice`]);
          b.node(
            "ReduceMax",
            [`${cell}:slice`],
            [cell],
            [
              { name: "axes", ints: [2, 3] },
              { name: "keepdims", i: 0 },
            ],
          );
          cells.push(cell);
        });
      });
      b.node("Concat", cells, [result], [{ name: "axis", i: 1 }]);
    }
    set(false);
  },
  dense: (c, node) => {
    const { b, w, x, result, set } = c;
    const xv = x as Value;
    const k = w(node.kernel);
    const bias = w(node.bias);
    const [cin, units] = k.shape as [number, number];
    if (xv.nchw) {
      // a dense layer over the channels of every location = a 1×1 convolution
      const oi = new Float32Array(k.data.length);
      for (let i = 0; i < cin; i++) for (let o = 0; o < units; o++) oi[o * cin + i] = k.data[i * units + o] as number;
      b.node(
        "Conv",
        [xv.name, b.floatInit(`${node.kernel}:oihw`, [units, cin, 1, 1], oi), b.floatInit(node.bias, [units], bias.data)],
        [result],
        [{ name: "kernel_shape", ints: [1, 1] }],
      );
      set(true);
    } else {
      if (xv.rank !== 2) fail(`dense '${node.name}' on a rank-${xv.rank} input is not supported`);
      b.node("Gemm", [xv.name, b.floatInit(node.kernel, [cin, units], k.data), b.floatInit(node.bias, [units], bias.data)], [result]);
      set(false);
    }
  },
  concat: (c, node) => {
    const { b, get, lastAxis, result, rank, set } = c;
    const vs = node.inputs.map(get);
    const nchw = vs[0]?.nchw ?? false;
    if (vs.some((v) => v.nchw !== nchw || v.rank !== rank)) fail(`concat '${node.name}' mixes layouts`);
    b.node(
      "Concat",
      vs.map((v) => v.name),
      [result],
      [{ name: "axis", i: lastAxis(vs[0] as Value) }],
    );
    set(nchw);
  },
  l2Normalize: (c, node) => {
    const { b, out, x, result, set } = c;
    const xv = x as Value;
    sumSquaresLastAxis(c, xv.name, xv, out(node, "ss"));
    b.node("Max", [out(node, "ss"), b.scalar(node.epsilon)], [out(node, "clamped")]);
    b.node("Sqrt", [out(node, "clamped")], [out(node, "norm")]);
    b.node("Div", [xv.name, out(node, "norm")], [result]);
    set(xv.nchw);
  },
  euclideanDistance: (c, node) => {
    const { b, out, x, y, result, set } = c;
    const xv = x as Value;
    const yv = y ?? fail(`'${node.name}' needs two inputs`);
    b.node("Sub", [xv.name, yv.name], [out(node, "diff")]);
    sumSquaresLastAxis(c, out(node, "diff"), xv, out(node, "ss"));
    b.node("Add", [out(node, "ss"), b.scalar(node.epsilon)], [out(node, "eps")]);
    b.node("Sqrt", [out(node, "eps")], [result]);
    set(xv.nchw);
  },
  dot: (c, node) => {
    const { b, lastAxis, out, x, y, result, set } = c;
    const xv = x as Value;
    const yv = y ?? fail(`'${node.name}' needs two inputs`);
    b.node("Mul", [xv.name, yv.name], [out(node, "prod")]);
    b.node("ReduceSum", [out(node, "prod"), b.ints([lastAxis(xv)])], [result], [{ name: "keepdims", i: 1 }]);
    set(xv.nchw);
  },
  locationDot: (c, node) => {
    const { b, out, x, y, result, set } = c;
    const xv = x as Value;
    const yv = y ?? fail(`'${node.name}' needs two inputs`);
    if (!xv.nchw || yv.rank !== 2) fail(`'${node.name}' needs a B×h×w×E map and a B×E vector`);
    b.node("Reshape", [yv.name, b.ints([0, -1, 1, 1])], [out(node, "y4")]);
    b.node("Mul", [xv.name, out(node, "y4")], [out(node, "prod")]);
    b.node("ReduceSum", [out(node, "prod"), b.ints([1])], [result], [{ name: "keepdims", i: 0 }]);
    set(false);
  },
  softmax: (c, node) => {
    const { b, x, result, set } = c;
    const xv = x as Value;
    if (xv.nchw) fail(`softmax '${node.name}' on a 4-D map is not supported`);
    b.node("Softmax", [xv.name], [result], [{ name: "axis", i: xv.rank - 1 }]);
    set(false);
  },
};

/**
 * Builds the ONNX ModelProto of a graph with the given weights (by parameter name). The lower-level
 * form of {@link exportOnnx}, for weights that do not live in an {@link L3Net}.
 */
export function exportOnnxGraph(graph: L3Graph, weight: (name: string) => OnnxWeight, opts: OnnxExportOptions = {}): OnnxExportInfo {
  const opset = opts.opset ?? 13;
  if (!(Number.isInteger(opset) && opset >= 13 && opset <= 17))
    throw new ConfigError(`opset must be an integer in [13, 17], got ${opset}`, { subject: "ONNX export", reason: "bad-opset" });
  const fold = opts.foldBatchNorm ?? true;
  const outs = resolveOnnxOutputs(graph, opts.outputs);
  const need = neededNodes(
    graph,
    outs.map((o) => o.node),
  );
  const requestedNodes = new Set(outs.map((o) => o.node));
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) if (need.has(n.name)) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);

  const b = new OnnxGraphBuilder();
  const values = new Map<string, Value>();
  const deferredConv = new Map<string, Extract<GraphNode, { op: "conv2d" }>>();
  const inputs: OnnxExportInfo["inputs"] = [];
  const get = (name: string): Value => values.get(name) ?? fail(`node '${name}' has no value`);
  const w = (name: string): OnnxWeight => {
    const v = weight(name);
    const size = v.shape.reduce((a, c) => a * c, 1);
    if (v.data.length !== size) fail(`parameter '${name}' has ${v.data.length} values for shape [${v.shape.join(",")}]`);
    return v;
  };
  const out = (n: GraphNode, suffix = "out") => `${n.name}:${suffix}`;

  /** Conv weight OIHW (+ optional per-output scale) and bias from an HWIO kernel. */
  const convInit = (conv: Extract<GraphNode, { op: "conv2d" }>, scale?: Float64Array, shift?: Float64Array) => {
    const k = w(conv.kernel);
    const [kh, kw, cin, cout] = k.shape as [number, number, number, number];
    const oihw = new Float32Array(k.data.length);
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let i = 0; i < cin; i++)
          for (let o = 0; o < cout; o++) {
            const v = k.data[((y * kw + x) * cin + i) * cout + o] as number;
            oihw[((o * cin + i) * kh + y) * kw + x] = scale ? v * (scale[o] as number) : v;
          }
    const names = [b.floatInit(`${conv.kernel}:oihw`, [cout, cin, kh, kw], oihw)];
    if (shift) names.push(b.floatInit(`${conv.kernel}:bias`, [cout], Float32Array.from(shift)));
    return { names, kh, kw };
  };
  const emitConv = (conv: Extract<GraphNode, { op: "conv2d" }>, x: Value, result: string, scale?: Float64Array, shift?: Float64Array) => {
    const { names, kh, kw } = convInit(conv, scale, shift);
    const ph = (kh - 1) / 2;
    const pw = (kw - 1) / 2;
    b.node(
      "Conv",
      [x.name, ...names],
      [result],
      [
        { name: "kernel_shape", ints: [kh, kw] },
        { name: "strides", ints: [1, 1] },
        { name: "pads", ints: [ph, pw, ph, pw] },
      ],
    );
  };
  /** The axis that is "last" in l3kit's NHWC layout. */
  const lastAxis = (v: Value) => (v.nchw ? 1 : v.rank - 1);

  for (const node of graph.nodes) {
    if (!need.has(node.name)) continue;
    const rank = node.shape.length + 1;
    const x = node.op === "input" ? undefined : get(node.inputs[0] as string);
    const y = node.inputs[1] === undefined ? undefined : values.get(node.inputs[1]);
    const result = out(node);
    const set = (nchw: boolean) => values.set(node.name, { name: result, nchw, rank });
    const context: EmitContext = {
      b,
      graph,
      fold,
      need,
      consumers,
      requestedNodes,
      deferredConv,
      values,
      inputs,
      get,
      w,
      emitConv,
      lastAxis,
      out,
      x,
      y,
      result,
      rank,
      set,
    };
    (EMITTERS[node.op] as (c: EmitContext, n: GraphNode) => void)(context, node);
  }

  const outputs: OnnxExportInfo["outputs"] = [];
  const outputInfos: PbWriter[] = [];
  for (const o of outs) {
    const v = get(o.node);
    const node = graph.nodes.find((n) => n.name === o.node) as GraphNode;
    if (v.nchw) b.node("Transpose", [v.name], [o.name], [{ name: "perm", ints: [0, 2, 3, 1] }], `output:${o.name}`);
    else b.node("Identity", [v.name], [o.name], [], `output:${o.name}`);
    outputs.push({ name: o.name, node: o.node, shape: [...node.shape] });
    outputInfos.push(valueInfo(o.name, ["batch", ...node.shape]));
  }
  const doc = `L³-Net '${graph.config.name}' (${graph.config.fusion} head), inference mode; NHWC inputs, batch norm ${fold ? "folded" : "kept"}`;
  return { bytes: writeModel(b, graph, inputs, outputInfos, opset, doc), inputs, outputs };
}

/** The ModelProto bytes: the builder's nodes and initializers, the inputs and outputs, opset and l3kit's config as metadata. */
function writeModel(
  b: OnnxGraphBuilder,
  graph: L3Graph,
  inputs: OnnxExportInfo["inputs"],
  outputInfos: PbWriter[],
  opset: number,
  doc: string,
): Uint8Array {
  const graphW = new PbWriter();
  for (const n of b.nodes) graphW.message(1, n);
  graphW.string(2, `l3net_${graph.config.name}_${graph.config.fusion}`);
  for (const t of b.initializers) graphW.message(5, t);
  for (const i of inputs) graphW.message(11, valueInfo(i.name, ["batch", ...i.shape]));
  for (const o of outputInfos) graphW.message(12, o);
  return new PbWriter()
    .int(1, opset >= 14 ? 8 : 7)
    .string(2, "l3kit")
    .string(3, "1")
    .string(6, doc)
    .message(7, graphW)
    .message(8, new PbWriter().string(1, "").int(2, opset))
    .message(14, new PbWriter().string(1, "l3kit.config").string(2, JSON.stringify(graph.config)))
    .finish();
}

/** The model's weights as a lookup for {@link exportOnnxGraph} (reads each variable once). */
export function onnxWeightsOf(model: L3Net): (name: string) => OnnxWeight {
  if (model.isDisposed) throw new L3kitError("the model was disposed", { subject: "ONNX export", reason: "disposed" });
  return (name) => {
    const v = model.variable(name);
    return { shape: v.shape, data: v.dataSync() as Float32Array };
  };
}

/**
 * The model as an ONNX ModelProto (protobuf bytes), inference mode: NHWC inputs `frames` and `audio`
 * with a dynamic batch dimension, batch norm folded into the convolutions, outputs named as
 * requested (default {@link ONNX_DEFAULT_OUTPUTS}), maps in NHWC.
 */
export function exportOnnx(model: L3Net, opts: OnnxExportOptions = {}): Uint8Array {
  return exportOnnxGraph(model.graph, onnxWeightsOf(model), opts).bytes;
}

/** Writes {@link exportOnnx}'s bytes to `file` (atomically; the folder is created). Returns the byte count. */
export async function saveOnnx(model: L3Net, file: string, opts: OnnxExportOptions = {}): Promise<number> {
  const bytes = exportOnnx(model, opts);
  await writeFileAtomic(path.resolve(file), bytes);
  return bytes.length;
}
