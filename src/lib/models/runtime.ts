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
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const out = tf.batchNorm(x as tf.Tensor4D, mean, variance, beta, gamma, node.epsilon);
      if (opts.updateBatchNorm) {
        const n = x.size / (x.shape[3] as number);
        const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
        const m = node.momentum;
        mm.assign(tf.add(tf.mul(mm, m), tf.mul(mean, 1 - m)));
        mv.assign(tf.add(tf.mul(mv, m), tf.mul(unbiased, 1 - m)));
      }
      return out;
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
