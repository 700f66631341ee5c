import { ConfigError, idBucket, idHash } from "../util";

/** Split ratios by split name, e.g. `{ train: 0.8, val: 0.1, test: 0.1 }` (normalised to sum 1). */
export type SplitRatios = Record<string, number>;

/** The Flickr-SoundNet proportions of the paper (400k / 50k / 50k). */
export const DEFAULT_SPLIT_RATIOS: SplitRatios = { train: 0.8, val: 0.1, test: 0.1 };

/** A number in [0, 1) from {@link idHash} of `salt`\0`id`: stable across runs, platforms and row order. */
export function hashUnit(id: string, salt = ""): number {
  return idHash(id, { salt }) / 4294967296;
}

/** A cross-validation fold (1 … folds) for an id from {@link idHash}, for rows that carry none. */
export function foldForId(id: string, folds: number): number {
  return 1 + idBucket(id, folds);
}

/**
 * Assigns a split to an id deterministically by hashing it: the same id always lands in the same
 * split, whatever other files exist, so adding videos never moves old ones between splits.
 */
export function splitForId(id: string, ratios: SplitRatios = DEFAULT_SPLIT_RATIOS, salt = ""): string {
  const entries = checkSplitRatios(ratios);
  const total = entries.reduce((s, [, r]) => s + r, 0);
  const u = hashUnit(id, salt) * total;
  let acc = 0;
  for (const [name, r] of entries) {
    acc += r;
    if (u < acc) return name;
  }
  return (entries[entries.length - 1] as [string, number])[0];
}

function checkSplitRatios(ratios: SplitRatios): Array<[string, number]> {
  const entries = Object.entries(ratios).filter(([, r]) => r !== 0);
  for (const [name, r] of Object.entries(ratios)) {
    if (!(Number.isFinite(r) && r >= 0))
      throw new ConfigError(`ratio must be a finite number >= 0, got ${r}`, { subject: `splits.${name}` });
  }
  if (entries.length === 0) throw new ConfigError("at least one split needs a ratio > 0", { subject: "splits" });
  return entries;
}
