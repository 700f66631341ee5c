/**
 * Picks the tfjs backend at start: native TensorFlow (GPU, then CPU) when its binding is really
 * installed, else the multi-threaded wasm backend with l3kit's training kernels, else tfjs's
 * pure-JS cpu backend. Says once which one runs and why the others were skipped.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ConfigError, errorMessage, installedVersions } from "../util";
import { registeredWasmTrainingKernels, registerWasmTrainingKernels, type WasmTrainingKernel } from "./wasm-kernels";
import { defaultThreads, loadWasmPackage, registerThreadedWasm, wasmPthreadState } from "./wasm-threads";

/** A backend choice: `auto` tries them in the order tensorflow-gpu, tensorflow, wasm, cpu. */
export type BackendName = "auto" | "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";

/** Every valid {@link BackendName}. */
export const BACKEND_NAMES: readonly BackendName[] = ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"];

/** What {@link initBackend} chose. */
export interface BackendInfo {
  /** The l3kit backend that runs. */
  name: Exclude<BackendName, "auto">;
  /** The tfjs backend name (`tf.getBackend()`): "tensorflow", "wasm" or "cpu". */
  tfBackend: string;
  /** Threads the backend computes with (wasm: the XNNPACK pool size; native: the cores TF may use). */
  threads: number;
  /** Why this backend (and, for wasm, how many threads and why not more). */
  reason: string;
  /** Backends tried before this one, with why each was skipped. */
  skipped: { name: string; why: string }[];
  /** For wasm: whether the SIMD build runs. */
  simd?: boolean;
  /** For wasm: the l3kit kernels registered on top of the stock ones. */
  kernels?: string[];
  /** Package versions that matter for reproducing numbers. */
  versions: Record<string, string>;
}

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** The backend; default `L3KIT_BACKEND` or "auto". */
  backend?: BackendName;
  /** wasm threads; default `L3KIT_THREADS` or `os.availableParallelism()`. */
  threads?: number;
  /** No stderr line (also `L3KIT_QUIET=1`). */
  quiet?: boolean;
  /** For benchmarks: register only these l3kit wasm kernels (default: all of them). */
  wasmKernels?: readonly WasmTrainingKernel[];
}

/** Parses a backend name (case-insensitive); throws a {@link ConfigError} listing the valid ones. */
export function parseBackendName(s: string): BackendName {
  const v = s.trim().toLowerCase();
  if ((BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendName;
  throw new ConfigError(`unknown backend "${s}"; expected one of ${BACKEND_NAMES.join(", ")}`, {
    subject: "backend",
    reason: "bad-backend",
  });
}

let chosen: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

/** What {@link initBackend} chose, or undefined before it finished. */
export function backendInfo(): BackendInfo | undefined {
  return chosen;
}

/**
 * Selects and initialises the tfjs backend once per process. Later calls return the first result
 * (a different explicit choice than the one made throws, since tfjs has one global engine).
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const requested = opts.backend ?? parseBackendName(process.env.L3KIT_BACKEND ?? "auto");
  if (pending) {
    const info = await pending;
    if (requested !== "auto" && requested !== info.name) {
      throw new ConfigError(`backend already initialised as "${info.name}"; cannot switch to "${requested}" in the same process`, {
        subject: "backend",
        reason: "backend-already-set",
      });
    }
    return info;
  }
  pending = select(requested, opts);
  try {
    chosen = await pending;
  } catch (err) {
    pending = undefined;
    throw err;
  }
  const quiet = opts.quiet ?? process.env.L3KIT_QUIET === "1";
  if (!quiet) process.stderr.write(`${formatBackendInfo(chosen)}\n`);
  return chosen;
}

/** A one-paragraph summary: which backend runs, with how many threads, and what was skipped. */
export function formatBackendInfo(info: BackendInfo): string {
  const lines = [
    `l3kit backend: ${info.name} (tfjs "${info.tfBackend}", ${info.threads} thread${info.threads === 1 ? "" : "s"}) — ${info.reason}`,
  ];
  for (const s of info.skipped) lines.push(`  skipped ${s.name}: ${s.why}`);
  return lines.join("\n");
}

function threadsOption(opts: InitBackendOptions): number {
  const raw = opts.threads ?? (process.env.L3KIT_THREADS ? Number(process.env.L3KIT_THREADS) : undefined);
  if (raw === undefined) return defaultThreads();
  if (!Number.isInteger(raw) || raw < 1) {
    throw new ConfigError(`threads must be a positive integer, got ${String(raw)}`, { subject: "threads", reason: "bad-threads" });
  }
  return raw;
}

async function select(requested: BackendName, opts: InitBackendOptions): Promise<BackendInfo> {
  tf.enableProdMode();
  const threads = threadsOption(opts);
  const order: Exclude<BackendName, "auto">[] = requested === "auto" ? ["tensorflow-gpu", "tensorflow", "wasm", "cpu"] : [requested];
  const skipped: { name: string; why: string }[] = [];
  for (const name of order) {
    try {
      const info = await tryBackend(name, threads, opts);
      return { ...info, skipped, versions: versions() };
    } catch (err) {
      if (requested !== "auto") {
        throw new ConfigError(`backend "${name}" is not available: ${errorMessage(err)}`, {
          subject: "backend",
          reason: "backend-unavailable",
          cause: err,
        });
      }
      skipped.push({ name, why: errorMessage(err) });
    }
  }
  throw new Error(`no tfjs backend could be initialised: ${skipped.map((s) => `${s.name}: ${s.why}`).join("; ")}`);
}

type Chosen = Omit<BackendInfo, "skipped" | "versions">;

async function tryBackend(name: Exclude<BackendName, "auto">, threads: number, opts: InitBackendOptions): Promise<Chosen> {
  switch (name) {
    case "tensorflow-gpu":
      return tryNative("@tensorflow/tfjs-node-gpu", name);
    case "tensorflow":
      return tryNative("@tensorflow/tfjs-node", name);
    case "wasm":
      return tryWasm(threads, opts.wasmKernels);
    case "cpu":
      if (!(await tf.setBackend("cpu"))) throw new Error("tf.setBackend('cpu') failed");
      return { name, tfBackend: tf.getBackend(), threads: 1, reason: "pure-JS kernels (slow; for tests and as the last resort)" };
  }
}

/** Where a package's package.json resolves from this module, or undefined when absent. */
function resolvePackageJson(pkg: string): string | undefined {
  try {
    return require.resolve(`${pkg}/package.json`);
  } catch {
    return undefined;
  }
}

/**
 * Why a native tfjs-node(-gpu) package cannot be used, or undefined when it looks real. In this
 * repository `@tensorflow/tfjs-node` is an npm-override alias of pure-JS `@tensorflow/tfjs`.
 */
export function nativePackageProblem(pkg: string): string | undefined {
  const pj = resolvePackageJson(pkg);
  if (!pj) return "not installed (optional peer dependency)";
  let meta: { name?: string; version?: string };
  try {
    meta = JSON.parse(fs.readFileSync(pj, "utf8"));
  } catch (err) {
    return `unreadable package.json at ${pj}: ${errorMessage(err)}`;
  }
  if (meta.name !== pkg) {
    return `resolves to a pure-JS alias (${meta.name ?? "?"}@${meta.version ?? "?"} at ${path.dirname(pj)}), not the native binding`;
  }
  return undefined;
}

async function tryNative(pkg: string, name: "tensorflow-gpu" | "tensorflow"): Promise<Chosen> {
  const problem = nativePackageProblem(pkg);
  if (problem) throw new Error(problem);
  try {
    require(pkg);
  } catch (err) {
    throw new Error(`failed to load ${pkg}: ${errorMessage(err)}`);
  }
  if (!tf.findBackendFactory("tensorflow")) throw new Error(`${pkg} loaded but registered no "tensorflow" backend`);
  if (!(await tf.setBackend("tensorflow"))) throw new Error(`${pkg}: tf.setBackend("tensorflow") failed`);
  const threads = defaultThreads();
  const reason = name === "tensorflow-gpu" ? `native TensorFlow with CUDA (${pkg})` : `native TensorFlow on CPU (${pkg})`;
  return { name, tfBackend: tf.getBackend(), threads, reason };
}

async function tryWasm(threads: number, kernels?: readonly WasmTrainingKernel[]): Promise<Chosen> {
  let wasmPkg: ReturnType<typeof loadWasmPackage>;
  try {
    wasmPkg = loadWasmPackage();
  } catch (err) {
    throw new Error(`@tensorflow/tfjs-backend-wasm failed to load: ${errorMessage(err)}`);
  }
  const plan = registerThreadedWasm(threads);
  registerWasmTrainingKernels(kernels);
  if (!(await tf.setBackend("wasm"))) throw new Error('tf.setBackend("wasm") failed');
  const actual = wasmPkg.getThreadsCount();
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  const parts = [`XNNPACK via WebAssembly${simd ? " SIMD" : ""}`, `${actual} of ${threads} requested thread${threads === 1 ? "" : "s"}`];
  if (!plan.threaded && plan.fallbackReason) parts.push(`single-threaded: ${plan.fallbackReason}`);
  else if (actual < threads) parts.push("the wasm build caps its pool at 8 threads");
  const state = wasmPthreadState();
  if (state && state.running !== actual - 1) parts.push(`note: ${state.running} pthread workers running`);
  return {
    name: "wasm",
    tfBackend: tf.getBackend(),
    threads: actual,
    reason: parts.join("; "),
    simd,
    kernels: registeredWasmTrainingKernels(),
  };
}

function versions(): Record<string, string> {
  return installedVersions([
    "@tensorflow/tfjs",
    "@tensorflow/tfjs-core",
    "@tensorflow/tfjs-backend-wasm",
    "@tensorflow/tfjs-node",
    "@tensorflow/tfjs-node-gpu",
  ]);
}
