import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { runExperiment } from "../../src/experiments";
import { repoRoot, tempDir } from "../helpers";

const tmp = tempDir("l3kit-ablation-");
after(() => tmp.cleanup());

// The ci profile, on two heads to keep the suite short; the data cache is shared by the runs.
const sets = (cacheRoot: string) => ["profile=ci", 'heads=["concat","avol"]', `data.cacheRoot=${cacheRoot}`, "data.synthClips=20"];

test("two ablation runs with the same seed give a byte-identical table.csv", async () => {
  const cacheRoot = path.join(tmp.dir, "cache");
  const a = path.join(tmp.dir, "a");
  const b = path.join(tmp.dir, "b");
  await runExperiment("ablation-fusion", { set: sets(cacheRoot), out: a, backend: "wasm", quiet: true, resultsRoot: tmp.dir });
  await runExperiment("ablation-fusion", { set: sets(cacheRoot), out: b, backend: "wasm", quiet: true, resultsRoot: tmp.dir });
  const ta = readFileSync(path.join(a, "table.csv"), "utf8");
  assert.equal(readFileSync(path.join(b, "table.csv"), "utf8"), ta);
  assert.match(ta, /^head,params,steps,seeds,avc_accuracy/);
  assert.match(ta, /\nconcat,/);
  assert.match(ta, /\navol,/);
  for (const f of ["table.md", "table.json", "provenance.json", "timing.csv", "plots.html"])
    assert.ok(existsSync(path.join(a, f)), `${f} written`);
  const prov = JSON.parse(readFileSync(path.join(a, "provenance.json"), "utf8"));
  assert.equal(prov.experiment, "ablation-fusion");
  assert.equal(prov.backend.name, "wasm");
  assert.ok(["onnx", "tfjs"].includes(prov.engine.name) && prov.engine.reason, "the engine that trained, and why");
  assert.equal(prov.cutShort, null, "no time guard by default: the steps ran in full");
  assert.match(prov.dataset.sha256, /^[0-9a-f]{64}$/);
  assert.ok(prov.versions["@tensorflow/tfjs-core"]);
  assert.ok(existsSync(path.join(tmp.dir, "index.md")), "results/index.md lists the runs");
});

test("an ablation killed mid-way completes with --resume without redoing finished cells", async () => {
  const cacheRoot = path.join(tmp.dir, "cache");
  const out = path.join(tmp.dir, "killed");
  const args = [
    "bin/l3kit.js",
    "experiment",
    "ablation-fusion",
    ...sets(cacheRoot).flatMap((s) => ["--set", s]),
    "--out",
    out,
    "--backend",
    "wasm",
  ];
  const env = { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1" };
  const first = path.join(out, "cells", "concat-seed0", "cell.json");
  // Start the run and SIGTERM it once the first cell has finished.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: "ignore" });
    const timer = setInterval(() => {
      if (existsSync(first)) {
        clearInterval(timer);
        child.kill("SIGTERM");
      }
    }, 100);
    child.on("exit", () => {
      clearInterval(timer);
      resolve();
    });
    child.on("error", reject);
  });
  assert.ok(existsSync(first), "the first cell finished before the kill");
  assert.ok(!existsSync(path.join(out, "table.csv")), "the run was stopped before its table");
  const mtime = statSync(first).mtimeMs;
  const lines: string[] = [];
  const origWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await runExperiment("ablation-fusion", {
      set: sets(cacheRoot),
      out,
      backend: "wasm",
      resume: true,
      quiet: false,
      resultsRoot: tmp.dir,
    });
  } finally {
    process.stderr.write = origWrite;
  }
  assert.equal(statSync(first).mtimeMs, mtime, "the finished cell was not redone");
  assert.ok(
    lines.some((l) => /concat seed 0: finished earlier, skipped/.test(l)),
    "the log says the cell was skipped",
  );
  assert.ok(existsSync(path.join(out, "cells", "avol-seed0", "cell.json")));
  assert.equal(
    readFileSync(path.join(out, "table.csv"), "utf8"),
    readFileSync(path.join(tmp.dir, "a", "table.csv"), "utf8"),
    "the resumed ablation gives the same table",
  );
});
