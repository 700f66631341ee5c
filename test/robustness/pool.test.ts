/** mapPool stops at the first failure and settles the running items before it rejects (#20: no clip half-written after an error). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { mapPool } from "../../src/lib/util";

test("mapPool: the first failure stops new items and rejects only after the running ones finish", async () => {
  const started: number[] = [];
  const finished: number[] = [];
  const items = Array.from({ length: 10 }, (_, i) => i);
  await assert.rejects(
    mapPool(items, 2, async (i) => {
      started.push(i);
      await new Promise((r) => setTimeout(r, i === 1 ? 5 : 30));
      if (i === 1) throw new Error("disk full at item 1");
      finished.push(i);
      return i;
    }),
    /disk full at item 1/,
  );
  assert.deepEqual(finished, [0], "item 0, running when 1 failed, finished before the rejection");
  assert.ok(!started.includes(3), `no item started after the failure: ${started}`);
  assert.deepEqual(await mapPool([3, 1, 2], 2, async (x) => x * 2), [6, 2, 4]);
});
