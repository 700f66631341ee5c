// Where l3kit is installed and which versions of its packages are: one copy for the CLI, the
// provenance record, the backend report and the benchmark.
import { readFileSync } from "node:fs";
import * as path from "node:path";

let root: string | undefined;

/** l3kit's package root: the nearest folder up from this module whose package.json is l3kit's (src/ under tsx, dist/src/ compiled). */
export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    try {
      if (JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")).name === "l3kit") {
        root = dir;
        return dir;
      }
    } catch {}
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** l3kit's own version, from its package.json. */
export function packageVersion(): string {
  return JSON.parse(readFileSync(path.join(packageRoot(), "package.json"), "utf8")).version;
}

/**
 * The installed version of `pkg` as resolved from l3kit's root; `alias of <name>@<version>` when
 * the name is an npm alias of another package (as `@tensorflow/tfjs-node` is in this repository);
 * null when it is not installed.
 */
export function installedVersion(pkg: string): string | null {
  if (pkg === "l3kit") return packageVersion();
  try {
    const file = require.resolve(`${pkg}/package.json`, { paths: [packageRoot()] });
    const meta = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
    return meta.name === pkg ? String(meta.version) : `alias of ${meta.name}@${meta.version}`;
  } catch {
    return null;
  }
}

/** node's version and the installed versions of `pkgs` (those not installed are left out). */
export function installedVersions(pkgs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = { node: process.versions.node };
  for (const pkg of pkgs) {
    const v = installedVersion(pkg);
    if (v) out[pkg] = v;
  }
  return out;
}
