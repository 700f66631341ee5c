/**
 * Runs every case of the bad-input table (cases.ts): each bad input must give its error message
 * and exit status, as a real `l3kit` process (or a library call).
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { type ManifestRow, saveManifest } from "../../src/lib/data";
import { buildL3Net, saveModel } from "../../src/lib/models";
import { errorMessage } from "../../src/lib/util";
import { makeClockVideo } from "../data/fixtures";
import { tempDir } from "../helpers";
import { runCli } from "../robustness/cli";
import { BAD_INPUTS, type Fixture } from "./cases";

const tmp = tempDir("l3kit-bad-inputs-");
const shared = { good: "", model: "", manifest: "" };
before(async () => {
  shared.good = makeClockVideo(path.join(tmp.dir, "shared", "good.mp4"), { durationSec: 2 });
  const rows: ManifestRow[] = ["train", "train", "val", "val"].map((split, i) => ({
    id: `c${i}`,
    path: makeClockVideo(path.join(tmp.dir, "shared", `c${i}.mp4`), { durationSec: 2, freq: 300 + 100 * i }),
    split,
    durationSec: 2,
    hasAudio: true,
  }));
  shared.manifest = path.join(tmp.dir, "shared", "manifest.jsonl");
  await saveManifest(shared.manifest, rows);
  shared.model = path.join(tmp.dir, "shared", "model");
  const model = buildL3Net("tiny", { seed: 1 });
  await saveModel(model, shared.model);
  model.dispose();
});
/** What each case printed, for the table written when L3KIT_BAD_INPUTS_REPORT names a file. */
const seen = new Map<number, { shown: string; message: string; exit: number | string }>();
after(() => {
  const report = process.env.L3KIT_BAD_INPUTS_REPORT;
  if (report) {
    const cell = (t: string) => t.replaceAll("|", "\\|").replaceAll(tmp.dir, "…").replace(/\s+/g, " ").trim();
    const lines = ["| # | area | kind | command | message | exit |", "|---|---|---|---|---|---|"];
    BAD_INPUTS.forEach((b, i) => {
      const r = seen.get(i);
      if (r) lines.push(`| ${i + 1} | ${b.area} | ${cell(b.kind)} | \`${cell(r.shown)}\` | ${cell(r.message)} | ${r.exit} |`);
    });
    writeFileSync(report, `${lines.join("\n")}\n`);
  }
  tmp.cleanup();
});

test("the table covers at least 20 kinds of bad input in every area", () => {
  assert.ok(BAD_INPUTS.length >= 20, `${BAD_INPUTS.length} cases`);
  for (const area of ["media", "manifest", "config", "output", "checkpoint", "cache"])
    assert.ok(
      BAD_INPUTS.some((c) => c.area === area),
      `no case for ${area}`,
    );
  assert.equal(new Set(BAD_INPUTS.map((c) => c.kind)).size, BAD_INPUTS.length, "kinds are unique");
});

describe("bad inputs", { concurrency: 2 }, () => {
  BAD_INPUTS.forEach((bad, i) => {
    test(`${bad.area}: ${bad.kind}`, { skip: bad.skip?.() || false }, async () => {
      const f: Fixture = { ...shared, case: path.join(tmp.dir, `case-${String(i).padStart(2, "0")}`) };
      mkdirSync(f.case, { recursive: true });
      const fill = (a: string) =>
        a.replaceAll("{case}", f.case).replaceAll("{good}", f.good).replaceAll("{model}", f.model).replaceAll("{manifest}", f.manifest);
      await bad.setup?.(f);
      try {
        if (bad.call) {
          let thrown: unknown;
          try {
            await bad.call.run(f);
          } catch (err) {
            thrown = err;
          }
          assert.ok(thrown !== undefined, `${bad.call.shown} did not throw`);
          assert.match(errorMessage(thrown), bad.message);
          seen.set(i, { shown: fill(bad.call.shown), message: errorMessage(thrown), exit: "throws" });
          return;
        }
        const args = (bad.command ?? []).map(fill);
        const r = await runCli(args, { cwd: f.case });
        const output = `${r.stdout}${r.stderr}`;
        writeFileSync(path.join(f.case, "output.txt"), `l3kit ${args.join(" ")}\nexit ${r.code}\n${output}`);
        assert.match(output, bad.message, `l3kit ${args.join(" ")}\n${output}`);
        assert.equal(r.code, bad.exit, `exit status of l3kit ${args.join(" ")}\n${output}`);
        assert.doesNotMatch(output, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
        const line = output.split("\n").find((l) => bad.message.test(l)) ?? output.match(bad.message)?.[0] ?? "";
        seen.set(i, { shown: `l3kit ${args.join(" ")}`, message: line, exit: r.code ?? "signal" });
      } finally {
        bad.teardown?.(f);
      }
    });
  });
});
