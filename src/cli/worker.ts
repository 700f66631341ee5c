import type { Command } from "commander";
import { QUEUE_NAME_HELP } from "../experiments/options";
import { backendOption, intArg, numArg } from "./shared";

/** Registers `l3kit worker`: runs experiment cells from a queue (see `experiment <name> --queue`). */
export function registerWorkerCommand(program: Command): void {
  program
    .command("worker")
    .description(
      "Run experiment cells from a BullMQ queue in Redis, as enqueued by `npm run experiment -- <name> --queue URL`; start any number, on any machines. Stops on SIGINT/SIGTERM: a running cell saves a checkpoint and goes back to the queue. onnxruntime's threads do not spin while idle in a worker (L3KIT_ONNX_SPIN=1 to keep spinning), so workers sharing cores do not slow each other",
    )
    .requiredOption(
      "--queue <url>",
      "redis://[:PASSWORD@]HOST:PORT/DB, or rediss:// for TLS (the password may instead be in L3KIT_QUEUE_PASSWORD)",
    )
    .option("--queue-name <name>", QUEUE_NAME_HELP)
    .option("--concurrency <n>", "cells run at once by this process", intArg("--concurrency"), 1)
    .option(
      "--artifacts <dir>",
      "where cells keep their checkpoints (<dir>/<experiment>/<run>/<cell>); on a folder every worker shares, a cell taken over from a lost worker resumes from its last checkpoint. Default: a private temp folder, removed after each cell (a taken-over cell restarts)",
    )
    .option(
      "--lock-seconds <s>",
      "a worker that stops renewing its lock for this long (killed, machine lost) loses its cell, which another worker then takes (BullMQ's lock duration and stalled-check interval)",
      numArg("--lock-seconds"),
      30,
    )
    .option("--max-jobs <n>", "exit after this many jobs (default: run until stopped)", intArg("--max-jobs"))
    .addOption(backendOption())
    .action(
      async (opts: {
        queue: string;
        queueName?: string;
        concurrency: number;
        artifacts?: string;
        lockSeconds: number;
        maxJobs?: number;
        backend: string;
      }) => {
        // workers share cores with other workers: onnxruntime's idle threads sleep instead of spinning
        // (two lite trainers on 2 cores: 520 → 330 ms a step each; results unchanged)
        process.env.L3KIT_ONNX_SPIN ??= "0";
        const { runWorker } = require("../experiments/queue") as typeof import("../experiments/queue");
        await runWorker({
          queue: opts.queue,
          queueName: opts.queueName,
          concurrency: opts.concurrency,
          artifacts: opts.artifacts,
          lockSec: opts.lockSeconds,
          maxJobs: opts.maxJobs,
          backend: opts.backend,
        });
      },
    );
}
