import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import {
  findDuplicateIds,
  loadManifest,
  type ManifestRow,
  manifestHash,
  manifestSummary,
  parseManifest,
  saveManifest,
  splitForId,
} from "../../src/lib/data";
import { L3kitError } from "../../src/lib/util";
import { tempDir } from "../helpers";

const tmp = tempDir("l3kit-manifest-");
after(() => tmp.cleanup());

const good = (id: string, extra: Partial<ManifestRow> = {}): ManifestRow => ({
  id,
  path: `videos/${id}.mp4`,
  split: "train",
  durationSec: 10,
  hasAudio: true,
  ...extra,
});

describe("manifest", () => {
  test("errors name the file, the line and the field", async () => {
    const file = path.join(tmp.dir, "manifest.jsonl");
    const lines = [good("a"), good("b"), "", good("c"), good("d"), good("e")].map((r) => (r === "" ? "" : JSON.stringify(r)));
    lines.push(JSON.stringify({ ...good("f"), durationSec: "3.5" }));
    writeFileSync(file, `${lines.join("\n")}\n`);
    await assert.rejects(loadManifest(file), (err: unknown) => {
      assert.ok(err instanceof L3kitError);
      assert.equal(err.message, "manifest.jsonl line 7: field 'durationSec': expected number, got string");
      assert.equal(err.reason, "bad-manifest-row");
      return true;
    });
  });

  test("missing, mistyped, unknown fields and bad JSON; skip mode collects them", () => {
    const rows = [
      JSON.stringify(good("ok1")),
      JSON.stringify({ id: "m", path: "x.mp4", split: "train", hasAudio: true }),
      JSON.stringify({ ...good("t"), hasAudio: "yes" }),
      "{not json",
      JSON.stringify({ ...good("u"), lable: "dog" }),
      JSON.stringify({ ...good("b"), boxes: [{ t: 1, sounding: [{ x1: 0.5, y1: 0.1, x2: 0.4, y2: 0.2 }] }] }),
      JSON.stringify({ ...good("n"), durationSec: -1 }),
      JSON.stringify(good("ok1")),
      JSON.stringify(good("ok2", { fold: 3, label: "dog", meta: { esc10: true } })),
    ].join("\n");
    const { rows: ok, errors } = parseManifest(rows, { onError: "skip", subject: "m.jsonl" });
    assert.deepEqual(
      ok.map((r) => r.id),
      ["ok1", "ok2"],
    );
    assert.deepEqual(
      errors.map((e) => e.line),
      [2, 3, 4, 5, 6, 7, 8],
    );
    assert.match(errors[0]!.message, /field 'durationSec': expected number, got nothing \(missing\)/);
    assert.match(errors[1]!.message, /field 'hasAudio': expected boolean, got string/);
    assert.match(errors[2]!.message, /invalid JSON/);
    assert.match(errors[3]!.message, /unknown field 'lable'/);
    assert.match(errors[4]!.message, /field 'boxes\[0\]\.sounding\[0\]': box must have x2 > x1/);
    assert.match(errors[5]!.message, /field 'durationSec': Too small/);
    assert.match(errors[6]!.message, /duplicate id 'ok1' \(first on line 1\)/);
    // non-strict mode drops unknown fields instead
    assert.equal(parseManifest(JSON.stringify({ ...good("u"), lable: "x" }), { strict: false }).rows.length, 1);
  });

  test("save writes relative paths atomically; load resolves them; round trip keeps rows and hash", async () => {
    const dir = path.join(tmp.dir, "ds");
    const file = path.join(dir, "m.jsonl");
    const rows = [
      good("a", { path: path.join(dir, "videos", "a.mp4"), label: "dog", fps: 25 }),
      good("b", { path: path.join(tmp.dir, "elsewhere", "b.mp4"), split: "val", hasAudio: false }),
      good("c", {
        path: path.join(dir, "c.mp4"),
        boxes: [{ t: 5, sounding: [{ x1: 0.1, y1: 0.2, x2: 0.5, y2: 0.6, label: "dog" }] }],
      }),
    ];
    const saved = await saveManifest(file, rows);
    const text = readFileSync(file, "utf8");
    assert.match(text, /"path":"videos\/a.mp4"/);
    assert.match(text, /"path":"..\/elsewhere\/b.mp4"/);
    const m = await loadManifest(file);
    assert.deepEqual(m.rows, rows);
    assert.equal(m.hash, saved.hash);
    assert.equal(manifestHash(file), saved.hash);
    assert.equal(manifestHash(m), saved.hash);
    assert.match(m.hash, /^[0-9a-f]{64}$/);
    // key order and whitespace do not change the hash; content does
    const reordered = text
      .trim()
      .split("\n")
      .map((l) => {
        const o = JSON.parse(l);
        return `  ${JSON.stringify(Object.fromEntries(Object.entries(o).reverse()))}`;
      })
      .join("\n\n");
    writeFileSync(path.join(dir, "m2.jsonl"), reordered);
    assert.equal(manifestHash(path.join(dir, "m2.jsonl")), saved.hash);
    assert.notEqual(manifestHash(rows.slice(1)), saved.hash);
    // refuses bad rows and duplicates
    await assert.rejects(saveManifest(file, [rows[0]!, rows[0]!]), /duplicate id 'a'/);
    await assert.rejects(saveManifest(file, [{ ...rows[0]!, durationSec: Number.NaN }]), /row 0 \(id 'a'\): field 'durationSec'/);
  });

  test("summary and duplicate detection", () => {
    const rows = [
      good("a", {
        label: "dog",
        boxes: [
          {
            t: 1,
            sounding: [
              { x1: 0, y1: 0, x2: 1, y2: 1 },
              { x1: 0, y1: 0, x2: 0.5, y2: 0.5 },
            ],
          },
        ],
      }),
      good("b", { label: "dog", split: "val", hasAudio: false, durationSec: 2.5 }),
      good("c", { label: "cat" }),
      good("a"),
    ];
    const s = manifestSummary(rows);
    assert.deepEqual(s.perSplit, { train: 3, val: 1 });
    assert.deepEqual(s.perLabel, { dog: 2, cat: 1 });
    assert.equal(s.unlabelled, 1);
    assert.equal(s.totalDurationSec, 32.5);
    assert.equal(s.withAudio, 3);
    assert.equal(s.withBoxes, 1);
    assert.equal(s.boxes, 2);
    assert.deepEqual(findDuplicateIds(rows), [{ id: "a", indices: [0, 3] }]);
  });

  test("hashed splits are deterministic and follow the ratios", () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 5000; i++) {
      const s = splitForId(`video-${i}`);
      counts[s] = (counts[s] ?? 0) + 1;
      assert.equal(splitForId(`video-${i}`), s);
    }
    assert.ok(Math.abs(counts.train! / 5000 - 0.8) < 0.03, JSON.stringify(counts));
    assert.ok(Math.abs(counts.val! / 5000 - 0.1) < 0.02, JSON.stringify(counts));
    assert.ok(Math.abs(counts.test! / 5000 - 0.1) < 0.02, JSON.stringify(counts));
    assert.equal(splitForId("x", { only: 1 }), "only");
    assert.throws(() => splitForId("x", { a: -1 }), /splits.a/);
  });
});
