/**
 * An image that passed the up-front check but no longer decodes when its batch is built (the
 * file was replaced with garbage, truncated or deleted while training ran) costs its example,
 * never the run: the batch row gets zero pixels and the ignored label, evaluation leaves the
 * example out, and the trainer warns once per file and counts it in metrics.jsonl and
 * summary.json.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDataset } from "../src/experiments/datasets.ts";
import { DEFAULTS } from "../src/experiments/run-config.ts";
import { prepareData, runTraining } from "../src/experiments/run.ts";
import { IGNORE_LABEL } from "../src/tasks/task-data.ts";
import { VIT, tempDir, writeImageFolder } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const dir = tempDir();
const pathOf = (item: object) => (item as { path: string }).path;

test("a batch over files broken after the up-front check: their rows are zero and ignored, the others unchanged", async () => {
  const root = join(dir, "loader");
  await writeImageFolder(root, { classes: 2, perClass: 4, size: 16 });
  const cfg = { ...DEFAULTS, model: VIT, data: root };
  const { data } = await prepareData(cfg, nodeRuntime, () => {});
  const split = await openDataset(root, { seed: cfg.seed });
  if (split.kind !== "image") throw new Error(`an image folder opened as ${split.kind} data`);
  const items = split.split.train.items;
  const rows = [0, 1, 2, 3];
  const before = await data.batch("train", rows, 5);
  assert.equal(before.skipped, undefined);

  writeFileSync(pathOf(items[1]), "this is not an image any more");
  truncateSync(pathOf(items[2]), 60);
  rmSync(pathOf(items[3]));
  const after = await data.batch("train", rows, 5);
  assert.deepEqual(
    after.skipped?.map((s) => [s.row, s.path]),
    [1, 2, 3].map((r) => [r, pathOf(items[r])]),
  );
  for (const s of after.skipped!) assert.match(s.reason, /must decode to RGB pixels/);
  assert.deepEqual(Array.from(after.labels.data as BigInt64Array), [BigInt(items[0].label), ...[1, 2, 3, 4].map(() => BigInt(IGNORE_LABEL))]);
  const per = (before.inputs.pixel_values.data as Float32Array).length / 5;
  const row = (b: typeof before, r: number) => (b.inputs.pixel_values.data as Float32Array).subarray(r * per, (r + 1) * per);
  assert.deepEqual(row(after, 0), row(before, 0), "an intact image is unchanged");
  for (const r of [1, 2, 3]) assert.ok(row(after, r).every((v) => v === 0));
  assert.equal(after.valid, 4);
});

test("training on: an image replaced by garbage mid-run is skipped with one warning and counted; evaluation leaves it out", async () => {
  const root = join(dir, "run");
  await writeImageFolder(root, { classes: 2, perClass: 6, size: 16 });
  const cfg = { ...DEFAULTS, model: VIT, data: root, construction: "lora", ranks: "2", epochs: 2, batchSize: 4, threads: 1, valFraction: 0 };
  const { split } = await openDataset(root, { seed: cfg.seed });
  const trainFile = pathOf(split.train.items[0]);
  const testFile = pathOf(split.test.items[0]);
  const warnings: string[] = [];
  const out = join(dir, "run-out");
  let broken = false;
  // The loader prefetches the next batch while a step runs: a file rewritten in place can be read
  // half-written (empty), so the garbage replaces it whole, as a rename does.
  const replace = (file: string) => {
    writeFileSync(`${file}.new`, "garbage");
    renameSync(`${file}.new`, file);
  };
  const result = await runTraining(cfg, out, {
    runtime: nodeRuntime,
    warn: (s) => warnings.push(s),
    onEvent: (e) => {
      if (e.type !== "step" || broken) return;
      broken = true;
      replace(trainFile);
      replace(testFile);
    },
  });
  assert.ok(broken);
  assert.equal(result.interrupted, false);
  assert.deepEqual(result.skippedImages, [trainFile]);
  const mine = warnings.filter((w) => w.includes(trainFile));
  assert.equal(mine.length, 1, `one warning for the file: ${warnings.join(" | ")}`);
  assert.match(mine[0], /^step \d+: .*must decode.*Its example is skipped \(1 image\(s\) skipped during training\)/);

  const recs = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const train = recs.filter((r) => r.type === "train");
  assert.ok(train.some((r) => r.skipped_images === 1) && train.every((r) => typeof r.loss === "number"), "the steps went on, counting the skip");
  const evals = recs.filter((r) => r.type === "eval");
  assert.equal(evals.at(-1).skipped_images, 1);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  assert.deepEqual(summary.skippedDuringTraining, [trainFile]);
  assert.equal(summary.final.numSamples, split.test.items.length - 1, "the broken test image is left out of the metrics");
  assert.deepEqual(summary.final.skippedImages, [testFile]);
});
