import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { ConfigError, DataError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";
import { ImageProcessor, paperImageProcessor } from "./image-preprocess.ts";
import { tempDir } from "../../test/make-data.ts";
import { writeSolidImage } from "./test-fixtures.ts";
import type { RawImage } from "./types.ts";

const dir = tempDir();

/** Plain values, no resize: the output is the input's channels, CHW, in 0..255. */
const identity = new ImageProcessor({ resize: null, rescaleFactor: null, mean: null, std: null });

function raw(width: number, height: number, values: number[], channels: RawImage["channels"] = 3): RawImage {
  return { data: Uint8Array.from(values), width, height, channels };
}

test("ViT defaults: a solid PNG becomes [3, 224, 224] with (v/255 − 0.5)/0.5 per channel", async () => {
  const path = join(dir, "solid.png");
  await writeSolidImage(path, 50, 40, [255, 128, 0]);
  const out = await new ImageProcessor().process(path);
  assert.equal(out.length, 3 * 224 * 224);
  const plane = 224 * 224;
  const expected = [1, (128 / 255 - 0.5) / 0.5, -1];
  for (let c = 0; c < 3; c++) {
    for (const p of [0, 1000, plane - 1]) assert.ok(Math.abs(out[c * plane + p] - expected[c]) < 1e-6);
  }
});

test("CHW layout: channel planes come first, then rows", async () => {
  // 2×1 image: pixel 0 = (1,2,3), pixel 1 = (4,5,6) → CHW = [1,4, 2,5, 3,6]
  assert.deepEqual(Array.from(await identity.process(raw(2, 1, [1, 2, 3, 4, 5, 6]))), [1, 4, 2, 5, 3, 6]);
});

test("greyscale and RGBA inputs come out as 3 RGB channels", async () => {
  assert.deepEqual(Array.from(await identity.process(raw(2, 1, [10, 200], 1))), [10, 200, 10, 200, 10, 200]);
  const rgba = raw(1, 1, [7, 8, 9, 255], 4);
  assert.deepEqual(Array.from(await identity.process(rgba)), [7, 8, 9]);
});

test("nearest resize to 2× replicates each pixel into a 2×2 block", async () => {
  const p = new ImageProcessor({ resize: { height: 4, width: 4 }, resample: "nearest", rescaleFactor: null, mean: null, std: null });
  const img = raw(2, 2, [0, 0, 0, 100, 100, 100, 200, 200, 200, 50, 50, 50]);
  const red = Array.from(await p.process(img)).slice(0, 16);
  assert.deepEqual(red, [0, 0, 100, 100, 0, 0, 100, 100, 200, 200, 50, 50, 200, 200, 50, 50]);
});

test("bilinear downsizing averages like PIL's antialiased filter, not point sampling", async () => {
  // PIL: output 1 of a 9 → 3 resize has support 3 around input 4: weights 1/3, 2/3, 1, 2/3, 1/3,
  // so a spike of 90 at input 4 gives 90 / 3 = 30 (point-sampled bilinear would give 90)
  const p = new ImageProcessor({ resize: { height: 1, width: 3 }, resample: "bilinear", rescaleFactor: null, mean: null, std: null });
  const spike = [0, 0, 0, 0, 90, 0, 0, 0, 0].flatMap((v) => [v, v, v]);
  assert.deepEqual(Array.from(await p.process(raw(9, 1, spike))).slice(0, 3), [0, 30, 0]);
});

test("centre crop sits where torchvision's CenterCrop puts it (round half to even)", async () => {
  const p = new ImageProcessor({ resize: null, centerCrop: { height: 1, width: 3 }, rescaleFactor: null, mean: null, std: null });
  const values = [0, 1, 2, 3, 4, 5].flatMap((v) => [v, v, v]);
  // (6 − 3) / 2 = 1.5 → round(1.5) = 2 → columns 2, 3, 4
  assert.deepEqual(Array.from(await p.process(raw(6, 1, values))).slice(0, 3), [2, 3, 4]);
  const big = new ImageProcessor({ resize: null, centerCrop: { height: 2, width: 2 } });
  await assert.rejects(big.process(raw(1, 1, [1, 2, 3])), DataError);
});

test("a flip draw mirrors each row", async () => {
  const img = raw(3, 1, [1, 1, 1, 2, 2, 2, 3, 3, 3]);
  const out = await identity.process(img, { flip: true, jitter: null });
  assert.deepEqual(Array.from(out).slice(0, 3), [3, 2, 1]);
});

test("a jitter draw is applied on [0, 1] values before rescaling", async () => {
  const p = new ImageProcessor({ resize: null, mean: null, std: null }); // rescale 1/255 → [0, 1]
  const jitter = { order: ["brightness" as const], brightness: 0.5, contrast: 1, saturation: 1, hue: 0 };
  const out = await p.process(raw(1, 1, [200, 100, 50]), { flip: false, jitter });
  [100, 50, 25].forEach((v, c) => assert.ok(Math.abs(out[c] - v / 255) < 1e-6));
});

test("JPEG files decode close to their colour", async () => {
  const path = join(dir, "solid.jpg");
  await writeSolidImage(path, 16, 16, [30, 160, 220]);
  const out = await identity.process(path);
  [30, 160, 220].forEach((v, c) => assert.ok(Math.abs(out[c * 256 + 100] - v) <= 3));
});

test("undecodable input is a DataError naming the file", async () => {
  const path = join(dir, "broken.png");
  writeFileSync(path, "this is not a png");
  await assert.rejects(identity.process(path), (e: Error) => e instanceof DataError && e.message.includes(path));
  await assert.rejects(identity.process(Buffer.from("junk")), DataError);
  await assert.rejects(identity.process(raw(4, 4, [1, 2, 3])), DataError); // too few bytes
});

test("preprocessor_config.json fields map to the config", async () => {
  const p = ImageProcessor.fromPreprocessorConfig({
    do_resize: true,
    size: { height: 8, width: 6 },
    resample: 3,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.485, 0.456, 0.406],
    image_std: [0.229, 0.224, 0.225],
  });
  assert.deepEqual(p.outputSize, { height: 8, width: 6 });
  assert.equal(p.config.resample, "bicubic");
  const out = await p.process(raw(1, 1, [255, 255, 255]));
  assert.equal(out.length, 3 * 8 * 6);
  assert.ok(Math.abs(out[0] - (1 - 0.485) / 0.229) < 1e-5);

  const short = ImageProcessor.fromPreprocessorConfig({ size: { shortest_edge: 10 } });
  assert.equal(short.outputSize, null);
  const out2 = await short.process(raw(4, 2, new Array(24).fill(0)));
  assert.equal(out2.length, 3 * 10 * 20); // shortest edge 2 → 10, aspect kept

  const cropped = ImageProcessor.fromPreprocessorConfig({ size: 12, do_center_crop: true, crop_size: { height: 8, width: 8 } });
  assert.deepEqual(cropped.outputSize, { height: 8, width: 8 });
  const none = ImageProcessor.fromPreprocessorConfig({ do_rescale: false, do_normalize: false });
  assert.equal(none.config.rescaleFactor, null);
  assert.equal(none.config.mean, null);
});

test("absent preprocessor_config.json gives the ViT defaults; bad fields are ConfigErrors", () => {
  const p = ImageProcessor.fromPreprocessorConfig(undefined);
  assert.deepEqual(p.outputSize, { height: 224, width: 224 });
  assert.equal(p.config.resample, "bilinear");
  assert.deepEqual(p.config.mean, [0.5, 0.5, 0.5]);
  assert.throws(() => ImageProcessor.fromPreprocessorConfig({ resample: 4 }), ConfigError);
  assert.throws(() => ImageProcessor.fromPreprocessorConfig({ size: "big" }), ConfigError);
  assert.throws(() => ImageProcessor.fromPreprocessorConfig({ image_mean: [0.5, 0.5] }), ConfigError);
  assert.throws(() => ImageProcessor.fromPreprocessorConfig({ do_resize: "yes" }), ConfigError);
  assert.throws(() => new ImageProcessor({}, { horizontalFlip: 1.5 }), ConfigError);
});

test("paper pipelines: EuroSAT 300 → crop 224 with train augmentation, DTD 224, no normalisation", async () => {
  const train = paperImageProcessor("eurosat", true);
  assert.deepEqual(train.outputSize, { height: 224, width: 224 });
  assert.deepEqual(train.config.resize, { height: 300, width: 300 });
  assert.equal(train.config.mean, null);
  assert.equal(paperImageProcessor("eurosat", false).augmentation.colorJitter, undefined);
  assert.deepEqual(paperImageProcessor("dtd", true).outputSize, { height: 224, width: 224 });

  const draws = Array.from({ length: 2000 }, () => 0).map((_, i) => train.sampleAugment(new Rng(i)));
  const flips = draws.filter((d) => d.flip).length;
  const jitters = draws.filter((d) => d.jitter !== null).length;
  assert.ok(Math.abs(flips / 2000 - 0.5) < 0.05 && Math.abs(jitters / 2000 - 0.5) < 0.05);
  assert.deepEqual(train.sampleAugment(new Rng(3)), train.sampleAugment(new Rng(3)));

  // a solid image stays solid through resize + crop; its values are v/255
  const solid = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#336699" } })
    .png()
    .toBuffer();
  const out = await paperImageProcessor("eurosat", false).process(solid);
  assert.ok(Math.abs(out[0] - 0x33 / 255) < 1e-6 && Math.abs(out[2 * 224 * 224 + 5] - 0x99 / 255) < 1e-6);
});
