// The validation split: held-out training images that are neither trained on nor in the test
// set (checked on the images' pixels, not just on indices), per-class proportions, and the same
// split from every call with the same seed (a resumed run rebuilds it this way; the resume test
// in test/train.resume.test.ts checks a resumed run's validation records bit for bit).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../errors.ts";
import { embeddedTransferData } from "../experiments/embedded.ts";
import type { TaskData } from "../tasks/task-data.ts";
import { splitValidation, validationIndices } from "./validation.ts";

async function pixelsOf(data: TaskData, split: "train" | "test"): Promise<string[]> {
  const n = data.size(split);
  const batch = await data.batch(
    split,
    Int32Array.from({ length: n }, (_, i) => i),
    n,
  );
  const px = batch.inputs.pixel_values.data as Float32Array;
  const per = px.length / n;
  return Array.from({ length: n }, (_, i) => Buffer.from(px.buffer, px.byteOffset + 4 * i * per, 4 * per).toString("base64"));
}

test("the validation images are disjoint from the training and test images, 10 % of each class", async () => {
  const data = embeddedTransferData(40, 20, 0); // 5 classes × 40 train, × 20 test
  const { data: kept, validation, trainIndices, validationIndices: held } = splitValidation(data, 0.1, 7);
  assert.equal(validation.size("test"), 20, "4 of each class's 40");
  assert.equal(kept.size("train"), 180);
  assert.equal(kept.size("test"), 100, "the test split is untouched");
  const perClass = new Map<number, number>();
  for (const y of validation.labels!("test")) perClass.set(y, (perClass.get(y) ?? 0) + 1);
  assert.deepEqual([...perClass.values()], [4, 4, 4, 4, 4]);
  // indices: a partition of the original training positions
  assert.deepEqual(
    [...trainIndices, ...held].sort((a, b) => a - b),
    Array.from({ length: 200 }, (_, i) => i),
  );
  // labels follow their examples
  const all = data.labels!("train");
  assert.deepEqual(
    [...validation.labels!("test")],
    [...held].map((i) => all[i]),
  );
  // content: no validation image is among the kept training images or the test images
  const [valPx, trainPx, testPx] = await Promise.all([pixelsOf(validation, "test"), pixelsOf(kept, "train"), pixelsOf(kept, "test")]);
  const others = new Set([...trainPx, ...testPx]);
  assert.equal(new Set(valPx).size, 20, "20 distinct validation images");
  assert.equal(valPx.filter((p) => others.has(p)).length, 0, "no validation image is trained on or tested on");
  // and the kept training images are the original ones at trainIndices
  const originalPx = await pixelsOf(data, "train");
  assert.deepEqual(
    trainPx,
    [...trainIndices].map((i) => originalPx[i]),
  );
});

test("the split is a function of (labels, fraction, seed): repeated calls agree, another seed differs", () => {
  const labels = Int32Array.from({ length: 300 }, (_, i) => i % 3);
  const a = validationIndices(labels, 0.1, 5);
  assert.deepEqual([...validationIndices(labels, 0.1, 5)], [...a]);
  assert.notDeepEqual([...validationIndices(labels, 0.1, 6)], [...a]);
  assert.equal(a.length, 30);
  // a class of one example stays in training; every other class gives at least one
  const small = validationIndices(Int32Array.from([0, 1, 1, 2, 2, 2]), 0.1, 0);
  assert.deepEqual(
    [...small].map((i) => [0, 1, 1, 2, 2, 2][i]),
    [1, 2],
  );
  assert.equal(validationIndices(labels, 0, 5).length, 0);
  assert.throws(() => validationIndices(labels, 1, 0), ConfigError);
  assert.throws(() => validationIndices(labels, -0.1, 0), ConfigError);
});
