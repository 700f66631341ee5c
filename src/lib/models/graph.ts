/**
 * The L³-Net graph as data: an ordered list of nodes with a small op set, the parameters they use and
 * the named outputs. It is built from a config alone (no weights), and is the single source for the
 * tfjs forward pass, the model summary (shapes, parameters, FLOPs) and exporters (ONNX).
 *
 * Layout is NHWC. Every node's `shape` is the per-sample output shape (without the batch axis).
 */
import { ConfigError, L3kitError } from "../util";
import { type L3NetConfig, audioInputShape, lastMapSize, visionInputShape } from "./config";

/** Which part of the network a node or parameter belongs to. */
export type GraphPart = "vision" | "audio" | "fusion";

/** The role of a parameter; `kernel`s are the ones that get weight decay. */
export type ParamRole = "kernel" | "bias" | "gamma" | "beta" | "moving_mean" | "moving_variance";

/** How a parameter is initialised. `heNormal` is Keras' he_normal: truncated normal (±2σ), σ = √(2/fanIn)/0.8796. */
export type ParamInit = { kind: "heNormal"; fanIn: number } | { kind: "zeros" } | { kind: "ones" } | { kind: "values"; values: number[] };

/** A parameter: a stable name such as `vision/block1/conv1/kernel`, its shape and role. */
export interface ParamSpec {
  name: string;
  shape: number[];
  role: ParamRole;
  trainable: boolean;
  part: GraphPart;
  init: ParamInit;
}

/** A max-pool window [y0, y1) × [x0, x1) of a grid pool. */
export interface PoolWindow {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

interface NodeBase {
  /** The node's output name (unique), e.g. `vision/block1/conv1`. */
  name: string;
  part: GraphPart;
  /** Names of the input nodes. */
  inputs: string[];
  /** Per-sample output shape. */
  shape: number[];
  /** True for nodes off the main path (probe features), computed only when asked for. */
  optional?: boolean;
}

/**
 * The op set. Semantics (x is the first input, y the second):
 * - `input`: a graph input (`frames` B×H×W×3 in [0,1], or `audio` B×bins×frames×1).
 * - `affine`: x·mul + add (scalar constants).
 * - `conv2d`: 2-D convolution, kernel [k,k,Cin,Cout], stride 1, same (zero) padding, no bias.
 * - `batchNorm`: (x − mean)/√(var + ε)·γ + β per channel; in training the batch statistics over B,H,W
 *   are used and the moving ones updated.
 * - `relu`, `softmax` (last axis).
 * - `maxPool`: size×size window, stride `stride`, valid padding (floor).
 * - `globalMaxPool`: max over all spatial axes: B×H×W×C → B×C; B×H×W → B×1.
 * - `gridMaxPool`: adaptive max pool to a grid (PyTorch's rule: window i spans ⌊i·n/g⌋ … ⌈(i+1)·n/g⌉),
 *   flattened in (row, col, channel) order → B×(gh·gw·C).
 * - `dense`: x·kernel + bias over the last axis (for B×H×W×C this is a 1×1 conv).
 * - `concat`: along the last axis.
 * - `l2Normalize`: x / √max(Σx², ε) over the last axis.
 * - `euclideanDistance`: √(Σ(x − y)² + ε) over the last axis → B×1.
 * - `dot`: Σ x·y over the last axis → B×1.
 * - `locationDot`: x B×H×W×E, y B×E → Σ_e x[b,h,w,e]·y[b,e] → B×H×W.
 */
export type GraphNode =
  | (NodeBase & { op: "input" })
  | (NodeBase & { op: "affine"; mul: number; add: number })
  | (NodeBase & { op: "conv2d"; kernel: string; kernelSize: number; filters: number })
  | (NodeBase & {
      op: "batchNorm";
      gamma: string;
      beta: string;
      movingMean: string;
      movingVariance: string;
      epsilon: number;
      momentum: number;
    })
  | (NodeBase & { op: "relu" })
  | (NodeBase & { op: "maxPool"; size: number; stride: number })
  | (NodeBase & { op: "globalMaxPool" })
  | (NodeBase & { op: "gridMaxPool"; grid: [number, number]; rows: Array<[number, number]>; cols: Array<[number, number]> })
  | (NodeBase & { op: "dense"; kernel: string; bias: string; units: number })
  | (NodeBase & { op: "concat" })
  | (NodeBase & { op: "l2Normalize"; epsilon: number })
  | (NodeBase & { op: "euclideanDistance"; epsilon: number })
  | (NodeBase & { op: "dot" })
  | (NodeBase & { op: "locationDot" })
  | (NodeBase & { op: "softmax" });

export type GraphOp = GraphNode["op"];

/**
 * The layer embeddings and probe features are pooled from:
 * - `conv` — the raw output of the tower's last conv (conv4_2 in the paper's towers), before batch
 *   norm and ReLU: what L³ (marl/l3embedding's embedding models) and OpenL3 pool. The default.
 * - `relu` — the same map after batch norm and ReLU (relu4_2): what the fusion head reads.
 */
export const EMBEDDING_LAYERS = ["conv", "relu"] as const;

/** See {@link EMBEDDING_LAYERS}. */
export type EmbeddingLayer = (typeof EMBEDDING_LAYERS)[number];

/** The paper-style name of a tower's last conv (`conv4_2`) or ReLU (`relu4_2`) for a config's tower. */
export function lastLayerName(tower: { widths: readonly number[]; convsPerBlock: number }, layer: EmbeddingLayer): string {
  return `${layer}${tower.widths.length}_${tower.convsPerBlock}`;
}

/**
 * Checks an embedding layer choice: `conv` or `relu`, or (with a config) the paper-style name of
 * that tower's layer, e.g. `conv4_2` / `relu4_2`. Default (undefined): `conv`. Throws a ConfigError
 * naming the valid values otherwise.
 */
export function resolveEmbeddingLayer(
  layer: unknown,
  tower?: { widths: readonly number[]; convsPerBlock: number },
  subject = "embedding",
): EmbeddingLayer {
  if (layer === undefined) return "conv";
  if ((EMBEDDING_LAYERS as readonly unknown[]).includes(layer)) return layer as EmbeddingLayer;
  if (tower) for (const l of EMBEDDING_LAYERS) if (layer === lastLayerName(tower, l)) return l;
  const named = tower ? ` (here ${lastLayerName(tower, "conv")})` : "";
  const relu = tower ? ` (${lastLayerName(tower, "relu")})` : "";
  throw new ConfigError(
    `unknown layer ${JSON.stringify(layer)}: expected "conv" — the last conv's raw output${named}, before batch norm and ReLU, as L³ and OpenL3 pool — or "relu" — the same after batch norm and ReLU${relu}, what the fusion head reads`,
    { subject, reason: "bad-layer" },
  );
}

/** Names of the graph's outputs (node names). Optional ones exist only for some heads. */
export interface GraphOutputs {
  frames: string;
  audio: string;
  /** Last vision map (after batch norm and ReLU), B×h×w×C: what the fusion head and localization read. */
  visionMap: string;
  /** Global max of the vision map after ReLU, B×C: the fusion head's input. */
  visionEmbedding: string;
  /** Grid-pooled vision map after ReLU, B×(gh·gw·C). */
  visionGrid: string;
  /** The raw output of the last vision conv (before batch norm and ReLU: the paper's conv4_2), B×h×w×C. */
  visionConv: string;
  /** Global max of the raw last conv, B×C: the vision embedding as L³ and OpenL3 compute it (optional node). */
  visionConvEmbedding: string;
  /** Grid max of the raw last conv, B×(gh·gw·C) (optional node; paper 4×4×512 = 8192-d). */
  visionConvGrid: string;
  audioMap: string;
  audioEmbedding: string;
  /** Grid-pooled audio map after ReLU. */
  audioGrid: string;
  /** The raw output of the last audio conv (conv4_2). */
  audioConv: string;
  /** Global max of the raw last audio conv (optional node): the L³ / OpenL3 audio embedding. */
  audioConvEmbedding: string;
  /** Grid max of the raw last audio conv (optional node; paper 4×3×512 = 6144-d, L³'s ESC-50 feature). */
  audioConvGrid: string;
  /** B×2; index 1 = "the frame and the audio correspond". */
  logits: string;
  probs: string;
  /** euclidean/cosine: B×E L2-normalised; avol: vision B×h×w×E, audio B×E. */
  visionProjection?: string;
  audioProjection?: string;
  /** B×1 scalar fed to the 1→2 calibration (distance, cosine, or max similarity). */
  score?: string;
  /** avol: B×h×w cosine similarity of every vision location with the audio embedding. */
  similarityMap?: string;
}

/** A built graph. */
export interface L3Graph {
  config: L3NetConfig;
  nodes: GraphNode[];
  params: ParamSpec[];
  outputs: GraphOutputs;
}

/** Windows of an adaptive pool of `n` cells into `g` (PyTorch AdaptiveMaxPool rule). */
export function adaptiveWindows(n: number, g: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < g; i++) out.push([Math.floor((i * n) / g), Math.ceil(((i + 1) * n) / g)]);
  return out;
}

/** The nodes and parameters of a graph being built, with the layer helpers the builders share. */
class GraphSink {
  readonly nodes: GraphNode[] = [];
  readonly params: ParamSpec[] = [];
  private readonly shapes = new Map<string, number[]>();

  constructor(private readonly bn: L3NetConfig["batchNorm"]) {}

  add<N extends GraphNode>(n: N): string {
    this.nodes.push(n);
    this.shapes.set(n.name, n.shape);
    return n.name;
  }

  param(part: GraphPart, name: string, shape: number[], role: ParamRole, init: ParamInit): string {
    this.params.push({ name, shape, role, trainable: role !== "moving_mean" && role !== "moving_variance", part, init });
    return name;
  }

  shape(name: string): number[] {
    return this.shapes.get(name) as number[];
  }

  /** The last axis (channels) of a node's shape. */
  last(name: string): number {
    const s = this.shape(name);
    return s[s.length - 1] as number;
  }

  /** A batch norm over the last axis of `input`, with its own γ, β and moving statistics. */
  batchNorm(name: string, input: string, part: GraphPart): string {
    const shape = this.shape(input);
    const ch = shape[shape.length - 1] as number;
    return this.add({
      op: "batchNorm",
      name,
      part,
      inputs: [input],
      shape,
      gamma: this.param(part, `${name}/gamma`, [ch], "gamma", { kind: "ones" }),
      beta: this.param(part, `${name}/beta`, [ch], "beta", { kind: "zeros" }),
      movingMean: this.param(part, `${name}/moving_mean`, [ch], "moving_mean", { kind: "zeros" }),
      movingVariance: this.param(part, `${name}/moving_variance`, [ch], "moving_variance", { kind: "ones" }),
      epsilon: this.bn.epsilon,
      momentum: this.bn.momentum,
    });
  }

  /** A fusion-head dense layer over the last axis (+ ReLU when asked). */
  dense(name: string, input: string, units: number, relu: boolean, kernelInit?: ParamInit, biasInit?: ParamInit): string {
    const cin = this.last(input);
    const shape = [...this.shape(input).slice(0, -1), units];
    const kernel = this.param("fusion", `${name}/kernel`, [cin, units], "kernel", kernelInit ?? { kind: "heNormal", fanIn: cin });
    const bias = this.param("fusion", `${name}/bias`, [units], "bias", biasInit ?? { kind: "zeros" });
    let out = this.add({ op: "dense", name, part: "fusion", inputs: [input], shape, kernel, bias, units });
    if (relu) out = this.add({ op: "relu", name: `${name}_relu`, part: "fusion", inputs: [out], shape });
    return out;
  }
}

/** The named nodes of one built tower. */
interface TowerNodes {
  input: string;
  map: string;
  embedding: string;
  grid: string;
  conv: string;
  convEmbedding: string;
  convGrid: string;
}

/**
 * One tower: the input (and its normalisation), `widths.length` blocks of [conv → BN → ReLU] ×
 * `convsPerBlock` with 2×2 max-pools between blocks, then the pools of the last map (after ReLU:
 * the fusion head's input) and, off the main path, the same pools of the last conv's raw output.
 */
function buildTower(g: GraphSink, config: L3NetConfig, part: "vision" | "audio", inputShape: number[]): TowerNodes {
  const t = config[part];
  let x = g.add({ op: "input", name: `${part}/input`, part, inputs: [], shape: inputShape });
  if (part === "vision" && config.vision.frontEnd.normalize === "symmetric") {
    x = g.add({ op: "affine", name: "vision/normalize", part, inputs: [x], shape: inputShape, mul: 2, add: -1 });
  }
  if (part === "audio" && config.audio.frontEnd.kind === "mel") {
    // l3embedding's and OpenL3's mel models normalise the log-mel spectrogram with a batch norm
    // (Keras' default: one channel) before the first conv; their linear-spectrogram model does not
    x = g.batchNorm("audio/input_bn", x, part);
  }
  let [h, w] = inputShape as [number, number];
  const blocks = t.widths.length;
  let lastConv = x;
  for (let b = 0; b < blocks; b++) {
    const width = t.widths[b] as number;
    const pre = `${part}/block${b + 1}`;
    for (let c = 0; c < t.convsPerBlock; c++) {
      const cin = g.last(x);
      const k = t.kernelSize;
      const kernel = g.param(part, `${pre}/conv${c + 1}/kernel`, [k, k, cin, width], "kernel", { kind: "heNormal", fanIn: k * k * cin });
      x = g.add({
        op: "conv2d",
        name: `${pre}/conv${c + 1}`,
        part,
        inputs: [x],
        shape: [h, w, width],
        kernel,
        kernelSize: k,
        filters: width,
      });
      lastConv = x;
      x = g.batchNorm(`${pre}/bn${c + 1}`, x, part);
      x = g.add({ op: "relu", name: `${pre}/relu${c + 1}`, part, inputs: [x], shape: [h, w, width] });
    }
    if (b < blocks - 1) {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
      x = g.add({ op: "maxPool", name: `${pre}/pool`, part, inputs: [x], shape: [h, w, width], size: 2, stride: 2 });
    }
  }
  const map = x;
  const c = g.last(map);
  const embedding = g.add({ op: "globalMaxPool", name: `${part}/global_pool`, part, inputs: [map], shape: [c] });
  const [gh, gw] = t.gridPool;
  const gridPool = (name: string, input: string) =>
    g.add({
      op: "gridMaxPool",
      name,
      part,
      inputs: [input],
      shape: [gh * gw * c],
      optional: true,
      grid: [gh, gw],
      rows: adaptiveWindows(h, gh),
      cols: adaptiveWindows(w, gw),
    });
  const grid = gridPool(`${part}/grid_pool`, map);
  // the reference features: the same pools over the last conv's raw output (off the main path)
  const convEmbedding = g.add({
    op: "globalMaxPool",
    name: `${part}/conv_global_pool`,
    part,
    inputs: [lastConv],
    shape: [c],
    optional: true,
  });
  const convGrid = gridPool(`${part}/conv_grid_pool`, lastConv);
  return { input: `${part}/input`, map, embedding, grid, conv: lastConv, convEmbedding, convGrid };
}

/** The fusion head of `config.fusion` on the two towers; returns the logits node and adds the head's outputs. */
function buildHead(g: GraphSink, config: L3NetConfig, v: TowerNodes, a: TowerNodes, outputs: GraphOutputs): string {
  const { hidden, embedDim } = config.head;
  const project = (side: "vision" | "audio", input: string): string => {
    const h1 = g.dense(`fusion/${side}_fc1`, input, hidden, true);
    const h2 = g.dense(`fusion/${side}_fc2`, h1, embedDim, false);
    return g.add({ op: "l2Normalize", name: `fusion/${side}_embedding`, part: "fusion", inputs: [h2], shape: g.shape(h2), epsilon: 1e-12 });
  };
  switch (config.fusion) {
    case "concat": {
      const cat = g.add({
        op: "concat",
        name: "fusion/concat",
        part: "fusion",
        inputs: [v.embedding, a.embedding],
        shape: [g.last(v.embedding) + g.last(a.embedding)],
      });
      return g.dense("fusion/logits", g.dense("fusion/fc1", cat, hidden, true), 2, false);
    }
    case "euclidean":
    case "cosine": {
      const ve = project("vision", v.embedding);
      const ae = project("audio", a.embedding);
      const score =
        config.fusion === "euclidean"
          ? g.add({ op: "euclideanDistance", name: "fusion/distance", part: "fusion", inputs: [ve, ae], shape: [1], epsilon: 1e-12 })
          : g.add({ op: "dot", name: "fusion/cosine", part: "fusion", inputs: [ve, ae], shape: [1] });
      // Calibrated start: the decision boundary sits where random embeddings land (d = √2, cos = 0).
      const k = config.fusion === "euclidean" ? [5, -5] : [-5, 5];
      const b = config.fusion === "euclidean" ? [-5 * Math.SQRT2, 5 * Math.SQRT2] : [0, 0];
      Object.assign(outputs, { visionProjection: ve, audioProjection: ae, score });
      return g.dense("fusion/logits", score, 2, false, { kind: "values", values: k }, { kind: "values", values: b });
    }
    case "avol": {
      const ve = project("vision", v.map);
      const ae = project("audio", a.embedding);
      const [mh, mw] = g.shape(v.map) as [number, number];
      const sim = g.add({ op: "locationDot", name: "fusion/similarity_map", part: "fusion", inputs: [ve, ae], shape: [mh, mw] });
      const score = g.add({ op: "globalMaxPool", name: "fusion/max_similarity", part: "fusion", inputs: [sim], shape: [1] });
      Object.assign(outputs, { visionProjection: ve, audioProjection: ae, score, similarityMap: sim });
      return g.dense("fusion/logits", score, 2, false, { kind: "values", values: [-5, 5] }, { kind: "values", values: [0, 0] });
    }
  }
}

/** Builds the graph of a (validated) config. */
export function buildL3Graph(config: L3NetConfig): L3Graph {
  const g = new GraphSink(config.batchNorm);
  const v = buildTower(g, config, "vision", visionInputShape(config));
  const a = buildTower(g, config, "audio", audioInputShape(config));
  const outputs: GraphOutputs = {
    frames: v.input,
    audio: a.input,
    visionMap: v.map,
    visionEmbedding: v.embedding,
    visionGrid: v.grid,
    visionConv: v.conv,
    visionConvEmbedding: v.convEmbedding,
    visionConvGrid: v.convGrid,
    audioMap: a.map,
    audioEmbedding: a.embedding,
    audioGrid: a.grid,
    audioConv: a.conv,
    audioConvEmbedding: a.convEmbedding,
    audioConvGrid: a.convGrid,
    logits: "fusion/logits",
    probs: "fusion/probs",
  };
  const logits = buildHead(g, config, v, a, outputs);
  g.add({ op: "softmax", name: "fusion/probs", part: "fusion", inputs: [logits], shape: [2] });
  return { config, nodes: g.nodes, params: g.params, outputs };
}

/** The shape of the last vision and audio conv maps [h, w, C] of a config. */
export function lastMapShapes(config: L3NetConfig): { vision: [number, number, number]; audio: [number, number, number] } {
  const [vh, vw] = visionInputShape(config);
  const [ah, aw] = audioInputShape(config);
  const vl = lastMapSize([vh, vw], config.vision.widths.length);
  const al = lastMapSize([ah, aw], config.audio.widths.length);
  return {
    vision: [vl[0], vl[1], config.vision.widths[config.vision.widths.length - 1] as number],
    audio: [al[0], al[1], config.audio.widths[config.audio.widths.length - 1] as number],
  };
}

/**
 * Where the two modalities meet: the vision-only and audio-only nodes that the joint part of the
 * head reads (concat: the pooled embeddings; euclidean, cosine: the L2-normalised projections;
 * avol: the per-location vision projection and the audio projection).
 */
export function jointCut(graph: L3Graph): { vision: string; audio: string } {
  const modality = new Map<string, Set<string>>();
  const read = new Set<string>();
  for (const n of graph.nodes) {
    const m = n.op === "input" ? new Set([n.part]) : new Set(n.inputs.flatMap((i) => [...(modality.get(i) ?? [])]));
    modality.set(n.name, m);
    if (m.size === 2) for (const i of n.inputs) if (modality.get(i)?.size === 1) read.add(i);
  }
  const vision = [...read].filter((r) => modality.get(r)?.has("vision"));
  const audio = [...read].filter((r) => modality.get(r)?.has("audio"));
  if (vision.length !== 1 || audio.length !== 1)
    throw new L3kitError(`the head reads ${[...read].join(", ")}: no single vision/audio cut`, { subject: `model '${graph.config.name}'` });
  return { vision: vision[0] as string, audio: audio[0] as string };
}
