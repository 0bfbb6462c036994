import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, DataError } from "../errors.ts";
import { accuracy, binaryF1, confusionMatrix, macroPrecisionRecallF1, matthewsCorrcoef, perClassAccuracy, summarize } from "./metrics.ts";

function close(actual: number, expected: number, tol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tol, `got ${actual}, expected ${expected}`);
}

/** Expands a confusion matrix into (preds, labels) so summarize is tested end to end. */
function samplesOf(cm: number[][]): { preds: number[]; labels: number[] } {
  const preds: number[] = [];
  const labels: number[] = [];
  cm.forEach((row, t) =>
    row.forEach((n, p) => {
      for (let k = 0; k < n; k++) {
        labels.push(t);
        preds.push(p);
      }
    }),
  );
  return { preds, labels };
}

test("confusionMatrix counts [true][pred]", () => {
  // (t, p) pairs: (0,0) (0,1) (1,1) (2,2) (1,0)
  const cm = confusionMatrix(new Int32Array([0, 1, 1, 2, 0]), [0, 0, 1, 2, 1], 3);
  assert.deepEqual(cm, [
    [1, 1, 0],
    [1, 1, 0],
    [0, 0, 1],
  ]);
});

test("3-class example computed by hand", () => {
  //            pred 0  1  2   row (true count)
  //   true 0 [      4, 1, 0 ]  5
  //   true 1 [      2, 2, 1 ]  5
  //   true 2 [      0, 1, 3 ]  4
  //   column (pred count)  6, 4, 4;  n = 14, correct = 9
  // accuracy = 9/14
  // recall    = 4/5, 2/5, 3/4              → macro = 1.95/3 = 0.65
  // precision = 4/6, 2/4, 3/4 = 8/12, 6/12, 9/12 → macro = (23/12)/3 = 23/36
  // F1 = 2tp/(row+col) = 8/11, 4/9, 6/8 = 288/396, 176/396, 297/396 → macro = 761/1188
  // MCC: c·s − t·p = 9·14 − (30+20+16) = 60; s² − p·p = 196 − 68 = 128; s² − t·t = 196 − 66 = 130
  //   → 60/√(128·130) = 60/√16640
  const cm = [
    [4, 1, 0],
    [2, 2, 1],
    [0, 1, 3],
  ];
  const { preds, labels } = samplesOf(cm);
  const s = summarize(preds, labels, 3);
  assert.deepEqual(s.confusionMatrix, cm);
  assert.equal(s.numSamples, 14);
  close(s.accuracy, 9 / 14);
  assert.deepEqual(s.perClassAccuracy, [4 / 5, 2 / 5, 3 / 4]);
  close(s.macroRecall, 0.65);
  close(s.macroPrecision, 23 / 36);
  close(s.macroF1, 761 / 1188);
  close(s.mcc, 60 / Math.sqrt(16640));
  assert.equal(s.binaryF1, null);
});

test("all predictions one class: MCC denominator 0 gives 0, undefined precision gives 0", () => {
  // labels [0,1,0,1], preds all 0 → cm [[2,0],[2,0]]
  // precision: class 0 = 2/4, class 1 = 0/0 → 0;  recall: 1, 0
  // F1: class 0 = 4/(2+4) = 2/3, class 1 = 0/(2+0) = 0 → macro 1/3; binary F1 (class 1) = 0
  const s = summarize([0, 0, 0, 0], [0, 1, 0, 1], 2);
  assert.deepEqual(s.confusionMatrix, [
    [2, 0],
    [2, 0],
  ]);
  assert.equal(s.accuracy, 0.5);
  close(s.macroPrecision, 0.25);
  close(s.macroRecall, 0.5);
  close(s.macroF1, 1 / 3);
  assert.equal(s.binaryF1, 0);
  assert.equal(s.mcc, 0);
});

test("a class that is never predicted has precision 0 (zero_division=0)", () => {
  // labels [0,1,2,2], preds [0,1,1,1] → cm [[1,0,0],[0,1,0],[0,2,0]]
  // precision 1, 1/3, 0 (0/0) → 4/9; recall 1, 1, 0 → 2/3; F1 1, 2/(1+3), 0 → 1/2
  // MCC: c = 2, s = 4, t = [1,1,2], p = [1,3,0]: (8 − 4)/√((16 − 10)(16 − 6)) = 4/√60
  const cm = confusionMatrix([0, 1, 1, 1], [0, 1, 2, 2], 3);
  const macro = macroPrecisionRecallF1(cm);
  close(macro.precision, 4 / 9);
  close(macro.recall, 2 / 3);
  close(macro.f1, 1 / 2);
  close(matthewsCorrcoef(cm), 4 / Math.sqrt(60));
});

test("a class absent from labels and predictions is left out of the macro average", () => {
  // sklearn's default labels = classes seen in y_true ∪ y_pred = {0, 1}: both perfect.
  const s = summarize([0, 1, 1], [0, 1, 1], 3);
  assert.equal(s.macroPrecision, 1);
  assert.equal(s.macroRecall, 1);
  assert.equal(s.macroF1, 1);
  assert.deepEqual(s.perClassAccuracy, [1, 1, null]);
  assert.deepEqual(JSON.parse(JSON.stringify(s)).perClassAccuracy, [1, 1, null]);
  assert.ok(Number.isNaN(perClassAccuracy(s.confusionMatrix)[2]));
});

test("perfect and perfectly wrong binary predictions give MCC 1 and −1", () => {
  const labels = [0, 1, 0, 1, 1];
  const right = summarize(labels, labels, 2);
  assert.equal(right.mcc, 1);
  assert.equal(right.binaryF1, 1);
  assert.equal(right.accuracy, 1);
  const wrong = summarize(
    labels.map((y) => 1 - y),
    labels,
    2,
  );
  assert.equal(wrong.mcc, -1);
  assert.equal(wrong.binaryF1, 0);
  assert.equal(wrong.accuracy, 0);
});

test("binary F1 and MCC on a mixed example", () => {
  // labels [1,1,0,0,1], preds [1,0,0,1,1]: tp = 2, fn = 1, fp = 1, tn = 1
  // F1 = 2·2/(2·2 + 1 + 1) = 2/3; MCC = (tp·tn − fp·fn)/√((tp+fp)(tp+fn)(tn+fp)(tn+fn))
  //    = (2 − 1)/√(3·3·2·2) = 1/6
  const cm = confusionMatrix([1, 0, 0, 1, 1], [1, 1, 0, 0, 1], 2);
  close(binaryF1(cm), 2 / 3);
  close(matthewsCorrcoef(cm), 1 / 6);
  close(accuracy(cm), 3 / 5);
});

test("invalid inputs throw typed errors", () => {
  assert.throws(() => confusionMatrix([0], [0, 1], 2), DataError);
  assert.throws(() => confusionMatrix([], [], 2), DataError);
  assert.throws(() => confusionMatrix([2], [0], 2), /class id in \[0, 2\); got 2 at index 0/);
  assert.throws(() => confusionMatrix([0.5], [0], 2), DataError);
  assert.throws(() => confusionMatrix([0], [0], 0), ConfigError);
  assert.throws(
    () =>
      binaryF1([
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]),
    ConfigError,
  );
});
