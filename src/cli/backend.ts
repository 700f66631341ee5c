import type { Command } from "commander";
import { intArg, withBackend } from "./shared";

export function registerBackendCommand(program: Command): void {
  withBackend(
    program
      .command("backend")
      .description("Select a tfjs backend the way every command does, and print which one runs and why the others were skipped")
      .option("--threads <n>", "wasm threads (default: all cores)", intArg("--threads"))
      .option("--json", "print the result as JSON"),
  ).action(async (opts: { backend: string; threads?: number; json?: boolean }) => {
    const { initBackend, parseBackendName, formatBackendInfo } = require("../lib/backend") as typeof import("../lib/backend");
    const info = await initBackend({ backend: parseBackendName(opts.backend), threads: opts.threads, quiet: true });
    console.log(opts.json ? JSON.stringify(info, null, 2) : formatBackendInfo(info));
  });
}
