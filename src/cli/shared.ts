import { type Command, Option } from "commander";

export { packageRoot, packageVersion } from "../lib/util";

/** The `--backend` option every command takes (default: $L3KIT_BACKEND or auto). */
export function backendOption(): Option {
  return new Option("--backend <name>", "tfjs backend: auto | tensorflow-gpu | tensorflow | wasm | cpu")
    .env("L3KIT_BACKEND")
    .default("auto");
}

/** Adds `--backend` to a command. */
export function withBackend(cmd: Command): Command {
  return cmd.addOption(backendOption());
}

/** Parses a positive integer option with a clear error. */
export function intArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got '${value}'`);
    return n;
  };
}

/** Parses a number option with a clear error. */
export function numArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got '${value}'`);
    return n;
  };
}

/** Parses WxH. */
export function sizeArg(value: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/i.exec(value.trim());
  if (!m) throw new Error(`size must look like WxH (e.g. 128x128), got '${value}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * Exit status of a batch command (`embed`, `data cache`, `data scan`, …) that finished but failed
 * on some items (files, clips), without `--allow-failures`. Its summary is printed either way.
 */
export const FAILED_ITEMS_EXIT_CODE = 2;

/** `--allow-failures` help. */
export const ALLOW_FAILURES_HELP = `exit 0 even when some items (files, clips) failed; without it such a run exits with status ${FAILED_ITEMS_EXIT_CODE} (the summary lists the failures either way)`;

/**
 * Ends a batch command: when `failed` of `total` items failed, says so on stderr and sets the exit
 * status to {@link FAILED_ITEMS_EXIT_CODE}, unless `allowFailures`.
 */
export function finishBatch(what: string, failed: number, total: number, allowFailures: boolean | undefined): void {
  if (failed === 0) return;
  if (allowFailures) {
    console.error(`l3kit: ${failed} of ${total} ${what} failed (accepted: --allow-failures)`);
    return;
  }
  console.error(
    `l3kit: ${failed} of ${total} ${what} failed; exiting with status ${FAILED_ITEMS_EXIT_CODE} (pass --allow-failures to accept a partial result)`,
  );
  process.exitCode = FAILED_ITEMS_EXIT_CODE;
}

/** "1h02m03s"-style duration for progress lines ("?" when unknown). */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return "?";
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}
