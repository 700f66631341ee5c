/**
 * The onnxruntime training engine: the whole AVC step (forward, backward, Adam) runs as one ONNX
 * graph ({@link buildTrainGraph}) on onnxruntime-node's CPU provider (or WebGPU where an adapter
 * exists). The engine holds the parameters, batch-norm statistics and Adam moments as flat
 * Float32Arrays (conv kernels OIHW; {@link FlatLayout}) in two sets: a step reads one and
 * onnxruntime writes the next straight into the other (pre-allocated outputs), so no step copies
 * them or goes through tfjs. Each parameter is a view into the current set.
 */
import * as tf from "@tensorflow/tfjs";
import type { AvcBatch } from "../data";
import type { L3Net } from "../models";
import {
  defaultOnnxThreads,
  loadOnnxRuntime,
  type OrtModuleLike as Ort,
  type OrtSessionLike as OrtSession,
  type OrtTensorLike as OrtTensor,
  onnxSpinOptions,
} from "../models/onnx";
import {
  buildEvalGraph,
  buildTrainGraph,
  type FlatSlot,
  nchwcProbeModel,
  type TrainGraphInfo,
  trainLayout,
  trainNames,
} from "../models/onnx/train-graph";
import { ConfigError, errorMessage, L3kitError } from "../util";
import type { EngineOptions, EngineStepConfig, EvalTotals, StepResult, TrainingEngine } from "./engine";
import type { AdamState } from "./optimizer";
import { inBatchPairs } from "./pairing";

/** HWIO (l3kit) → OIHW (the engine's conv layout). */
export function hwioToOihw(data: Float32Array, shape: readonly number[]): { data: Float32Array; shape: number[] } {
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = data[src + o] as number;
      }
  return { data: out, shape: [co, ci, kh, kw] };
}

/** OIHW → HWIO. */
export function oihwToHwio(data: Float32Array, shape: readonly number[]): { data: Float32Array; shape: number[] } {
  const [co, ci, kh, kw] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let o = 0; o < co; o++)
    for (let i = 0; i < ci; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * ci + i) * co + o] = data[((o * ci + i) * kh + y) * kw + x] as number;
  return { data: out, shape: [kh, kw, ci, co] };
}

type Arr = { data: Float32Array; shape: number[] };

/**
 * One kind of state (parameters, a moment, statistics) as a flat vector in two buffers: a step
 * reads `current` and writes `next`, then they swap. `map` holds a view of `current` per slot.
 */
class FlatState {
  private current: Float32Array;
  private next: Float32Array;

  constructor(
    private readonly slots: readonly FlatSlot[],
    size: number,
    private readonly map: Map<string, Arr>,
  ) {
    this.current = new Float32Array(size);
    this.next = new Float32Array(size);
  }

  /** Copies the map's arrays into the current buffer and points the map at it (after the map was replaced). */
  pack(): void {
    for (const slot of this.slots) {
      const a = this.map.get(slot.name);
      if (!a || a.data.length !== slot.size) throw new L3kitError(`onnx engine: no ${slot.size}-value array for '${slot.name}'`);
      this.current.set(a.data, slot.offset);
    }
    this.point();
  }

  /** The buffers a step reads and writes. */
  buffers(): { read: Float32Array; write: Float32Array } {
    return { read: this.current, write: this.next };
  }

  /** After a step: the written buffer becomes current. */
  swap(): void {
    [this.current, this.next] = [this.next, this.current];
    this.point();
  }

  private point(): void {
    for (const slot of this.slots)
      this.map.set(slot.name, { data: this.current.subarray(slot.offset, slot.offset + slot.size), shape: slot.shape });
  }
}

/** Forward activations above which a step session runs without onnxruntime's CPU memory arena. */
const ARENA_LIMIT_BYTES = 3 * 2 ** 30;

/**
 * onnxruntime's arena keeps every block it ever allocated: on `paper` at batch 16 (4.6 GiB of forward
 * activations) a step peaked at 13.7 GiB RSS with it and 6.7 GiB without, while on `tiny` and `lite`
 * the arena makes a step ≈20% faster (measured interleaved). So: off only for large steps.
 */
function arenaFor(model: L3Net, batch: number): Record<string, unknown> {
  let values = 0;
  for (const n of model.graph.nodes) values += n.shape.reduce((a, b) => a * b, 1);
  return values * 4 * batch > ARENA_LIMIT_BYTES ? { enableCpuMemArena: false } : {};
}

/** A {@link TrainingEngine} on onnxruntime-node. Build with {@link createOnnxTrainingEngine}. */
export class OnnxTrainingEngine implements TrainingEngine {
  readonly name = "onnx" as const;
  readonly reason: string;
  private readonly params = new Map<string, Arr>();
  private readonly stats = new Map<string, Arr>();
  private readonly m = new Map<string, Arr>();
  private readonly v = new Map<string, Arr>();
  private t = 0;
  /** The flat vectors a step reads and writes; `packed` false after the maps were replaced. */
  private readonly flat: { params: FlatState; m: FlatState; v: FlatState; stats: FlatState };
  private packed = false;
  private readonly steps = new Map<number, Promise<{ session: OrtSession; info: TrainGraphInfo }>>();
  private readonly evals = new Map<number, Promise<OrtSession>>();
  private readonly conv: Set<string>;

  constructor(
    private readonly ort: Ort,
    private readonly model: L3Net,
    private readonly cfg: EngineStepConfig,
    private readonly sessionOptions: Record<string, unknown>,
    reason: string,
    /** onnxruntime's NCHWc block size for the training graph's convs (0: plain Conv). */
    private readonly nchwcBlock = 0,
  ) {
    this.reason = reason;
    this.conv = new Set(model.graph.nodes.flatMap((n) => (n.op === "conv2d" ? [n.kernel] : [])));
    const layout = trainLayout(model.graph);
    this.flat = {
      params: new FlatState(layout.params, layout.paramSize, this.params),
      m: new FlatState(layout.params, layout.paramSize, this.m),
      v: new FlatState(layout.params, layout.paramSize, this.v),
      stats: new FlatState(layout.stats, layout.statSize, this.stats),
    };
    this.readModel();
  }

  /** (Re-)reads parameters and statistics from the model, converting conv kernels to OIHW. */
  private readModel(): void {
    for (const v of this.model.namedVariables()) {
      const data = v.variable.dataSync() as Float32Array;
      const arr = this.conv.has(v.name) ? hwioToOihw(data, v.variable.shape) : { data: data.slice(), shape: [...v.variable.shape] };
      (v.trainable ? this.params : this.stats).set(v.name, arr);
    }
    for (const [name, p] of this.params) {
      if (!this.m.has(name)) this.m.set(name, { data: new Float32Array(p.data.length), shape: p.shape });
      if (!this.v.has(name)) this.v.set(name, { data: new Float32Array(p.data.length), shape: p.shape });
    }
    this.packed = false;
  }

  private tensor(a: Arr): OrtTensor {
    return new this.ort.Tensor("float32", a.data, a.shape);
  }

  private async createSession(bytes: Uint8Array, extra: Record<string, unknown> = {}): Promise<OrtSession> {
    try {
      return await this.ort.InferenceSession.create(bytes, { ...this.sessionOptions, ...extra });
    } catch (err) {
      const device = (this.sessionOptions.executionProviders as string[])[0];
      const msg = errorMessage(err);
      const adapter = /Failed to get a WebGPU adapter[^\n]*/.exec(msg)?.[0];
      const why = adapter
        ? `its WebGPU provider found no GPU adapter on this machine (${adapter}); use train.device=cpu`
        : msg.split("\n")[0];
      throw new L3kitError(`onnxruntime could not create the training session on '${device}': ${why}`, {
        subject: "train.device",
        reason: "onnx-session",
        cause: err,
      });
    }
  }

  private stepSession(batch: number): Promise<{ session: OrtSession; info: TrainGraphInfo }> {
    let s = this.steps.get(batch);
    if (!s) {
      const info = buildTrainGraph(this.model.graph, {
        batch,
        pairing: { kind: this.cfg.pairing, negatives: this.cfg.negatives },
        mode: "step",
        weightDecay: this.cfg.weightDecay,
        nchwcBlock: this.nchwcBlock,
      });
      const layout = info.layout;
      if (layout?.paramSize !== this.flat.params.buffers().read.length || layout.statSize !== this.flat.stats.buffers().read.length)
        throw new L3kitError("onnx engine: the step graph's flat layout differs from the engine's");
      s = this.createSession(info.bytes, arenaFor(this.model, batch)).then((session) => ({ session, info }));
      this.steps.set(batch, s);
    }
    return s;
  }

  /** Targets and weights of the batch's scored combinations. */
  private targets(batch: AvcBatch, info: TrainGraphInfo): { targets: Float32Array; weights: Float32Array } {
    const N = info.combinations;
    const targets = new Float32Array(N * 2);
    const weights = new Float32Array(N);
    if (this.cfg.pairing === "in-batch") {
      const pairs = inBatchPairs(
        batch.pairs.map((p) => p.frame.id),
        this.cfg.negatives,
      );
      if (pairs.labels.length !== N) throw new L3kitError(`in-batch pairs: ${pairs.labels.length} for ${N}`, { subject: "onnx engine" });
      for (let j = 0; j < N; j++) {
        targets[j * 2 + (pairs.labels[j] as number)] = 1;
        weights[j] = pairs.weights[j] as number;
      }
    } else {
      for (let j = 0; j < N; j++) {
        targets[j * 2 + (batch.labels[j] ? 1 : 0)] = 1;
        weights[j] = 1 / N;
      }
    }
    return { targets, weights };
  }

  async step(batch: AvcBatch, lr: number): Promise<StepResult> {
    const { session, info } = await this.stepSession(batch.size);
    const { targets, weights } = this.targets(batch, info);
    const T = this.ort.Tensor;
    const feeds: Record<string, OrtTensor> = {
      frames: new T("float32", batch.frames, batch.frameShape),
      audio: new T("float32", batch.audio, batch.audioShape),
      targets: new T("float32", targets, [info.combinations, 2]),
      weights: new T("float32", weights, [info.combinations]),
      lr: new T("float32", Float32Array.of(lr), []),
      t: new T("float32", Float32Array.of(this.t + 1), []),
    };
    if (!this.packed) {
      for (const f of Object.values(this.flat)) f.pack();
      this.packed = true;
    }
    // Outputs go straight into the other buffers (pre-allocated fetches): no copy, no allocation.
    const fetches: Record<string, OrtTensor | null> = { loss: null, accuracy: null };
    const names = trainNames.flat;
    const bind = (state: FlatState, input: string, output: string) => {
      const { read, write } = state.buffers();
      if (read.length === 0) return;
      feeds[input] = new T("float32", read, [read.length]);
      fetches[output] = new T("float32", write, [write.length]);
    };
    bind(this.flat.params, names.params, names.newParams);
    bind(this.flat.m, names.m, names.newM);
    bind(this.flat.v, names.v, names.newV);
    bind(this.flat.stats, names.stats, names.newStats);
    const out = await session.run(feeds, fetches);
    for (const f of Object.values(this.flat)) f.swap();
    this.t++;
    const scalar = (name: string) => ((out[name] as OrtTensor).data as Float32Array)[0] as number;
    return { loss: scalar("loss"), accuracy: scalar("accuracy") };
  }

  /** Creates a session now, so a provider that cannot run fails before any data is prepared. */
  async checkDevice(): Promise<void> {
    await this.evalSession(1);
  }

  private evalSession(batch: number): Promise<OrtSession> {
    let s = this.evals.get(batch);
    if (!s) {
      s = this.createSession(buildEvalGraph(this.model.graph, batch, this.nchwcBlock));
      this.evals.set(batch, s);
    }
    return s;
  }

  async evaluate(batches: readonly AvcBatch[]): Promise<EvalTotals> {
    let lossSum = 0;
    let correct = 0;
    let n = 0;
    for (const b of batches) {
      const session = await this.evalSession(b.size);
      const T = this.ort.Tensor;
      const feeds: Record<string, OrtTensor> = {
        frames: new T("float32", b.frames, b.frameShape),
        audio: new T("float32", b.audio, b.audioShape),
      };
      for (const name of session.inputNames) {
        if (name.startsWith("p:")) feeds[name] = this.tensor(this.params.get(name.slice(2)) as Arr);
        else if (name.startsWith("s:")) feeds[name] = this.tensor(this.stats.get(name.slice(2)) as Arr);
      }
      const logits = (await session.run(feeds)).logits?.data as Float32Array;
      for (let i = 0; i < b.size; i++) {
        const l0 = logits[2 * i] as number;
        const l1 = logits[2 * i + 1] as number;
        const mx = Math.max(l0, l1);
        const lse = mx + Math.log(Math.exp(l0 - mx) + Math.exp(l1 - mx));
        const y = b.labels[i] ? 1 : 0;
        lossSum += lse - (y ? l1 : l0);
        // tfjs' argMax: ties go to class 0
        if ((l1 > l0 ? 1 : 0) === y) correct++;
      }
      n += b.size;
    }
    return { loss: n ? lossSum / n : Number.NaN, accuracy: n ? correct / n : Number.NaN, n };
  }

  async syncModel(): Promise<void> {
    for (const v of this.model.namedVariables()) {
      const a = (v.trainable ? this.params : this.stats).get(v.name) as Arr;
      const w = this.conv.has(v.name) ? oihwToHwio(a.data, a.shape) : a;
      tf.tidy(() => v.variable.assign(tf.tensor(w.data, v.variable.shape, "float32")));
    }
  }

  async getOptimizerState(): Promise<AdamState> {
    const dump = (map: Map<string, Arr>) => {
      const out: AdamState["m"] = {};
      for (const name of [...map.keys()].sort()) {
        const a = map.get(name) as Arr;
        out[name] = this.conv.has(name) ? oihwToHwio(a.data, a.shape) : { data: a.data.slice(), shape: [...a.shape] };
      }
      return out;
    };
    return { step: this.t, m: dump(this.m), v: dump(this.v) };
  }

  async setOptimizerState(state: AdamState): Promise<void> {
    this.m.clear();
    this.v.clear();
    const load = (map: Map<string, Arr>, from: AdamState["m"]) => {
      for (const [name, a] of Object.entries(from))
        map.set(name, this.conv.has(name) ? hwioToOihw(a.data, a.shape) : { data: a.data.slice(), shape: [...a.shape] });
    };
    load(this.m, state.m);
    load(this.v, state.v);
    this.t = state.step;
    this.readModel();
  }

  /** Ends onnxruntime's profiling of the step sessions (an engine made with `profileFilePrefix`); the files are written then. */
  async endProfiling(): Promise<void> {
    for (const { session } of await Promise.all(this.steps.values())) session.endProfiling?.();
  }

  async dispose(): Promise<void> {
    const sessions = [...(await Promise.all(this.steps.values())).map((s) => s.session), ...(await Promise.all(this.evals.values()))];
    this.steps.clear();
    this.evals.clear();
    for (const s of sessions) await s.release();
  }
}

let nchwcBlockProbe: Promise<number> | undefined;

/**
 * onnxruntime's NCHWc block size on this CPU (8 with AVX2, 16 with AVX-512), read once from a
 * one-op session; 0 where the CPU provider has no NCHWc kernels.
 */
export function nchwcBlockSize(ort: Ort): Promise<number> {
  nchwcBlockProbe ??= (async () => {
    try {
      const session = await ort.InferenceSession.create(nchwcProbeModel(), { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(4), [1, 4, 1, 1]) });
      await session.release();
      const block = Number(out.y?.dims[1] ?? 0);
      return block > 4 ? block : 0;
    } catch {
      return 0;
    }
  })();
  return nchwcBlockProbe;
}

/** Builds the onnxruntime engine; throws a {@link ConfigError} when onnxruntime-node does not load or the config cannot run on it. */
export async function createOnnxTrainingEngine(
  model: L3Net,
  step: EngineStepConfig,
  opts: EngineOptions & {
    reason?: string;
    /** Profile every session run with onnxruntime's profiler into `<prefix>_<date>.json` (see {@link OnnxTrainingEngine.endProfiling}). */
    profileFilePrefix?: string;
  } = {},
): Promise<OnnxTrainingEngine> {
  const { ort, version } = loadOnnxRuntime("train.engine");
  if (step.microBatches !== 1)
    throw new ConfigError(
      `the onnx engine runs the whole batch in one pass (its memory is not capped like wasm's 4 GiB heap); set train.microBatches=1, got ${step.microBatches}`,
      { subject: "train.microBatches", reason: "bad-config" },
    );
  const device = opts.device ?? "cpu";
  const threads = opts.threads ?? defaultOnnxThreads();
  const sessionOptions = {
    executionProviders: [device],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    ...onnxSpinOptions(),
    ...(opts.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profileFilePrefix } : {}),
  };
  // NCHWc kernels are the CPU provider's own; its block size follows the CPU's vector width
  const nchwcBlock = device === "cpu" ? await nchwcBlockSize(ort) : 0;
  const why = `${opts.reason ? `${opts.reason}; ` : ""}onnxruntime-node ${version}, ${device}, ${threads} thread${threads === 1 ? "" : "s"}${nchwcBlock ? `, NCHWc block ${nchwcBlock}` : ""}`;
  const engine = new OnnxTrainingEngine(ort, model, step, sessionOptions, why, nchwcBlock);
  // fail now, with the reason (e.g. no WebGPU adapter), rather than at the first step
  if (device !== "cpu") await engine.checkDevice();
  return engine;
}
