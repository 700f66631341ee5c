/** Runs the `l3kit` CLI in a child process (from source), for exit codes and messages. */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { repoRoot } from "../helpers";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `l3kit <args>` from the sources (L3KIT_FROM_SOURCE=1, L3KIT_QUIET=1). */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const env = { ...process.env, L3KIT_FROM_SOURCE: "1", L3KIT_QUIET: "1", ...opts.env };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, "bin", "l3kit.js"), ...args], {
      cwd: opts.cwd ?? repoRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.on("error", reject);
  });
}
