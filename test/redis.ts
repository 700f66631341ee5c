/**
 * A real Redis for the queue tests: `L3KIT_TEST_REDIS` (CI's `.ci/run` starts one and sets it), else
 * a private `redis-server` on a free loopback port when one is installed. Without either, the tests
 * are skipped with a message locally and FAIL in CI (`CI=true`): CI must exercise the queue.
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";

const inCi = process.env.CI === "true" || process.env.CI === "1";

function hasRedisServer(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Options for node:test: skip (locally, with the reason) when no Redis can be had; in CI never skip. */
export function needsRedis(): { skip: string | false } {
  if (process.env.L3KIT_TEST_REDIS || hasRedisServer() || inCi) return { skip: false };
  return {
    skip: "no Redis: set L3KIT_TEST_REDIS=redis://127.0.0.1:PORT/0 or install redis-server (apt-get install -y redis-server); CI runs these tests",
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function ping(url: string): Promise<void> {
  const { Redis } = require("ioredis") as typeof import("ioredis");
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
  } finally {
    client.disconnect();
  }
}

/** A Redis URL for tests (see the module's comment) and a function that stops what was started. */
export async function startTestRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const given = process.env.L3KIT_TEST_REDIS;
  if (given) {
    await ping(given).catch((err) => {
      throw new Error(`L3KIT_TEST_REDIS=${given.replace(/\/\/[^@/]*@/, "//***@")} does not answer: ${(err as Error).message}`);
    });
    return { url: given, stop: async () => {} };
  }
  if (!hasRedisServer())
    throw new Error(
      "the queue tests need Redis, and CI must run them: install redis-server (apt-get install -y redis-server) or set L3KIT_TEST_REDIS",
    );
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const url = `redis://127.0.0.1:${port}/0`;
  for (let i = 0; ; i++) {
    try {
      await ping(url);
      break;
    } catch (err) {
      if (i > 50) {
        child.kill("SIGKILL");
        throw new Error(`redis-server on port ${port} did not start: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
