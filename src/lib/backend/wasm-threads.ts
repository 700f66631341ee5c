/**
 * A multi-threaded tfjs wasm backend for Node, without editing node_modules.
 *
 * Stock `@tensorflow/tfjs-backend-wasm` 4.22 runs single-threaded in Node: its
 * `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false there, it hands Emscripten Blob URLs
 * for the pthread worker and main script (Node's worker_threads cannot load them, and the main
 * script it serialises is the ES5-transpiled bundle, which needs helpers a worker lacks), and the
 * C++ side caps the XNNPACK pool at half of `emscripten_num_logical_cores()` and at most 8.
 *
 * {@link registerThreadedWasm} replaces the registered "wasm" backend factory by one that
 * instantiates the package's own threaded-SIMD build (`wasm-out/tfjs-backend-wasm-threaded-simd.js`
 * + `dist/tfjs-backend-wasm-threaded-simd.wasm`):
 * - pthread workers are Node workers evaluating the package's worker source, and they load the
 *   original Emscripten glue file by path (never a Blob);
 * - `emscripten_num_logical_cores` is answered with `2 × threads`, so the C++ cap becomes `threads`;
 * - running pthread workers are unref'd, so an idle pool never keeps the process alive.
 * If anything fails (or takes longer than `timeoutMs`), the stock single-threaded factory is put
 * back and the reason is returned.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker as NodeWorker, type WorkerOptions } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import type * as TfWasm from "@tensorflow/tfjs-backend-wasm";
import { errorMessage } from "../util";

/** What {@link registerThreadedWasm} set up (before the backend is initialised). */
export interface WasmThreadsPlan {
  /** Threads requested (the C++ side caps at 8). */
  requested: number;
  /** True when the threaded factory is registered; false when the stock one stays. */
  threaded: boolean;
  /** Why the threaded build is not used, when it is not. */
  fallbackReason?: string;
}

/** Minimal view of the Emscripten module the threaded factory resolves to. */
interface EmscriptenThreadedModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...args: unknown[]) => unknown;
  PThread: { unusedWorkers: NodeWorker[]; runningWorkers: NodeWorker[]; terminateAllThreads(): void };
  tfjs?: Record<string, unknown>;
}

type ThreadedFactory = (config: Record<string, unknown>) => Promise<EmscriptenThreadedModule>;

const WORKER_MARKER = "l3kit:tfjs-backend-wasm-threaded-simd.worker.js";

/** The `@tensorflow/tfjs-backend-wasm` module, loaded on first use (loading it registers "wasm"). */
export function loadWasmPackage(): typeof TfWasm {
  return require("@tensorflow/tfjs-backend-wasm") as typeof TfWasm;
}

/** Folder of the installed `@tensorflow/tfjs-backend-wasm` package. */
export function wasmPackageDir(): string {
  return path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
}

let plan: WasmThreadsPlan | undefined;
let lastModule: EmscriptenThreadedModule | undefined;

/** The threaded module's pthread state after init, for reports (undefined when not threaded). */
export function wasmPthreadState(): { running: number; idle: number } | undefined {
  if (!lastModule) return undefined;
  return { running: lastModule.PThread.runningWorkers.length, idle: lastModule.PThread.unusedWorkers.length };
}

/**
 * Registers a "wasm" backend factory that runs the threaded-SIMD build with `threads` threads.
 * Call before the wasm backend is first initialised (before `tf.setBackend("wasm")`); calling
 * again returns the first plan. `timeoutMs` bounds the wait for the pthread workers to load.
 */
export function registerThreadedWasm(threads: number, opts: { timeoutMs?: number } = {}): WasmThreadsPlan {
  if (plan) return plan;
  const wasmPkg = loadWasmPackage();
  const requested = Math.max(1, Math.floor(threads));
  if (tf.engine().registry.wasm) {
    plan = { requested, threaded: false, fallbackReason: "the wasm backend was already initialised before l3kit could configure threads" };
    return plan;
  }
  const stockFactory = tf.findBackendFactory("wasm");
  if (!stockFactory) throw new Error("@tensorflow/tfjs-backend-wasm did not register a 'wasm' backend");
  wasmPkg.setThreadsCount(requested);
  const stock = async (): Promise<tf.KernelBackend> => {
    const before = processHandlers();
    try {
      return await stockFactory();
    } finally {
      dropNewProcessHandlers(before);
    }
  };
  const dir = wasmPackageDir();
  const glue = path.join(dir, "wasm-out", "tfjs-backend-wasm-threaded-simd.js");
  const workerJs = path.join(dir, "wasm-out", "tfjs-backend-wasm-threaded-simd.worker.js");
  const binary = path.join(dir, "dist", "tfjs-backend-wasm-threaded-simd.wasm");
  const missing = [glue, workerJs, binary].filter((f) => !fs.existsSync(f));
  let why: string | undefined;
  if (requested === 1) why = "1 thread requested";
  else if (missing.length > 0) why = `threaded build files missing: ${missing.join(", ")}`;
  else if (typeof SharedArrayBuffer === "undefined") why = "SharedArrayBuffer is not available in this Node";
  const current: WasmThreadsPlan = why ? { requested, threaded: false, fallbackReason: why } : { requested, threaded: true };
  plan = current;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const threaded = async (): Promise<tf.KernelBackend> => {
    const before = processHandlers();
    try {
      const module = await instantiateThreaded({ glue, workerJs, binary, threads: requested, timeoutMs });
      dropNewProcessHandlers(before);
      lastModule = module;
      const backend = new wasmPkg.BackendWasm(module as never);
      // Pool threads are started (and ref'd by Emscripten) inside the BackendWasm constructor.
      // They park on futexes forever; do not let them keep Node alive.
      for (const w of module.PThread.runningWorkers) w.unref();
      return backend;
    } catch (err) {
      dropNewProcessHandlers(before);
      current.threaded = false;
      current.fallbackReason = `threaded wasm failed to start (${errorMessage(err)}); using the single-threaded SIMD build`;
      lastModule = undefined;
      return await stock();
    }
  };
  // Either way the factory is wrapped: the glue's process-wide handlers are removed after init.
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", current.threaded ? threaded : stock, 2);
  return current;
}

type ProcessHandlers = Record<"uncaughtException" | "unhandledRejection", unknown[]>;

function processHandlers(): ProcessHandlers {
  return { uncaughtException: process.listeners("uncaughtException"), unhandledRejection: process.listeners("unhandledRejection") };
}

/**
 * The Emscripten glue installs process-wide `uncaughtException`/`unhandledRejection` handlers that
 * rethrow (so any later crash prints a screenful of minified glue source, and unhandled rejections
 * become crashes). l3kit never calls Emscripten's exit(), which is what they exist for: remove them.
 */
function dropNewProcessHandlers(before: ProcessHandlers): void {
  for (const l of process.listeners("uncaughtException")) {
    if (!before.uncaughtException.includes(l)) process.removeListener("uncaughtException", l);
  }
  for (const l of process.listeners("unhandledRejection")) {
    if (!before.unhandledRejection.includes(l)) process.removeListener("unhandledRejection", l);
  }
}

/** Instantiates the Emscripten threaded module with Node-loadable workers. */
async function instantiateThreaded(o: {
  glue: string;
  workerJs: string;
  binary: string;
  threads: number;
  timeoutMs: number;
}): Promise<EmscriptenThreadedModule> {
  const threadedFactory = require(o.glue) as ThreadedFactory;
  const { wasmWorkerContents } = require(o.workerJs) as { wasmWorkerContents: string };
  // The package turns the template literal's real newlines back into "\n" escapes before use.
  const workerSource = wasmWorkerContents.replace(/\n/g, "\\n");
  const bytes = fs.readFileSync(o.binary);
  const created: NodeWorker[] = [];
  let settled = false;
  let reject: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, rej) => {
    reject = rej;
  });
  const fail = (err: unknown): void => {
    if (settled) console.error(`l3kit: wasm pthread worker error: ${errorMessage(err)}`);
    else reject(err);
  };

  class PthreadWorker extends NodeWorker {
    constructor(file: string | URL, options?: WorkerOptions) {
      // Node pipes each worker's stdout/stderr into the process's, adding listeners there: make
      // room for them (8+ pool workers would otherwise trigger MaxListenersExceededWarning).
      for (const stream of [process.stdout, process.stderr]) {
        const max = stream.getMaxListeners();
        if (max > 0 && Number.isFinite(max)) stream.setMaxListeners(max + 1);
      }
      if (file === WORKER_MARKER) super(workerSource, { eval: true });
      else super(file, options);
      created.push(this);
    }
    // Emscripten's error handler rethrows inside an event callback (an uncaught exception);
    // report the failure to the init promise instead.
    // biome-ignore lint/suspicious/noExplicitAny: the signature of Worker.on that this overrides
    override on(event: string | symbol, listener: (...args: any[]) => void): this {
      if (event === "error") {
        return super.on(event, (e: unknown) => {
          fail(e);
        });
      }
      return super.on(event, listener);
    }
  }

  const prevWorker = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  // The glue assigns `global.Worker = worker_threads.Worker` and then creates its pool with
  // `new Worker(...)`: serve it our subclass for the duration of the (synchronous) factory call.
  Object.defineProperty(globalThis, "Worker", {
    configurable: true,
    get: () => PthreadWorker,
    set: () => {},
  });
  let ready: Promise<EmscriptenThreadedModule>;
  try {
    ready = threadedFactory({
      locateFile: (file: string, prefix: string) => {
        if (file.endsWith(".worker.js")) return WORKER_MARKER;
        if (file.endsWith(".wasm")) return o.binary;
        return prefix + file;
      },
      mainScriptUrlOrBlob: o.glue,
      instantiateWasm: (
        info: { env: Record<string, unknown> },
        receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
      ) => {
        // backend.cc computes `num_cores = emscripten_num_logical_cores() / 2` and caps the pool by it.
        info.env.emscripten_num_logical_cores = () => 2 * o.threads;
        WebAssembly.instantiate(bytes, info as WebAssembly.Imports).then(
          (r) => receive(r.instance, r.module),
          (err) => fail(err),
        );
        return {};
      },
      onAbort: (what: unknown) => fail(new Error(`wasm aborted: ${String(what)}`)),
    });
  } finally {
    if (prevWorker) Object.defineProperty(globalThis, "Worker", prevWorker);
    else delete (globalThis as { Worker?: unknown }).Worker;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pthread workers did not load within ${o.timeoutMs} ms`)), o.timeoutMs);
    timer.unref();
  });
  try {
    const module = await Promise.race([ready, failed, timeout]);
    module.tfjs = {
      init: module.cwrap("init", null, []),
      initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
      getThreadsCount: module.cwrap("get_threads_count", "number", []),
      registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
      disposeData: module.cwrap("dispose_data", null, ["number"]),
      dispose: module.cwrap("dispose", null, []),
    };
    return module;
  } catch (err) {
    for (const w of created) void w.terminate();
    throw err;
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}

/** Default thread count: the logical cores Node may use. */
export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}
