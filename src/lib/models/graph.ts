/**
 * The L³-Net graph as data: an ordered list of nodes with a small op set, the parameters they use and
 * the named outputs. It is built from a config alone (no weights), and is the single source for the
 * tfjs forward pass, the model summary (shapes, parameters, FLOPs) and exporters (ONNX).
 *
 * Layout is NHWC. Every node's `shape` is the per-sample output shape (without the batch axis).
 */
import { L3kitError } from "../util";
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

/** Names of the graph's outputs (node names). Optional ones exist only for some heads. */
export interface GraphOutputs {
  frames: string;
  audio: string;
  /** Last vision conv map (after ReLU), B×h×w×C. */
  visionMap: string;
  /** Global max of the vision map, B×C (the tower's embedding). */
  visionEmbedding: string;
  /** Grid-pooled vision map (probe feature), B×(gh·gw·C). */
  visionGrid: string;
  audioMap: string;
  audioEmbedding: string;
  /** Grid-pooled audio map (paper: 4×3×512 = 6144-d). */
  audioGrid: string;
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

/** Builds the graph of a (validated) config. */
export function buildL3Graph(config: L3NetConfig): L3Graph {
  const nodes: GraphNode[] = [];
  const params: ParamSpec[] = [];
  const shapeOf = new Map<string, number[]>();
  const add = <N extends GraphNode>(n: N): string => {
    nodes.push(n);
    shapeOf.set(n.name, n.shape);
    return n.name;
  };
  const param = (part: GraphPart, name: string, shape: number[], role: ParamRole, init: ParamInit): string => {
    params.push({ name, shape, role, trainable: role !== "moving_mean" && role !== "moving_variance", part, init });
    return name;
  };
  const last = (name: string): number => {
    const s = shapeOf.get(name) as number[];
    return s[s.length - 1] as number;
  };
  const bnMomentum = config.batchNorm.momentum;
  const bnEps = config.batchNorm.epsilon;

  const tower = (part: "vision" | "audio", inputShape: number[]) => {
    const t = config[part];
    let x = add({ op: "input", name: `${part}/input`, part, inputs: [], shape: inputShape });
    if (part === "vision" && config.vision.frontEnd.normalize === "symmetric") {
      x = add({ op: "affine", name: "vision/normalize", part, inputs: [x], shape: inputShape, mul: 2, add: -1 });
    }
    let [h, w] = inputShape as [number, number];
    const blocks = t.widths.length;
    for (let b = 0; b < blocks; b++) {
      const width = t.widths[b] as number;
      for (let c = 0; c < t.convsPerBlock; c++) {
        const cin = last(x);
        const pre = `${part}/block${b + 1}`;
        const k = t.kernelSize;
        const kernel = param(part, `${pre}/conv${c + 1}/kernel`, [k, k, cin, width], "kernel", { kind: "heNormal", fanIn: k * k * cin });
        x = add({
          op: "conv2d",
          name: `${pre}/conv${c + 1}`,
          part,
          inputs: [x],
          shape: [h, w, width],
          kernel,
          kernelSize: k,
          filters: width,
        });
        const bn = `${pre}/bn${c + 1}`;
        x = add({
          op: "batchNorm",
          name: bn,
          part,
          inputs: [x],
          shape: [h, w, width],
          gamma: param(part, `${bn}/gamma`, [width], "gamma", { kind: "ones" }),
          beta: param(part, `${bn}/beta`, [width], "beta", { kind: "zeros" }),
          movingMean: param(part, `${bn}/moving_mean`, [width], "moving_mean", { kind: "zeros" }),
          movingVariance: param(part, `${bn}/moving_variance`, [width], "moving_variance", { kind: "ones" }),
          epsilon: bnEps,
          momentum: bnMomentum,
        });
        x = add({ op: "relu", name: `${pre}/relu${c + 1}`, part, inputs: [x], shape: [h, w, width] });
      }
      if (b < blocks - 1) {
        h = Math.floor(h / 2);
        w = Math.floor(w / 2);
        x = add({ op: "maxPool", name: `${part}/block${b + 1}/pool`, part, inputs: [x], shape: [h, w, width], size: 2, stride: 2 });
      }
    }
    const map = x;
    const c = last(map);
    const embedding = add({ op: "globalMaxPool", name: `${part}/global_pool`, part, inputs: [map], shape: [c] });
    const [gh, gw] = t.gridPool;
    const grid = add({
      op: "gridMaxPool",
      name: `${part}/grid_pool`,
      part,
      inputs: [map],
      shape: [gh * gw * c],
      optional: true,
      grid: [gh, gw],
      rows: adaptiveWindows(h, gh),
      cols: adaptiveWindows(w, gw),
    });
    return { input: `${part}/input`, map, embedding, grid };
  };

  const v = tower("vision", visionInputShape(config));
  const a = tower("audio", audioInputShape(config));

  const dense = (name: string, input: string, units: number, relu: boolean, kernelInit?: ParamInit, biasInit?: ParamInit): string => {
    const cin = last(input);
    const inShape = shapeOf.get(input) as number[];
    const shape = [...inShape.slice(0, -1), units];
    const kernel = param("fusion", `${name}/kernel`, [cin, units], "kernel", kernelInit ?? { kind: "heNormal", fanIn: cin });
    const bias = param("fusion", `${name}/bias`, [units], "bias", biasInit ?? { kind: "zeros" });
    let out = add({ op: "dense", name, part: "fusion", inputs: [input], shape, kernel, bias, units });
    if (relu) out = add({ op: "relu", name: `${name}_relu`, part: "fusion", inputs: [out], shape });
    return out;
  };
  const { hidden, embedDim } = config.head;
  const outputs: GraphOutputs = {
    frames: v.input,
    audio: a.input,
    visionMap: v.map,
    visionEmbedding: v.embedding,
    visionGrid: v.grid,
    audioMap: a.map,
    audioEmbedding: a.embedding,
    audioGrid: a.grid,
    logits: "fusion/logits",
    probs: "fusion/probs",
  };
  const project = (side: "vision" | "audio", input: string): string => {
    const h1 = dense(`fusion/${side}_fc1`, input, hidden, true);
    const h2 = dense(`fusion/${side}_fc2`, h1, embedDim, false);
    return add({
      op: "l2Normalize",
      name: `fusion/${side}_embedding`,
      part: "fusion",
      inputs: [h2],
      shape: shapeOf.get(h2) as number[],
      epsilon: 1e-12,
    });
  };
  let logits: string;
  switch (config.fusion) {
    case "concat": {
      const cat = add({
        op: "concat",
        name: "fusion/concat",
        part: "fusion",
        inputs: [v.embedding, a.embedding],
        shape: [last(v.embedding) + last(a.embedding)],
      });
      const h1 = dense("fusion/fc1", cat, hidden, true);
      logits = dense("fusion/logits", h1, 2, false);
      break;
    }
    case "euclidean":
    case "cosine": {
      const ve = project("vision", v.embedding);
      const ae = project("audio", a.embedding);
      const score =
        config.fusion === "euclidean"
          ? add({ op: "euclideanDistance", name: "fusion/distance", part: "fusion", inputs: [ve, ae], shape: [1], epsilon: 1e-12 })
          : add({ op: "dot", name: "fusion/cosine", part: "fusion", inputs: [ve, ae], shape: [1] });
      // Calibrated start: the decision boundary sits where random embeddings land (d = √2, cos = 0).
      const k = config.fusion === "euclidean" ? [5, -5] : [-5, 5];
      const b = config.fusion === "euclidean" ? [-5 * Math.SQRT2, 5 * Math.SQRT2] : [0, 0];
      logits = dense("fusion/logits", score, 2, false, { kind: "values", values: k }, { kind: "values", values: b });
      Object.assign(outputs, { visionProjection: ve, audioProjection: ae, score });
      break;
    }
    case "avol": {
      const ve = project("vision", v.map);
      const ae = project("audio", a.embedding);
      const [mh, mw] = shapeOf.get(v.map) as number[];
      const sim = add({
        op: "locationDot",
        name: "fusion/similarity_map",
        part: "fusion",
        inputs: [ve, ae],
        shape: [mh as number, mw as number],
      });
      const score = add({ op: "globalMaxPool", name: "fusion/max_similarity", part: "fusion", inputs: [sim], shape: [1] });
      logits = dense("fusion/logits", score, 2, false, { kind: "values", values: [-5, 5] }, { kind: "values", values: [0, 0] });
      Object.assign(outputs, { visionProjection: ve, audioProjection: ae, score, similarityMap: sim });
      break;
    }
  }
  add({ op: "softmax", name: "fusion/probs", part: "fusion", inputs: [logits], shape: [2] });
  return { config, nodes, params, outputs };
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
