import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

/** The repository root (tests run from it, but do not rely on cwd). */
export const repoRoot = path.resolve(__dirname, "..");

/** `../shared/realdata` beside the repository, where CI and developers have the real test media. */
export const realdataDir = process.env.L3KIT_REALDATA ?? path.resolve(repoRoot, "..", "shared", "realdata");

/** Path of a file in realdata. */
export function realdata(...parts: string[]): string {
  return path.join(realdataDir, ...parts);
}

/** Options for node:test that skip a test (with a reason) when realdata is absent. */
export function needsRealdata(): { skip: string | false } {
  return { skip: existsSync(realdataDir) ? false : `realdata not found at ${realdataDir}` };
}

/** A fresh temp folder, removed by the returned cleanup function. */
export function tempDir(prefix = "l3kit-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
