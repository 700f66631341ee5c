// Backend selection: names, the tfjs-node alias, auto order, idempotence, env vars, clean exit.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { BACKEND_NAMES, backendInfo, initBackend, nativePackageProblem, parseBackendName } from "../../src/lib/backend";
import { ConfigError } from "../../src/lib/util";
import { repoRoot } from "../helpers";

/** Whether `@tensorflow/tfjs-node` here is the npm-override alias of pure-JS tfjs (as in this repo). */
function tfjsNodeIsAlias(): boolean {
  try {
    const pj = require.resolve("@tensorflow/tfjs-node/package.json");
    return JSON.parse(fs.readFileSync(pj, "utf8")).name !== "@tensorflow/tfjs-node";
  } catch {
    return false;
  }
}

/** Runs a snippet in a fresh node (tsx) with the backend module loaded as `b`. */
function child(code: string, env: Record<string, string> = {}): { status: number | null; out: string; err: string; ms: number } {
  const t0 = Date.now();
  const script = `const b = require(${JSON.stringify(path.join(repoRoot, "src/lib/backend"))}); (async () => { ${code} })().catch((e) => { console.error("ERR " + e.message); process.exitCode = 3; });`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
    cwd: repoRoot,
    env: { ...process.env, L3KIT_QUIET: "", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - t0 };
}

describe("parseBackendName", () => {
  test("accepts every valid name, case-insensitively", () => {
    for (const n of BACKEND_NAMES) assert.equal(parseBackendName(n), n);
    assert.equal(parseBackendName(" WASM "), "wasm");
    assert.equal(parseBackendName("TensorFlow-GPU"), "tensorflow-gpu");
  });

  test("rejects bad names with a ConfigError that lists the valid ones", () => {
    for (const bad of ["gpu", "", "webgl", "tfjs-node"]) {
      assert.throws(
        () => parseBackendName(bad),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, /^backend: unknown backend/);
          for (const n of BACKEND_NAMES) assert.ok(err.message.includes(n), `message should list ${n}: ${err.message}`);
          return true;
        },
      );
    }
  });
});

describe("initBackend", () => {
  test("native packages: the tfjs-node alias and a missing tfjs-node-gpu are recognised", {
    skip: tfjsNodeIsAlias() ? false : "@tensorflow/tfjs-node is not the pure-JS alias here",
  }, () => {
    assert.match(nativePackageProblem("@tensorflow/tfjs-node") ?? "", /pure-JS alias .*not the native binding/);
    assert.match(nativePackageProblem("@tensorflow/tfjs-node-gpu") ?? "", /not installed/);
  });

  test("auto skips tfjs-node-gpu and the tfjs-node alias, picks threaded wasm, says so once, and is idempotent", async () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    let info: Awaited<ReturnType<typeof initBackend>>;
    try {
      info = await initBackend({ backend: "auto", threads: 2, quiet: false });
      const again = await initBackend({ quiet: false });
      assert.equal(again, info);
    } finally {
      process.stderr.write = write;
    }
    assert.equal(backendInfo(), info);
    const said = lines
      .join("")
      .split("\n")
      .filter((l) => l.startsWith("l3kit backend:"));
    assert.equal(said.length, 1, `expected one announcement, got ${said.length}`);
    if (tfjsNodeIsAlias()) {
      assert.equal(info.name, "wasm");
      assert.equal(tf.getBackend(), "wasm");
      const skipped = Object.fromEntries(info.skipped.map((s) => [s.name, s.why]));
      assert.match(skipped["tensorflow-gpu"] ?? "", /not installed/);
      assert.match(skipped.tensorflow ?? "", /pure-JS alias/);
      assert.ok(lines.join("").includes("skipped tensorflow: "), "the announcement lists the skipped backends");
      assert.ok(info.threads >= 1);
      assert.ok(info.kernels?.includes("Conv2DBackpropFilter"));
      assert.equal(info.versions["@tensorflow/tfjs-node"], "alias of @tensorflow/tfjs@4.22.0");
    }
    await assert.rejects(
      initBackend({ backend: "cpu" }),
      (err: unknown) => err instanceof ConfigError && /already initialised/.test(err.message),
    );
  });
});

describe("in a fresh process", () => {
  test("threaded wasm runs, reports its threads, and the process exits on its own", () => {
    const r = child(`
      const info = await b.initBackend({ backend: "wasm", threads: 2, quiet: true });
      const tf = require("@tensorflow/tfjs");
      const y = tf.conv2d(tf.ones([1, 8, 8, 3]), tf.ones([3, 3, 3, 4]), 1, "same").sum().dataSync()[0];
      console.log(JSON.stringify({ threads: info.threads, name: info.name, y }));
    `);
    assert.equal(r.status, 0, `exit ${r.status}: ${r.err}`);
    const got = JSON.parse(r.out.trim().split("\n").pop() ?? "{}") as { threads: number; name: string; y: number };
    assert.equal(got.name, "wasm");
    assert.equal(got.threads, 2);
    assert.equal(got.y, 4 * 3 * 22 * 22, "sum of a same-padded 3×3 conv of ones (22 = 2 + 3·6 + 2 taps per axis)");
    console.log(`# child with 2 wasm threads exited by itself in ${r.ms} ms`);
  });

  test("L3KIT_THREADS=1 gives the single-threaded build, with the reason", () => {
    const r = child(`const info = await b.initBackend({ backend: "wasm" }); console.log(JSON.stringify(info));`, { L3KIT_THREADS: "1" });
    assert.equal(r.status, 0, r.err);
    const info = JSON.parse(r.out.trim().split("\n").pop() ?? "{}");
    assert.equal(info.threads, 1);
    assert.match(info.reason, /single-threaded: 1 thread requested/);
    assert.match(r.err, /^l3kit backend: wasm /m, "announces on stderr when not quiet");
  });

  test("if the pthread workers do not come up, the stock single-threaded build takes over", () => {
    const r = child(`
      const tf = require("@tensorflow/tfjs");
      const plan = b.registerThreadedWasm(2, { timeoutMs: 1 });
      await tf.setBackend("wasm");
      const y = tf.add(tf.ones([3]), 1).sum().dataSync()[0];
      console.log(JSON.stringify({ plan, threads: require("@tensorflow/tfjs-backend-wasm").getThreadsCount(), y }));
    `);
    assert.equal(r.status, 0, r.err);
    const got = JSON.parse(r.out.trim().split("\n").pop() ?? "{}");
    assert.equal(got.plan.threaded, false);
    assert.match(got.plan.fallbackReason, /did not load within 1 ms.*single-threaded SIMD build/);
    assert.equal(got.threads, 1);
    assert.equal(got.y, 6);
  });

  test("L3KIT_BACKEND selects the backend and a bad value is a clear error", () => {
    const ok = child(`const info = await b.initBackend(); console.log(info.name, info.threads);`, {
      L3KIT_BACKEND: "cpu",
      L3KIT_QUIET: "1",
    });
    assert.equal(ok.status, 0, ok.err);
    assert.equal(ok.out.trim(), "cpu 1");
    assert.equal(ok.err, "", "L3KIT_QUIET=1 silences the announcement");
    const bad = child(`await b.initBackend();`, { L3KIT_BACKEND: "cuda" });
    assert.equal(bad.status, 3);
    assert.match(bad.err, /ERR backend: unknown backend "cuda"; expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu/);
  });
});
