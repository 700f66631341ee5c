import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  audioInputShape,
  buildL3Graph,
  buildL3Net,
  countL3Params,
  diffL3Configs,
  formatModelSummary,
  L3_PRESET_NAMES,
  type L3NetConfigInput,
  l3Preset,
  lastMapShapes,
  modelSummary,
  resolveL3Config,
  visionInputShape,
} from "../../src/lib/models";
import { ConfigError } from "../../src/lib/util";

describe("presets and parameter counts", () => {
  test("lite and tiny, derived from paper, equal the full presets they replaced (values and key order)", () => {
    // test/fixtures/l3-presets.json: the three presets as full copies wrote them, before lite and tiny were derived.
    const pinned = JSON.parse(readFileSync(path.join(__dirname, "..", "fixtures", "l3-presets.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(Object.keys(pinned), [...L3_PRESET_NAMES]);
    for (const name of L3_PRESET_NAMES) {
      assert.deepEqual(l3Preset(name), pinned[name], name);
      assert.equal(JSON.stringify(l3Preset(name)), JSON.stringify(pinned[name]), `${name}: key order`);
      assert.deepEqual(resolveL3Config(name), pinned[name], `${name} resolves to the same config`);
    }
  });

  test("paper: conv weights 4,683,456 (vision) and 4,682,304 (audio); concat head 131,458", () => {
    const c = countL3Params("paper");
    assert.equal(c.vision.conv, 4_683_456);
    assert.equal(c.audio.conv, 4_682_304);
    assert.equal(c.fusion.total, 131_458);
    assert.equal(c.fusion.conv, 0);
    // BN: γ, β trainable; moving mean/var not (2 × 2 × Σ widths × 2 convs per block per tower)
    const bnPerTower = 2 * 2 * (64 + 128 + 256 + 512);
    assert.equal(c.vision.batchNorm, bnPerTower);
    assert.equal(c.vision.batchNormStats, bnPerTower);
    assert.equal(c.nonTrainable, 2 * bnPerTower);
    assert.equal(c.total, 4_683_456 + 4_682_304 + 131_458 + 4 * bnPerTower);
  });

  test("paper: inputs 224×224×3 and 257×199×1, last maps 28×28×512 and 32×24×512", () => {
    const cfg = resolveL3Config("paper");
    assert.deepEqual(visionInputShape(cfg), [224, 224, 3]);
    assert.deepEqual(audioInputShape(cfg), [257, 199, 1]);
    assert.deepEqual(lastMapShapes(cfg), { vision: [28, 28, 512], audio: [32, 24, 512] });
    const g = buildL3Graph(cfg);
    const shape = (n: string) => g.nodes.find((x) => x.name === n)?.shape;
    assert.deepEqual(shape(g.outputs.visionMap), [28, 28, 512]);
    assert.deepEqual(shape(g.outputs.audioMap), [32, 24, 512]);
    assert.deepEqual(shape(g.outputs.audioGrid), [6144]);
    assert.deepEqual(shape(g.outputs.visionGrid), [8192]);
    // 32×24 → 4×3 grid: 8×8 windows
    const grid = g.nodes.find((n) => n.name === g.outputs.audioGrid);
    assert.ok(grid && grid.op === "gridMaxPool");
    assert.deepEqual(grid.rows, [
      [0, 8],
      [8, 16],
      [16, 24],
      [24, 32],
    ]);
    assert.deepEqual(grid.cols, [
      [0, 8],
      [8, 16],
      [16, 24],
    ]);
  });

  test("lite and tiny: front-ends, widths ÷4 and ÷8", () => {
    const lite = resolveL3Config("lite");
    const tiny = resolveL3Config("tiny");
    assert.deepEqual(lite.vision.widths, [16, 32, 64, 128]);
    assert.deepEqual(tiny.vision.widths, [8, 16, 32, 64]);
    assert.deepEqual(visionInputShape(lite), [112, 112, 3]);
    assert.deepEqual(visionInputShape(tiny), [64, 64, 3]);
    assert.equal(lite.vision.frontEnd.resizeTo, 128);
    assert.deepEqual(audioInputShape(lite), [64, 100, 1]);
    assert.deepEqual(audioInputShape(tiny), [32, 50, 1]);
    assert.deepEqual(lastMapShapes(tiny), { vision: [8, 8, 64], audio: [4, 6, 64] });
  });

  test("the paper model builds with the expected variable shapes", () => {
    const before = tf.memory().numTensors;
    const m = buildL3Net("paper", { seed: 1 });
    try {
      assert.deepEqual(m.variable("vision/block1/conv1/kernel").shape, [3, 3, 3, 64]);
      assert.deepEqual(m.variable("audio/block1/conv1/kernel").shape, [3, 3, 1, 64]);
      assert.deepEqual(m.variable("vision/block4/conv2/kernel").shape, [3, 3, 512, 512]);
      assert.deepEqual(m.variable("audio/block4/bn2/moving_variance").shape, [512]);
      assert.deepEqual(m.variable("fusion/fc1/kernel").shape, [1024, 128]);
      assert.deepEqual(m.variable("fusion/logits/kernel").shape, [128, 2]);
      const conv = m
        .namedVariables()
        .filter((v) => v.part === "vision" && v.role === "kernel")
        .reduce((a, v) => a + v.variable.size, 0);
      assert.equal(conv, 4_683_456);
      // He-normal (truncated at 2σ): σ = √(2/fanIn)/0.8796 before truncation → std ≈ √(2/fanIn)
      const k = m.variable("vision/block4/conv2/kernel").dataSync();
      let s2 = 0;
      let maxAbs = 0;
      for (const v of k) {
        s2 += v * v;
        maxAbs = Math.max(maxAbs, Math.abs(v));
      }
      const std = Math.sqrt(s2 / k.length);
      const want = Math.sqrt(2 / (9 * 512));
      assert.ok(Math.abs(std / want - 1) < 0.01, `std ${std} vs ${want}`);
      assert.ok(maxAbs <= (2 * want) / 0.8796256610342398 + 1e-7);
    } finally {
      m.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });

  test("the fusion heads' parameters", () => {
    const tiny = (fusion: string) => countL3Params({ preset: "tiny", fusion }).fusion.total;
    // concat: (64+64)·128+128 + 128·2+2
    assert.equal(tiny("concat"), 128 * 128 + 128 + 258);
    // two towers × (64·128+128 + 128·128+128) + fc 1→2
    const proj = 64 * 128 + 128 + 128 * 128 + 128;
    assert.equal(tiny("euclidean"), 2 * proj + 4);
    assert.equal(tiny("cosine"), 2 * proj + 4);
    assert.equal(tiny("avol"), 2 * proj + 4);
  });
});

describe("config resolution and validation", () => {
  test("partial configs merge over a preset; arrays replace", () => {
    const c = resolveL3Config({ preset: "tiny", fusion: "avol", vision: { widths: [4, 8, 16] } });
    assert.equal(c.name, "tiny");
    assert.equal(c.fusion, "avol");
    assert.deepEqual(c.vision.widths, [4, 8, 16]);
    assert.equal(c.vision.frontEnd.size, 64);
    assert.deepEqual(c.audio.widths, [8, 16, 32, 64]);
  });

  test("switching the audio kind replaces the front-end", () => {
    const c = resolveL3Config({
      preset: "tiny",
      audio: { frontEnd: { kind: "linear", sampleRate: 16000, nFft: 256, winLength: 160, hopLength: 80 } },
    });
    assert.equal(c.audio.frontEnd.kind, "linear");
    assert.deepEqual(audioInputShape(c), [129, 1 + Math.floor((16000 - 160) / 80), 1]);
  });

  const rejects = (input: L3NetConfigInput | string, key: RegExp, message: RegExp) => {
    assert.throws(
      () => resolveL3Config(input as L3NetConfigInput),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, key);
        assert.match(err.message, message);
        return true;
      },
    );
  };

  test("unknown fusion head lists the valid ones", () => {
    rejects({ fusion: "bilinear" }, /'fusion'/, /unknown fusion head "bilinear" \(valid: concat, euclidean, cosine, avol\)/);
  });

  test("an input too small for the pools says what it needs", () => {
    rejects(
      { audio: { frontEnd: { nMels: 4 } } },
      /audio\.frontEnd/,
      /audio input 4×50 is too small for 3 pools of 2×2 \(needs ≥ 8×8 so the last map is at least 1×1 before the global pool\)/,
    );
    rejects({ vision: { frontEnd: { size: 6, resizeTo: 8 } } }, /vision\.frontEnd/, /vision input 6×6 is too small for 3 pools/);
  });

  test("other bad values name their key", () => {
    rejects("huge", /preset/, /unknown preset 'huge' \(valid: paper, lite, tiny\)/);
    rejects(
      { vision: { widht: [1] } as unknown as L3NetConfigInput["vision"] },
      /'vision\.widht'/,
      /unknown key \(valid: frontEnd, widths/,
    );
    rejects({ vision: { widths: [] } }, /'vision\.widths'/, /expected 1 to 8 block widths/);
    rejects({ audio: { widths: [8, 0, 4, 4] } }, /'audio\.widths\[1\]'/, /expected an integer/);
    rejects({ vision: { kernelSize: 4 } }, /'vision\.kernelSize'/, /odd/);
    rejects({ vision: { frontEnd: { resizeTo: 32 } } }, /'vision\.frontEnd\.resizeTo'/, /must be ≥ size \(64\)/);
    rejects({ audio: { frontEnd: { nFft: 500 } } }, /'audio\.frontEnd\.nFft'/, /power of two/);
    rejects({ audio: { frontEnd: { padding: "reflect" as "same" } } }, /'audio\.frontEnd\.padding'/, /valid: same, center, none/);
    rejects({ audio: { gridPool: [5, 3] } }, /'audio\.gridPool'/, /grid 5×3 is larger than the last audio map 4×6/);
    rejects({ batchNorm: { momentum: 1 } }, /'batchNorm\.momentum'/, /\[0, 1\)/);
    rejects({ head: { hidden: 0 } }, /'head\.hidden'/, /expected an integer/);
  });

  test("config diffs name the path and both values", () => {
    const a = resolveL3Config({ preset: "tiny", fusion: "concat" });
    const b = resolveL3Config({ preset: "lite", fusion: "avol" });
    const d = diffL3Configs(a, b);
    assert.ok(d.includes("fusion 'concat' vs 'avol'"), d.join("; "));
    assert.ok(d.includes("vision.widths [8,16,32,64] vs [16,32,64,128]"), d.join("; "));
    assert.ok(d.includes("audio.frontEnd.nMels 32 vs 64"), d.join("; "));
    assert.deepEqual(diffL3Configs(a, { ...structuredClone(a), name: "other" }), []);
  });
});

describe("model summary", () => {
  test("rows, parameters and FLOPs (multiply-add = 2)", () => {
    const s = modelSummary("paper");
    const conv1 = s.rows.find((r) => r.name === "vision/block1/conv1");
    assert.ok(conv1);
    assert.deepEqual(conv1.outputShape, [224, 224, 64]);
    assert.equal(conv1.params, 3 * 3 * 3 * 64);
    assert.equal(conv1.flops, 2 * 3 * 3 * 3 * 64 * 224 * 224);
    const a41 = s.rows.find((r) => r.name === "audio/block4/conv2");
    assert.ok(a41);
    assert.deepEqual(a41.outputShape, [32, 24, 512]);
    assert.equal(a41.flops, 2 * 9 * 512 * 512 * 32 * 24);
    assert.equal(s.totals.params, countL3Params("paper").total);
    assert.equal(s.totals.byPart.fusion.params, 131_458);
    // conv layers dominate: ≈ 2·MACs of all convs
    const convFlops = s.rows.filter((r) => r.op === "conv2d").reduce((a, r) => a + r.flops, 0);
    assert.ok(convFlops / s.totals.flops > 0.99);
    assert.ok(!s.rows.some((r) => r.optional));
    assert.ok(modelSummary("paper", { includeProbes: true }).rows.some((r) => r.name === "audio/grid_pool"));
    const text = formatModelSummary("tiny");
    assert.match(text, /L³-Net 'tiny' \(fusion: concat\)/);
    assert.match(text, /vision\/block1\/conv1\s+conv2d\s+64×64×8\s+216/);
    assert.match(text, /multiply-add = 2/);
  });
});
