import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { runExperiment } from "../../src/experiments";
import { CELL_PAYLOAD_VERSION, type CellPayload, checkCellPayload, jobIdOf, runIdOf } from "../../src/experiments/queue";
import { experiments } from "../../src/experiments/registry";
import { parseQueueUrl, RejectedJobError, redactCredentials, runJobs, startWorker } from "../../src/lib/queue";
import { repoRoot, tempDir } from "../helpers";
import { needsRedis, startTestRedis } from "../redis";

const tmp = tempDir("l3kit-queue-");
after(() => tmp.cleanup());

// The ci profile on the small synthetic set of the ablation tests; one seed, every head: 4 cells.
const sets = (cacheRoot: string) => ["profile=ci", `data.cacheRoot=${cacheRoot}`, "data.synthClips=20"];

/** The resolved config and seeds of an ablation run with `sets`, as a coordinator would enqueue them. */
function ablationPayload(cell = "concat-seed0"): CellPayload {
  const { resolveConfig } = require("../../src/experiments/config") as typeof import("../../src/experiments/config");
  const exp = experiments["ablation-fusion"];
  assert.ok(exp);
  const config = resolveConfig({
    defaults: exp.defaults,
    profiles: exp.profiles,
    choices: exp.choices,
    sets: sets(path.join(tmp.dir, "cache")),
  });
  const seeds = [0];
  return { v: CELL_PAYLOAD_VERSION, experiment: "ablation-fusion", run: runIdOf("ablation-fusion", config, seeds), cell, seeds, config };
}

describe("queue URLs", () => {
  test("redis:// and rediss:// parse; the password never shows", () => {
    const a = parseQueueUrl("redis://10.0.0.5:6380/2", {});
    assert.deepEqual(
      [a.host, a.port, a.db, a.tls, a.hasPassword, a.redacted],
      ["10.0.0.5", 6380, 2, false, false, "redis://10.0.0.5:6380/2"],
    );
    const b = parseQueueUrl("rediss://:hunter2@cache.example.org:6390/0", {});
    assert.equal(b.tls, true);
    assert.equal(b.hasPassword, true);
    assert.equal(b.redacted, "rediss://***@cache.example.org:6390/0");
    const c = parseQueueUrl("redis://localhost", { L3KIT_QUEUE_PASSWORD: "hunter2" });
    assert.deepEqual([c.port, c.db, c.hasPassword], [6379, 0, true]);
    assert.ok(!c.redacted.includes("hunter2"));
    assert.equal(redactCredentials("connect to rediss://user:hunter2@h:1/0 failed"), "connect to rediss://***@h:1/0 failed");
  });

  test("bad URLs fail with the problem named and no password echoed", () => {
    for (const [url, re] of [
      ["http://h:1/0", /scheme must be redis:\/\/ or rediss:\/\//],
      ["redis://:hunter2@h:1/zero", /database number/],
      ["redis://h:1/0?queue=x", /query strings/],
      ["not a url", /expected a URL/],
    ] as const) {
      assert.throws(
        () => parseQueueUrl(url, {}),
        (err: Error) => re.test(err.message) && !err.message.includes("hunter2"),
        url,
      );
    }
  });
});

describe("job payloads", () => {
  test("a coordinator's payload passes; run ids are deterministic and ignore key order", () => {
    const p = ablationPayload();
    const checked = checkCellPayload(JSON.parse(JSON.stringify(p)));
    assert.equal(checked.cell.key, "concat-seed0");
    assert.equal(checked.exp.name, "ablation-fusion");
    const reordered = Object.fromEntries(Object.entries(p.config).reverse());
    assert.equal(runIdOf("ablation-fusion", reordered as never, [0]), p.run);
    assert.notEqual(runIdOf("ablation-fusion", p.config as never, [1]), p.run);
    assert.equal(jobIdOf("ablation-fusion", p.run, "avol-seed0"), `ablation-fusion.${p.run}.avol-seed0`);
  });

  test("every corrupt payload is rejected with a clear error", () => {
    const good = ablationPayload();
    const bad: Array<[string, unknown, RegExp]> = [
      ["not an object", "rm -rf /", /invalid job payload/],
      ["null", null, /invalid job payload/],
      ["unknown field", { ...good, shell: "echo hi" }, /shell/],
      ["wrong version", { ...good, v: 99 }, /v/],
      ["unregistered experiment", { ...good, experiment: "evil" }, /unknown experiment 'evil'; this worker runs: .*ablation-fusion/],
      ["experiment without cells", { ...good, experiment: "avc-train" }, /does not run on a queue/],
      ["unknown config key", { ...good, config: { ...good.config, extra: 1 } }, /unknown config key 'extra'/],
      [
        "wrong type",
        { ...good, config: { ...good.config, train: { ...(good.config.train as object), steps: "lots" } } },
        /'train.steps' must be number/,
      ],
      ["bad choice", { ...good, config: { ...good.config, heads: ["concat", "sum"] } }, /heads.*unknown value "sum"/],
      ["missing key", { ...good, config: Object.fromEntries(Object.entries(good.config).filter(([k]) => k !== "preset")) }, /lacks preset/],
      ["failing check", { ...good, config: { ...good.config, eval: { ...(good.config.eval as object), probeEpochs: 0 } } }, /probeEpochs/],
      ["unknown cell", { ...good, cell: "sum-seed0" }, /'sum-seed0' is not a cell/],
      ["path in cell key", { ...good, cell: "../../etc" }, /cell key/],
      ["seeds out of step", { ...good, seeds: [5] }, /do not match/],
      ["altered run id", { ...good, run: "0123456789abcdef" }, /does not match its experiment, config and seeds/],
    ];
    for (const [what, payload, re] of bad)
      assert.throws(
        () => checkCellPayload(payload),
        (err: Error) => err instanceof RejectedJobError && /^invalid job payload: /.test(err.message) && re.test(err.message),
        what,
      );
  });
});

describe("on a real Redis", needsRedis(), () => {
  let redis: { url: string; stop: () => Promise<void> };
  // The coordinator and workers connect with a user and password (Redis's default user takes any
  // password when none is set), so that the test can check no credential reaches a log or a file.
  const secret = "s3cret-pass-17";
  let url = "";
  before(async () => {
    redis = await startTestRedis();
    const u = new URL(redis.url);
    if (!u.password) {
      u.username = "default";
      u.password = secret;
    }
    url = u.toString();
  });
  after(async () => {
    await redis?.stop();
  });

  test("a job that keeps failing is reported failed after its attempts; the others complete", async () => {
    const target = parseQueueUrl(url);
    const queueName = `t-fail-${process.pid}`;
    const tries = new Map<string, number>();
    const worker = await startWorker({
      target,
      queueName,
      lockSec: 5,
      handler: async (data, job) => {
        tries.set(job.id, (tries.get(job.id) ?? 0) + 1);
        if ((data as { fail: boolean }).fail) throw new Error("boom");
        return { twice: (data as { n: number }).n * 2 };
      },
    });
    try {
      const outcomes = await runJobs({
        target,
        queueName,
        jobs: [
          { id: "ok1", name: "ok", data: { n: 1, fail: false } },
          { id: "bad", name: "bad", data: { n: 2, fail: true } },
          { id: "ok3", name: "ok", data: { n: 3, fail: false } },
        ],
        policy: { attempts: 2, backoffSec: 0.1 },
        pollMs: 100,
      });
      assert.equal(outcomes.get("ok1")?.state, "completed");
      assert.deepEqual((outcomes.get("ok1") as { result: unknown }).result, { twice: 2 });
      assert.deepEqual((outcomes.get("ok3") as { result: unknown }).result, { twice: 6 });
      const bad = outcomes.get("bad");
      assert.equal(bad?.state, "failed");
      assert.match((bad as { error: string }).error, /boom/);
      assert.equal(tries.get("bad"), 2, "tried as often as the policy says");
      // Following the same jobs again re-attaches: nothing runs twice, results come back.
      const again = await runJobs({ target, queueName, jobs: [{ id: "ok1", name: "ok", data: { n: 1, fail: false } }], pollMs: 100 });
      assert.deepEqual((again.get("ok1") as { result: unknown }).result, { twice: 2 });
      assert.equal(tries.get("ok1"), 1);
    } finally {
      await worker.close();
    }
  });

  test("3 workers, one SIGKILLed mid-cell: the table equals the one-process table, no cell completes twice, corrupt payloads are rejected", async () => {
    const cacheRoot = path.join(tmp.dir, "cache");
    const oneOut = path.join(tmp.dir, "one");
    const queuedOut = path.join(tmp.dir, "queued");
    const artifacts = path.join(tmp.dir, "artifacts");
    const queueName = `t-ablation-${process.pid}`;
    await runExperiment("ablation-fusion", { set: sets(cacheRoot), out: oneOut, backend: "wasm", quiet: true, resultsRoot: tmp.dir });

    // Corrupt jobs, put on the queue before the coordinator's: workers must reject them unrun.
    const { Queue } = require("bullmq") as typeof import("bullmq");
    const { connectionOptions } = require("../../src/lib/queue") as typeof import("../../src/lib/queue");
    const queue = new Queue(queueName, { connection: connectionOptions(parseQueueUrl(url)) as never });
    const good = ablationPayload();
    await queue.add("corrupt", { garbage: true }, { jobId: "corrupt-envelope", attempts: 3 });
    await queue.add(
      "corrupt",
      { ...good, config: { ...good.config, train: { ...(good.config.train as object), steps: "lots" } } },
      { jobId: "corrupt-config", attempts: 3 },
    );

    const logs: string[] = [];
    const workers: ChildProcess[] = [];
    const env = { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1" };
    let killed: { index: number; cell: string } | null = null;
    for (let i = 0; i < 3; i++) {
      logs.push("");
      const child = spawn(
        process.execPath,
        [
          "bin/l3kit.js",
          "worker",
          "--queue",
          url,
          "--queue-name",
          queueName,
          "--backend",
          "wasm",
          "--lock-seconds",
          "10",
          "--artifacts",
          artifacts,
        ],
        { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] },
      );
      const onData = (chunk: Buffer) => {
        logs[i] += chunk.toString();
        const m = /started ablation-fusion (\S+)/.exec(chunk.toString());
        if (m && !killed) {
          killed = { index: i, cell: m[1] as string };
          const cellDir = path.join(artifacts, "ablation-fusion", good.run, killed.cell);
          // Kill once the cell has a checkpoint (so that the next worker resumes from it), or after 3 s.
          const t0 = Date.now();
          const timer = setInterval(() => {
            const ckpt = path.join(cellDir, "checkpoints");
            if ((existsSync(ckpt) && readdirSync(ckpt).some((f) => f.startsWith("step-"))) || Date.now() - t0 > 3000) {
              clearInterval(timer);
              child.kill("SIGKILL");
            }
          }, 50);
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      workers.push(child);
    }
    const exited = workers.map((w) => new Promise<void>((resolve) => w.on("exit", () => resolve())));
    try {
      const result = await runExperiment("ablation-fusion", {
        set: sets(cacheRoot),
        out: queuedOut,
        backend: "wasm",
        quiet: true,
        resultsRoot: tmp.dir,
        queue: url,
        queueName,
      });
      assert.equal(result.failedCells, undefined, "no cell failed");
      assert.equal(
        readFileSync(path.join(queuedOut, "table.csv"), "utf8"),
        readFileSync(path.join(oneOut, "table.csv"), "utf8"),
        "the queue's table equals the one-process table byte for byte",
      );
      assert.ok(killed, "a worker was killed during a cell");
      const k = killed as { index: number; cell: string };
      const all = logs.join("\n");
      for (const cell of ["concat-seed0", "euclidean-seed0", "cosine-seed0", "avol-seed0"]) {
        const finished = all.match(new RegExp(`finished ablation-fusion ${cell} `, "g")) ?? [];
        assert.equal(finished.length, 1, `${cell} ran to completion exactly once:\n${all}`);
      }
      assert.ok(!(logs[k.index] as string).includes(`finished ablation-fusion ${k.cell}`), "the killed worker never finished its cell");
      assert.match(
        all,
        new RegExp(`started ablation-fusion ${k.cell} .*taken over from a lost worker`),
        "another worker took the cell over",
      );

      for (const id of ["corrupt-envelope", "corrupt-config"]) {
        const job = await queue.getJob(id);
        assert.equal(await job?.getState(), "failed", `${id} failed`);
        assert.match(job?.failedReason ?? "", /^invalid job payload: /, `${id}: ${job?.failedReason}`);
        assert.equal(job?.attemptsMade, 1, `${id} was not retried`);
      }
      assert.match(all, /rejected job corrupt-config: invalid job payload: .*'train.steps' must be number/);
      assert.ok(!/started \S+ \S+ \(job corrupt/.test(all), "no corrupt job ran");

      // A restarted coordinator re-attaches to the finished jobs: nothing is enqueued or run again.
      const before = all.match(/started ablation-fusion/g)?.length;
      await runExperiment("ablation-fusion", {
        set: sets(cacheRoot),
        out: path.join(tmp.dir, "reattached"),
        backend: "wasm",
        quiet: true,
        resultsRoot: tmp.dir,
        queue: url,
        queueName,
      });
      assert.equal(logs.join("\n").match(/started ablation-fusion/g)?.length, before, "no cell ran again");
      assert.equal(
        readFileSync(path.join(tmp.dir, "reattached", "table.csv"), "utf8"),
        readFileSync(path.join(oneOut, "table.csv"), "utf8"),
      );

      // A cell that failed for good: the others make the table, the failed seed is marked.
      const exp = experiments["ablation-fusion"];
      const plan = exp?.cells;
      assert.ok(exp && plan);
      const config = ablationPayload().config as import("../../src/experiments/types").ConfigObject;
      const outcomes = plan
        .list(config, [0])
        .map((cell) =>
          cell.key === "cosine-seed0"
            ? { cell, ok: false as const, error: "boom (2 attempts)" }
            : { cell, ok: true as const, result: JSON.parse(readFileSync(path.join(queuedOut, "cells", cell.key, "cell.json"), "utf8")) },
        );
      const failedOut = path.join(tmp.dir, "with-failure");
      const backend = { name: "wasm", threads: 2, tfBackend: "wasm" } as never;
      // The data the cells shared, made again from its caches (what a coordinator holds when the cells come back).
      const prepared = await plan.prepare({ config, seeds: [0], backend, log: () => {}, signal: new AbortController().signal });
      const r = await prepared.finish(
        {
          config,
          seeds: [0],
          out: failedOut,
          resultsRoot: tmp.dir,
          resume: false,
          backend,
          startedAt: new Date(),
          log: () => {},
          quiet: true,
          signal: new AbortController().signal,
        },
        outcomes,
      );
      assert.deepEqual(r.failedCells, [{ cell: "cosine-seed0", error: "boom (2 attempts)" }]);
      const table = readFileSync(path.join(failedOut, "table.csv"), "utf8");
      assert.match(table.split("\n")[0] as string, /,failed_seeds$/);
      const cosine = (table.split("\n").find((l) => l.startsWith("cosine,")) ?? "").split(",");
      assert.equal(cosine[3], "0", "no seed of cosine finished");
      assert.equal(cosine.at(-1), "0", "its failed seed is named");
      assert.match(readFileSync(path.join(failedOut, "table.md"), "utf8"), /FAILED: cell cosine-seed0 .*boom/);

      // No credential in logs or results.
      const files = ["provenance.json", "table.md", "table.csv", "table.json"].map((f) => readFileSync(path.join(queuedOut, f), "utf8"));
      for (const text of [all, ...files]) assert.ok(!text.includes(secret), "the password appears nowhere");
    } finally {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGTERM");
      await Promise.all(exited);
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  });
});
