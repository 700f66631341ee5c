import { createHash } from "node:crypto";

/** How {@link idHash} reads an id. */
export interface IdHashOptions {
  /** Hash `salt` + NUL + id instead of the bare id (e.g. to draw a different split). */
  salt?: string;
  /** Leading digest bytes read as the number: 4 (default, 0 … 2³²−1) or 6 (0 … 2⁴⁸−1). */
  bytes?: 4 | 6;
}

/**
 * The one hash that puts an item in a bucket by its id: splits, shards and folds all come from it,
 * so an item's place never depends on the other items, their order, the run or the platform.
 * SHA-256 of the id (or of `salt`\0`id`), its first `bytes` bytes as an unsigned big-endian integer.
 */
export function idHash(id: string, opts: IdHashOptions = {}): number {
  const key = opts.salt === undefined ? id : `${opts.salt}\u0000${id}`;
  return createHash("sha256")
    .update(key)
    .digest()
    .readUIntBE(0, opts.bytes ?? 4);
}

/** The bucket (0 … count−1) of an id: {@link idHash} modulo `count`. */
export function idBucket(id: string, count: number, opts: IdHashOptions = {}): number {
  return idHash(id, opts) % count;
}
