import assert from "node:assert/strict";
import { test } from "node:test";
import { foldForId, hashUnit, shardOfId, splitForId } from "../../src/lib/data";
import { idBucket, idHash } from "../../src/lib/util";

// Outputs of the three hashes before they were one (split: sha256(salt\0id) / 2³², shard: first 6
// bytes of sha256(id) mod N, ESC-50 probe fold: 1 + first 4 bytes of sha256(id) mod F): every id
// must stay in its split, shard and fold.
const IDS = [
  "a",
  "clip-0001",
  "clip-0002",
  "synth-00017",
  "YouTube_x8Abc_000010",
  "1-100032-A-0",
  "5-9032-A-0",
  "ü-ñ",
  "",
  "video/with/slash.mp4",
  "0",
  "x".repeat(200),
];
const OLD = {
  split: ["train", "train", "train", "train", "train", "train", "train", "train", "train", "train", "val", "train"],
  splitSalt: ["val", "val", "val", "val", "train", "val", "train", "val", "val", "train", "val", "train"],
  unit: [
    0.008459655800834298, 0.21779869520105422, 0.2751309424638748, 0.5602914611808956, 0.691309223882854, 0.12431460875086486,
    0.44339234032668173, 0.39956185361370444, 0.43048164900392294, 0.6925318809226155, 0.8562645260244608, 0.4732239842414856,
  ],
  shard5: [4, 3, 4, 4, 2, 1, 3, 3, 4, 2, 3, 4],
  shard3: [0, 2, 0, 0, 2, 0, 1, 0, 1, 0, 1, 2],
  fold5: [1, 1, 2, 4, 5, 3, 5, 4, 1, 1, 4, 4],
  fold10: [1, 1, 2, 4, 5, 3, 5, 4, 1, 6, 9, 9],
};

test("one id hash: every id keeps the split, shard and fold it had before", () => {
  const now: Record<keyof typeof OLD, (id: string) => unknown> = {
    split: (id) => splitForId(id),
    splitSalt: (id) => splitForId(id, { train: 0.5, val: 0.25, test: 0.25 }, "s1"),
    unit: (id) => hashUnit(id),
    shard5: (id) => shardOfId(id, 5),
    shard3: (id) => shardOfId(id, 3),
    fold5: (id) => foldForId(id, 5),
    fold10: (id) => foldForId(id, 10),
  };
  for (const [name, f] of Object.entries(now)) assert.deepEqual(IDS.map(f), OLD[name as keyof typeof OLD], name);
});

test("idHash reads 4 or 6 digest bytes; idBucket is it modulo the count", () => {
  assert.equal(Math.floor(idHash("a", { bytes: 6 }) / 2 ** 16), idHash("a"));
  assert.equal(idHash("a", { salt: "" }) / 2 ** 32, OLD.unit[0]);
  for (const id of IDS) assert.equal(idBucket(id, 7), idHash(id) % 7);
});
