/**
 * Model selection without touching the test set: a validation split carved from the training
 * data. Per class, a seeded `fraction` of the examples (rounded, at least one, never the class's
 * last) is held out; the choice is a function of (labels, fraction, seed) alone, so a resumed or
 * repeated run sees the same split.
 */
import { ConfigError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";
import type { TaskData } from "../tasks/task-data.ts";

export interface ValidationSplit {
  /** Training data without the held-out examples (its test split is the original test split). */
  data: TaskData;
  /** The held-out examples as a TaskData whose test split they are (evaluated like a test set). */
  validation: TaskData;
  /** Positions in the original training split, ascending. */
  trainIndices: Int32Array;
  validationIndices: Int32Array;
}

export function checkValFraction(fraction: number): void {
  if (!(Number.isFinite(fraction) && fraction >= 0 && fraction < 1)) {
    throw new ConfigError(`--val-fraction must be in [0, 1) (0 = no validation split, select on test as the paper does), got ${fraction}`);
  }
}

/** Which training positions are held out: ascending indices into `labels`. */
export function validationIndices(labels: Int32Array, fraction: number, seed: number): Int32Array {
  checkValFraction(fraction);
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => byClass.set(y, [...(byClass.get(y) ?? []), i]));
  // its own stream: the data order and the initialisation draw from others
  const rng = new Rng((Math.imul(seed + 1, 0x27d4eb2f) ^ 0x165667b1) >>> 0);
  const held: number[] = [];
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = byClass.get(y)!;
    if (fraction === 0 || members.length < 2) continue;
    const take = Math.min(members.length - 1, Math.max(1, Math.round(fraction * members.length)));
    const order = rng.permutation(members.length);
    for (let k = 0; k < take; k++) held.push(members[order[k]]);
  }
  return Int32Array.from(held.sort((a, b) => a - b));
}

/** Hold out a validation split of `data`'s training examples (stratified by class where examples have one). */
export function splitValidation(data: TaskData, fraction: number, seed: number): ValidationSplit {
  const labels = data.labels?.("train") ?? new Int32Array(data.size("train"));
  const validationIdx = validationIndices(labels, fraction, seed);
  if (fraction > 0 && validationIdx.length === 0) {
    throw new ConfigError(
      `--val-fraction ${fraction} holds out nothing: no class (or, without classes, the data) has 2 or more of the ${labels.length} training examples; use --val-fraction 0`,
    );
  }
  const held = new Set(validationIdx);
  const trainIdx = Int32Array.from({ length: labels.length }, (_, i) => i).filter((i) => !held.has(i));
  const pick = (idx: Int32Array) => Int32Array.from(idx, (i) => labels[i]);
  const trainLabels = pick(trainIdx);
  const validationLabels = pick(validationIdx);
  const remap = (idx: Int32Array, positions: ArrayLike<number>) => Int32Array.from(positions, (p) => idx[p]);
  return {
    trainIndices: trainIdx,
    validationIndices: validationIdx,
    data: {
      ...data,
      size: (s) => (s === "train" ? trainIdx.length : data.size(s)),
      ...(data.labels && { labels: (s) => (s === "train" ? trainLabels : data.labels!(s)) }),
      batch: (s, indices, B, augment) => (s === "train" ? data.batch("train", remap(trainIdx, indices), B, augment) : data.batch(s, indices, B, augment)),
    },
    validation: {
      ...data,
      size: () => validationIdx.length,
      ...(data.labels && { labels: () => validationLabels }),
      // held-out examples are never augmented: they are evaluated, not trained on
      batch: (_s, indices, B) => data.batch("train", remap(validationIdx, indices), B),
    },
  };
}
