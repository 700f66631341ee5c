// A smoke run of `npm run bench`: tiny only, one repetition, the wasm backend (plus one that does not
// load here), ONNX forward and a short leak check; checks the JSON and Markdown it writes.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { type BenchReport, formatBenchMarkdown, runBench } from "../../bench";
import { afterRuns, groupProfile } from "../../bench/profile";
import { tempDir } from "../helpers";

describe("runBench (smoke)", () => {
  it("writes <date>.json and <date>.md with the expected keys", { timeout: 120_000 }, async () => {
    const tmp = tempDir();
    const lines: string[] = [];
    try {
      const report = await runBench({
        only: ["train", "forward", "onnx", "leak"],
        presets: "tiny",
        backends: "wasm,tensorflow-gpu",
        reps: 1,
        leakSteps: 2,
        quick: true,
        out: tmp.dir,
        log: (l) => lines.push(l),
        print: false,
      });
      const files = readdirSync(tmp.dir).sort();
      assert.equal(files.length, 2, files.join(", "));
      assert.match(files[0] as string, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.json$/);
      assert.equal(path.join(tmp.dir, files[0] as string), report.files.json);
      const json = JSON.parse(readFileSync(report.files.json, "utf8")) as BenchReport;
      for (const key of [
        "kind",
        "date",
        "options",
        "machine",
        "versions",
        "backends",
        "flops",
        "train",
        "forward",
        "onnx",
        "torch",
        "ratios",
        "data",
        "synth",
        "leak",
        "profiles",
        "memory",
        "notes",
      ])
        assert.ok(key in json, `missing key ${key}`);
      assert.equal(json.kind, "l3kit-bench");
      assert.ok(json.machine.cores >= 1 && json.machine.memoryBytes > 0 && json.machine.cpuModel.length > 0);
      assert.equal(json.versions["@tensorflow/tfjs"], "4.22.0");
      const gpu = json.backends.find((b) => b.name === "tensorflow-gpu");
      assert.equal(gpu?.loaded, false, "tfjs-node-gpu is not installed here");
      const wasm = json.backends.find((b) => b.name === "wasm");
      assert.equal(wasm?.loaded, true, wasm?.reason);
      const train = json.train.find((r) => r.engine === "wasm" && r.preset === "tiny");
      assert.ok(train && train.samplesPerSec > 0 && train.reps === 1 && Number.isFinite(train.loss), JSON.stringify(train));
      assert.ok((train.peakRssBytes ?? 0) > 50 * 2 ** 20, "peak RSS recorded");
      assert.ok(json.forward.find((r) => r.engine === "wasm")!.samplesPerSec > 0);
      if (json.onnx?.available) assert.ok(json.forward.find((r) => r.engine === "onnx")!.samplesPerSec > 0);
      assert.deepEqual(
        { steps: json.leak?.steps, growth: json.leak?.growth, backend: json.leak?.backend },
        { steps: 2, growth: 0, backend: "wasm" },
      );
      assert.equal(json.data, null);
      assert.equal(json.torch, null, "torch was not asked for");
      assert.equal(json.ratios[0]?.preset, "tiny");
      const md = readFileSync(report.files.md, "utf8");
      assert.equal(md.trim(), formatBenchMarkdown(json).trim());
      assert.match(md, /## Training step \(samples\/s\)/);
      assert.match(md, /\| tiny \| \d/);
      assert.match(md, /## Tensor leak check/);
      assert.match(md, /tfjs backend tensorflow-gpu not available/);
      assert.ok(lines.some((l) => l.includes("tfjs wasm / tiny")));
    } finally {
      tmp.cleanup();
    }
  });

  it("profiles the onnx training step by op group (--only profile)", { timeout: 120_000 }, async (t) => {
    const tmp = tempDir();
    try {
      const report = await runBench({ only: ["profile"], presets: "tiny", quick: true, out: tmp.dir, log: () => {}, print: false });
      const p = report.profiles[0];
      if (!p) {
        t.skip(`onnxruntime-node does not load: ${report.notes.join("; ")}`);
        return;
      }
      assert.equal(p.runs, 1);
      assert.ok(p.totalMs > 0);
      const total = p.groups.reduce((a, g) => a + g.ms, 0);
      assert.ok(Math.abs(total - p.totalMs) < 1e-6 * p.totalMs, "the groups add up to the total");
      for (const group of [
        "weight-gradient GEMMs",
        "forward convs",
        "input-gradient convs",
        "batch norm in training mode",
        "Adam and moving statistics",
      ])
        assert.ok(
          p.groups.find((g) => g.group === group && g.ms > 0 && g.nodes > 0),
          `group '${group}' measured`,
        );
      assert.match(readFileSync(report.files.md, "utf8"), /## Where the onnx training step's time goes: tiny, batch 8/);
    } finally {
      tmp.cleanup();
    }
  });

  it("groups profile events by op after the warm-up runs", () => {
    const events = [
      { cat: "Session", name: "model_run", ts: 0, dur: 10 },
      { cat: "Node", name: "vision/block1/conv1:blocked#3_kernel_time", ts: 1, dur: 999, args: { op_name: "Conv" } },
      { cat: "Session", name: "model_run", ts: 100, dur: 10 },
      { cat: "Node", name: "vision/block1/conv1:blocked#3_kernel_time", ts: 101, dur: 3000, args: { op_name: "Conv" } },
      { cat: "Node", name: "vision/block1/conv2:dx:blocked#9_kernel_time", ts: 102, dur: 1000, args: { op_name: "Conv" } },
      { cat: "Node", name: "adam:mul#7_kernel_time", ts: 103, dur: 1000, args: { op_name: "Mul" } },
    ];
    const kept = afterRuns(events, 1);
    assert.equal(kept.filter((e) => e.cat === "Node").length, 3, "the first run's events are dropped");
    const { groups, totalMs } = groupProfile(kept, 1);
    assert.equal(totalMs, 5);
    assert.deepEqual(
      groups.map((g) => [g.group, g.ms, g.nodes]),
      [
        ["forward convs", 3, 1],
        ["input-gradient convs", 1, 1],
        ["Adam and moving statistics", 1, 1],
      ],
    );
  });

  it("rejects unknown sections, presets and backends before running anything", async () => {
    await assert.rejects(runBench({ only: ["speed"], print: false }), /unknown section 'speed'/);
    await assert.rejects(runBench({ presets: "huge", print: false }), /unknown preset 'huge'/);
    await assert.rejects(runBench({ backends: "webgpu", print: false }), /unknown backend 'webgpu'/);
    await assert.rejects(runBench({ batch: "0", print: false }), /bench --batch: must be an integer >= 1/);
  });
});
