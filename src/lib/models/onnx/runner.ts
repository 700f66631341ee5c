/**
 * Forward-only inference of an L³-Net on onnxruntime-node (when it loads) or on tfjs, behind one
 * interface: plain Float32Arrays in (NHWC, as l3kit), named Float32Arrays out. Training stays on
 * tfjs; embeddings, probe features, AVC evaluation and unit/similarity maps can run here.
 *
 * onnxruntime-node is an optional dependency: when `require("onnxruntime-node")` throws, `auto`
 * falls back to tfjs (and says why), `onnx` throws.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { ConfigError, errorMessage, L3kitError } from "../../util";
import type { L3Net } from "../model";
import { exportOnnxGraph, ONNX_DEFAULT_OUTPUTS, type OnnxExportInfo, onnxWeightsOf, resolveOnnxOutputs } from "./export";

/** Which engine runs forward passes: `auto` = onnx when onnxruntime-node loads, else tfjs. */
export type InferenceEngine = "auto" | "onnx" | "tfjs";

/** Every valid {@link InferenceEngine}. */
export const INFERENCE_ENGINES: readonly InferenceEngine[] = ["auto", "onnx", "tfjs"];

/** A float32 array with its shape (batch first). */
export interface InferenceArray {
  data: Float32Array;
  shape: number[];
}

/**
 * Inputs of {@link InferenceRunner.run}: NHWC frames in [0, 1] (B×H×W×3) and/or spectrograms
 * (B×bins×frames×1), each as a flat array (the batch is inferred) or with its shape.
 */
export interface InferenceInputs {
  frames?: Float32Array | InferenceArray;
  audio?: Float32Array | InferenceArray;
}

/** A forward-only runner of one model. */
export interface InferenceRunner {
  /** The engine that runs. */
  readonly engine: "onnx" | "tfjs";
  /** Why this engine (e.g. "onnxruntime-node 1.30.0, 2 threads" or why ONNX was not used). */
  readonly reason: string;
  readonly model: L3Net;
  /**
   * Runs the model (inference mode) and returns the named outputs: `GraphOutputs` names such as
   * "probs", "visionEmbedding", "visionMap", "similarityMap", "visionGrid", or graph node names. Maps
   * are NHWC (as `L3Net.forward`). Default: every default output the given inputs allow.
   */
  run(inputs: InferenceInputs, outputs?: readonly string[]): Promise<Record<string, InferenceArray>>;
  /** Frees the engine's resources (ONNX sessions); the model is not touched. */
  dispose(): Promise<void>;
}

/** Options of {@link createInferenceRunner}. */
export interface InferenceRunnerOptions {
  /** Default: `L3KIT_ENGINE` or "auto". */
  prefer?: InferenceEngine;
  /** onnxruntime intra-op threads; default `L3KIT_THREADS` or all cores. */
  threads?: number;
  /** Fold batch norm into the convolutions in the ONNX graph (default true). */
  foldBatchNorm?: boolean;
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-node, loaded on demand

/** The part of onnxruntime-node's API used here. */
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  readonly type: string;
}

/** An onnxruntime InferenceSession, as used here. */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** `fetches` may give pre-allocated output tensors, which onnxruntime writes in place. */
  run(feeds: Record<string, OrtTensorLike>, fetches?: Record<string, OrtTensorLike | null>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
  /** Ends profiling (sessions made with `enableProfiling`) and writes the profile file. */
  endProfiling?(): void;
}

/** The onnxruntime-node module, as used here. */
export interface OrtModuleLike {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensorLike;
}

/** Whether onnxruntime-node loads, its version, and why not when it does not. */
export interface OnnxRuntimeStatus {
  available: boolean;
  version?: string;
  reason: string;
}

type Loader = () => { ort: OrtModuleLike; version: string };

const defaultLoader: Loader = () => {
  const ort = require("onnxruntime-node") as OrtModuleLike;
  let version = "?";
  try {
    const pj = require.resolve("onnxruntime-node/package.json");
    version = String((JSON.parse(fs.readFileSync(pj, "utf8")) as { version?: string }).version);
  } catch {
    // version unknown
  }
  if (typeof ort?.InferenceSession?.create !== "function") throw new Error("the module has no InferenceSession.create");
  return { ort, version };
};

let loader: Loader = defaultLoader;
let loaded: { ort: OrtModuleLike; version: string } | { error: string } | undefined;

/**
 * Replaces how onnxruntime is loaded (tests, or another build such as onnxruntime-node-gpu); the
 * loader throws when unavailable. `undefined` restores `require("onnxruntime-node")`. Resets the
 * cached load result.
 */
export function setOnnxRuntimeLoader(fn?: () => { ort: OrtModuleLike; version: string }): void {
  loader = fn ?? defaultLoader;
  loaded = undefined;
}

function loadOrt(): { ort: OrtModuleLike; version: string } | { error: string } {
  if (!loaded) {
    try {
      loaded = loader();
    } catch (err) {
      loaded = { error: `onnxruntime-node does not load (${errorMessage(err).split("\n")[0]})` };
    }
  }
  return loaded;
}

/** The loaded onnxruntime-node module (through {@link setOnnxRuntimeLoader}'s loader); throws a {@link ConfigError} when it does not load. */
export function loadOnnxRuntime(subject = "engine"): { ort: OrtModuleLike; version: string } {
  const r = loadOrt();
  if ("error" in r) throw new ConfigError(r.error, { subject, reason: "onnx-unavailable" });
  return r;
}

/** Loads onnxruntime-node once and reports whether it is usable. */
export function onnxRuntimeStatus(): OnnxRuntimeStatus {
  const r = loadOrt();
  if ("error" in r) return { available: false, reason: r.error };
  return { available: true, version: r.version, reason: `onnxruntime-node ${r.version}` };
}

/** Parses an engine name (case-insensitive); throws a {@link ConfigError} listing the valid ones. */
export function parseInferenceEngine(s: string): InferenceEngine {
  const v = s.trim().toLowerCase();
  if ((INFERENCE_ENGINES as readonly string[]).includes(v)) return v as InferenceEngine;
  throw new ConfigError(`unknown inference engine "${s}"; expected one of ${INFERENCE_ENGINES.join(", ")}`, {
    subject: "engine",
    reason: "bad-engine",
  });
}

/** The engine a preference resolves to now (default preference: `L3KIT_ENGINE` or "auto"), and why. */
export function resolveInferenceEngine(prefer?: InferenceEngine): { engine: "onnx" | "tfjs"; reason: string } {
  const p = prefer ?? parseInferenceEngine(process.env.L3KIT_ENGINE ?? "auto");
  if (p === "tfjs") return { engine: "tfjs", reason: "tfjs requested" };
  const st = onnxRuntimeStatus();
  if (st.available) return { engine: "onnx", reason: st.reason };
  if (p === "onnx") throw new ConfigError(`engine "onnx" requested but ${st.reason}`, { subject: "engine", reason: "onnx-unavailable" });
  return { engine: "tfjs", reason: `${st.reason}; using tfjs` };
}

/** onnxruntime intra-op threads by default: `L3KIT_THREADS`, else every core. */
/**
 * Session options that stop onnxruntime's idle threads from spinning, when `L3KIT_ONNX_SPIN=0`
 * (set by `l3kit worker`): several processes sharing the cores then do not burn each other's time
 * while waiting. Spinning changes no result, only how threads wait.
 */
export function onnxSpinOptions(): Record<string, unknown> {
  if (process.env.L3KIT_ONNX_SPIN !== "0") return {};
  return { extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } } };
}

export function defaultOnnxThreads(): number {
  const env = process.env.L3KIT_THREADS ? Number(process.env.L3KIT_THREADS) : undefined;
  if (env !== undefined && Number.isInteger(env) && env >= 1) return env;
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

// ---------------------------------------------------------------------------------------------
// inputs and outputs

interface Fed {
  frames?: InferenceArray;
  audio?: InferenceArray;
  batch: number;
}

function inputShape(model: L3Net, which: "frames" | "audio"): number[] {
  const name = model.graph.outputs[which];
  return [...(model.graph.nodes.find((n) => n.name === name)?.shape ?? [])];
}

function normalizeInputs(model: L3Net, inputs: InferenceInputs): Fed {
  const subject = `model '${model.config.name}'`;
  const out: Fed = { batch: 0 };
  for (const which of ["frames", "audio"] as const) {
    const x = inputs[which];
    if (x === undefined) continue;
    const per = inputShape(model, which);
    const perSize = per.reduce((a, b) => a * b, 1);
    const data = x instanceof Float32Array ? x : x.data;
    if (!(data instanceof Float32Array)) throw new ConfigError(`${which} must be a Float32Array`, { subject, reason: "bad-input" });
    let shape: number[];
    if (x instanceof Float32Array) {
      if (data.length === 0 || data.length % perSize !== 0)
        throw new ConfigError(`${which} has ${data.length} values, not a multiple of one input [${per.join(",")}] (${perSize})`, {
          subject,
          reason: "bad-input-shape",
        });
      shape = [data.length / perSize, ...per];
    } else {
      shape = [...x.shape];
      const ok = shape.length === per.length + 1 && per.every((d, i) => shape[i + 1] === d) && (shape[0] as number) >= 1;
      if (!ok)
        throw new ConfigError(`${which} input has shape [${shape.join(",")}]; the model expects [B,${per.join(",")}]`, {
          subject,
          reason: "bad-input-shape",
        });
      if (data.length !== shape.reduce((a, b) => a * b, 1))
        throw new ConfigError(`${which} has ${data.length} values for shape [${shape.join(",")}]`, { subject, reason: "bad-input-shape" });
    }
    const b = shape[0] as number;
    if (out.batch && out.batch !== b)
      throw new ConfigError(`frames and audio batches differ (${out.batch} vs ${b})`, { subject, reason: "bad-input-shape" });
    out.batch = b;
    out[which] = { data, shape };
  }
  if (!out.frames && !out.audio) throw new ConfigError("give frames, audio or both", { subject, reason: "no-input" });
  return out;
}

const VISION_ONLY = new Set(["visionEmbedding", "visionMap", "visionGrid"]);
const AUDIO_ONLY = new Set(["audioEmbedding", "audioMap", "audioGrid"]);

function defaultOutputs(model: L3Net, fed: Fed): string[] {
  const o = model.graph.outputs as unknown as Record<string, string | undefined>;
  return ONNX_DEFAULT_OUTPUTS.filter((k) => {
    if (!o[k]) return false;
    if (VISION_ONLY.has(k)) return !!fed.frames;
    if (AUDIO_ONLY.has(k)) return !!fed.audio;
    return !!fed.frames && !!fed.audio;
  });
}

// ---------------------------------------------------------------------------------------------
// runners

/** The tfjs engine: the model's own graph runner, inputs and outputs as plain arrays. */
class TfjsL3Runner implements InferenceRunner {
  readonly engine = "tfjs" as const;
  constructor(
    readonly model: L3Net,
    readonly reason: string,
  ) {}

  async run(inputs: InferenceInputs, outputs?: readonly string[]): Promise<Record<string, InferenceArray>> {
    const fed = normalizeInputs(this.model, inputs);
    const outs = resolveOnnxOutputs(this.model.graph, outputs ?? defaultOutputs(this.model, fed));
    const res = tf.tidy(() => {
      const feeds: { frames?: tf.Tensor4D; audio?: tf.Tensor4D } = {};
      if (fed.frames) feeds.frames = tf.tensor4d(fed.frames.data, fed.frames.shape as [number, number, number, number]);
      if (fed.audio) feeds.audio = tf.tensor4d(fed.audio.data, fed.audio.shape as [number, number, number, number]);
      return this.model.run(feeds, [...new Set(outs.map((o) => o.node))]);
    });
    try {
      const result: Record<string, InferenceArray> = {};
      for (const o of outs) {
        const t = res[o.node] as tf.Tensor;
        result[o.name] = { data: (await t.data()) as Float32Array, shape: [...t.shape] };
      }
      return result;
    } finally {
      tf.dispose(res);
    }
  }

  async dispose(): Promise<void> {}
}

interface SessionEntry {
  session: OrtSessionLike;
  info: OnnxExportInfo;
}

/**
 * The ONNX engine: exports the model once per set of outputs (only the inputs those need) and runs
 * it on onnxruntime-node (all graph optimisations, `threads` intra-op threads). When the model's
 * weights change (any variable re-assigned, e.g. by a training step), the next run re-exports.
 */
export class OnnxL3Runner implements InferenceRunner {
  readonly engine = "onnx" as const;
  readonly reason: string;
  readonly threads: number;
  private readonly ort: OrtModuleLike;
  private readonly fold: boolean;
  private sessions = new Map<string, Promise<SessionEntry>>();
  private weightIds: unknown[] = [];
  private disposed = false;

  constructor(
    readonly model: L3Net,
    opts: { threads?: number; foldBatchNorm?: boolean } = {},
  ) {
    const r = loadOnnxRuntime();
    this.ort = r.ort;
    this.threads = opts.threads ?? defaultOnnxThreads();
    if (!(Number.isInteger(this.threads) && this.threads >= 1))
      throw new ConfigError(`threads must be a positive integer, got ${opts.threads}`, { subject: "engine", reason: "bad-threads" });
    this.fold = opts.foldBatchNorm ?? true;
    this.reason = `onnxruntime-node ${r.version}, ${this.threads} thread${this.threads === 1 ? "" : "s"}`;
  }

  private currentIds(): unknown[] {
    return this.model.namedVariables().map((v) => v.variable.dataId);
  }

  /** Drops sessions exported from weights that have changed since. */
  private checkWeights(): void {
    const ids = this.currentIds();
    const same = ids.length === this.weightIds.length && ids.every((id, i) => id === this.weightIds[i]);
    if (same) return;
    const old = this.sessions;
    this.sessions = new Map();
    this.weightIds = ids;
    for (const p of old.values()) p.then((e) => e.session.release()).catch(() => {});
  }

  private session(names: readonly string[]): Promise<SessionEntry> {
    const key = names.join("\u0000");
    let p = this.sessions.get(key);
    if (!p) {
      const info = exportOnnxGraph(this.model.graph, onnxWeightsOf(this.model), { outputs: names, foldBatchNorm: this.fold });
      p = this.ort.InferenceSession.create(info.bytes, {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        ...onnxSpinOptions(),
      }).then((session) => ({ session, info }));
      p.catch(() => this.sessions.delete(key));
      this.sessions.set(key, p);
    }
    return p;
  }

  /** The exported graph (inputs, outputs, bytes) behind a set of outputs, e.g. to inspect or save it. */
  async exported(outputs: readonly string[]): Promise<OnnxExportInfo> {
    this.checkWeights();
    return (await this.session(outputs)).info;
  }

  async run(inputs: InferenceInputs, outputs?: readonly string[]): Promise<Record<string, InferenceArray>> {
    if (this.disposed) throw new L3kitError("the runner was disposed", { subject: "engine", reason: "disposed" });
    if (this.model.isDisposed) throw new L3kitError("the model was disposed", { subject: "engine", reason: "disposed" });
    const fed = normalizeInputs(this.model, inputs);
    const names = outputs ?? defaultOutputs(this.model, fed);
    resolveOnnxOutputs(this.model.graph, names); // validates the names before any export
    this.checkWeights();
    const { session, info } = await this.session(names);
    const feeds: Record<string, OrtTensorLike> = {};
    for (const i of info.inputs) {
      const x = fed[i.name];
      if (!x)
        throw new ConfigError(`outputs ${names.join(", ")} need the ${i.name} input`, {
          subject: `model '${this.model.config.name}'`,
          reason: "missing-input",
        });
      feeds[i.name] = new this.ort.Tensor("float32", x.data, x.shape);
    }
    const res = await session.run(feeds);
    const result: Record<string, InferenceArray> = {};
    for (const o of info.outputs) {
      const t = res[o.name];
      if (!t || !(t.data instanceof Float32Array))
        throw new L3kitError(`onnxruntime returned no float32 output '${o.name}'`, { subject: "engine", reason: "bad-output" });
      result[o.name] = { data: t.data, shape: [...t.dims] };
    }
    return result;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((e) => e.session.release()).catch(() => {})));
  }
}

/**
 * A forward-only runner of `model`: ONNX (onnxruntime-node) when preferred or under `auto` when it
 * loads, else tfjs. `runner.engine` and `runner.reason` say which runs and why.
 */
export function createInferenceRunner(model: L3Net, opts: InferenceRunnerOptions = {}): InferenceRunner {
  const { engine, reason } = resolveInferenceEngine(opts.prefer);
  if (engine === "onnx") return new OnnxL3Runner(model, { threads: opts.threads, foldBatchNorm: opts.foldBatchNorm });
  return new TfjsL3Runner(model, reason);
}

const shared = new WeakMap<L3Net, Map<string, InferenceRunner>>();

/**
 * A runner kept with the model (one per engine) for repeated forward-only calls, such as
 * `evaluateAvc` or `localizationMaps` per batch: the ONNX export happens once and again only when
 * the weights change. Free it early with {@link releaseInferenceRunners}; otherwise it goes with the
 * model object.
 */
export function sharedInferenceRunner(model: L3Net, prefer?: InferenceEngine): InferenceRunner {
  const { engine } = resolveInferenceEngine(prefer);
  let m = shared.get(model);
  if (!m) {
    m = new Map();
    shared.set(model, m);
  }
  let r = m.get(engine);
  if (!r) {
    r = createInferenceRunner(model, { prefer: engine });
    m.set(engine, r);
  }
  return r;
}

/** Disposes the runners {@link sharedInferenceRunner} keeps for a model. */
export async function releaseInferenceRunners(model: L3Net): Promise<void> {
  const m = shared.get(model);
  shared.delete(model);
  if (m) await Promise.all([...m.values()].map((r) => r.dispose()));
}

/**
 * What forward-only functions take as their `engine` option: a preference (resolved through
 * {@link sharedInferenceRunner}) or a runner of the same model.
 */
export type InferenceEngineChoice = InferenceEngine | InferenceRunner;

/** The runner for an `engine` option (default: `L3KIT_ENGINE` or "auto"). */
export function inferenceRunnerFor(model: L3Net, engine?: InferenceEngineChoice): InferenceRunner {
  if (typeof engine === "object") {
    if (engine.model !== model)
      throw new ConfigError("the inference runner was made for another model", { subject: "engine", reason: "runner-model-mismatch" });
    return engine;
  }
  return sharedInferenceRunner(model, engine);
}
