import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, DataError } from "../errors.ts";
import { ImageProcessor, paperImageProcessor, type AugmentDraw, type ImageInput } from "./image-preprocess.ts";
import { EpochSampler, ImageBatchLoader, textBatch } from "./loader.ts";
import { TextTokenizer } from "./tokenize.ts";
import { tempDir } from "../../test/make-data.ts";
import { writeSolidImage } from "./test-fixtures.ts";
import type { ImageDataset, TextDataset } from "./types.ts";

const take = (s: EpochSampler, n: number) => Array.from({ length: n }, () => s.next());

test("each epoch visits every index once, in a fresh seeded order", () => {
  const s = new EpochSampler(10, { batchSize: 4, seed: 1 });
  assert.equal(s.batchesPerEpoch, 3);
  const batches = take(s, 6);
  assert.deepEqual(
    batches.map((b) => [b.epoch, b.step, b.indices.length]),
    [
      [0, 0, 4],
      [0, 1, 4],
      [0, 2, 2],
      [1, 0, 4],
      [1, 1, 4],
      [1, 2, 2],
    ],
  );
  const epoch = (e: number) => batches.filter((b) => b.epoch === e).flatMap((b) => Array.from(b.indices));
  for (const e of [0, 1])
    assert.deepEqual(
      [...epoch(e)].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  assert.notDeepEqual(epoch(0), epoch(1));
  assert.deepEqual(take(new EpochSampler(10, { batchSize: 4, seed: 1 }), 6), batches);
});

test("dropLast leaves out the short batch; shuffle off walks in order", () => {
  const s = new EpochSampler(10, { batchSize: 4, dropLast: true, shuffle: false });
  assert.equal(s.batchesPerEpoch, 2);
  assert.deepEqual(
    take(s, 3).map((b) => [b.epoch, Array.from(b.indices)]),
    [
      [0, [0, 1, 2, 3]],
      [0, [4, 5, 6, 7]],
      [1, [0, 1, 2, 3]],
    ],
  );
  assert.throws(() => new EpochSampler(3, { batchSize: 4, dropLast: true }), ConfigError);
  assert.throws(() => new EpochSampler(3, { batchSize: 0 }), ConfigError);
});

test("a saved state resumes the exact same sequence, across epoch boundaries", () => {
  const a = new EpochSampler(7, { batchSize: 3, seed: 42 });
  take(a, 4); // into epoch 1
  const saved = JSON.parse(JSON.stringify(a.state()));
  const rest = take(a, 5);
  const b = new EpochSampler(7, { batchSize: 3, seed: 42 }, saved);
  assert.deepEqual(take(b, 5), rest);
});

/** Four 2×2 images in memory, image i filled with 40·i, label i % 2. */
function memoryDataset(): ImageDataset {
  const items = [0, 1, 2, 3].map((i) => ({
    pixels: { data: new Uint8Array(12).fill(40 * i), width: 2, height: 2, channels: 3 as const },
    label: i % 2,
  }));
  return { kind: "image", items, classNames: ["even", "odd"], skipped: [] };
}
/** 2×2 → 2×2 nearest: the pixels unchanged, in 0..255. */
const plain = new ImageProcessor({ resize: { height: 2, width: 2 }, resample: "nearest", rescaleFactor: null, mean: null, std: null });

test("image batches: [B, 3, H, W] pixels of the sampled items and their labels", async () => {
  const ds = memoryDataset();
  const loader = new ImageBatchLoader(ds, plain, new EpochSampler(4, { batchSize: 3, seed: 2 }));
  const sampler = new EpochSampler(4, { batchSize: 3, seed: 2 }); // same draws, for the truth
  for (let k = 0; k < 3; k++) {
    const batch = await loader.next();
    const expected = sampler.next();
    assert.deepEqual(Array.from(batch.indices), Array.from(expected.indices));
    const B = expected.indices.length;
    assert.deepEqual(batch.shape, [B, 3, 2, 2]);
    expected.indices.forEach((idx, i) => {
      assert.equal(batch.labels[i], idx % 2);
      assert.ok(batch.pixels.subarray(i * 12, (i + 1) * 12).every((v) => v === 40 * idx));
    });
  }
});

test("the next batch is already being decoded when next() returns", async () => {
  const calls: number[] = [];
  const spy = new (class extends ImageProcessor {
    override process(input: ImageInput, draw?: AugmentDraw) {
      calls.push(1);
      return super.process(input, draw);
    }
  })(plain.config);
  const loader = new ImageBatchLoader(memoryDataset(), spy, new EpochSampler(4, { batchSize: 2, shuffle: false }));
  await loader.next();
  assert.equal(calls.length, 4); // batch 0 and the prefetched batch 1
  assert.deepEqual(loader.state(), { ...loader.sampler.state(), position: 2 }); // resume point is batch 1
});

test("a resumed loader reproduces the batches and their augmentation", async () => {
  const root = tempDir();
  const ds: ImageDataset = { kind: "image", items: [], classNames: ["a", "b"], skipped: [] };
  for (let i = 0; i < 5; i++) {
    const path = join(root, `${i}.png`);
    await writeSolidImage(path, 320, 300, [50 * i, 100, 200 - 30 * i]);
    ds.items.push({ path, label: i % 2 });
  }
  const train = paperImageProcessor("eurosat", true);
  const opts = { batchSize: 2, seed: 8 };
  const first = new ImageBatchLoader(ds, train, new EpochSampler(5, opts), { augment: true, seed: 3 });
  await first.next();
  const saved = first.state();
  const expected = [await first.next(), await first.next(), await first.next()];
  const resumed = new ImageBatchLoader(ds, train, new EpochSampler(5, opts, saved), { augment: true, seed: 3 });
  for (const want of expected) {
    const got = await resumed.next();
    assert.deepEqual(Array.from(got.indices), Array.from(want.indices));
    assert.deepEqual(got.pixels, want.pixels);
  }
  // augmentation is on: the same image differs between (epoch, slot)s for some draw
  const plainEval = new ImageBatchLoader(ds, paperImageProcessor("eurosat", false), new EpochSampler(5, { batchSize: 5, shuffle: false }));
  const clean = await plainEval.next();
  const augmented = new ImageBatchLoader(ds, train, new EpochSampler(5, { batchSize: 5, shuffle: false }), { augment: true, seed: 1 });
  const aug = await augmented.next();
  assert.equal(aug.pixels.length, clean.pixels.length);
  assert.notDeepEqual(aug.pixels, clean.pixels);
});

test("loader setup errors and a failing image surface at the right time", async () => {
  const ds = memoryDataset();
  const shortest = new ImageProcessor({ resize: { shortestEdge: 4 } });
  assert.throws(() => new ImageBatchLoader(ds, shortest, new EpochSampler(4, { batchSize: 2 })), ConfigError);
  assert.throws(() => new ImageBatchLoader(ds, plain, new EpochSampler(5, { batchSize: 2 })), ConfigError);
  const broken: ImageDataset = { ...ds, items: [...ds.items.slice(0, 2), { path: "/nonexistent/x.png", label: 0 }, ds.items[3]] };
  const loader = new ImageBatchLoader(broken, plain, new EpochSampler(4, { batchSize: 2, shuffle: false }));
  await loader.next(); // batch 0 is fine; batch 1 (prefetched) holds the missing file
  await assert.rejects(loader.next(), (e: Error) => e instanceof DataError && e.message.includes("/nonexistent/x.png"));
});

test("text batches tokenise the sampled examples", () => {
  const tokenizer = new TextTokenizer(
    {
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab: { "[PAD]": 0, "[UNK]": 1, a: 2, b: 3 }, unk_token: "[UNK]" },
    },
    { pad_token: "[PAD]", unk_token: "[UNK]" },
  );
  const ds: TextDataset = {
    kind: "text",
    items: [
      { text: "a b a", label: 1 },
      { text: "b", label: 0 },
      { text: "c", label: 1 },
    ],
    classNames: ["x", "y"],
  };
  const batch = textBatch(ds, tokenizer, { epoch: 0, step: 0, indices: Int32Array.from([2, 0]) }, { maxLength: 8, dtype: "int32" });
  assert.deepEqual(Array.from(batch.labels), [1, 1]);
  assert.deepEqual(batch.tokens.shape, [2, 3]);
  assert.deepEqual(Array.from(batch.tokens.inputIds), [1, 0, 0, 2, 3, 2]);
});
