import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { repoRoot, tempDir } from "../helpers";

const tmp = tempDir("l3kit-signal-");
after(() => tmp.cleanup());

function metricsRows(file: string): number {
  return existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim()).length
    : 0;
}

// Steady-state training does no I/O between steps (batches are prefetched from memory): a loop that
// never yields to the event loop would never see the signal. This run has no evaluations and no
// periodic checkpoints, so nothing else gives the signal handler a turn.
test("SIGTERM in the middle of training saves a checkpoint and exits cleanly", async () => {
  const out = path.join(tmp.dir, "run");
  const args = [
    "bin/l3kit.js",
    "experiment",
    "avc-train",
    ...[
      "profile=ci",
      `data.cacheRoot=${path.join(tmp.dir, "cache")}`,
      "train.steps=1000000",
      "train.evalEvery=0",
      "train.checkpointEvery=0",
    ].flatMap((s) => ["--set", s]),
    "--out",
    out,
    "--backend",
    "wasm",
  ];
  const env = { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1" };
  const metrics = path.join(out, "metrics.jsonl");
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: "ignore" });
    let killedAt = 0;
    const timer = setInterval(() => {
      if (!killedAt && metricsRows(metrics) >= 5) {
        killedAt = Date.now();
        child.kill("SIGTERM");
      } else if (killedAt && Date.now() - killedAt > 60_000) {
        child.kill("SIGKILL"); // the signal was never handled
      }
    }, 100);
    child.on("exit", (c) => {
      clearInterval(timer);
      resolve(c);
    });
    child.on("error", reject);
  });
  assert.equal(code, 0, "exited cleanly after the signal");
  const summary = JSON.parse(readFileSync(path.join(out, "summary.json"), "utf8"));
  assert.equal(summary.stoppedBy, "signal");
  assert.ok(summary.steps >= 50 && summary.steps < 1_000_000);
  const ckpts = readdirSync(path.join(out, "checkpoints")).filter((d) => d.startsWith("step-"));
  assert.deepEqual(ckpts, [`step-${String(summary.steps).padStart(8, "0")}`], "a checkpoint at the step it stopped");
});
