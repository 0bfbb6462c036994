/**
 * The embedded benchmarks by task: what `train` and `compare` run without `--model` (data in the
 * package, a model pretrained here, no download), their schedules, and for part-of-speech tagging
 * the same data on a user's encoder. A task's benchmark is its loader plus a line here.
 */
import { basename } from "node:path";
import { POS_TAGS } from "../data/brown-pos.ts";
import { ConfigError } from "../errors.ts";
import { familyOf, loadModel } from "../models/load.ts";
import { checkQuantizable, parseBaseDType, withBaseDType } from "../models/quantize-base.ts";
import type { Task } from "../models/types.ts";
import type { Runtime } from "../runtime/types.ts";
import { tokenClassification } from "../tasks/token-classification.ts";
import { taskDataFor } from "./datasets.ts";
import { embeddedTransferData, loadEmbedded } from "./embedded.ts";
import { ensureEmbeddedEncoder } from "./embedded-encoder.ts";
import { embeddedLmTransferData, loadEmbeddedLm } from "./embedded-lm.ts";
import { POS_SHOTS, POS_TEST, brownPosSplit } from "./embedded-pos.ts";
import { EMBEDDED_CONFIG } from "./embedded-task.ts";
import { embeddedTextData, parseTextBenchmark } from "./embedded-text.ts";
import { EMBEDDED_LM_OVERRIDES, EMBEDDED_OVERRIDES, EMBEDDED_TEXT_OVERRIDES, type RunConfig } from "./run-config.ts";
import type { PreparedData } from "./run.ts";

/** What a benchmark's loader is given: the backend, and where the progress of pretraining goes. */
export interface BenchmarkContext {
  runtime: Runtime;
  log: (s: string) => void;
}

/** A benchmark `compare` runs with no download: its data, the model it pretrains, its schedule. */
export interface EmbeddedBenchmark {
  /** The benchmark's data and its pretrained model. */
  prepare(cfg: RunConfig, ctx: BenchmarkContext): Promise<PreparedData>;
  /** The same data on the model in `modelDir` (`--model` without `--data`), for benchmarks that allow it. */
  onModel?(cfg: RunConfig, modelDir: string): Promise<PreparedData>;
  /** Its training schedule, over the defaults. */
  readonly schedule: Partial<RunConfig>;
  /** Whether `--dataset` picks among its data sets. */
  readonly datasets?: boolean;
}

const LM_ABOUT =
  "Embedded benchmark: byte-level language modelling of held-out Brown fiction genres (k, l, m, n, p, r; 192 blocks of 64 bytes) by a decoder pretrained here on the non-fiction genres; held-out perplexity per byte.";

const threadsOf = (cfg: RunConfig) => cfg.threads || undefined;

const mnist: EmbeddedBenchmark = {
  schedule: EMBEDDED_OVERRIDES,
  prepare: async (cfg, { runtime }) => {
    checkQuantizable(familyOf(EMBEDDED_CONFIG, "the embedded ViT"), parseBaseDType(cfg.baseDtype));
    return {
      data: embeddedTransferData(100, 200, cfg.seed),
      loadModel: (seed) => loadEmbedded({ runtime, seed, threads: threadsOf(cfg) }),
      embedded: true,
      about: "Embedded benchmark: few-shot MNIST digits 5–9 on a ViT pretrained here on digits 0–4.",
      skipped: [],
    };
  },
};

const text: EmbeddedBenchmark = {
  schedule: EMBEDDED_TEXT_OVERRIDES,
  datasets: true,
  prepare: async (cfg, { runtime, log }) => {
    const t = await embeddedTextData(parseTextBenchmark(cfg.dataset), cfg.seed, { runtime, threads: threadsOf(cfg), log });
    return { data: t.data, loadModel: t.loadModel, embedded: true, skipped: [], truncated: t.truncated, about: t.about, model: t.encoder };
  },
};

/** Brown sentences with coarse part-of-speech tags, on the encoder in `modelDir`. */
async function brownPosData(cfg: RunConfig, modelDir: string): Promise<PreparedData> {
  if (cfg.numLabels) throw new ConfigError(`--num-labels does not apply to the embedded POS benchmark (its ${POS_TAGS.length} tags are fixed); drop it`);
  const split = brownPosSplit(POS_SHOTS, POS_TEST, cfg.seed);
  const labels = split.train.classNames;
  const load = async (seed: number) => loadModel(modelDir, { numLabels: labels.length, labels, seed, task: tokenClassification.name });
  const probe = await load(cfg.seed);
  const about =
    `Embedded benchmark: part-of-speech tagging of Brown corpus sentences (${POS_TAGS.length} coarse tags; ${split.train.items.length} training sentences, ` +
    `${split.test.items.length} test sentences from other files) by ${modelDir}; token accuracy over words.`;
  return { data: taskDataFor(probe, { kind: "tokens", split }, { maxLength: cfg.maxLength }), loadModel: load, embedded: true, about, skipped: [] };
}

const pos: EmbeddedBenchmark = {
  schedule: EMBEDDED_OVERRIDES,
  prepare: async (cfg, { runtime, log }) => {
    const dir = await ensureEmbeddedEncoder({ runtime, threads: threadsOf(cfg), log });
    return { ...(await brownPosData(cfg, dir)), model: basename(dir) };
  },
  onModel: brownPosData,
};

const lm: EmbeddedBenchmark = {
  schedule: EMBEDDED_LM_OVERRIDES,
  prepare: async (cfg, { runtime, log }) => {
    const model = withBaseDType(await loadEmbeddedLm({ runtime, threads: threadsOf(cfg), log }), parseBaseDType(cfg.baseDtype));
    return { data: embeddedLmTransferData(192, 128, cfg.seed), loadModel: async () => model, embedded: true, about: LM_ABOUT, skipped: [] };
  },
};

/** The benchmarks by task; the first is the one a run without `--task` runs. */
export const EMBEDDED_BENCHMARKS: Readonly<Partial<Record<Task, EmbeddedBenchmark>>> = {
  "image-classification": mnist,
  "text-classification": text,
  "token-classification": pos,
  "causal-lm": lm,
};

/** The benchmark of `task` ("" = the first, MNIST's); undefined for a task without one. */
export const embeddedBenchmark = (task: string): EmbeddedBenchmark | undefined =>
  !task ? Object.values(EMBEDDED_BENCHMARKS)[0] : Object.hasOwn(EMBEDDED_BENCHMARKS, task) ? EMBEDDED_BENCHMARKS[task as Task] : undefined;

/** The schedule of the embedded benchmark of `task` ("" = MNIST's; the MNIST ViT's for a task without one). */
export const embeddedOverrides = (task: string): Partial<RunConfig> => (embeddedBenchmark(task) ?? mnist).schedule;
