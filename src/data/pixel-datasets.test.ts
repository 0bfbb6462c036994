import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { DataError, FormatError } from "../errors.ts";
import { ImageProcessor } from "./image-preprocess.ts";
import { loadCifar10, loadMnist } from "./pixel-datasets.ts";
import { tempDir } from "../../test/make-data.ts";

const NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/** One CIFAR record: label, then R, G, B planes; plane c holds 10·(c+1) except pixel 1 = 200+c. */
function record(label: number): Uint8Array {
  const rec = new Uint8Array(3073);
  rec[0] = label;
  for (let c = 0; c < 3; c++) {
    rec.fill(10 * (c + 1), 1 + c * 1024, 1 + (c + 1) * 1024);
    rec[1 + c * 1024 + 1] = 200 + c;
  }
  return rec;
}

function makeCifar(): string {
  const dir = tempDir();
  writeFileSync(join(dir, "batches.meta.txt"), NAMES.join("\n") + "\n\n");
  for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), Buffer.concat([record(b), record(9)]));
  writeFileSync(join(dir, "test_batch.bin"), Buffer.concat([record(0), record(1), record(2)]));
  return dir;
}

test("CIFAR-10 binary batches: labels, class names, planar pixels re-laid as HWC", async () => {
  const { train, test: testSet } = loadCifar10(makeCifar());
  assert.deepEqual(train.classNames, NAMES);
  assert.deepEqual(
    train.items.map((it) => it.label),
    [1, 9, 2, 9, 3, 9, 4, 9, 5, 9],
  );
  assert.deepEqual(
    testSet.items.map((it) => it.label),
    [0, 1, 2],
  );
  const item = train.items[0];
  assert.ok("pixels" in item);
  assert.deepEqual([item.pixels.width, item.pixels.height, item.pixels.channels], [32, 32, 3]);
  assert.deepEqual(Array.from(item.pixels.data.subarray(0, 6)), [10, 20, 30, 200, 201, 202]);
  // and it goes through the image processor as raw pixels
  const chw = await new ImageProcessor({ resize: null, rescaleFactor: null, mean: null, std: null }).process(item.pixels);
  assert.deepEqual([chw[0], chw[1], chw[1024], chw[1025], chw[2048 + 1]], [10, 200, 20, 201, 202]);
});

test("CIFAR-10: a truncated batch is a FormatError, a missing one a DataError", () => {
  const dir = makeCifar();
  writeFileSync(join(dir, "data_batch_3.bin"), new Uint8Array(3073 + 5));
  assert.throws(
    () => loadCifar10(dir),
    (e: Error) => e instanceof FormatError && e.message.includes("data_batch_3.bin"),
  );
  const dir2 = makeCifar();
  writeFileSync(join(dir2, "test_batch.bin"), record(12));
  assert.throws(
    () => loadCifar10(dir2),
    (e: Error) => e instanceof FormatError && /label 12/.test(e.message),
  );
  assert.throws(() => loadCifar10(join(dir, "nowhere")), DataError);
});

test("MNIST from the mnist package: 10 classes, 28×28 greyscale bytes, seeded 80/20 split", () => {
  const digits = createRequire(import.meta.url)("mnist") as { length: number; get(i: number): number[] }[];
  const total = digits.reduce((n, d) => n + d.length, 0);
  const { train, test: testSet } = loadMnist({ seed: 3 });
  assert.equal(train.items.length + testSet.items.length, total);
  assert.equal(train.items.length, Math.round(total * 0.8));
  assert.equal(train.classNames.length, 10);
  const counts = new Array(10).fill(0);
  for (const it of [...train.items, ...testSet.items]) counts[it.label]++;
  assert.deepEqual(
    counts,
    digits.map((d) => d.length),
  );
  const first = train.items[0];
  assert.ok("pixels" in first && first.pixels.data.length === 784 && first.pixels.channels === 1);
  // the digit "3"'s first sample, byte for byte, is somewhere in the dataset
  const want = digits[3]
    .get(0)
    .map((v) => Math.round(v * 255))
    .join();
  const found = [...train.items, ...testSet.items].some((it) => it.label === 3 && "pixels" in it && Array.from(it.pixels.data).join() === want);
  assert.ok(found);
  assert.deepEqual(
    loadMnist({ seed: 3 }).test.items.map((it) => it.label),
    testSet.items.map((it) => it.label),
  );
});
