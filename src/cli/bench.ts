import type { Command } from "commander";

const collect = (value: string, prev: string[]) => [...prev, value];

export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    .description(
      "Speed and memory benchmarks (training and forward samples/s per preset and backend, data pipeline, synthetic generation, ONNX, PyTorch reference, a profile of the onnx training step); writes bench-results/<date>.json and .md",
    )
    .option(
      "--only <name>",
      "run only these sections (repeatable or comma-separated): train, forward, onnx, data, synth, torch, leak, profile (onnxruntime's profile of the onnx training step by op group)",
      collect,
      [],
    )
    .option("--presets <list>", "comma-separated presets (default tiny,lite,paper; with --quick tiny)")
    .option(
      "--backends <list>",
      "comma-separated tfjs backends to try (those that do not load are reported and skipped)",
      "wasm,cpu,tensorflow,tensorflow-gpu",
    )
    .option("--batch <n>", "batch size", "8")
    .option("--reps <n>", "timed repetitions, median reported (default 5; with --quick 2)")
    .option("--leak-steps <n>", "training steps of the tensor-leak check (default 100; with --quick 20)")
    .option("--python <path>", "python3 with torch for the reference (default: L3KIT_TORCH_PYTHON, python3, /usr/bin/python3)")
    .option("--threads <n>", "threads of tfjs wasm, onnxruntime and PyTorch (default: all cores; 1 is steadier on a busy machine)")
    .option("--torch-threads <n>", "torch.set_num_threads for the reference (default: --threads)")
    .option("--quick", "a smoke run: tiny only, 2 short reps, 20 leak steps, few clips, no cpu training (about 2 minutes)")
    .option("--out <dir>", "output folder", "bench-results")
    .action(async (opts) => {
      const { runBench } = require("../../bench") as typeof import("../../bench");
      await runBench(opts);
    });
}
