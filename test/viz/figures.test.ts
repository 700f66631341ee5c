import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { readMetricsJsonl, readMetricsRows } from "../../src/lib/train";
import {
  ablationBars,
  confusionMatrixFigure,
  frameGrid,
  type LearningCurveRow,
  labelEfficiencyFigure,
  learningCurves,
  localizationOverlay,
  type PlotTrace,
  perClassBars,
  spectrogramFigure,
  type VizImage,
} from "../../src/lib/viz";
import { tempDir } from "../helpers";

const byName = (data: PlotTrace[], name: string) => {
  const t = data.find((d) => d.name === name);
  assert.ok(t, `trace "${name}" exists (have: ${data.map((d) => d.name).join(", ")})`);
  return t;
};
const title = (axis: unknown) => (axis as { title?: { text: string } }).title?.text;

function solid(w: number, h: number, v = 100): VizImage {
  return { width: w, height: h, data: new Uint8Array(w * h * 3).fill(v) };
}

describe("learningCurves", () => {
  const rows: LearningCurveRow[] = [
    { step: 0, epoch: 0, loss: 0.69, trainAccuracy: 0.5, lr: 1e-4 },
    { step: 10, epoch: 0, loss: 0.6, trainAccuracy: 0.6, lr: 1e-4 },
    { step: 20, epoch: 1, loss: 0.5, trainAccuracy: 0.7, valAccuracy: 0.65, valLoss: 0.55, lr: 5e-5 },
    { step: 30, epoch: 1, loss: Number.NaN, trainAccuracy: 0.72 },
    { step: 40, epoch: 2, loss: 0.4, trainAccuracy: 0.75, valAccuracy: 0.7, valLoss: 0.5 },
  ];

  it("has train and val traces for loss and accuracy with the right x/y and axes", () => {
    const fig = learningCurves(rows);
    assert.deepEqual(
      fig.data.map((d) => d.name),
      ["train loss", "val loss", "train accuracy", "val accuracy"],
    );
    const tl = byName(fig.data, "train loss");
    assert.deepEqual(tl.x, [0, 10, 20, 40], "NaN loss at step 30 is skipped");
    assert.deepEqual(tl.y, [0.69, 0.6, 0.5, 0.4]);
    assert.equal(tl.xaxis, "x");
    const va = byName(fig.data, "val accuracy");
    assert.deepEqual(va.x, [20, 40]);
    assert.deepEqual(va.y, [0.65, 0.7]);
    assert.equal(va.xaxis, "x2");
    assert.equal(va.yaxis, "y2");
    assert.deepEqual(byName(fig.data, "val loss").y, [0.55, 0.5]);
    assert.equal(title(fig.layout.xaxis), "step");
    assert.equal(title(fig.layout.yaxis), "loss");
    assert.equal(title(fig.layout.yaxis2), "accuracy");
  });

  it("can plot against epoch, smooth the training series and add an lr panel", () => {
    const fig = learningCurves(rows, { x: "epoch", smooth: 0.5, showLr: true });
    assert.equal(title(fig.layout.xaxis), "epoch");
    const raw = byName(fig.data, "train loss (raw)");
    const sm = byName(fig.data, "train loss");
    assert.deepEqual(raw.y, [0.69, 0.6, 0.5, 0.4]);
    const ys = sm.y as number[];
    assert.equal(ys[0], 0.69, "bias-corrected EMA starts at the first value");
    assert.ok(Math.abs(ys[1]! - (0.5 * 0.5 * 0.69 + 0.5 * 0.6) / 0.75) < 1e-4);
    const lr = byName(fig.data, "lr");
    assert.equal(lr.yaxis, "y3");
    assert.equal((fig.layout.yaxis3 as { type: string }).type, "log");
  });

  it("leaves out series with no values", () => {
    const fig = learningCurves([
      { step: 1, loss: 1 },
      { step: 2, loss: 0.5 },
    ]);
    assert.deepEqual(
      fig.data.map((d) => d.name),
      ["train loss"],
    );
  });
});

describe("readMetricsJsonl", () => {
  it("reads rows, skips blank lines and a cut-off last line", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = path.join(dir, "metrics.jsonl");
      writeFileSync(f, '{"step":1,"loss":0.7,"epoch":0}\n\n{"step":2,"loss":0.6,"valAccuracy":0.5}\n{"step":3,"lo');
      const rows = await readMetricsJsonl(f);
      assert.deepEqual(rows, [
        { step: 1, loss: 0.7, epoch: 0 },
        { step: 2, loss: 0.6, valAccuracy: 0.5 },
      ]);
      writeFileSync(f, '{"step":1}\nnot json\n{"step":3}\n');
      await assert.rejects(readMetricsJsonl(f), (e: Error) => e.message.startsWith(`${f}:2: line is not valid JSON`));
      writeFileSync(f, '{"step":"x"}\n{"step":3}\n');
      await assert.rejects(readMetricsJsonl(f), /metrics.jsonl:1: expected a JSON object with a numeric step/);
      await assert.rejects(readMetricsJsonl(path.join(dir, "none.jsonl")), /none.jsonl: cannot read metrics file/);
      // the resume path reads the same way: a cut last line dropped, a bad line inside an error, no file none
      writeFileSync(f, '{"step":1}\n{"step":2}\n{"step":3,"lo');
      assert.deepEqual(
        readMetricsRows(f).map((r) => r.step),
        [1, 2],
      );
      writeFileSync(f, '{"step":1}\nnot json\n{"step":3}\n');
      assert.throws(
        () => readMetricsRows(f),
        (e: Error) => e.message.startsWith(`${f}:2: line is not valid JSON`),
      );
      assert.deepEqual(readMetricsRows(path.join(dir, "none.jsonl")), []);
    } finally {
      cleanup();
    }
  });
});

describe("spectrogramFigure", () => {
  const bins = 5;
  const frames = 4;
  const data = Float32Array.from({ length: bins * frames }, (_, i) => i);

  it("draws a linear spectrogram with time in s and frequency in Hz", () => {
    const fig = spectrogramFigure({ data, bins, frames, sampleRate: 8000, hopLength: 100, kind: "linear" });
    const t = fig.data[0]!;
    assert.equal(t.type, "heatmap");
    assert.deepEqual(t.x, [0, 0.0125, 0.025, 0.0375]);
    assert.deepEqual(t.y, [0, 1000, 2000, 3000, 4000], "bins k·sr/n_fft with n_fft = 2(bins−1)");
    assert.deepEqual((t.z as number[][])[1], [4, 5, 6, 7], "row = bin");
    assert.equal(title(fig.layout.xaxis), "time (s)");
    assert.equal(title(fig.layout.yaxis), "frequency (Hz)");
  });

  it("keeps mel bands evenly spaced with Hz tick labels", () => {
    const freqs = Float32Array.from([100, 300, 700, 1500, 3500]);
    const fig = spectrogramFigure({ data, bins, frames, sampleRate: 8000, hopLength: 100, kind: "mel", freqs });
    const t = fig.data[0]!;
    assert.deepEqual(t.y, [0, 1, 2, 3, 4]);
    const y = fig.layout.yaxis as { tickvals: number[]; ticktext: string[] };
    assert.deepEqual(y.tickvals, [0, 1, 2, 3, 4]);
    assert.deepEqual(y.ticktext, ["100", "300", "700", "1.5k", "3.5k"]);
    const def = spectrogramFigure({ data, bins, frames, sampleRate: 8000, hopLength: 100, kind: "mel" });
    const ticks = (def.layout.yaxis as { ticktext: string[] }).ticktext;
    assert.equal(ticks.length, 5);
    assert.ok(Number(ticks[0]) > 0, "Slaney centres start above 0 Hz");
  });

  it("averages frames to stay under maxCells and checks shapes", () => {
    const fig = spectrogramFigure({ data, bins, frames, sampleRate: 8000, hopLength: 100, kind: "linear" }, { maxCells: 10 });
    const t = fig.data[0]!;
    assert.deepEqual((t.z as number[][])[0], [0.5, 2.5]);
    assert.deepEqual(t.x, [0.00625, 0.03125]);
    assert.throws(
      () => spectrogramFigure({ data, bins: 4, frames, sampleRate: 8000, hopLength: 100, kind: "linear" }),
      /data has 20 values, expected bins×frames = 16/,
    );
  });
});

describe("frameGrid", () => {
  it("lays out one image trace per frame on its own axes", () => {
    const fig = frameGrid([solid(40, 30), solid(40, 30, 200), solid(20, 10)], { titles: ["a", "b", "c"], columns: 2 });
    assert.equal(fig.data.length, 3);
    assert.ok(fig.data.every((d) => d.type === "image" && String(d.source).startsWith("data:image/png;base64,")));
    assert.deepEqual(
      fig.data.map((d) => [d.xaxis, d.yaxis]),
      [
        ["x", "y"],
        ["x2", "y2"],
        ["x3", "y3"],
      ],
    );
    assert.deepEqual((fig.layout.xaxis3 as { range: number[] }).range, [0, 20]);
    assert.deepEqual((fig.layout.yaxis3 as { range: number[] }).range, [10, 0], "y points down");
    const ann = fig.layout.annotations as Array<{ text: string }>;
    assert.deepEqual(
      ann.map((a) => a.text),
      ["a", "b", "c"],
    );
    const d1 = (fig.layout.xaxis as { domain: number[] }).domain;
    const d2 = (fig.layout.xaxis2 as { domain: number[] }).domain;
    assert.ok(d1[1]! <= d2[0]!, "columns do not overlap");
  });

  it("shrinks big frames but keeps full-size pixel coordinates", () => {
    const fig = frameGrid([solid(512, 256)], { maxSide: 128 });
    const t = fig.data[0]!;
    assert.equal(t.dx, 4);
    assert.equal(t.dy, 4);
    assert.equal(t.x0, 2);
    const png = Buffer.from(String(t.source).split(",")[1]!, "base64");
    assert.equal(png.readUInt32BE(16), 128, "embedded PNG is 128 wide");
  });
});

describe("localizationOverlay", () => {
  const frame = solid(224, 112);
  const map = { data: new Float32Array(14 * 7), width: 14, height: 7 };
  map.data[2 * 14 + 10] = 5; // row 2, col 10
  map.data[6 * 14 + 0] = 4.9;

  it("draws frame, map heatmap, box rectangles in pixels and a peak marker at the argmax", () => {
    const fig = localizationOverlay({
      frame,
      map,
      boxes: [{ x1: 0.5, y1: 0.1, x2: 0.9, y2: 0.5 }],
      distractors: [{ x1: 0, y1: 0.6, x2: 0.25, y2: 1 }],
    });
    assert.deepEqual(
      fig.data.map((d) => d.type),
      ["image", "heatmap", "scatter"],
    );
    const hm = fig.data[1]!;
    assert.equal(hm.dx, 16);
    assert.equal(hm.dy, 16);
    assert.equal(hm.x0, 8);
    assert.equal((hm.z as number[][])[2]![10], 5);
    assert.ok((hm.opacity as number) < 1);
    const shapes = fig.layout.shapes as Array<Record<string, unknown>>;
    assert.equal(shapes.length, 2);
    assert.deepEqual(
      { type: shapes[0]!.type, x0: shapes[0]!.x0, y0: shapes[0]!.y0, x1: shapes[0]!.x1, y1: shapes[0]!.y1 },
      { type: "rect", x0: 112, y0: 11.2, x1: 201.6, y1: 56 },
    );
    assert.equal((shapes[1]!.line as { dash: string }).dash, "dash");
    const peak = fig.data[2]!;
    assert.deepEqual(peak.x, [10.5 * 16]);
    assert.deepEqual(peak.y, [2.5 * 16]);
    assert.equal(peak.name, "peak (in box)");
    assert.deepEqual((fig.layout.yaxis as { range: number[] }).range, [112, 0]);
  });

  it("names a miss, can leave the peak out, and rejects a corrupt box", () => {
    const miss = localizationOverlay({ frame, map, boxes: [{ x1: 0, y1: 0, x2: 0.2, y2: 0.2 }] });
    assert.equal(miss.data[2]!.name, "peak (outside box)");
    assert.equal(localizationOverlay({ frame, map, peak: false }).data.length, 2);
    assert.throws(
      () => localizationOverlay({ frame, map, boxes: [{ x1: -2.9e16, y1: 0, x2: 0.5, y2: 0.5 }] }),
      /box 0: box \[-29000000000000000/,
    );
    assert.throws(() => localizationOverlay({ frame, map: { ...map, width: 13 } }), /map data has 98 values for 13×7/);
  });
});

describe("confusionMatrixFigure, perClassBars, ablationBars", () => {
  it("normalises confusion rows and labels the axes", () => {
    const fig = confusionMatrixFigure(
      [
        [3, 1],
        [0, 4],
      ],
      ["a", "b"],
      { normalize: true },
    );
    const t = fig.data[0]!;
    assert.deepEqual(t.z, [
      [0.75, 0.25],
      [0, 1],
    ]);
    assert.deepEqual(t.text, [
      ["0.75", "0.25"],
      ["0.00", "1.00"],
    ]);
    assert.equal(title(fig.layout.xaxis), "predicted");
    assert.equal(title(fig.layout.yaxis), "true");
    assert.deepEqual(
      confusionMatrixFigure(
        [
          [1, 3],
          [1, 1],
        ],
        ["a", "b"],
        { normalize: "column" },
      ).data[0]!.z,
      [
        [0.5, 0.75],
        [0.5, 0.25],
      ],
    );
    assert.deepEqual(
      confusionMatrixFigure(
        [
          [1, 3],
          [1, 1],
        ],
        ["a", "b"],
      ).data[0]!.z,
      [
        [1, 3],
        [1, 1],
      ],
    );
    assert.throws(() => confusionMatrixFigure([[1, 2]], ["a", "b"]), /must be 2×2/);
  });

  it("sorts per-class bars and marks the mean", () => {
    const fig = perClassBars([0.2, 0.9, 0.5], ["a", "b", "c"], { sort: true });
    assert.deepEqual(fig.data[0]!.x, ["b", "c", "a"]);
    assert.deepEqual(fig.data[0]!.y, [0.9, 0.5, 0.2]);
    const line = (fig.layout.shapes as Array<{ y0: number }>)[0]!;
    assert.ok(Math.abs(line.y0 - 1.6 / 3) < 1e-12);
  });

  it("groups ablation bars by variant, one series per metric, with std error bars and gaps", () => {
    const fig = ablationBars([
      { group: "concat", metric: "AVC", mean: 0.74, std: 0.01 },
      { group: "concat", metric: "ESC-50", mean: 0.79, std: 0.02 },
      { group: "distance", metric: "AVC", mean: 0.72, std: 0.015 },
    ]);
    assert.equal(fig.layout.barmode, "group");
    assert.deepEqual(
      fig.data.map((d) => d.name),
      ["AVC", "ESC-50"],
    );
    assert.deepEqual(fig.data[0]!.x, ["concat", "distance"]);
    assert.deepEqual(fig.data[0]!.y, [0.74, 0.72]);
    assert.deepEqual((fig.data[0]!.error_y as { array: number[] }).array, [0.01, 0.015]);
    assert.deepEqual(fig.data[1]!.y, [0.79, null]);
    assert.throws(() => ablationBars([{ group: "g", metric: "m", mean: 1, std: -1 }]), /row 0/);
  });
});

describe("labelEfficiencyFigure", () => {
  it("draws one line per feature set in order of labels per class, on a log axis, with chance", () => {
    const fig = labelEfficiencyFigure(
      [
        { features: "model", labelsPerClass: 10, accuracy: 0.99 },
        { features: "random", labelsPerClass: 1, accuracy: 0.3 },
        { features: "model", labelsPerClass: 1, accuracy: 0.9 },
        { features: "random", labelsPerClass: 10, accuracy: 0.78 },
      ],
      { chance: 0.1, title: "audio" },
    );
    const model = byName(fig.data, "model");
    assert.deepEqual(model.x, [1, 10]);
    assert.deepEqual(model.y, [0.9, 0.99]);
    assert.deepEqual(byName(fig.data, "random").y, [0.3, 0.78]);
    assert.deepEqual(byName(fig.data, "chance").y, [0.1, 0.1]);
    assert.equal((fig.layout.xaxis as { type: string }).type, "log");
    assert.throws(() => labelEfficiencyFigure([{ features: "m", labelsPerClass: 0, accuracy: 0.5 }]), /point 0/);
    assert.throws(() => labelEfficiencyFigure([{ features: "m", labelsPerClass: 2, accuracy: 1.5 }]), /accuracy in \[0, 1\]/);
  });
});
