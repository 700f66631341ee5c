/**
 * Checks run before an experiment does any work (no data generated, decoded or trained on), after
 * its schema has checked every config value ({@link Experiment.check}): every output location (the run
 * folder and the data cache root must be writable folders), and a configured manifest (it loads,
 * and experiments that train on it have `train` and `val` clips). Each failure is a ConfigError
 * naming the key or path and the cause.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { loadManifest } from "../lib/data";
import { checkWritableDir, ConfigError } from "../lib/util";
import type { ConfigObject } from "./types";

/** Experiments that train on `data.manifest`'s `train` split and validate on its `val` split. */
export const TRAINS_ON_MANIFEST: ReadonlySet<string> = new Set(["avc-train", "ablation-fusion"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * What {@link runExperiment} checks before it starts, after the config's values: the run folder and the
 * data cache root (writable folders, created when missing), and `data.manifest` (exists, loads, and
 * has `train` and `val` clips for the experiments in {@link TRAINS_ON_MANIFEST}).
 */
export async function preflightExperiment(name: string, config: ConfigObject, out: string): Promise<void> {
  await checkWritableDir(out, "--out");
  const data = isObject(config.data) ? config.data : null;
  if (!data) return;
  // checked without being created: nothing is made before the run starts (the data steps make it)
  if (typeof data.cacheRoot === "string") await checkWritableDir(data.cacheRoot, "data.cacheRoot", { create: false });
  if (typeof data.manifest === "string" && data.manifest) {
    const file = path.resolve(data.manifest);
    if (!existsSync(file)) throw new ConfigError(`manifest not found: ${file}`, { subject: "data.manifest", reason: "missing" });
    const manifest = await loadManifest(file);
    if (TRAINS_ON_MANIFEST.has(name)) {
      const counts = new Map<string, number>();
      for (const r of manifest.rows) counts.set(r.split, (counts.get(r.split) ?? 0) + 1);
      for (const split of ["train", "val"]) {
        if (!counts.get(split))
          throw new ConfigError(
            `${file} has no clip in split '${split}' (splits: ${[...counts].map(([s, n]) => `${s} ${n}`).join(", ") || "none"}); ${name} trains on 'train' and validates on 'val'`,
            { subject: "data.manifest", reason: "no-split" },
          );
      }
    }
  }
}
