/**
 * Classification metrics from a confusion matrix, with scikit-learn's definitions so reported
 * numbers compare with the Python literature: `cm[i][j]` counts samples of true class i predicted
 * as class j (sklearn's `confusion_matrix` orientation).
 */

import { ConfigError, DataError } from "../errors.ts";

export type ClassIds = Int32Array | readonly number[];

/** `cm[true][pred]` counts over `numClasses` classes. */
export function confusionMatrix(preds: ClassIds, labels: ClassIds, numClasses: number): number[][] {
  if (!(Number.isSafeInteger(numClasses) && numClasses >= 1)) {
    throw new ConfigError(`numClasses must be an integer ≥ 1; got ${numClasses}`);
  }
  if (preds.length !== labels.length) {
    throw new DataError(`predictions and labels must have the same length; got ${preds.length} and ${labels.length}`);
  }
  if (labels.length === 0) throw new DataError("metrics need at least one sample; got 0");
  const cm = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = checkClass("label", labels[i], i, numClasses);
    const p = checkClass("prediction", preds[i], i, numClasses);
    cm[t][p]++;
  }
  return cm;
}

/** Fraction of samples on the diagonal. */
export function accuracy(cm: readonly (readonly number[])[]): number {
  const { trace, total } = totals(cm);
  return trace / total;
}

/** Recall of each class (correct / samples of that class); NaN for a class with no samples. */
export function perClassAccuracy(cm: readonly (readonly number[])[]): number[] {
  const { rowSums } = totals(cm);
  return cm.map((row, k) => (rowSums[k] === 0 ? NaN : row[k] / rowSums[k]));
}

export interface MacroScores {
  precision: number;
  recall: number;
  f1: number;
}

/**
 * sklearn `precision_recall_fscore_support(average="macro", zero_division=0)`: the unweighted mean
 * over the classes that occur in the labels or the predictions (sklearn's default `labels`), with
 * 0 for a precision or recall whose denominator is 0. F1 per class is 2·tp / (2·tp + fp + fn).
 */
export function macroPrecisionRecallF1(cm: readonly (readonly number[])[]): MacroScores {
  const { rowSums, colSums } = totals(cm);
  let precision = 0;
  let recall = 0;
  let f1 = 0;
  let present = 0;
  for (let k = 0; k < cm.length; k++) {
    if (rowSums[k] === 0 && colSums[k] === 0) continue;
    const tp = cm[k][k];
    present++;
    precision += safeDiv(tp, colSums[k]);
    recall += safeDiv(tp, rowSums[k]);
    f1 += safeDiv(2 * tp, rowSums[k] + colSums[k]);
  }
  return { precision: precision / present, recall: recall / present, f1: f1 / present };
}

/** sklearn `f1_score(average="binary", pos_label=1, zero_division=0)`; two classes only. */
export function binaryF1(cm: readonly (readonly number[])[]): number {
  if (cm.length !== 2) {
    throw new ConfigError(`binary F1 needs exactly 2 classes (positive class 1); got ${cm.length}. Use the macro F1`);
  }
  const tp = cm[1][1];
  const fp = cm[0][1];
  const fn = cm[1][0];
  return safeDiv(2 * tp, 2 * tp + fp + fn);
}

/**
 * sklearn `matthews_corrcoef` in its multiclass form (Gorodkin's R_K), with t, p the true and
 * predicted class counts, c correct, s samples:
 *   (c·s − t·p) / √((s² − p·p)(s² − t·t)),   0 when the denominator is 0.
 * It reduces to the usual (tp·tn − fp·fn)/√(…) for two classes.
 */
export function matthewsCorrcoef(cm: readonly (readonly number[])[]): number {
  const { rowSums: t, colSums: p, trace: c, total: s } = totals(cm);
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (let k = 0; k < cm.length; k++) {
    tp += t[k] * p[k];
    pp += p[k] * p[k];
    tt += t[k] * t[k];
  }
  const covYtYp = c * s - tp;
  const covYpYp = s * s - pp;
  const covYtYt = s * s - tt;
  if (covYpYp * covYtYt === 0) return 0;
  return covYtYp / Math.sqrt(covYtYt * covYpYp);
}

/** Everything a run logs about a classifier's predictions; JSON-safe (NaN becomes null). */
export interface MetricsSummary {
  numSamples: number;
  accuracy: number;
  /** Per class; null for a class with no samples. */
  perClassAccuracy: (number | null)[];
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  /** F1 of class 1; null unless there are exactly 2 classes. */
  binaryF1: number | null;
  mcc: number;
  /** `confusionMatrix[true][pred]`. */
  confusionMatrix: number[][];
}

/** Classification metrics of predictions against labels: accuracy, MCC, macro F1, binary F1, confusion matrix. */
export function summarize(preds: ClassIds, labels: ClassIds, numClasses: number): MetricsSummary {
  const cm = confusionMatrix(preds, labels, numClasses);
  const macro = macroPrecisionRecallF1(cm);
  return {
    numSamples: labels.length,
    accuracy: accuracy(cm),
    perClassAccuracy: perClassAccuracy(cm).map((a) => (Number.isNaN(a) ? null : a)),
    macroPrecision: macro.precision,
    macroRecall: macro.recall,
    macroF1: macro.f1,
    binaryF1: numClasses === 2 ? binaryF1(cm) : null,
    mcc: matthewsCorrcoef(cm),
    confusionMatrix: cm,
  };
}

function totals(cm: readonly (readonly number[])[]) {
  const n = cm.length;
  const rowSums = new Array<number>(n).fill(0);
  const colSums = new Array<number>(n).fill(0);
  let trace = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (cm[i].length !== n) {
      throw new DataError(`a confusion matrix must be square; row ${i} has ${cm[i].length} of ${n}`);
    }
    for (let j = 0; j < n; j++) {
      rowSums[i] += cm[i][j];
      colSums[j] += cm[i][j];
    }
    trace += cm[i][i];
    total += rowSums[i];
  }
  if (total === 0) {
    throw new DataError("metrics need at least one sample; the confusion matrix is empty");
  }
  return { rowSums, colSums, trace, total };
}

function safeDiv(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

function checkClass(what: string, id: number, index: number, numClasses: number): number {
  if (!(Number.isInteger(id) && id >= 0 && id < numClasses)) {
    throw new DataError(`each ${what} must be a class id in [0, ${numClasses}); got ${id} at index ${index}`);
  }
  return id;
}

/** A fraction as a percentage with two decimals, for the tables `eval` prints ("n/a" where undefined). */
export const percent = (x: number | null): string => (x === null ? "n/a" : `${(100 * x).toFixed(2)}`);
