import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  configKeys,
  experimentHelp,
  experiments,
  getExperiment,
  listExperiments,
  resolveConfig,
  runExperiment,
  suggest,
} from "../../src/experiments";
import { SYNTH_PROFILE_NAMES } from "../../src/experiments/common";
import { SYNTH_PROFILES } from "../../src/lib/data";
import { ConfigError, configFields, parseConfig } from "../../src/lib/util";
import { tempDir } from "../helpers";

const defaults = {
  profile: "default",
  seed: 0,
  train: { lr: 1e-4, steps: 100, schedule: "constant" },
  heads: ["concat", "avol"],
  data: { manifest: "" },
};
const profiles = { ci: { "train.steps": 5 } };

test("--set overrides parse as JSON, keep their types, and the profile applies before them", () => {
  const c = resolveConfig({ defaults, profiles, sets: ["train.lr=1e-3", "profile=ci", 'heads=["cosine"]', "data.manifest=x.jsonl"] });
  assert.equal(c.train.lr, 1e-3);
  assert.equal(c.train.steps, 5);
  assert.deepEqual(c.heads, ["cosine"]);
  assert.equal(c.data.manifest, "x.jsonl");
  const d = resolveConfig({ defaults, profiles, sets: ["profile=ci", "train.steps=7"] });
  assert.equal(d.train.steps, 7, "an explicit --set beats the profile");
  assert.equal(defaults.train.steps, 100, "defaults are not mutated");
});

test("unknown keys, names and profiles fail with a suggestion; wrong types name the key", () => {
  assert.throws(
    () => resolveConfig({ defaults, profiles, sets: ["train.lrr=1"] }),
    (e: Error) => e instanceof ConfigError && /did you mean 'train\.lr'/.test(e.message),
  );
  assert.throws(() => resolveConfig({ defaults, profiles, sets: ["train.steps=many"] }), /'train\.steps' must be number/);
  assert.throws(
    () => resolveConfig({ defaults, profiles, sets: ["profile=cii"] }),
    /profile: unknown value "cii"; expected one of default, ci; did you mean "ci"\?/,
  );
  assert.throws(() => resolveConfig({ defaults, profiles, sets: ["train=1"] }), /is a group/);
  assert.throws(() => resolveConfig({ defaults, profiles, sets: ["novalue"] }), /key=value/);
  assert.throws(() => getExperiment("ablation-fusoin"), /did you mean 'ablation-fusion'/);
  assert.equal(suggest("quickstrat", ["quickstart", "avc-train"]), "quickstart");
  assert.deepEqual(configKeys({ a: 1, b: { c: 2 } }), ["a", "b.c"]);
});

test("a --config file is validated like --set", () => {
  const t = tempDir();
  try {
    const f = path.join(t.dir, "c.json");
    writeFileSync(f, JSON.stringify({ train: { lr: 0.01 }, seed: 4 }));
    const c = resolveConfig({ defaults, profiles, configFile: f });
    assert.equal(c.train.lr, 0.01);
    assert.equal(c.seed, 4);
    writeFileSync(f, JSON.stringify({ trian: { lr: 0.01 } }));
    assert.throws(() => resolveConfig({ defaults, profiles, configFile: f }), /unknown config key 'trian\.lr'/);
    writeFileSync(f, "{not json");
    assert.throws(() => resolveConfig({ defaults, profiles, configFile: f }), /cannot read config/);
  } finally {
    t.cleanup();
  }
});

test("every registered experiment has help that prints its config defaults and a ci profile", () => {
  const list = listExperiments();
  for (const name of ["quickstart", "avc-train", "kinetics-probe", "esc50-probe", "localization", "ablation-fusion"]) {
    assert.match(list, new RegExp(name));
    const help = experimentHelp(name);
    assert.match(help, /Config \(defaults\):/);
    assert.match(help, /train\.lr/);
    assert.match(
      help,
      /--engine E +auto \| onnx \| tfjs: .*tfjs on tfjs-node-gpu when installed, else onnx when onnxruntime-node loads, else the best tfjs backend/,
    );
    assert.match(help, /--allow-partial +exit 0 when the time guard/);
    assert.match(help, /train\.maxSeconds +0 +time guard/, "no time budget by default: training length is set in steps");
    assert.match(help, /train\.engine +"auto" .*\(one of auto \| onnx \| tfjs\)/);
    assert.ok(getExperiment(name).profiles.ci, `${name} has a ci profile`);
  }
});

test("bad evaluation settings fail before any data or training, naming the key", async () => {
  const tmp = tempDir("l3kit-evalcheck-");
  try {
    for (const [name, set, key] of [
      ["quickstart", "eval.probeLabelsPerClass=2.5", "eval.probeLabelsPerClass"],
      ["quickstart", "eval.avcPairs=-1", "eval.avcPairs"],
      ["ablation-fusion", "eval.probeEpochs=0", "eval.probeEpochs"],
    ] as const) {
      await assert.rejects(
        runExperiment(name, {
          set: ["profile=ci", `data.cacheRoot=${path.join(tmp.dir, "cache")}`, set],
          out: path.join(tmp.dir, name),
          backend: "cpu",
          quiet: true,
          resultsRoot: tmp.dir,
        }),
        (e: Error) => e instanceof ConfigError && e.message.includes(key) && /must be an integer/.test(e.message),
      );
      assert.ok(!existsSync(path.join(tmp.dir, "cache")), `${name}: no data generated before the check`);
    }
  } finally {
    tmp.cleanup();
  }
});

test("each experiment's config is its schema: defaults, choices and help come from it, and its parse keeps every value and key order", () => {
  for (const [name, exp] of Object.entries(experiments)) {
    const fields = configFields(exp.schema);
    assert.deepEqual(
      configKeys(exp.defaults),
      fields.map((f) => f.key),
      `${name}: the defaults hold every key of the schema, in its order`,
    );
    for (const f of fields) {
      assert.ok(f.description, `${name}: '${f.key}' has a help text`);
      if (f.choices) assert.deepEqual(exp.choices[f.key], f.choices, `${name}: '${f.key}' choices`);
    }
    for (const profile of ["default", ...Object.keys(exp.profiles)]) {
      const resolved = resolveConfig({
        defaults: exp.defaults,
        profiles: exp.profiles,
        choices: exp.choices,
        sets: [`profile=${profile}`],
      });
      // What the run gets (and provenance.json records) is the schema's parse of the resolved config: the same JSON.
      assert.equal(JSON.stringify(parseConfig(exp.schema, resolved)), JSON.stringify(resolved), `${name} ${profile}`);
    }
  }
  assert.deepEqual([...SYNTH_PROFILE_NAMES], Object.keys(SYNTH_PROFILES), "data.synthProfile lists the synthetic benchmark's profiles");
});

test("a bad value fails the schema with the dotted key and the cause, before anything runs", () => {
  const exp = getExperiment("ablation-fusion");
  const check = (set: string) => () =>
    exp.check(resolveConfig({ defaults: exp.defaults, profiles: exp.profiles, choices: exp.choices, sets: [set] }));
  assert.throws(check("train.batchSize=0"), /^ConfigError: train\.batchSize: must be an integer >= 1, got 0$/m);
  assert.throws(check("data.synthClasses=1"), /data\.synthClasses: must be an integer in \[2, 1000\], got 1/);
  assert.throws(check("eval.probeEpochs=1.5"), /eval\.probeEpochs: must be an integer >= 1, got 1\.5/);
  assert.throws(check("train.lr=0"), /train\.lr: must be a positive number, got 0/);
  assert.throws(check("train.microBatches=3"), /train\.microBatches: batch size 32 is not divisible into 3 micro-batches/);
});
