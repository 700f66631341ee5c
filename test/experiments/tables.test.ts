import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { experiments, runExperiment } from "../../src/experiments";
import { EXPERIMENT_TRAIN, PAPER_TRAIN } from "../../src/experiments/avc-train";
import { recipeLine } from "../../src/experiments/common";
import { quickstartTable } from "../../src/experiments/quickstart";
import { collectProvenance, writeResults } from "../../src/lib/results";
import { tempDir } from "../helpers";

const tmp = tempDir("l3kit-tables-");
after(() => tmp.cleanup());

test("the recipe line names model, head, pairs, optimizer, steps, engine and seed, and marks the fast recipe as not the paper's", () => {
  const fast = recipeLine({ preset: "tiny", fusion: "avol", train: EXPERIMENT_TRAIN, engine: { name: "onnx" }, seeds: [0], threads: 2 });
  assert.equal(
    fast,
    "`tiny` L³-Net, avol head; 2400 steps of batch 32, in-batch negatives (31 per frame), Adam lr 0.002 (100 warm-up steps, cosine decay), L2 0.0001; engine onnx, seed 0, 2 threads. l3kit's fast recipe, not the paper's (Adam 1e-4, L2 1e-5, sampled 50/50 pairs, batch 256): do not set these numbers beside the paper's 74% / 78% AVC accuracy.",
  );
  const paperTrain = { ...EXPERIMENT_TRAIN, pairing: "sampled" as const, lr: 1e-4, weightDecay: 1e-5, schedule: "constant" as const, warmupSteps: 0 };
  assert.equal(PAPER_TRAIN["train.lr"], paperTrain.lr);
  const paper = recipeLine({ preset: "paper", fusion: ["concat", "avol"], train: paperTrain, engine: { name: "tfjs" }, seeds: [0, 1] });
  assert.match(paper, /concat, avol heads; .*sampled 50\/50 pairs \(the paper's pairs\), Adam lr 0\.0001 \(constant lr\).* seeds 0, 1\. The paper's optimizer and pairs/);
  assert.doesNotMatch(paper, /fast recipe/);
  assert.match(recipeLine({ preset: "tiny", fusion: "concat", train: null, checkpoint: "/ck/best", engine: null, seeds: [0] }), /loaded from \/ck\/best/);
});

test("writeResults puts the recipe in table.md's header line and in provenance; markdownTable changes only table.md", async () => {
  const dir = path.join(tmp.dir, "w");
  const provenance = collectProvenance({ experiment: "x", config: {}, seeds: [0], startedAt: new Date() });
  await writeResults({
    dir,
    table: [{ a: 1, b: 0.5 }],
    markdownTable: [{ metric: "b", model: 0.5 }],
    provenance,
    recipe: "the recipe",
    title: "T",
  });
  const md = readFileSync(path.join(dir, "table.md"), "utf8").split("\n");
  assert.deepEqual(md.slice(0, 5), ["# T", "", "**Recipe:** the recipe", "", "| metric | model |"]);
  assert.equal(readFileSync(path.join(dir, "table.csv"), "utf8"), "a,b\n1,0.5000\n");
  assert.equal(JSON.parse(readFileSync(path.join(dir, "provenance.json"), "utf8")).recipe, "the recipe");
});

test("quickstartTable lays one result row out as metrics × (model, random weights, hand-made)", () => {
  const t = quickstartTable({ avcAccuracy: 0.9, visionProbe: 0.6, visionProbeRandom: 0.2, visionProbeHandmade: 0.5, pointing: 0.7, pointingCenter: 0.1 }, 5);
  for (const r of t) assert.deepEqual(Object.keys(r), ["metric", "model", "random weights", "hand-made"]);
  const get = (m: RegExp) => t.find((r) => m.test(String(r.metric)));
  assert.deepEqual(get(/^AVC accuracy/), { metric: "AVC accuracy (test pairs, chance 0.5)", model: 0.9, "random weights": null, "hand-made": null });
  assert.deepEqual(get(/^vision probe, all labels/), {
    metric: "vision probe, all labels (hand-made: colour histogram)",
    model: 0.6,
    "random weights": 0.2,
    "hand-made": 0.5,
  });
  assert.equal(get(/^pointing game \(/)?.["hand-made"], 0.1);
  assert.ok(get(/^vision probe, 5 labels per class/));
  assert.ok(get(/^cIoU@0\.5 \(/));
});

test("quickstart (ci): table.md has the recipe header and the metrics × columns layout, plots.html opens with the table, published protocol by default", async () => {
  const qs = experiments.quickstart?.defaults as { eval: { locProtocol: string }; data: { synthProfile: string } } | undefined;
  const loc = experiments.localization?.defaults as { loc: { protocol: string } } | undefined;
  assert.equal(qs?.eval.locProtocol, "published");
  assert.equal(loc?.loc.protocol, "published");
  assert.equal(qs?.data.synthProfile, "realistic");
  const out = path.join(tmp.dir, "qs");
  await runExperiment("quickstart", {
    set: ["profile=ci", `data.cacheRoot=${path.join(tmp.dir, "cache")}`],
    out,
    backend: "wasm",
    quiet: true,
    resultsRoot: tmp.dir,
  });
  const md = readFileSync(path.join(out, "table.md"), "utf8");
  const lines = md.split("\n");
  assert.match(lines[2] ?? "", /^\*\*Recipe:\*\* `tiny` L³-Net, avol head; 12 steps of batch 16, in-batch negatives \(15 per frame\), Adam lr 0\.002 .*engine \w+, seed 0.*not the paper's/);
  assert.equal(lines[4], "| metric | model | random weights | hand-made |");
  assert.match(md, /\| vision probe, all labels \(hand-made: colour histogram\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
  assert.match(md, /\| cIoU@0\.5 \(hand-made: centre prior\) \| [\d.]+ \|/);
  assert.match(md, /Localization \(published protocol: boxes as annotated/);
  const csv = readFileSync(path.join(out, "table.csv"), "utf8").trim().split("\n");
  assert.equal(csv.length, 2, "table.csv keeps one machine-readable row");
  assert.match(csv[0] ?? "", /avcAccuracy,.*ciou05,.*ciou05Center/);
  const html = readFileSync(path.join(out, "plots.html"), "utf8");
  const body = html.slice(html.indexOf("<body>"));
  assert.ok(body.indexOf("Recipe:") > 0 && body.indexOf("<table") > body.indexOf("Recipe:"), "the recipe, then the table");
  assert.ok(body.indexOf("<table") < body.indexOf("Plotly.newPlot"), "the table comes before the first plot");
  const prov = JSON.parse(readFileSync(path.join(out, "provenance.json"), "utf8"));
  assert.equal(prov.config.eval.locProtocol, "published");
  assert.match(prov.recipe, /^`tiny` L³-Net, avol head/);
});
