// `npm run bench` (`l3kit bench`): speed and memory of l3kit on this machine, written to
// bench-results/<date>.json and <date>.md, with the summary table printed.
//
//   node --import tsx bench/cli.ts [--quick] [--presets tiny,lite] [--backends wasm,cpu] [--only train] …
//
// Each measurement runs in a child process (bench/worker.ts), so each backend starts clean and the
// peak RSS is per job: training-step and forward samples/s per preset and tfjs backend, ONNX forward
// samples/s, the data pipeline (video, sample cache, avcBatches), synthetic generation, a tensor-leak
// check, and the PyTorch reference (bench/reference/l3net_torch.py) timed in the same run when a
// python3 with torch is found, reported as ratios.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildL3Graph, L3_PRESET_NAMES, type L3PresetName, l3Preset, modelSummary } from "../src/lib/models";
import { ConfigError, errorMessage, installedVersion, writeFileAtomic, writeJsonAtomic } from "../src/lib/util";
import type {
  BenchJob,
  DataJobResult,
  JobResult,
  LeakResult,
  OnnxJobResult,
  OnnxProfileJobResult,
  OnnxTrainJobResult,
  SynthJobResult,
  TfjsJobResult,
  Timing,
} from "./common";
import type { ProfileGroup } from "./profile";

/** The benchmark sections (`--only`) and what each measures. */
export const BENCH_SECTION_TABLE = {
  train: "training-step samples/s per preset: each tfjs backend, the onnx training engine",
  forward: "forward (inference) samples/s per preset and tfjs backend",
  onnx: "ONNX export and onnxruntime forward samples/s per preset",
  data: "the data pipeline: video, sample cache, avcBatches",
  synth: "synthetic-benchmark generation",
  torch: "the PyTorch reference (bench/reference/l3net_torch.py), as ratios",
  leak: "a tensor-leak check over training steps",
  profile: "onnxruntime's profiler on the onnx training step: ms per step by group of ops",
} as const;
export type BenchSection = keyof typeof BENCH_SECTION_TABLE;
export const BENCH_SECTIONS = Object.keys(BENCH_SECTION_TABLE) as BenchSection[];

const TFJS_BACKENDS = ["wasm", "cpu", "tensorflow", "tensorflow-gpu"] as const;

/** Options of {@link runBench} (strings as the CLI gives them, or numbers). */
export interface RunBenchOptions {
  /** Sections to run (default: all). */
  only?: readonly string[];
  /** Comma-separated presets (default "tiny,lite,paper"; `quick`: "tiny"). */
  presets?: string;
  /** Comma-separated tfjs backends (default "wasm,cpu,tensorflow,tensorflow-gpu"); those that do not load are reported. */
  backends?: string;
  /** Batch size (default 8). */
  batch?: string | number;
  /** Timed repetitions, median reported (default 5; `quick`: 2). */
  reps?: string | number;
  /** A smoke run: tiny only, 2 short repetitions, 20 leak steps, few clips, no training on the tfjs cpu backend. */
  quick?: boolean;
  /** Output folder (default "bench-results"). */
  out?: string;
  /** Training steps of the tensor-leak check (default 100; `quick`: 20). */
  leakSteps?: string | number;
  /**
   * Threads of every engine: tfjs wasm, onnxruntime and PyTorch (default: all cores). On a machine
   * busy with other work, 1 gives steadier ratios (no thread waits for a descheduled partner).
   */
  threads?: string | number;
  /** torch.set_num_threads of the reference (default: `threads`). */
  torchThreads?: string | number;
  /** python3 with torch for the reference (default: `L3KIT_TORCH_PYTHON`, then `python3`, then `/usr/bin/python3`). */
  python?: string;
  /** Per-job time limit in seconds (default 1800). */
  jobTimeoutSec?: number;
  /** Where progress and the summary go (default: stderr for progress, stdout for the summary). */
  log?: (line: string) => void;
  /** Print the summary table (default true). */
  print?: boolean;
}

/** A training or forward measurement in the report. */
export interface BenchRow extends Timing {
  preset: L3PresetName;
  /** "wasm", "cpu", … (tfjs backends), "onnx" or "torch". */
  engine: string;
  batch: number;
  peakRssBytes?: number;
  loss?: number;
  /** Training: the micro-batches the batch was split into (gradient accumulation). */
  microBatches?: number;
}

/** The report written to `<date>.json`. */
export interface BenchReport {
  kind: "l3kit-bench";
  version: 1;
  date: string;
  quick: boolean;
  options: {
    sections: BenchSection[];
    presets: L3PresetName[];
    backends: string[];
    batch: number;
    reps: number;
    leakSteps: number;
    /** Threads of tfjs wasm, onnxruntime and (unless set apart) PyTorch. */
    threads: number;
    torchThreads: number;
  };
  machine: {
    cpuModel: string;
    cores: number;
    memoryBytes: number;
    platform: string;
    arch: string;
    loadavgStart: number[];
    loadavgEnd: number[];
  };
  versions: Record<string, string>;
  /** Per tfjs backend: whether it loaded, why (not), threads. */
  backends: Array<{ name: string; loaded: boolean; reason: string; threads?: number; simd?: boolean }>;
  /** Forward FLOPs per sample of each preset (from the graph). */
  flops: Record<string, number>;
  train: BenchRow[];
  forward: BenchRow[];
  onnx: {
    available: boolean;
    reason: string;
    version?: string;
    exports: Array<{ preset: string; bytes: number; exportMs: number; firstRunMs: number }>;
  } | null;
  torch: {
    available: boolean;
    reason: string;
    python?: string;
    version?: string;
    threads?: number;
    paramsMatch?: Record<string, boolean>;
  } | null;
  /** l3kit ÷ PyTorch samples/s per preset. */
  ratios: Array<{
    preset: string;
    trainWasmOverTorch: number | null;
    /** The onnx training engine ÷ PyTorch, and ÷ tfjs wasm. */
    trainOnnxOverTorch: number | null;
    trainOnnxOverWasm: number | null;
    /** GFLOP/s of an onnx training step ÷ GFLOP/s of the ONNX forward pass, same run. */
    onnxTrainOverForwardGflops: number | null;
    onnxForwardOverTorch: number | null;
    wasmForwardOverTorch: number | null;
  }>;
  data: Omit<DataJobResult, "kind" | "loadavg"> | null;
  synth: SynthJobResult["profiles"] | null;
  leak: LeakResult | null;
  /** onnxruntime's profile of the onnx training step per preset, by op group. */
  profiles: Array<{ preset: string; batch: number; runs: number; totalMs: number; groups: ProfileGroup[] }>;
  /** Peak RSS of every child job. */
  memory: Array<{ job: string; peakRssBytes: number }>;
  notes: string[];
  files: { json: string; md: string };
}

function int(v: string | number | undefined, def: number, key: string, min = 1): number {
  if (v === undefined) return def;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(`must be an integer >= ${min}, got ${JSON.stringify(v)}`, { subject: `bench --${key}` });
  return n;
}

function list(v: string | undefined, def: string): string[] {
  return (v ?? def)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Bytes of the forward activations of one sample (every main-path node's output, float32). */
function activationBytes(preset: L3PresetName): number {
  const g = buildL3Graph(l3Preset(preset));
  let n = 0;
  for (const node of g.nodes) if (!node.optional) n += node.shape.reduce((a, b) => a * b, 1);
  return 4 * n;
}

/**
 * Micro-batches for a wasm training step: tfjs-wasm has a 4 GiB (wasm32) heap and a training step
 * holds about 3× the forward activations, so each micro-batch keeps its activations under 700 MiB
 * (paper at batch 8: 4 micro-batches of 2). A power of two that divides the batch.
 */
function wasmMicroBatches(preset: L3PresetName, batch: number): number {
  const per = activationBytes(preset);
  let mb = 1;
  while ((per * batch) / mb > 700 * 2 ** 20 && batch % (mb * 2) === 0) mb *= 2;
  return mb;
}

/** Runs a job in a child process; resolves with its result (or an error result). */
function runChild(job: BenchJob, timeoutSec: number, log: (s: string) => void, threads?: number): Promise<JobResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "l3kit-bench-job-"));
  const jobFile = path.join(dir, "job.json");
  const resultFile = path.join(dir, "result.json");
  writeFileSync(jobFile, JSON.stringify(job));
  const ts = path.extname(__filename) === ".ts";
  const worker = path.join(__dirname, `worker${ts ? ".ts" : ".js"}`);
  const args = ts ? ["--require", require.resolve("tsx/cjs"), worker, jobFile, resultFile] : [worker, jobFile, resultFile];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, L3KIT_QUIET: "1", ...(threads ? { L3KIT_THREADS: String(threads) } : {}) },
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const timer = setTimeout(() => {
      log(`  job timed out after ${timeoutSec} s; stopping it`);
      child.kill("SIGKILL");
    }, timeoutSec * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let res: JobResult | undefined;
      try {
        res = JSON.parse(readFileSync(resultFile, "utf8")) as JobResult;
      } catch {
        // no result written
      }
      rmSync(dir, { recursive: true, force: true });
      if (res) return resolve(res);
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      resolve({
        kind: job.kind,
        error: `${why}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
        peakRssBytes: 0,
        loadavg: os.loadavg(),
      } as JobResult);
    });
  });
}

/** A python3 that imports torch (and numpy), or why none was found. */
function findTorch(explicit?: string): { python: string; version: string } | { reason: string } {
  const candidates = [explicit, process.env.L3KIT_TORCH_PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string => !!c);
  const tried: string[] = [];
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, ["-c", "import torch, numpy; print(torch.__version__)"], { encoding: "utf8", timeout: 60_000 });
    if (r.status === 0) return { python: py, version: r.stdout.trim() };
    tried.push(`${py}: ${r.error ? errorMessage(r.error) : (r.stderr.trim().split("\n").pop() ?? `exit ${r.status}`)}`);
  }
  return { reason: `no python3 with torch (${tried.join("; ")}); install python3-torch to compare` };
}

interface TorchResult {
  torch: string;
  threads: number;
  params: number;
  train?: Timing & { loss: number };
  forward?: Timing;
}

function runTorch(
  python: string,
  preset: L3PresetName,
  o: { batch: number; reps: number; warmup: number; minRepMs: number; what: string[]; timeoutSec: number; threads: number },
): { result?: TorchResult; error?: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "l3kit-bench-torch-"));
  try {
    const cfgFile = path.join(dir, "config.json");
    writeFileSync(cfgFile, JSON.stringify(l3Preset(preset)));
    const script = path.join(__dirname, "reference", "l3net_torch.py");
    const scriptPath = existsSync(script) ? script : path.resolve(__dirname, "..", "..", "bench", "reference", "l3net_torch.py");
    const r = spawnSync(
      python,
      [
        scriptPath,
        "--config",
        cfgFile,
        "--batch",
        String(o.batch),
        "--reps",
        String(o.reps),
        "--warmup",
        String(o.warmup),
        "--threads",
        String(o.threads),
        "--what",
        o.what.join(","),
        "--min-rep-ms",
        String(o.minRepMs),
      ],
      { encoding: "utf8", timeout: o.timeoutSec * 1000, maxBuffer: 1 << 24 },
    );
    if (r.status !== 0)
      return { error: `${r.error ? errorMessage(r.error) : `exit ${r.status}`}: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}` };
    const res = JSON.parse(r.stdout.trim().split("\n").pop() as string) as TorchResult;
    return { result: res };
  } catch (err) {
    return { error: errorMessage(err) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(digits);
const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** The Markdown summary of a report. */
export function formatBenchMarkdown(r: BenchReport): string {
  const L: string[] = [];
  const m = r.machine;
  L.push(`# l3kit bench — ${r.date}${r.quick ? " (quick)" : ""}`, "");
  L.push(`- Machine: ${m.cpuModel}, ${m.cores} cores, ${gib(m.memoryBytes)} RAM, ${m.platform}/${m.arch}`);
  L.push(
    `- Load average (1/5/15 min): start ${m.loadavgStart.map((x) => x.toFixed(2)).join(" ")}, end ${m.loadavgEnd.map((x) => x.toFixed(2)).join(" ")}`,
  );
  L.push(
    `- Versions: ${Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  L.push(
    `- Batch ${r.options.batch}; median of ${r.options.reps} repetitions after warm-up; samples/s (higher is better); threads: tfjs wasm and onnxruntime ${r.options.threads}, PyTorch ${r.options.torchThreads}`,
  );
  L.push("");
  const presets = r.options.presets;
  const engines = r.backends.filter((b) => b.loaded).map((b) => b.name);
  const cell = (rows: BenchRow[], preset: string, engine: string) => {
    const row = rows.find((x) => x.preset === preset && x.engine === engine);
    if (!row) return "—";
    const mb = row.microBatches && row.microBatches > 1 ? `, ${row.microBatches} micro-batches` : "";
    return `${fmt(row.samplesPerSec)}${row.gflops !== undefined ? ` (${fmt(row.gflops)} GF/s${mb})` : mb ? ` (${mb.slice(2)})` : ""}`;
  };
  if (r.train.length) {
    L.push("## Training step (samples/s)", "");
    const cols = [...engines, ...["onnx", "torch"].filter((e) => r.train.some((x) => x.engine === e))];
    const name = (c: string) => (c === "torch" ? "PyTorch" : c === "onnx" ? "onnx (onnxruntime)" : `tfjs ${c}`);
    L.push(`| preset | ${cols.map(name).join(" | ")} | onnx ÷ PyTorch | onnx ÷ wasm | onnx step ÷ ONNX forward GF/s | wasm ÷ PyTorch |`);
    L.push(`|---|${cols.map(() => "---:").join("|")}|---:|---:|---:|---:|`);
    for (const p of presets) {
      const rt = r.ratios.find((x) => x.preset === p);
      const f = (v: number | null | undefined) => (v == null ? "—" : `${v.toFixed(2)}×`);
      L.push(
        `| ${p} | ${cols.map((c) => cell(r.train, p, c)).join(" | ")} | ${f(rt?.trainOnnxOverTorch)} | ${f(rt?.trainOnnxOverWasm)} | ${rt?.onnxTrainOverForwardGflops == null ? "—" : `${(100 * rt.onnxTrainOverForwardGflops).toFixed(0)}%`} | ${f(rt?.trainWasmOverTorch)} |`,
      );
    }
    L.push("");
  }
  if (r.forward.length) {
    L.push("## Forward, inference mode (samples/s)", "");
    const cols = [
      ...engines.filter((e) => r.forward.some((x) => x.engine === e)),
      ...["onnx", "torch"].filter((e) => r.forward.some((x) => x.engine === e)),
    ];
    const name = (c: string) => (c === "torch" ? "PyTorch" : c === "onnx" ? "ONNX (onnxruntime)" : `tfjs ${c}`);
    L.push(`| preset | ${cols.map(name).join(" | ")} | ONNX ÷ PyTorch | wasm ÷ PyTorch |`);
    L.push(`|---|${cols.map(() => "---:").join("|")}|---:|---:|`);
    for (const p of presets) {
      const rt = r.ratios.find((x) => x.preset === p);
      const f = (v: number | null | undefined) => (v == null ? "—" : `${v.toFixed(2)}×`);
      L.push(
        `| ${p} | ${cols.map((c) => cell(r.forward, p, c)).join(" | ")} | ${f(rt?.onnxForwardOverTorch)} | ${f(rt?.wasmForwardOverTorch)} |`,
      );
    }
    L.push("");
  }
  if (r.onnx?.exports.length) {
    L.push(
      `ONNX export (probs graph): ${r.onnx.exports.map((e) => `${e.preset} ${mib(e.bytes)} in ${fmt(e.exportMs, 0)} ms, session + first run ${fmt(e.firstRunMs, 0)} ms`).join("; ")}.`,
      "",
    );
  }
  for (const p of r.profiles) {
    L.push(
      `## Where the onnx training step's time goes: ${p.preset}, batch ${p.batch}`,
      "",
      `onnxruntime's profiler over ${p.runs} step${p.runs === 1 ? "" : "s"} after 2 warm-ups: ${fmt(p.totalMs, 1)} ms of kernels per step (the profiler adds its own overhead).`,
      "",
      "| ops | ms per step | share | nodes |",
      "|---|---:|---:|---:|",
    );
    for (const g of p.groups) L.push(`| ${g.group} | ${fmt(g.ms, 1)} | ${fmt(100 * g.share, 0)}% | ${g.nodes} |`);
    L.push("");
  }
  if (r.memory.length) {
    L.push("## Peak RSS per job", "", "| job | peak RSS |", "|---|---:|");
    for (const j of r.memory) L.push(`| ${j.job} | ${mib(j.peakRssBytes)} |`);
    L.push("");
  }
  if (r.leak) {
    L.push(
      `## Tensor leak check`,
      "",
      `${r.leak.steps} training steps of ${r.leak.preset} on ${r.leak.backend}: ${r.leak.tensorsBefore} → ${r.leak.tensorsAfter} tensors (growth ${r.leak.growth}), ${mib(r.leak.bytesBefore)} → ${mib(r.leak.bytesAfter)}.`,
      "",
    );
  }
  if (r.data) {
    const d = r.data;
    L.push(
      `## Data pipeline (${d.preset} transforms, batch ${d.batch}, ${d.clips} synthetic tiny clips)`,
      "",
      "| stage | samples/s |",
      "|---|---:|",
    );
    if (d.videoReadSamples) L.push(`| video → readSamples (4 at once) | ${fmt(d.videoReadSamples.samplesPerSec)} |`);
    if (d.videoAvcBatches) L.push(`| video → avcBatches (training transforms) | ${fmt(d.videoAvcBatches.samplesPerSec)} |`);
    if (d.cacheBuild) L.push(`| sample cache build | ${fmt(d.cacheBuild.samplesPerSec)} |`);
    if (d.cacheGetSample) L.push(`| cache → getSample (random) | ${fmt(d.cacheGetSample.samplesPerSec)} |`);
    if (d.cacheAvcBatches) L.push(`| cache → avcBatches (training transforms) | ${fmt(d.cacheAvcBatches.samplesPerSec)} |`);
    L.push("");
  }
  if (r.synth) {
    L.push(
      "## Synthetic generation",
      "",
      "| profile | clips/s | clips | JS audio ms/clip | JS render ms/clip |",
      "|---|---:|---:|---:|---:|",
    );
    for (const s of r.synth)
      L.push(`| ${s.profile} | ${fmt(s.clipsPerSec, 2)} | ${s.clips} | ${fmt(s.audioMs, 0)} | ${fmt(s.renderMs, 0)} |`);
    L.push("");
  }
  const skipped = r.backends.filter((b) => !b.loaded);
  if (skipped.length || r.notes.length || (r.torch && !r.torch.available) || (r.onnx && !r.onnx.available)) {
    L.push("## Notes", "");
    for (const b of skipped) L.push(`- tfjs backend ${b.name} not available: ${b.reason}`);
    if (r.onnx && !r.onnx.available) L.push(`- ONNX: ${r.onnx.reason}`);
    if (r.torch && !r.torch.available) L.push(`- PyTorch reference skipped: ${r.torch.reason}`);
    for (const n of r.notes) L.push(`- ${n}`);
    L.push("");
  }
  return L.join("\n");
}

/** Everything a stage of the run reads and records into. */
interface BenchContext {
  report: BenchReport;
  sections: ReadonlySet<BenchSection>;
  quick: boolean;
  backends: string[];
  batch: number;
  leakSteps: number;
  threads: number;
  torchThreads: number;
  timeoutSec: number;
  plan: { warmup: number; reps: number; minRepMs: number };
  log: (line: string) => void;
  /** The PyTorch reference's python, or why there is none (torch section only). */
  torch?: { python: string; version: string } | { reason: string };
  /** The tfjs backends tried so far, with their first result. */
  backendState: Map<string, TfjsJobResult>;
  leakDone: boolean;
}

/**
 * One stage of the run, in run order: once per preset or once in all, when any of its `sections`
 * is asked for (an empty list: always).
 */
interface BenchStage {
  name: string;
  sections: readonly BenchSection[];
  perPreset: boolean;
  run(ctx: BenchContext, preset: L3PresetName): Promise<void>;
}

const BENCH_STAGES: readonly BenchStage[] = [
  { name: "tfjs backends", sections: ["train", "forward", "leak"], perPreset: true, run: runTfjsStage },
  { name: "ONNX forward", sections: ["onnx"], perPreset: true, run: runOnnxStage },
  { name: "onnx training engine", sections: ["train"], perPreset: true, run: runOnnxTrainStage },
  { name: "PyTorch reference", sections: ["torch"], perPreset: true, run: runTorchStage },
  { name: "onnx step profile", sections: ["profile"], perPreset: true, run: runProfileStage },
  { name: "ratios", sections: [], perPreset: true, run: async (ctx, preset) => recordRatios(ctx.report, preset) },
  { name: "data pipeline", sections: ["data"], perPreset: false, run: runDataStage },
  { name: "synthetic generation", sections: ["synth"], perPreset: false, run: runSynthStage },
];

/** Runs a job in a child process with the run's time limit (and `threads` for the engines). */
function runJob<R extends JobResult>(ctx: BenchContext, job: BenchJob, threads?: number): Promise<R> {
  return runChild(job, ctx.timeoutSec, ctx.log, threads) as Promise<R>;
}

/** Records a failed measurement: a note in the report and a line in the log. */
function recordFailure(ctx: BenchContext, what: string, error: string): void {
  ctx.report.notes.push(`${what} failed: ${error}`);
  ctx.log(`  failed: ${error}`);
}

/**
 * Runs the benchmark and writes `<out>/<date>.json` and `<out>/<date>.md`; prints the Markdown
 * summary. Returns the report.
 */
export async function runBench(opts: RunBenchOptions = {}): Promise<BenchReport> {
  const ctx = benchContext(opts);
  const { report, sections } = ctx;
  const on = (stage: BenchStage) => stage.sections.length === 0 || stage.sections.some((x) => sections.has(x));
  for (const preset of report.options.presets)
    for (const stage of BENCH_STAGES) if (stage.perPreset && on(stage)) await stage.run(ctx, preset);
  for (const stage of BENCH_STAGES) if (!stage.perPreset && on(stage)) await stage.run(ctx, report.options.presets[0] as L3PresetName);
  const cores = report.machine.cores;
  if (report.torch?.available && Object.values(report.torch.paramsMatch ?? {}).some((ok) => !ok))
    report.notes.push("the PyTorch twin's parameter count differs from l3kit's for some preset: its numbers are not comparable");
  if (os.loadavg()[0]! > cores * 0.5 || report.machine.loadavgStart[0]! > cores * 0.5)
    report.notes.push(
      `the machine was busy (load average ${report.machine.loadavgStart[0]?.toFixed(2)} at start, ${os.loadavg()[0]?.toFixed(2)} at end, ${cores} cores): timings are noisy.`,
    );
  report.machine.loadavgEnd = os.loadavg();
  const md = formatBenchMarkdown(report);
  await writeJsonAtomic(report.files.json, report);
  await writeFileAtomic(report.files.md, `${md}\n`);
  if (opts.print ?? true) process.stdout.write(`${md}\nwritten: ${report.files.json}, ${report.files.md}\n`);
  return report;
}

/** Checks the options and makes the run's context: settings, an empty report, the PyTorch python. */
function benchContext(opts: RunBenchOptions): BenchContext {
  const quick = opts.quick ?? false;
  const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const sectionsIn = (opts.only ?? [])
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of sectionsIn)
    if (!(BENCH_SECTIONS as readonly string[]).includes(s))
      throw new ConfigError(`unknown section '${s}' (valid: ${BENCH_SECTIONS.join(", ")})`, { subject: "bench --only" });
  const sections = new Set<BenchSection>((sectionsIn.length ? sectionsIn : BENCH_SECTIONS) as BenchSection[]);
  const presets = list(opts.presets, quick ? "tiny" : "tiny,lite,paper");
  for (const p of presets)
    if (!(L3_PRESET_NAMES as readonly string[]).includes(p))
      throw new ConfigError(`unknown preset '${p}' (valid: ${L3_PRESET_NAMES.join(", ")})`, { subject: "bench --presets" });
  const backends = list(opts.backends, TFJS_BACKENDS.join(","));
  for (const b of backends)
    if (!(TFJS_BACKENDS as readonly string[]).includes(b))
      throw new ConfigError(`unknown backend '${b}' (valid: ${TFJS_BACKENDS.join(", ")})`, { subject: "bench --backends" });
  const batch = int(opts.batch, 8, "batch");
  const reps = int(opts.reps, quick ? 2 : 5, "reps");
  const leakSteps = int(opts.leakSteps, quick ? 20 : 100, "leak-steps", 0);
  const threads = int(opts.threads, cores, "threads");
  const torchThreads = int(opts.torchThreads, threads, "torch-threads");
  const options = { sections: [...sections], presets: presets as L3PresetName[], backends, batch, reps, leakSteps, threads, torchThreads };
  const report = emptyReport(options, quick, cores, path.resolve(opts.out ?? "bench-results"));
  log(
    `l3kit bench: ${[...sections].join(", ")} on ${presets.join(", ")}; batch ${batch}, ${reps} reps; ${report.machine.cpuModel}, ${cores} cores, load ${os.loadavg()[0]?.toFixed(2)}`,
  );
  const torch = sections.has("torch") ? findTorch(opts.python) : undefined;
  if (torch) {
    report.torch =
      "python" in torch
        ? {
            available: true,
            reason: `${torch.python}: torch ${torch.version}`,
            python: torch.python,
            version: torch.version,
            paramsMatch: {},
          }
        : { available: false, reason: torch.reason };
    if ("version" in torch) report.versions.torch = torch.version;
  }
  return {
    report,
    sections,
    quick,
    backends,
    batch,
    leakSteps,
    threads,
    torchThreads,
    timeoutSec: opts.jobTimeoutSec ?? 1800,
    plan: { warmup: quick ? 1 : 2, reps, minRepMs: quick ? 100 : 400 },
    log,
    torch,
    backendState: new Map(),
    leakDone: !sections.has("leak"),
  };
}

/** A report with the options, the machine and the versions, and no measurements yet. */
function emptyReport(options: BenchReport["options"], quick: boolean, cores: number, outDir: string): BenchReport {
  const started = new Date();
  const stamp = started
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const report: BenchReport = {
    kind: "l3kit-bench",
    version: 1,
    date: started.toISOString(),
    quick,
    options,
    machine: {
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      cores,
      memoryBytes: os.totalmem(),
      platform: os.platform(),
      arch: os.arch(),
      loadavgStart: os.loadavg(),
      loadavgEnd: [],
    },
    versions: { node: process.versions.node },
    backends: [],
    flops: Object.fromEntries(options.presets.map((p) => [p, modelSummary(p).totals.flops])),
    train: [],
    forward: [],
    onnx: null,
    torch: null,
    ratios: [],
    data: null,
    synth: null,
    leak: null,
    profiles: [],
    memory: [],
    notes: [],
    files: { json: path.join(outDir, `${stamp}.json`), md: path.join(outDir, `${stamp}.md`) },
  };
  for (const pkg of [
    "@tensorflow/tfjs",
    "@tensorflow/tfjs-backend-wasm",
    "onnxruntime-node",
    "@tensorflow/tfjs-node",
    "@tensorflow/tfjs-node-gpu",
  ]) {
    const v = installedVersion(pkg);
    if (v) report.versions[pkg] = v;
  }
  return report;
}

/** Training, forward and the leak check of one preset on every tfjs backend. */
async function runTfjsStage(ctx: BenchContext, preset: L3PresetName): Promise<void> {
  const { report, sections, quick, batch } = ctx;
  for (const backend of ctx.backends) {
    const known = ctx.backendState.get(backend);
    if (known && !known.loaded) continue;
    if (backend === "cpu" && preset === "paper") {
      report.notes.push("paper on the tfjs cpu backend skipped: its pure-JS kernels take many minutes per batch.");
      continue;
    }
    const leak = !ctx.leakDone && preset === "tiny" ? ctx.leakSteps : 0;
    // the pure-JS cpu backend trains very slowly: tiny only, one repetition (none in --quick)
    const cpuTrain = backend !== "cpu" || (preset === "tiny" && !quick);
    if (backend === "cpu" && sections.has("train") && !cpuTrain)
      report.notes.push(
        `training of ${preset} on the tfjs cpu backend skipped${quick ? " in --quick" : ""}: its pure-JS kernels take minutes per step.`,
      );
    const train = sections.has("train") && cpuTrain;
    const forward = sections.has("forward");
    const jobPlan = backend === "cpu" ? { ...ctx.plan, warmup: 1, reps: Math.min(ctx.plan.reps, 2), minRepMs: 0 } : ctx.plan;
    if (!train && !forward && leak === 0) continue;
    ctx.log(
      `- tfjs ${backend} / ${preset}: ${[train && "train", forward && "forward", leak && `leak (${leak} steps)`].filter(Boolean).join(", ")}`,
    );
    let microBatches = train && backend === "wasm" ? wasmMicroBatches(preset, batch) : 1;
    if (microBatches > 1)
      report.notes.push(
        `${preset} on wasm: a training step at batch ${batch} needs more than the 4 GiB wasm32 heap (${mib(activationBytes(preset) * batch)} of forward activations alone); timed with gradient accumulation over ${microBatches} micro-batches of ${batch / microBatches} (the same update).`,
      );
    const job = () =>
      runJob<TfjsJobResult>(
        ctx,
        { kind: "tfjs", backend, preset, batch, train, forward, leakSteps: leak, microBatches, ...jobPlan },
        ctx.threads,
      );
    let res = await job();
    // A batch whose training step does not fit the backend's heap (wasm32: 4 GiB, e.g. paper at
    // batch 8) is trained with gradient accumulation over micro-batches: the same update.
    while (res.error && train && backend === "wasm" && microBatches * 2 <= batch && batch % (microBatches * 2) === 0) {
      microBatches *= 2;
      ctx.log(`  failed (${res.error.slice(0, 120)}); retrying with ${microBatches} micro-batches of ${batch / microBatches}`);
      res = await job();
      if (!res.error)
        report.notes.push(
          `${preset} on ${backend}: a training step at batch ${batch} does not fit the backend's heap; timed with gradient accumulation over ${microBatches} micro-batches of ${batch / microBatches} (the same update).`,
        );
    }
    if (res.error) {
      recordFailure(ctx, `tfjs ${backend} / ${preset}`, res.error);
      continue;
    }
    if (!known) {
      ctx.backendState.set(backend, res);
      report.backends.push({ name: backend, loaded: res.loaded, reason: res.reason, threads: res.threads, simd: res.simd });
    }
    if (!res.loaded) {
      ctx.log(`  not available: ${res.reason}`);
      continue;
    }
    recordTfjsResult(ctx, preset, backend, res);
  }
}

/** A loaded tfjs backend's training, forward and leak-check results, into the report. */
function recordTfjsResult(ctx: BenchContext, preset: L3PresetName, backend: string, res: TfjsJobResult): void {
  const { report, batch, log } = ctx;
  const did = [res.train && "train", res.forward && "forward", res.leak && "leak check"].filter(Boolean).join(" + ");
  report.memory.push({ job: `tfjs ${backend} / ${preset} ${did}`, peakRssBytes: res.peakRssBytes });
  if (res.train) {
    report.train.push({ ...res.train, preset, engine: backend, batch, peakRssBytes: res.peakRssBytes });
    log(
      `  train ${fmt(res.train.samplesPerSec)} samples/s (${fmt(res.train.msPerCall, 0)} ms/step${res.train.microBatches > 1 ? `, ${res.train.microBatches} micro-batches` : ""})`,
    );
  }
  if (res.forward) {
    report.forward.push({ ...res.forward, preset, engine: backend, batch, peakRssBytes: res.peakRssBytes });
    log(`  forward ${fmt(res.forward.samplesPerSec)} samples/s`);
  }
  if (res.leak) {
    report.leak = res.leak;
    ctx.leakDone = true;
    log(`  leak check: ${res.leak.tensorsBefore} → ${res.leak.tensorsAfter} tensors over ${res.leak.steps} steps`);
  }
}

/** ONNX export and onnxruntime forward of one preset. */
async function runOnnxStage(ctx: BenchContext, preset: L3PresetName): Promise<void> {
  const { report, batch } = ctx;
  ctx.log(`- ONNX / ${preset}: forward`);
  const res = await runJob<OnnxJobResult>(ctx, { kind: "onnx", preset, batch, ...ctx.plan }, ctx.threads);
  report.onnx ??= { available: res.available ?? false, reason: res.reason ?? res.error ?? "", version: res.version, exports: [] };
  if (res.error) {
    recordFailure(ctx, `ONNX / ${preset}`, res.error);
  } else if (res.available && res.forward) {
    report.onnx.available = true;
    report.onnx.reason = res.reason;
    report.versions["onnxruntime-node"] ??= res.version ?? "?";
    report.onnx.exports.push({ preset, bytes: res.exportBytes ?? 0, exportMs: res.exportMs ?? 0, firstRunMs: res.firstRunMs ?? 0 });
    report.forward.push({ ...res.forward, preset, engine: "onnx", batch, peakRssBytes: res.peakRssBytes });
    report.memory.push({ job: `ONNX / ${preset} forward`, peakRssBytes: res.peakRssBytes });
    ctx.log(`  forward ${fmt(res.forward.samplesPerSec)} samples/s (${res.reason})`);
  } else {
    ctx.log(`  not available: ${res.reason}`);
  }
}

/** The onnx training engine on one preset: batch `batch`, and for paper also the paper's 16 per worker (memory). */
async function runOnnxTrainStage(ctx: BenchContext, preset: L3PresetName): Promise<void> {
  const { report, batch, quick } = ctx;
  const batches = preset === "paper" && !quick && batch !== 16 ? [batch, 16] : [batch];
  for (const b of batches) {
    ctx.log(`- onnx training engine / ${preset}: train, batch ${b}`);
    // RSS over 500 steps where a step is short; paper's seconds-long steps are covered by its peak RSS
    const rssSteps = b === batch && preset !== "paper" ? (quick ? 20 : 500) : 0;
    const res = await runJob<OnnxTrainJobResult>(ctx, { kind: "onnx-train", preset, batch: b, rssSteps, ...ctx.plan }, ctx.threads);
    report.memory.push({ job: `onnx train / ${preset}, batch ${b}`, peakRssBytes: res.peakRssBytes });
    if (res.error || !res.available || !res.train) {
      report.notes.push(`onnx training / ${preset} (batch ${b}): ${res.error ?? res.reason}`);
      ctx.log(`  ${res.error ? "failed" : "not available"}: ${res.error ?? res.reason}`);
      continue;
    }
    if (b === batch) {
      report.train.push({ ...res.train, preset, engine: "onnx", batch: b, peakRssBytes: res.peakRssBytes });
      if (res.copy)
        report.notes.push(
          `onnx training / ${preset}: a step reads and writes ${mib(res.copy.bytes)} of parameters, BN statistics and Adam moments; onnxruntime writes the new values straight into the engine's spare buffers (pre-allocated outputs), so nothing is copied; were each copied once, a memcpy of that volume takes ${fmt(res.copy.ms, 2)} ms = ${fmt((100 * res.copy.ms) / res.train.msPerCall, 2)}% of the step.`,
        );
      if (res.rss)
        report.notes.push(
          `onnx training / ${preset}: RSS ${mib(res.rss.before)} after the timed steps, ${mib(res.rss.after)} after ${res.rss.steps} more (growth ${mib(res.rss.after - res.rss.before)}).`,
        );
    }
    ctx.log(
      `  train ${fmt(res.train.samplesPerSec)} samples/s (${fmt(res.train.msPerCall, 0)} ms/step), peak RSS ${mib(res.peakRssBytes)}`,
    );
  }
}

/** onnxruntime's profile of the onnx training step on one preset (3 steps; 1 on paper, whose steps take seconds). */
async function runProfileStage(ctx: BenchContext, preset: L3PresetName): Promise<void> {
  const { report, batch } = ctx;
  ctx.log(`- onnx training engine / ${preset}: profile, batch ${batch}`);
  const runs = preset === "paper" || ctx.quick ? 1 : 3;
  const res = await runJob<OnnxProfileJobResult>(ctx, { kind: "onnx-profile", preset, batch, runs }, ctx.threads);
  if (res.error || !res.available || !res.groups) {
    report.notes.push(`onnx profile / ${preset}: ${res.error ?? res.reason}`);
    ctx.log(`  ${res.error ? "failed" : "not available"}: ${res.error ?? res.reason}`);
    return;
  }
  report.profiles.push({ preset, batch, runs, totalMs: res.totalMs ?? 0, groups: res.groups });
  ctx.log(`  ${fmt(res.totalMs ?? 0, 1)} ms of kernels per step (profiled)`);
}

/** The PyTorch reference's training and forward on one preset, when a python with torch was found. */
async function runTorchStage(ctx: BenchContext, preset: L3PresetName): Promise<void> {
  const { report, sections, batch, torch } = ctx;
  if (!torch || !("python" in torch)) return;
  const what = [sections.has("train") && "train", (sections.has("forward") || sections.has("onnx")) && "forward"].filter(
    (x): x is string => !!x,
  );
  if (!what.length) return;
  ctx.log(`- PyTorch / ${preset}: ${what.join(", ")}`);
  const r = runTorch(torch.python, preset, { batch, ...ctx.plan, what, timeoutSec: ctx.timeoutSec, threads: ctx.torchThreads });
  if (r.error || !r.result) {
    recordFailure(ctx, `PyTorch / ${preset}`, r.error as string);
    return;
  }
  const t = r.result;
  const flops = report.flops[preset] as number;
  if (report.torch) {
    report.torch.threads = t.threads;
    (report.torch.paramsMatch as Record<string, boolean>)[preset] = t.params === modelSummary(preset).totals.trainableParams;
  }
  if (t.train) {
    report.train.push({ ...t.train, gflops: (3 * flops * batch) / t.train.msPerCall / 1e6, preset, engine: "torch", batch });
    ctx.log(`  train ${fmt(t.train.samplesPerSec)} samples/s`);
  }
  if (t.forward) {
    report.forward.push({ ...t.forward, gflops: (flops * batch) / t.forward.msPerCall / 1e6, preset, engine: "torch", batch });
    ctx.log(`  forward ${fmt(t.forward.samplesPerSec)} samples/s`);
  }
}

/** l3kit ÷ PyTorch (and onnx ÷ wasm) samples/s of one preset, from the rows recorded so far. */
function recordRatios(report: BenchReport, preset: L3PresetName): void {
  const sps = (rows: BenchRow[], engine: string) => rows.find((x) => x.preset === preset && x.engine === engine)?.samplesPerSec;
  const ratio = (a?: number, b?: number) => (a && b ? a / b : null);
  const gf = (rows: BenchRow[], engine: string) => rows.find((x) => x.preset === preset && x.engine === engine)?.gflops;
  report.ratios.push({
    preset,
    trainWasmOverTorch: ratio(sps(report.train, "wasm"), sps(report.train, "torch")),
    trainOnnxOverTorch: ratio(sps(report.train, "onnx"), sps(report.train, "torch")),
    trainOnnxOverWasm: ratio(sps(report.train, "onnx"), sps(report.train, "wasm")),
    onnxTrainOverForwardGflops: ratio(gf(report.train, "onnx"), gf(report.forward, "onnx")),
    onnxForwardOverTorch: ratio(sps(report.forward, "onnx"), sps(report.forward, "torch")),
    wasmForwardOverTorch: ratio(sps(report.forward, "wasm"), sps(report.forward, "torch")),
  });
}

/** The data pipeline with the lite transforms (or the first preset's). */
async function runDataStage(ctx: BenchContext): Promise<void> {
  const { report, quick } = ctx;
  const presets = report.options.presets;
  const preset: L3PresetName = presets.includes("lite") ? "lite" : (presets[0] as L3PresetName);
  ctx.log(`- data pipeline (${preset} transforms)`);
  const res = await runJob<DataJobResult>(ctx, {
    kind: "data",
    preset,
    batch: ctx.batch,
    clips: quick ? 4 : 12,
    samples: quick ? 16 : 64,
    reps: report.options.reps,
  });
  if (res.error) {
    recordFailure(ctx, "data pipeline", res.error);
    return;
  }
  const { kind: _k, loadavg: _l, ...rest } = res;
  report.data = rest;
  report.memory.push({ job: "data pipeline", peakRssBytes: res.peakRssBytes });
  ctx.log(
    `  video ${fmt(res.videoReadSamples?.samplesPerSec)} samples/s, cache getSample ${fmt(res.cacheGetSample?.samplesPerSec)}, cache avcBatches ${fmt(res.cacheAvcBatches?.samplesPerSec)}`,
  );
}

/** Synthetic generation: clips/s of the tiny and default profiles. */
async function runSynthStage(ctx: BenchContext): Promise<void> {
  ctx.log("- synthetic generation");
  const res = await runJob<SynthJobResult>(ctx, { kind: "synth", tinyClips: ctx.quick ? 4 : 24, defaultClips: ctx.quick ? 1 : 4 });
  if (res.error) {
    recordFailure(ctx, "synthetic generation", res.error);
    return;
  }
  ctx.report.synth = res.profiles;
  ctx.log(`  ${res.profiles.map((p) => `${p.profile} ${fmt(p.clipsPerSec, 2)} clips/s`).join(", ")}`);
}
