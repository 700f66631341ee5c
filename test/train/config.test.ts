import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_TRAIN_CONFIG, TRAIN_CHOICES, type TrainAvcConfig, validateTrainConfig } from "../../src/lib/train/config";
import { ConfigError } from "../../src/lib/util";

test("validateTrainConfig accepts every declared value and rejects any other, naming the key and the allowed values", () => {
  for (const [key, allowed] of Object.entries(TRAIN_CHOICES) as Array<[keyof TrainAvcConfig, readonly string[]]>) {
    for (const value of allowed) {
      const c = { ...DEFAULT_TRAIN_CONFIG, [key]: value, ...(key === "pairing" && value === "in-batch" ? { batchSize: 4 } : {}) };
      validateTrainConfig(c as TrainAvcConfig);
    }
    assert.throws(
      () => validateTrainConfig({ ...DEFAULT_TRAIN_CONFIG, [key]: "nope" } as TrainAvcConfig),
      (e: Error) =>
        e instanceof ConfigError && e.message === `train.${key}: must be one of ${allowed.map((a) => `'${a}'`).join(", ")}, got "nope"`,
    );
  }
  assert.deepEqual(Object.keys(TRAIN_CHOICES).sort(), ["device", "engine", "pairing", "schedule"]);
});
