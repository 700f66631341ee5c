import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { averageByGroup, avcMetrics, classificationMetrics, foldMeanStd, rocAuc } from "../../src/lib/eval";

describe("rocAuc / avcMetrics", () => {
  it("is 1 for perfectly separated scores, 0 when reversed, 0.5 when all tied", () => {
    const labels = [0, 0, 0, 1, 1, 1];
    assert.equal(rocAuc([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], labels), 1);
    assert.equal(rocAuc([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], labels), 0);
    assert.equal(rocAuc([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], labels), 0.5);
  });

  it("matches hand-computed values with and without ties", () => {
    // sklearn's roc_auc_score doc example: pairs (pos, neg): (.35,.1)✓ (.35,.4)✗ (.8,.1)✓ (.8,.4)✓ → 3/4
    assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    // pos {0.5, 0.9} vs neg {0.5, 0.2}: tie ½ + 1 + 1 + 1 = 3.5 of 4 pairs
    assert.equal(rocAuc([0.5, 0.5, 0.2, 0.9], [true, false, false, true]), 0.875);
  });

  it("is NaN when one class is missing", () => {
    assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [1, 1])));
  });

  it("counts accuracy with score > 0.5 as 'corresponds' (0.5 itself is a no)", () => {
    // decisions: [1, 0, 0, 1] vs labels [1, 1, 0, 0] → 2 of 4 right
    const m = avcMetrics(new Float32Array([0.9, 0.5, 0.2, 0.7]), [1, 1, 0, 0]);
    assert.equal(m.accuracy, 0.5);
    assert.equal(m.n, 4);
    assert.equal(m.positives, 2);
    assert.equal(m.auc, 0.75); // pos {0.9, 0.5} vs neg {0.2, 0.7}: (.9,.2)✓ (.9,.7)✓ (.5,.2)✓ (.5,.7)✗ → 3/4
  });

  it("rejects mismatched lengths", () => {
    assert.throws(() => avcMetrics([0.1, 0.2], [1]), /differ in length/);
  });
});

describe("classificationMetrics", () => {
  it("gives the confusion matrix, per-class recall and accuracy of a hand example", () => {
    const yTrue = [0, 0, 1, 1, 2, 2, 2];
    const yPred = [0, 1, 1, 1, 2, 0, 2];
    const m = classificationMetrics(yTrue, yPred, 3, ["a", "b", "c"]);
    assert.deepEqual(m.confusion, [
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 2],
    ]);
    assert.deepEqual(m.support, [2, 2, 3]);
    assert.deepEqual(m.perClassRecall, [0.5, 1, 2 / 3]);
    assert.equal(m.accuracy, 5 / 7);
    assert.ok(Math.abs(m.meanClassRecall - (0.5 + 1 + 2 / 3) / 3) < 1e-12);
    assert.deepEqual(m.classNames, ["a", "b", "c"]);
  });

  it("marks a class with no items as NaN recall and excludes it from the mean", () => {
    const m = classificationMetrics([0, 0], [0, 1], 3);
    assert.equal(m.perClassRecall[0], 0.5);
    assert.ok(Number.isNaN(m.perClassRecall[2]!));
    assert.equal(m.meanClassRecall, 0.5);
  });

  it("rejects labels outside the class range", () => {
    assert.throws(() => classificationMetrics([0, 3], [0, 0], 3), /yTrue\[1\] = 3/);
  });
});

describe("averageByGroup / foldMeanStd", () => {
  it("averages rows per group in order of first appearance", () => {
    const v = new Float32Array([1, 0, 0, 1, 0.5, 0.5, 0.2, 0.8]);
    const g = averageByGroup(v, 2, ["a", "b", "a", "b"]);
    assert.deepEqual(g.groups, ["a", "b"]);
    assert.deepEqual(g.counts, [2, 2]);
    assert.deepEqual(g.firstIndex, [0, 1]);
    assert.deepEqual(Array.from(g.values), [0.75, 0.25, 0.1, 0.9].map(Math.fround));
  });

  it("gives mean and sample std", () => {
    const s = foldMeanStd([1, 2, 3, 4]);
    assert.equal(s.mean, 2.5);
    assert.equal(s.std, Math.sqrt(5 / 3)); // Σ(x − 2.5)² = 5, over n − 1 = 3
    assert.equal(foldMeanStd([0.7]).std, 0);
  });
});
