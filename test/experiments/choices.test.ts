import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { type ConfigObject, type ConfigValue, configKeys, experiments, resolveConfig, runExperiment } from "../../src/experiments";
import { ConfigError } from "../../src/lib/util";
import { repoRoot, tempDir } from "../helpers";

/** String keys whose values are open-ended (paths, split names): every other string key must declare its choices. */
const FREE_TEXT = new Set(["checkpoint", "data.manifest", "data.cacheRoot", "loc.split"]);

function valueAt(config: ConfigObject, key: string): ConfigValue | undefined {
  let cur: ConfigValue | undefined = config;
  for (const part of key.split(".")) cur = cur && typeof cur === "object" && !Array.isArray(cur) ? cur[part] : undefined;
  return cur;
}

/** Every fixed-choice key of an experiment, `profile` included, with its allowed values. */
function enumKeys(name: string): Array<[string, readonly string[]]> {
  const exp = experiments[name];
  assert.ok(exp);
  return [["profile", ["default", ...Object.keys(exp.profiles)]], ...Object.entries(exp.choices)];
}

test("every string-valued config key of every experiment either declares its allowed values or is free text", () => {
  for (const [name, exp] of Object.entries(experiments)) {
    for (const key of configKeys(exp.defaults)) {
      const v = valueAt(exp.defaults, key);
      const isText = typeof v === "string" || (Array.isArray(v) && v.every((x) => typeof x === "string"));
      if (!isText || key === "profile" || FREE_TEXT.has(key)) continue;
      assert.ok(exp.choices[key], `${name}: '${key}' holds text but declares no allowed values (choices) and is not free text`);
    }
    for (const key of Object.keys(exp.choices)) assert.notEqual(valueAt(exp.defaults, key), undefined, `${name}: choices name '${key}'`);
    // The defaults and every profile resolve: their own values are allowed.
    for (const profile of ["default", ...Object.keys(exp.profiles)])
      resolveConfig({ defaults: exp.defaults, profiles: exp.profiles, choices: exp.choices, sets: [`profile=${profile}`] });
  }
});

test("a typo in any fixed-choice key of any experiment fails, naming the key, the allowed values and the nearest", () => {
  let checked = 0;
  for (const [name, exp] of Object.entries(experiments)) {
    for (const [key, allowed] of enumKeys(name)) {
      const isArray = Array.isArray(valueAt(exp.defaults, key));
      for (const value of allowed) {
        const typo = `${value}${value.slice(-1)}`;
        const set = `${key}=${isArray ? JSON.stringify([allowed[0], typo]) : typo}`;
        assert.throws(
          () => resolveConfig({ defaults: exp.defaults, profiles: exp.profiles, choices: exp.choices, sets: [set] }),
          (e: Error) => {
            assert.ok(e instanceof ConfigError, `${name} ${set}: a ConfigError`);
            assert.ok(e.message.includes(`${key}: unknown value "${typo}"`), `${name} ${set}: names the key and value: ${e.message}`);
            assert.ok(e.message.includes(`expected one of ${allowed.join(", ")}`), `${name} ${set}: lists the values: ${e.message}`);
            assert.ok(e.message.includes(`did you mean "${value}"?`), `${name} ${set}: suggests the nearest: ${e.message}`);
            return true;
          },
        );
        checked++;
      }
    }
  }
  assert.ok(checked >= 6 * 12, `checked ${checked} typos`);
});

test("probe.feature=grdi, --engine onxx, a typo in a --config file and in case all fail before anything runs", async () => {
  const exp = experiments["kinetics-probe"];
  assert.ok(exp);
  const resolve = (sets: string[], configFile?: string) =>
    resolveConfig({ defaults: exp.defaults, profiles: exp.profiles, choices: exp.choices, sets, configFile });
  assert.throws(
    () => resolve(["probe.feature=grdi"]),
    /^ConfigError: probe\.feature: unknown value "grdi"; expected one of embedding, grid; did you mean "grid"\?$/m,
  );
  assert.throws(() => resolve(["model.preset=Tiny"]), /model\.preset: unknown value "Tiny"; .*did you mean "tiny"\?/);
  assert.throws(
    () => resolve(["train.device=quantum"]),
    (e: Error) => /expected one of cpu, webgpu$/.test(e.message),
  );
  const t = tempDir();
  try {
    const f = path.join(t.dir, "c.json");
    writeFileSync(f, JSON.stringify({ train: { schedule: "cosin" } }));
    assert.throws(
      () => resolve([], f),
      /train\.schedule: unknown value "cosin"; expected one of constant, cosine; did you mean "cosine"\?/,
    );
    await assert.rejects(
      runExperiment("avc-train", { engine: "onxx", out: path.join(t.dir, "run"), set: [`data.cacheRoot=${t.dir}/cache`], quiet: true }),
      /train\.engine: unknown value "onxx"; expected one of auto, onnx, tfjs; did you mean "onnx"\?/,
    );
    assert.ok(!existsSync(path.join(t.dir, "run")) && !existsSync(path.join(t.dir, "cache")), "nothing made");
  } finally {
    t.cleanup();
  }
});

test("`experiment quickstart --set model.fusion=avl` exits non-zero at once with the message, and writes no data", async () => {
  const tmp = tempDir("l3kit-choices-");
  try {
    const cache = path.join(tmp.dir, "cache");
    const out = path.join(tmp.dir, "out");
    const args = [
      "bin/l3kit.js",
      "experiment",
      "quickstart",
      "--set",
      "model.fusion=avl",
      "--set",
      `data.cacheRoot=${cache}`,
      "--out",
      out,
    ];
    const env = { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1" };
    const t0 = Date.now();
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += String(d);
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve({ code: c, stderr });
      });
      child.on("error", reject);
    });
    assert.notEqual(code, 0, "exits non-zero");
    assert.match(stderr, /model\.fusion: unknown value "avl"; expected one of concat, euclidean, cosine, avol; did you mean "avol"\?/);
    assert.ok(Date.now() - t0 < 60_000, "fails quickly");
    assert.ok(!existsSync(cache), "no data generated");
    assert.ok(!existsSync(out), "no run folder made");
  } finally {
    tmp.cleanup();
  }
});
