/**
 * L³-Net models: variables created from a graph's parameter specs, a forward pass (inference or
 * training), tower-only passes, parameter access by stable name, counts and the AVC loss.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError, L3kitError, Rng } from "../util";
import { type L3NetConfig, type L3NetConfigInput, type L3PresetName, resolveL3Config } from "./config";
import {
  buildL3Graph,
  type EmbeddingLayer,
  type GraphPart,
  jointCut,
  type L3Graph,
  type ParamRole,
  type ParamSpec,
  resolveEmbeddingLayer,
} from "./graph";
import { runGraph } from "./runtime";

/** Options of a forward pass. */
export interface ForwardOptions {
  /** Batch norm with batch statistics (training) or moving ones (default false). */
  training?: boolean;
  /** In training, update the moving BN statistics (default: same as `training`). */
  updateBatchNorm?: boolean;
  /** Also compute the grid-pooled probe features (`visionGrid`, `audioGrid`). */
  grid?: boolean;
}

/** The inputs of the full model. */
export interface L3Inputs {
  /** B×H×W×3 frames in [0, 1] (the model normalises them itself). */
  frames: tf.Tensor4D;
  /** B×bins×frames×1 spectrograms from the config's audio front-end. */
  audio: tf.Tensor4D;
}

/** The outputs of {@link L3Net.forward}. Dispose them (`tf.dispose(outputs)`) or run inside `tf.tidy`. */
export interface L3Outputs {
  /** B×2 logits; index 1 = "frame and audio correspond". */
  logits: tf.Tensor2D;
  /** softmax(logits). */
  probs: tf.Tensor2D;
  /** B×C global max of the last vision map (512-d for the paper). */
  visionEmbedding: tf.Tensor2D;
  audioEmbedding: tf.Tensor2D;
  /** Last conv maps after ReLU (paper: 28×28×512 and 32×24×512). */
  visionMap: tf.Tensor4D;
  audioMap: tf.Tensor4D;
  /** euclidean/cosine: B×E L2-normalised projections; avol: vision B×h×w×E, audio B×E. */
  visionProjection?: tf.Tensor;
  audioProjection?: tf.Tensor2D;
  /** B×1: distance (euclidean), cosine (cosine) or max similarity (avol). */
  score?: tf.Tensor2D;
  /** avol: B×h×w per-location cosine similarity with the audio embedding. */
  similarityMap?: tf.Tensor3D;
  /** With `grid: true`: grid-pooled probe features. */
  visionGrid?: tf.Tensor2D;
  audioGrid?: tf.Tensor2D;
}

/** Options of {@link L3Net.visionTower} / {@link L3Net.audioTower}. */
export interface TowerOptions extends ForwardOptions {
  /**
   * What `embedding` and `grid` pool: `relu` (default here) — the last map after batch norm and ReLU,
   * the fusion head's input; `conv` — the last conv's raw output, as L³ and OpenL3 (the default of
   * the embedding and probe-feature functions). See {@link EMBEDDING_LAYERS}.
   */
  layer?: EmbeddingLayer;
}

/** The outputs of a tower alone. */
export interface TowerOutputs {
  /** B×C global max-pool of the chosen layer (see {@link TowerOptions.layer}). */
  embedding: tf.Tensor2D;
  /** The last map (after batch norm and ReLU), whatever the layer. */
  map: tf.Tensor4D;
  /** With `grid: true`: B×(gh·gw·C), grid max-pool of the chosen layer. */
  grid?: tf.Tensor2D;
}

/** A variable with its stable name. */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
  role: ParamRole;
  part: GraphPart;
  trainable: boolean;
}

/** Parameter counts of one part. */
export interface PartParamCount {
  /** Conv kernel weights only (the paper's count; no biases, no BN). */
  conv: number;
  /** Dense kernels and biases. */
  dense: number;
  /** BN γ and β (trainable). */
  batchNorm: number;
  /** BN moving mean and variance (not trainable). */
  batchNormStats: number;
  trainable: number;
  total: number;
}

/** Parameter counts by part and in all. */
export interface L3ParamCount {
  vision: PartParamCount;
  audio: PartParamCount;
  fusion: PartParamCount;
  trainable: number;
  nonTrainable: number;
  total: number;
}

/** Counts parameters from a config or graph alone (nothing is allocated). */
export function countL3Params(config: L3PresetName | L3NetConfig | L3NetConfigInput | L3Graph): L3ParamCount {
  const graph = typeof config === "object" && "nodes" in config ? config : buildL3Graph(resolveL3Config(config));
  const empty = (): PartParamCount => ({ conv: 0, dense: 0, batchNorm: 0, batchNormStats: 0, trainable: 0, total: 0 });
  const parts = { vision: empty(), audio: empty(), fusion: empty() };
  let trainable = 0;
  let total = 0;
  const isConv = new Set(graph.nodes.flatMap((n) => (n.op === "conv2d" ? [n.kernel] : [])));
  for (const p of graph.params) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const part = parts[p.part];
    if (p.role === "kernel" && isConv.has(p.name)) part.conv += size;
    else if (p.role === "kernel" || p.role === "bias") part.dense += size;
    else if (p.role === "gamma" || p.role === "beta") part.batchNorm += size;
    else part.batchNormStats += size;
    part.total += size;
    if (p.trainable) {
      part.trainable += size;
      trainable += size;
    }
    total += size;
  }
  return { ...parts, trainable, nonTrainable: total - trainable, total };
}

function initValues(spec: ParamSpec, seed: number | string): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const init = spec.init;
  switch (init.kind) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "values":
      if (init.values.length !== size)
        throw new L3kitError(`init of '${spec.name}' has ${init.values.length} values for ${size}`, { subject: "model" });
      out.set(init.values);
      break;
    case "heNormal": {
      // Keras he_normal: truncated normal at ±2σ, σ = √(2/fanIn) / 0.87962566 (the truncation's std).
      const std = Math.sqrt(2 / init.fanIn) / 0.8796256610342398;
      const rng = new Rng(`${seed}|${spec.name}`);
      for (let i = 0; i < size; i++) {
        let z = rng.normal();
        while (z > 2 || z < -2) z = rng.normal();
        out[i] = z * std;
      }
      break;
    }
  }
  return out;
}

/** Options of {@link buildL3Net}. */
export interface BuildOptions {
  /** Seed of the weight initialisation (default 0); each parameter draws from its own stream (seed, name). */
  seed?: number | string;
  /** false: fill every parameter with zeros instead of drawing the initialisation (for loading weights). */
  initialize?: boolean;
}

/**
 * An L³-Net: the graph of a config plus its variables. Build with {@link buildL3Net}; free with
 * {@link L3Net.dispose}.
 */
export class L3Net {
  readonly config: L3NetConfig;
  readonly graph: L3Graph;
  private readonly vars = new Map<string, tf.Variable>();
  private readonly names = new Map<tf.Variable, string>();
  private readonly specs = new Map<string, ParamSpec>();
  private disposed = false;
  private cut: { vision: string; audio: string } | undefined;

  constructor(config: L3NetConfig, opts: BuildOptions = {}) {
    this.config = config;
    this.graph = buildL3Graph(config);
    const seed = opts.seed ?? 0;
    for (const spec of this.graph.params) {
      const values = opts.initialize === false ? new Float32Array(spec.shape.reduce((x, y) => x * y, 1)) : initValues(spec, seed);
      const v = tf.tidy(() => tf.variable(tf.tensor(values, spec.shape, "float32"), spec.trainable));
      this.vars.set(spec.name, v);
      this.names.set(v, spec.name);
      this.specs.set(spec.name, spec);
    }
  }

  private check(): void {
    if (this.disposed) throw new L3kitError("the model was disposed", { subject: "model", reason: "disposed" });
  }

  private checkInput(t: tf.Tensor, input: "frames" | "audio"): void {
    const name = this.graph.outputs[input];
    const node = this.graph.nodes.find((n) => n.name === name);
    const want = node?.shape ?? [];
    const ok = t.rank === 4 && want.every((d, i) => t.shape[i + 1] === d);
    if (!ok) {
      const fe = this.config.audio.frontEnd;
      const what =
        input === "frames"
          ? "frames in [0, 1]"
          : `${fe.kind} spectrogram, ${fe.kind === "mel" ? `${fe.nMels} mel bands` : `${want[0]} bins`} × ${want[1]} frames`;
      throw new ConfigError(`${input} input has shape [${t.shape.join(",")}]; the model expects [B,${want.join(",")}] (${what})`, {
        subject: `model '${this.config.name}'`,
        reason: "bad-input-shape",
      });
    }
  }

  private opts(o: ForwardOptions): { training: boolean; updateBatchNorm: boolean } {
    const training = o.training ?? false;
    return { training, updateBatchNorm: training && (o.updateBatchNorm ?? true) };
  }

  /**
   * The full forward pass. A pure function of the variables and inputs (plus, in training, the
   * moving-statistics update), so it can be used inside `tf.variableGrads` / `optimizer.minimize`.
   */
  forward(inputs: L3Inputs, opts: ForwardOptions = {}): L3Outputs {
    this.check();
    this.checkInput(inputs.frames, "frames");
    this.checkInput(inputs.audio, "audio");
    const o = this.graph.outputs;
    const keys: Array<keyof L3Outputs> = ["logits", "probs", "visionEmbedding", "audioEmbedding", "visionMap", "audioMap"];
    for (const k of ["visionProjection", "audioProjection", "score", "similarityMap"] as const) if (o[k]) keys.push(k);
    if (opts.grid) keys.push("visionGrid", "audioGrid");
    const ro = this.opts(opts);
    return tf.tidy(() => {
      const res = runGraph(
        this.graph,
        this.vars,
        { [o.frames]: inputs.frames, [o.audio]: inputs.audio },
        keys.map((k) => o[k] as string),
        ro,
      );
      const out: Record<string, tf.Tensor> = {};
      for (const k of keys) out[k] = res[o[k] as string] as tf.Tensor;
      return out;
    }) as unknown as L3Outputs;
  }

  private tower(part: "vision" | "audio", x: tf.Tensor4D, opts: TowerOptions): TowerOutputs {
    this.check();
    this.checkInput(x, part === "vision" ? "frames" : "audio");
    const o = this.graph.outputs;
    const conv = resolveEmbeddingLayer(opts.layer ?? "relu", this.config[part], `${part} tower`) === "conv";
    const names =
      part === "vision"
        ? {
            input: o.frames,
            map: o.visionMap,
            embedding: conv ? o.visionConvEmbedding : o.visionEmbedding,
            grid: conv ? o.visionConvGrid : o.visionGrid,
          }
        : {
            input: o.audio,
            map: o.audioMap,
            embedding: conv ? o.audioConvEmbedding : o.audioEmbedding,
            grid: conv ? o.audioConvGrid : o.audioGrid,
          };
    const wanted = [names.embedding, names.map, ...(opts.grid ? [names.grid] : [])];
    const ro = this.opts(opts);
    return tf.tidy(() => {
      const r = runGraph(this.graph, this.vars, { [names.input]: x }, wanted, ro);
      const out: Record<string, tf.Tensor> = { embedding: r[names.embedding] as tf.Tensor, map: r[names.map] as tf.Tensor };
      if (opts.grid) out.grid = r[names.grid] as tf.Tensor;
      return out;
    }) as unknown as TowerOutputs;
  }

  /** The vision tower alone: frames B×H×W×3 in [0, 1] → pooled vector and last map (and the grid feature). */
  visionTower(frames: tf.Tensor4D, opts: TowerOptions = {}): TowerOutputs {
    return this.tower("vision", frames, opts);
  }

  /** The audio tower alone: spectrograms B×bins×frames×1 → pooled vector and last map (and the grid feature). */
  audioTower(audio: tf.Tensor4D, opts: TowerOptions = {}): TowerOutputs {
    return this.tower("audio", audio, opts);
  }

  /**
   * Runs graph nodes by name (e.g. `vision/block2/relu2`, `fusion/similarity_map`) from the inputs
   * (`frames`, `audio`) and/or values for any node by name (e.g. `{ [model.graph.outputs.visionMap]: v }`
   * runs the head from a given vision map; differentiable w.r.t. it).
   */
  run(
    feeds: Partial<L3Inputs> & Record<string, tf.Tensor | undefined>,
    nodeNames: readonly string[],
    opts: ForwardOptions = {},
  ): Record<string, tf.Tensor> {
    this.check();
    const o = this.graph.outputs;
    const f: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      if (!v || k === "frames" || k === "audio") continue;
      if (!this.graph.nodes.some((n) => n.name === k))
        throw new L3kitError(`no node named '${k}' to feed`, { subject: `model '${this.config.name}'`, reason: "unknown-node" });
      f[k] = v;
    }
    if (feeds.frames) {
      this.checkInput(feeds.frames, "frames");
      f[o.frames] = feeds.frames;
    }
    if (feeds.audio) {
      this.checkInput(feeds.audio, "audio");
      f[o.audio] = feeds.audio;
    }
    const ro = this.opts(opts);
    return tf.tidy(() => runGraph(this.graph, this.vars, f, nodeNames, ro));
  }

  /** All variables with names, in graph order. */
  namedVariables(): NamedVariable[] {
    return this.graph.params.map((p) => ({
      name: p.name,
      variable: this.vars.get(p.name) as tf.Variable,
      role: p.role,
      part: p.part,
      trainable: p.trainable,
    }));
  }

  /** Trainable variables in a stable order (conv kernels, BN γ/β, dense kernels and biases). */
  trainableVariables(): tf.Variable[] {
    return this.namedVariables()
      .filter((v) => v.trainable)
      .map((v) => v.variable);
  }

  /** Non-trainable variables: BN moving means and variances. */
  nonTrainableVariables(): tf.Variable[] {
    return this.namedVariables()
      .filter((v) => !v.trainable)
      .map((v) => v.variable);
  }

  /** Variables that get L2 weight decay: every conv and dense kernel (not biases, not BN). */
  decayVariables(): tf.Variable[] {
    return this.namedVariables()
      .filter((v) => v.role === "kernel")
      .map((v) => v.variable);
  }

  /**
   * Where the two modalities meet: the vision-only and audio-only nodes that the joint part of the
   * head reads (concat: the pooled embeddings; euclidean, cosine: the L2-normalised projections;
   * avol: the per-location vision projection and the audio projection). Computing these once per
   * sample and feeding them back through {@link L3Net.run} scores any frame–audio combination for
   * the cost of the joint part alone (in-batch negatives).
   */
  get jointInputs(): { vision: string; audio: string } {
    this.cut ??= jointCut(this.graph);
    return this.cut;
  }

  /** The variable of a parameter name; throws if there is none. */
  variable(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new L3kitError(`no parameter named '${name}'`, { subject: `model '${this.config.name}'`, reason: "unknown-param" });
    return v;
  }

  /** The stable name of one of this model's variables. */
  nameOf(variable: tf.Variable): string {
    const n = this.names.get(variable);
    if (n === undefined)
      throw new L3kitError("the variable is not one of this model's", { subject: `model '${this.config.name}'`, reason: "unknown-param" });
    return n;
  }

  /** The spec (shape, role, init) of a parameter. */
  paramSpec(name: string): ParamSpec {
    const s = this.specs.get(name);
    if (!s) throw new L3kitError(`no parameter named '${name}'`, { subject: `model '${this.config.name}'`, reason: "unknown-param" });
    return s;
  }

  /** Parameter counts per part (see {@link countL3Params}). */
  paramCount(): L3ParamCount {
    return countL3Params(this.graph);
  }

  /**
   * Mean softmax cross-entropy and accuracy of the AVC logits against 0/1 labels (1 = corresponding).
   * Returns scalars (caller disposes, or use inside `tf.tidy`/`minimize`).
   */
  lossAndAccuracy(
    labels: tf.Tensor1D | ArrayLike<number>,
    outputs: Pick<L3Outputs, "logits"> | tf.Tensor2D,
  ): { loss: tf.Scalar; accuracy: tf.Scalar } {
    return avcLossAndAccuracy(labels, outputs instanceof tf.Tensor ? outputs : outputs.logits);
  }

  /** λ·Σ‖kernel‖² over {@link decayVariables} (Keras' l2(λ)); the paper uses λ = 1e-5. */
  l2Penalty(weightDecay: number): tf.Scalar {
    return tf.tidy(() => tf.mul(tf.addN(this.decayVariables().map((v) => tf.sum(tf.square(v)))), weightDecay) as tf.Scalar);
  }

  /** Frees every variable. */
  dispose(): void {
    if (this.disposed) return;
    for (const v of this.vars.values()) v.dispose();
    this.disposed = true;
  }

  /** True once {@link dispose} ran. */
  get isDisposed(): boolean {
    return this.disposed;
  }
}

/** Mean softmax cross-entropy and accuracy of B×2 logits against 0/1 labels. */
export function avcLossAndAccuracy(labels: tf.Tensor1D | ArrayLike<number>, logits: tf.Tensor2D): { loss: tf.Scalar; accuracy: tf.Scalar } {
  return tf.tidy(() => {
    const y = labels instanceof tf.Tensor ? tf.cast(labels, "int32") : tf.tensor1d(Array.from(labels), "int32");
    if (y.shape[0] !== logits.shape[0])
      throw new L3kitError(`${y.shape[0]} labels for ${logits.shape[0]} logits`, { subject: "lossAndAccuracy" });
    const onehot = tf.oneHot(y as tf.Tensor1D, logits.shape[1] as number);
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1))) as tf.Scalar;
    const accuracy = tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), y), "float32")) as tf.Scalar;
    return { loss, accuracy };
  });
}

/** Builds an L³-Net from a preset name (`paper`, `lite`, `tiny`), a full config or a partial one. */
export function buildL3Net(config: L3PresetName | L3NetConfig | L3NetConfigInput, opts: BuildOptions = {}): L3Net {
  return new L3Net(resolveL3Config(config), opts);
}

/** A parameter's values, as stored in checkpoints. */
export interface WeightEntry {
  shape: number[];
  data: Float32Array;
}

/** Copies every parameter (trainable and BN statistics) out of the model, by name. */
export function getL3Weights(model: L3Net): Record<string, WeightEntry> {
  const out: Record<string, WeightEntry> = {};
  for (const { name, variable } of model.namedVariables())
    out[name] = { shape: [...variable.shape], data: (variable.dataSync() as Float32Array).slice() };
  return out;
}

/**
 * Assigns parameters by name. With `strict` (default), every parameter must be given and no unknown
 * name is allowed; shapes must match. Errors list what differs.
 */
export function setL3Weights(model: L3Net, weights: Record<string, WeightEntry>, opts: { strict?: boolean; subject?: string } = {}): void {
  const strict = opts.strict ?? true;
  const subject = opts.subject ?? `model '${model.config.name}'`;
  const named = model.namedVariables();
  const known = new Set(named.map((n) => n.name));
  const problems: string[] = [];
  const missing = named.filter((n) => !(n.name in weights)).map((n) => n.name);
  const unknown = Object.keys(weights).filter((k) => !known.has(k));
  if (strict && missing.length) {
    problems.push(`missing ${missing.length} parameter(s): ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
    if (missing.some((n) => n.startsWith("audio/input_bn/")))
      problems.push(
        "mel models now have a batch norm right after the spectrogram ('audio/input_bn', as l3embedding and OpenL3); weights saved before it was added do not have it: train the model again",
      );
  }
  if (strict && unknown.length) problems.push(`unknown parameter(s): ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ", …" : ""}`);
  for (const { name, variable } of named) {
    const w = weights[name];
    if (!w) continue;
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (w.shape.length !== variable.shape.length || w.shape.some((d, i) => d !== variable.shape[i])) {
      problems.push(`'${name}' has shape [${w.shape.join(",")}], the model has [${variable.shape.join(",")}]`);
    } else if (w.data.length !== size) {
      problems.push(`'${name}' has ${w.data.length} values for shape [${w.shape.join(",")}]`);
    }
  }
  if (problems.length) throw new L3kitError(`weights do not fit: ${problems.join("; ")}`, { subject, reason: "weights-mismatch" });
  for (const { name, variable } of named) {
    const w = weights[name];
    if (!w) continue;
    tf.tidy(() => variable.assign(tf.tensor(w.data, w.shape, "float32")));
  }
}
