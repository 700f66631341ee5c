import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { CUT_SHORT_EXIT_CODE, runExperiment, runReport } from "../../src/experiments";
import { summarizeTraining } from "../../src/experiments/common";
import { cutShortNote } from "../../src/lib/results";
import { tempDir } from "../helpers";
import { type CliResult, runCli } from "../robustness/cli";

const tmp = tempDir("l3kit-timeguard-");
after(() => tmp.cleanup());

/** Runs `l3kit experiment avc-train` (ci profile, shared data cache) in a child process. */
function runAvcTrain(out: string, extra: string[]): Promise<CliResult> {
  return runCli([
    "experiment",
    "avc-train",
    ...["profile=ci", `data.cacheRoot=${path.join(tmp.dir, "cache")}`, "train.maxSeconds=0.001"].flatMap((s) => ["--set", s]),
    "--out",
    out,
    "--backend",
    "wasm",
    "--engine",
    "tfjs",
    ...extra,
  ]);
}

/** Checks that a run's table and provenance are marked as cut short; returns the step it stopped at. */
function assertMarkedCutShort(out: string): number {
  const md = readFileSync(path.join(out, "table.md"), "utf8");
  const m = /cut short by the time guard at step (\d+) of 20/.exec(md);
  assert.ok(m, `table.md notes the cut:\n${md}`);
  const step = Number(m[1]);
  assert.ok(step >= 1 && step < 20, `stopped early (step ${step})`);
  const rows = JSON.parse(readFileSync(path.join(out, "table.json"), "utf8")) as Array<Record<string, unknown>>;
  assert.ok(rows.length > 0);
  for (const r of rows)
    assert.match(String(r.cutShort), new RegExp(`cut short by the time guard at step ${step} of 20`), "table.json rows");
  assert.match(readFileSync(path.join(out, "table.csv"), "utf8"), /cutShort/, "table.csv has the column");
  const prov = JSON.parse(readFileSync(path.join(out, "provenance.json"), "utf8"));
  assert.equal(prov.cutShort.step, step);
  assert.equal(prov.cutShort.steps, 20);
  assert.match(prov.cutShort.reason, /train\.maxSeconds = 0\.001/);
  assert.equal(prov.engine.name, "tfjs", "--engine tfjs trained");
  assert.match(prov.engine.reason, /tfjs requested/);
  assert.equal(prov.config.train.engine, "tfjs", "--engine is --set train.engine");
  return step;
}

test("a run the time guard cuts short is marked in table and provenance, and exits non-zero unless --allow-partial", async () => {
  const strict = path.join(tmp.dir, "strict");
  const a = await runAvcTrain(strict, []);
  assert.equal(a.code, CUT_SHORT_EXIT_CODE, `exit status ${CUT_SHORT_EXIT_CODE}:\n${a.stderr}`);
  assert.match(a.stderr, /partial: cut short by the time guard at step \d+ of 20.*--allow-partial/);
  assert.equal(a.stdout.match(/^engine: tfjs \(tfjs requested/gm)?.length, 1, `the engine is printed once:\n${a.stdout}`);
  assertMarkedCutShort(strict);

  const allowed = path.join(tmp.dir, "allowed");
  const b = await runAvcTrain(allowed, ["--allow-partial"]);
  assert.equal(b.code, 0, `--allow-partial exits 0:\n${b.stderr}`);
  assert.match(b.stderr, /partial: .*accepted: --allow-partial/);
  assertMarkedCutShort(allowed);

  // Without the guard, --resume finishes the cut run: whole, unmarked, exit 0.
  const c = await runAvcTrain(strict, ["--set", "train.maxSeconds=0", "--resume"]);
  assert.equal(c.code, 0, c.stderr);
  const prov = JSON.parse(readFileSync(path.join(strict, "provenance.json"), "utf8"));
  assert.equal(prov.cutShort, null);
  const rows = JSON.parse(readFileSync(path.join(strict, "table.json"), "utf8")) as Array<Record<string, unknown>>;
  assert.deepEqual(
    rows.map((r) => [r.steps, "cutShort" in r]),
    [[20, false]],
  );
  assert.doesNotMatch(readFileSync(path.join(strict, "table.md"), "utf8"), /cut short/);
});

test("an evaluation experiment that trains its model records the engine and the cut in provenance and its result", async () => {
  const out = path.join(tmp.dir, "loc");
  const r = await runExperiment("localization", {
    set: ["profile=ci", `data.cacheRoot=${path.join(tmp.dir, "cache")}`, "train.maxSeconds=0.001"],
    engine: "tfjs",
    out,
    backend: "wasm",
    quiet: true,
    resultsRoot: tmp.dir,
  });
  assert.equal(r.cutShort?.steps, 6);
  assert.equal(r.engine?.name, "tfjs");
  const prov = JSON.parse(readFileSync(path.join(out, "provenance.json"), "utf8"));
  assert.deepEqual(prov.cutShort, r.cutShort);
  assert.deepEqual(prov.engine, r.engine);
  assert.match(
    readFileSync(path.join(out, "table.md"), "utf8"),
    /\*\*Partial run\*\*: cut short by the time guard at step \d+ of 6 \(train\.maxSeconds = 0\.001 s\)/,
  );
  assert.match(runReport(r, {}).partial ?? "", /Exiting with status 3/);
  assert.match(runReport(r, { allowPartial: true }).partial ?? "", /accepted: --allow-partial/);
});

test("summarizeTraining: one engine record when the runs agree, each run when not; the earliest cut with every cut run", () => {
  const onnx = { name: "onnx", reason: "auto: onnxruntime-node loads" };
  const tfjs = { name: "tfjs", reason: "auto: the onnx engine did not build" };
  assert.deepEqual(summarizeTraining([]), { engine: null, cutShort: null });
  const whole = summarizeTraining([
    { run: "concat-seed0", engine: onnx, cutShort: null },
    { run: "avol-seed0", engine: onnx, cutShort: null },
  ]);
  assert.deepEqual(whole, { engine: onnx, cutShort: null });
  const cut = summarizeTraining([
    { run: "concat-seed0", engine: onnx, cutShort: { step: 7, steps: 10, reason: "train.maxSeconds = 5 s" } },
    { run: "avol-seed0", engine: tfjs, cutShort: { step: 4, steps: 10, reason: "train.maxSeconds = 5 s" } },
    { run: "cosine-seed0", engine: onnx, cutShort: null },
  ]);
  assert.equal(cut.engine?.name, "onnx+tfjs");
  assert.equal(cut.engine?.runs?.length, 3);
  assert.deepEqual(cut.cutShort, {
    step: 4,
    steps: 10,
    reason: "train.maxSeconds = 5 s",
    runs: [
      { run: "concat-seed0", step: 7, steps: 10 },
      { run: "avol-seed0", step: 4, steps: 10 },
    ],
  });
  assert.equal(
    cutShortNote(cut.cutShort as NonNullable<typeof cut.cutShort>),
    "cut short by the time guard at step 4 of 10 (train.maxSeconds = 5 s; concat-seed0 at step 7 of 10, avol-seed0 at step 4 of 10)",
  );
});
