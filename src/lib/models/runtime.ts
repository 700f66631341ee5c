/**
 * Executes an {@link L3Graph} with tfjs: a pure function of the variables and the inputs, so a trainer
 * can differentiate it with `tf.variableGrads` / `optimizer.minimize`.
 */
import * as tf from "@tensorflow/tfjs";
import { L3kitError } from "../util";
import type { GraphNode, L3Graph } from "./graph";

/** Options of a graph run. */
export interface RunOptions {
  /** Batch norm uses batch statistics (true) or the moving ones (false). */
  training: boolean;
  /**
   * In training, assign the moving mean/variance (momentum from the config; the variance is the unbiased
   * batch variance, as PyTorch). The assignment sits off the loss path, so gradients are unaffected.
   */
  updateBatchNorm: boolean;
}

/** The node names needed to compute `wanted`, following inputs backwards (stopping at `given` nodes). */
export function neededNodes(graph: L3Graph, wanted: readonly string[], given: ReadonlySet<string> = new Set()): Set<string> {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const need = new Set<string>();
  const stack = [...wanted];
  while (stack.length) {
    const name = stack.pop() as string;
    if (need.has(name)) continue;
    const node = byName.get(name);
    if (!node) throw new L3kitError(`no node named '${name}' in the graph`, { subject: "model", reason: "unknown-node" });
    need.add(name);
    if (!given.has(name)) stack.push(...node.inputs);
  }
  return need;
}

function getVar(vars: ReadonlyMap<string, tf.Variable>, name: string): tf.Variable {
  const v = vars.get(name);
  if (!v) throw new L3kitError(`missing parameter '${name}'`, { subject: "model", reason: "missing-param" });
  return v;
}

function dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (x.rank === 2) return tf.add(tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D), bias);
  const shape = x.shape;
  const cin = shape[shape.length - 1] as number;
  const y = tf.add(tf.matMul(tf.reshape(x, [-1, cin]) as tf.Tensor2D, kernel as tf.Tensor2D), bias);
  return tf.reshape(y, [...shape.slice(0, -1), kernel.shape[1] as number]);
}

function gridMaxPool(x: tf.Tensor4D, rows: Array<[number, number]>, cols: Array<[number, number]>): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  const gh = rows.length;
  const gw = cols.length;
  if (h % gh === 0 && w % gw === 0) {
    const p = tf.maxPool(x, [h / gh, w / gw], [h / gh, w / gw], "valid");
    return tf.reshape(p, [b, gh * gw * c]);
  }
  const cells: tf.Tensor2D[] = [];
  for (const [y0, y1] of rows) {
    for (const [x0, x1] of cols) cells.push(tf.max(tf.slice(x, [0, y0, x0, 0], [b, y1 - y0, x1 - x0, c]), [1, 2]) as tf.Tensor2D);
  }
  return tf.reshape(tf.stack(cells, 1), [b, gh * gw * c]);
}

/**
 * Batch norm with batch statistics over B,H,W and a hand-written gradient. Autodiff through
 * `moments` + `batchNorm` makes about 25 passes over the activation; this makes 12 (4 for the
 * moments, 2 forward, 6 backward), which matters on backends whose elementwise kernels are slow
 * (wasm). With x̂ = (x − μ)/σ and n = B·H·W: dβ = Σ dy, dγ = Σ dy·x̂,
 * dx = γ/σ · (dy − dβ/n − x̂·dγ/n). `onStats` sees the batch mean and (biased) variance.
 */
export function batchNormTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  onStats?: (mean: tf.Tensor, variance: tf.Tensor) => void,
): tf.Tensor4D {
  const channels = x.shape[3];
  const n = x.size / channels;
  const op = tf.customGrad((...args: unknown[]) => {
    const [xi, g, b, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const { mean, variance } = tf.moments(xi, [0, 1, 2]);
    onStats?.(mean, variance);
    const ones = tf.onesLike(g);
    const zeros = tf.zerosLike(g);
    const xhat = tf.batchNorm(xi, mean, variance, zeros, ones, epsilon);
    const y = tf.batchNorm(xhat, zeros, ones, b, g, 0);
    const scale = tf.div(g, tf.sqrt(tf.add(variance, epsilon)));
    save([xhat, scale]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, k] = saved as [tf.Tensor4D, tf.Tensor1D];
        const dBeta = tf.sum(dy, [0, 1, 2]);
        const dGamma = tf.sum(tf.mul(dy, xh), [0, 1, 2]);
        // dx = k·(z − dβ/n) with z = dy − x̂·dγ/n; the last step is one batchNorm pass.
        const z = tf.sub(dy, tf.mul(xh, tf.div(dGamma, n)));
        const dx = tf.batchNorm(z as tf.Tensor4D, tf.div(dBeta, n), tf.onesLike(k), tf.zerosLike(k), k, 0);
        return [dx, dGamma, dBeta];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}

function runNode(node: GraphNode, env: Map<string, tf.Tensor>, vars: ReadonlyMap<string, tf.Variable>, opts: RunOptions): tf.Tensor {
  const x = env.get(node.inputs[0] as string) as tf.Tensor;
  const y = env.get(node.inputs[1] as string) as tf.Tensor;
  switch (node.op) {
    case "input":
      throw new L3kitError(`input '${node.name}' was not fed`, { subject: "model", reason: "missing-input" });
    case "affine":
      return tf.add(tf.mul(x, node.mul), node.add);
    case "conv2d":
      return tf.conv2d(x as tf.Tensor4D, getVar(vars, node.kernel) as tf.Tensor4D, 1, "same");
    case "batchNorm": {
      const gamma = getVar(vars, node.gamma);
      const beta = getVar(vars, node.beta);
      const mm = getVar(vars, node.movingMean);
      const mv = getVar(vars, node.movingVariance);
      if (!opts.training) return tf.batchNorm(x as tf.Tensor4D, mm, mv, beta, gamma, node.epsilon);
      const update = (mean: tf.Tensor, variance: tf.Tensor): void => {
        const n = x.size / (x.shape[3] as number);
        const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
        const m = node.momentum;
        mm.assign(tf.add(tf.mul(mm, m), tf.mul(mean, 1 - m)));
        mv.assign(tf.add(tf.mul(mv, m), tf.mul(unbiased, 1 - m)));
      };
      return batchNormTraining(x as tf.Tensor4D, gamma, beta, node.epsilon, opts.updateBatchNorm ? update : undefined);
    }
    case "relu":
      return tf.relu(x);
    case "maxPool":
      return tf.maxPool(x as tf.Tensor4D, node.size, node.stride, "valid");
    case "globalMaxPool":
      return x.rank === 4 ? tf.max(x, [1, 2]) : tf.reshape(tf.max(x, [1, 2]), [-1, 1]);
    case "gridMaxPool":
      return gridMaxPool(x as tf.Tensor4D, node.rows, node.cols);
    case "dense":
      return dense(x, getVar(vars, node.kernel), getVar(vars, node.bias));
    case "concat":
      return tf.concat(
        node.inputs.map((n) => env.get(n) as tf.Tensor),
        -1,
      );
    case "l2Normalize":
      return tf.div(x, tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, true), node.epsilon)));
    case "euclideanDistance":
      return tf.sqrt(tf.add(tf.sum(tf.square(tf.sub(x, y)), -1, true), node.epsilon));
    case "dot":
      return tf.sum(tf.mul(x, y), -1, true);
    case "locationDot": {
      const [b, e] = y.shape as [number, number];
      return tf.sum(tf.mul(x, tf.reshape(y, [b, 1, 1, e])), -1);
    }
    case "softmax":
      return tf.softmax(x);
  }
}

/**
 * Runs the nodes needed for `wanted` (node names) from `feeds` (node name → tensor: the graph inputs, or
 * any intermediate node, e.g. the last vision map, whose value is then taken as given); returns every
 * wanted tensor. Call inside `tf.tidy` (intermediates are not disposed here).
 */
export function runGraph(
  graph: L3Graph,
  vars: ReadonlyMap<string, tf.Variable>,
  feeds: Readonly<Record<string, tf.Tensor>>,
  wanted: readonly string[],
  opts: RunOptions,
): Record<string, tf.Tensor> {
  const need = neededNodes(graph, wanted, new Set(Object.keys(feeds)));
  const env = new Map<string, tf.Tensor>();
  for (const node of graph.nodes) {
    if (!need.has(node.name)) continue;
    const fed = feeds[node.name];
    if (fed) {
      env.set(node.name, fed);
      continue;
    }
    if (node.op === "input") {
      throw new L3kitError(`input '${node.name}' is needed but was not given`, { subject: "model", reason: "missing-input" });
    }
    env.set(node.name, runNode(node, env, vars, opts));
  }
  const out: Record<string, tf.Tensor> = {};
  for (const w of wanted) out[w] = env.get(w) as tf.Tensor;
  return out;
}
