/**
 * `tenslora train` as a library call: resolve the model, data and adapter from a RunConfig,
 * train, and leave a run folder with the resolved config, metrics, adapters, summary and plots.
 */
import { existsSync, readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { ConfigError, DataError } from "../errors.ts";
import type { TrainableSet } from "../pipeline/build.ts";
import { modelContext } from "../pipeline/context.ts";
import { type LoadedModel, familyTasks, loadModel, readModelConfig } from "../models/load.ts";
import { checkQuantizable, parseBaseDType } from "../models/quantize-base.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { lmDataFor } from "./lm-datasets.ts";
import { writePlot } from "../train/plot.ts";
import { metricAxis } from "./curve.ts";
import { type RunMode, openRunFolder, releaseFailedRun } from "../train/run-folder.ts";
import type { TaskData } from "../tasks/task-data.ts";
import { type RunResult, type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";
import { runFolderStore } from "../train/run-folder-store.ts";
import type { Runtime } from "../runtime/types.ts";
import { type DataFormat, DATA_FORMATS, openDataset, taskDataFor } from "./datasets.ts";
import { ConfigReader } from "../models/config-fields.ts";
import type { Task } from "../models/types.ts";
import { TASKS, taskOf, taskPickedBy } from "../tasks/index.ts";
import { EMBEDDED_BENCHMARKS, embeddedBenchmark } from "./embedded-benchmarks.ts";
import type { RunConfig } from "./run-config.ts";
import { adapterFor, checkRunOptions, trainConfig } from "./run-plan.ts";

export { METHODS, adapterFor, checkRunOptions, trainConfig } from "./run-plan.ts";

export interface PreparedData {
  data: TaskData;
  /** Loads the model with a head sized for the data (seeded). */
  loadModel: (seed: number) => Promise<LoadedModel>;
  /**
   * The model to read shapes and sizes from, not to train: the one `loadModel` hands out first
   * while it is held, so planning a job loads no copy of its own (default: `loadModel`).
   */
  peekModel?: () => Promise<LoadedModel>;
  embedded: boolean;
  /** What an embedded benchmark is, in a sentence or two (compare prints it above its table). */
  about?: string;
  /** Unreadable files the loader skipped (warned about; counted in the run summary). */
  skipped: { path: string; reason: string }[];
  /** Causal LM and the embedded text benchmarks: examples cut to --max-length (the encoder's length). */
  truncated?: number;
  /**
   * The pretrained model's identity where it is rebuilt when its recipe changes (the embedded
   * encoder's cache folder name): recorded in every compare run's settings, so a finished run
   * made on another build of the model is never reused.
   */
  model?: string;
}

/** Open and preprocess a run's dataset for its model: problems in the data go to `warn`, the progress of preparing (the embedded model's pretraining) to `log`. */
export async function prepareData(
  cfg: RunConfig,
  runtime: Runtime,
  warn: (s: string) => void = console.warn,
  log: (s: string) => void = warn,
): Promise<PreparedData> {
  const benchmark = embeddedBenchmark(cfg.task);
  if (cfg.dataset && (cfg.model || !benchmark?.datasets))
    throw new ConfigError(`--dataset picks the embedded text-classification benchmark's data; with --model pass --data, else add --task text-classification`);
  if (!cfg.model) {
    if (cfg.data) throw new ConfigError(`--data needs --model (without --model the embedded MNIST benchmark brings its own data)`);
    if (cfg.numLabels) throw new ConfigError(`--num-labels needs --model and --data (the embedded benchmarks fix their classes)`);
    if (!benchmark) {
      const tasks = Object.keys(EMBEDDED_BENCHMARKS);
      throw new ConfigError(`--task ${cfg.task} needs --model (the embedded benchmarks are ${tasks.slice(0, -1).join(", ")} and ${tasks.at(-1)})`);
    }
    return benchmark.prepare(cfg, { runtime, log });
  }
  if (!cfg.data && benchmark?.onModel) return benchmark.onModel(cfg, cfg.model);
  if (!cfg.data) throw new ConfigError(`--model needs --data (a data folder, a table file or "mnist")`);
  if (cfg.task && !(cfg.task in TASKS)) throw new ConfigError(`unknown --task "${cfg.task}"; valid: ${Object.keys(TASKS).join(", ")}`);
  // config.json is read once: every load below starts from it
  const source = readModelConfig(cfg.model, (cfg.task || undefined) as Task | undefined);
  const { family, raw } = source;
  const spec = taskOf(family.task);
  if (!spec.dataKind) {
    const others = familyTasks(family.modelType).filter((t) => taskOf(t).dataKind);
    throw new ConfigError(
      `--task ${spec.name} trains only on data the project builds, not on --data; a ${family.modelType} model trains on --data for ${others.join(" or ")}`,
    );
  }
  if (spec.dataKind === "lm") {
    if (cfg.numLabels) throw new ConfigError(`--num-labels applies to classification; ${cfg.model} is a causal LM (${family.modelType}), drop it`);
    // quantized tensor by tensor as it loads: the float32 model never exists whole
    const model = loadModel(source, { baseDtype: parseBaseDType(cfg.baseDtype) });
    const { data, truncated } = lmDataFor(model, { ...cfg, evalData: cfg.evalData || undefined, warn });
    return { data, loadModel: async () => model, embedded: false, skipped: [], truncated };
  }
  checkQuantizable(family, parseBaseDType(cfg.baseDtype));
  if (cfg.dataFormat && !(DATA_FORMATS as readonly string[]).includes(cfg.dataFormat)) {
    throw new ConfigError(`unknown --data-format "${cfg.dataFormat}"; valid: ${DATA_FORMATS.join(", ")}`);
  }
  checkHeadFits(cfg.numLabels, raw.hidden_size);
  const split = await openDataset(cfg.data, {
    numLabels: cfg.numLabels || undefined,
    format: (cfg.dataFormat || undefined) as DataFormat | undefined,
    seed: cfg.seed,
    testPath: cfg.evalData || undefined,
    textColumn: cfg.textColumn || undefined,
    textPairColumn: cfg.textPairColumn || undefined,
    labelColumn: cfg.labelColumn || undefined,
    modelLabels: new ConfigReader(raw, cfg.model).labels(),
    warn,
  });
  for (const name of ["train", "test"] as const) {
    if (split.split[name].items.length === 0) {
      const counts = `${split.split.train.items.length} train and ${split.split.test.items.length} test examples`;
      throw new DataError(
        `the ${name} split of ${cfg.data} is empty (${counts}); add examples${name === "test" ? " (a class folder needs at least 2 images for the split to hold one back) or pass --eval-data" : ""}`,
      );
    }
  }
  const labels = split.split.train.classNames;
  // a model that does several tasks takes the one its data means (tagged words: token classification)
  const task = (cfg.task || undefined) as Task | undefined;
  const load = async (seed: number) => loadModel(source, { numLabels: labels.length, labels, seed, task: task ?? taskPickedBy(split.kind) });
  let probe: LoadedModel | undefined = await load(cfg.seed);
  const skipped = split.kind === "image" ? [...split.split.train.skipped, ...split.split.test.skipped] : [];
  const data = taskDataFor(probe, split, { maxLength: cfg.maxLength, augment: cfg.augment });
  // the first model asked for with the run's seed is the one loaded for the data; it is handed out once (training changes it)
  const loadFresh = async (seed: number) => {
    const m = seed === cfg.seed ? probe : undefined;
    if (m) probe = undefined;
    return m ?? load(seed);
  };
  return { data, loadModel: loadFresh, peekModel: async () => probe ?? load(cfg.seed), embedded: false, skipped };
}

/**
 * Refuse a head that cannot fit before it is allocated: its N × hidden weights are held four
 * times while training (weights, gradients, AdamW's two moments), in float32.
 */
function checkHeadFits(numLabels: number, hidden: unknown): void {
  if (!numLabels || typeof hidden !== "number") return;
  const bytes = 16 * numLabels * (hidden + 1);
  if (bytes > totalmem()) {
    throw new ConfigError(
      `--num-labels ${numLabels} needs a head of about ${(bytes / 2 ** 30).toFixed(1)} GiB while training (hidden size ${hidden}) but the machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB; lower --num-labels`,
    );
  }
}

/** Parameters of the backbone (every weight but the head): the denominator of "% of backbone". */
export function backboneParams(model: LoadedModel): number {
  const head = new Set(model.family.headParameters(model.config));
  const quantized = [...(model.quantized?.values() ?? [])].reduce((a, q) => a + q.rows * q.cols, 0);
  return [...model.weights].filter(([k]) => !head.has(k)).reduce((a, [, t]) => a + t.data.length, quantized);
}

/**
 * Refuse a batch whose activations cannot fit: about 24 float32 values per token, hidden unit
 * and layer are kept for the backward pass (attention, the 4x MLP, norms), plus the B x heads x
 * T x T attention maps; with checkpointed layers, those of one layer and each layer's input.
 * An estimate, not a bound; the message gives it so the user can judge.
 */
export function checkBatchFits(model: LoadedModel, seqLen: number, batch: number, checkpointed = false): void {
  const { hidden, layers, heads } = modelContext(model);
  const layer = 24 * hidden + 2 * heads * seqLen;
  const bytes = 4 * batch * seqLen * (checkpointed ? layer + layers * hidden : layers * layer);
  if (bytes > totalmem()) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    throw new ConfigError(
      `--batch-size ${batch} needs about ${gib(bytes)} of activations (${layers} layers, ${seqLen} tokens, hidden ${hidden}) but the machine has ${gib(totalmem())}; lower --batch-size${checkpointed ? "" : " or add --checkpoint-activations"}`,
    );
  }
}

export interface RunHooks {
  /** The backend every graph of the run is compiled for. */
  runtime: Runtime;
  onEvent?: (e: TrainEvent) => void;
  shouldStop?: () => boolean;
  warn?: (s: string) => void;
  /** Progress that is not a warning (the embedded model's pretraining). */
  log?: (s: string) => void;
}

/**
 * Train one run into `outDir`, which the run locks: "new" needs an empty (or absent) folder,
 * "overwrite" empties it, "resume" (or `true`) continues the run saved there and, if refused,
 * leaves the folder as it was. A new run that fails before its first checkpoint removes what it
 * wrote (and the folder, if it made it).
 */
export async function runTraining(cfg: RunConfig, outDir: string, hooks: RunHooks, mode: RunMode | boolean = "new"): Promise<RunResult> {
  const resume = mode === true || mode === "resume";
  // everything that can be checked without the folder is checked before it is taken, the flags first
  checkRunOptions(cfg);
  const prepared = await prepareData(cfg, hooks.runtime, hooks.warn, hooks.log ?? hooks.warn);
  const model = await prepared.loadModel(cfg.seed);
  const { adapter, trainable, warnings } = adapterFor(model, cfg);
  const tc = trainConfig(cfg, model.family.task);
  const { imageSize = 0, patchSize = 1 } = model.config as { imageSize?: number; patchSize?: number };
  checkBatchFits(model, prepared.data.seqLen ?? (imageSize / patchSize) ** 2 + 1, tc.batchSize, cfg.checkpointActivations);
  if (resume) checkResumedBase(outDir, cfg);
  const folder = openRunFolder(outDir, resume ? "resume" : mode === "overwrite" ? "overwrite" : "new");
  let result: RunResult;
  try {
    for (const w of warnings) hooks.warn?.(w);
    result = await trainInto(cfg, outDir, hooks, resume, { prepared, model, adapter, trainable, tc });
  } catch (e) {
    releaseFailedRun(folder);
    throw e;
  }
  folder.release();
  return result;
}

/** A run continues on the base it was trained on: its adapter state and optimiser moments belong to those weights. */
function checkResumedBase(outDir: string, cfg: RunConfig): void {
  const path = join(outDir, "config.json");
  if (!existsSync(path)) return;
  const saved = String((JSON.parse(readFileSync(path, "utf8")) as { baseDtype?: unknown }).baseDtype ?? "f32");
  if (saved !== cfg.baseDtype) {
    throw new ConfigError(
      `--resume ${outDir}: the run was trained on a ${saved} base, not ${cfg.baseDtype}; resume with --base-dtype ${saved} or start a new --out`,
    );
  }
}

interface Prepared {
  prepared: PreparedData;
  model: LoadedModel;
  adapter?: AdapterSet;
  trainable: TrainableSet;
  tc: TrainConfig;
}

async function trainInto(
  cfg: RunConfig,
  outDir: string,
  hooks: RunHooks,
  resume: boolean,
  { prepared, model, adapter, trainable, tc }: Prepared,
): Promise<RunResult> {
  // a resumed run keeps the config it was started with (train() refuses a different one)
  if (!resume) writeFileAtomic(join(outDir, "config.json"), new TextEncoder().encode(JSON.stringify(cfg, null, 2) + "\n"));
  const result = await train({
    model,
    adapter,
    trainable,
    data: prepared.data,
    config: tc,
    store: runFolderStore(outDir),
    runtime: hooks.runtime,
    resume,
    onEvent: hooks.onEvent,
    shouldStop: hooks.shouldStop,
    warn: hooks.warn,
  });
  const summary = {
    construction: adapter?.config.construction ?? cfg.construction,
    ...(cfg.preset ? { preset: cfg.preset } : {}),
    ranks: adapter?.config.ranks ?? null,
    groups: adapter?.groups.map((g) => ({ name: g.name, construction: g.construction, ranks: g.ranks })) ?? null,
    adapterParams: adapter ? [...adapter.tensors.values()].reduce((a, t) => a + t.data.length, 0) : 0,
    trainableParams: result.trainableParams,
    backboneParams: backboneParams(model),
    baseDtype: model.baseDtype ?? "f32",
    metric: tc.metric,
    best: result.best && { value: result.best.value, step: result.best.step, test: result.best.test },
    bestTest: result.bestTest,
    validationSize: result.validationSize,
    final: result.final,
    finalValue: result.finalValue,
    steps: result.steps,
    interrupted: result.interrupted,
    stepSeconds: result.stepSeconds,
    samplesPerSecond: tc.batchSize / result.stepSeconds,
    skippedFiles: prepared.skipped.length,
    ...(prepared.truncated !== undefined ? { truncatedExamples: prepared.truncated } : {}),
    skipped: prepared.skipped.map((f) => f.path),
    skippedDuringTraining: result.skippedImages,
  };
  writeFileAtomic(join(outDir, "summary.json"), new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"));
  await writeRunPlots(outDir, tc.metric);
  return result;
}

/** Loss and eval-metric curves from metrics.jsonl, as SVG and PNG. */
export async function writeRunPlots(outDir: string, metric: string): Promise<void> {
  const path = join(outDir, "metrics.jsonl");
  if (!existsSync(path)) return;
  const recs = readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number | string>);
  const loss = recs.filter((r) => r.type === "train" && typeof r.loss === "number").map((r) => [r.step as number, r.loss as number] as const);
  const evalRecs = recs.filter((r) => r.type === "eval");
  const { factor, unit, bounds } = metricAxis(metric);
  const series = [
    { name: `test ${metric}`, points: evalRecs.map((r) => [r.step as number, factor * (r[metric] as number)] as const) },
    {
      name: `validation ${metric}`,
      points: evalRecs.filter((r) => typeof r[`val_${metric}`] === "number").map((r) => [r.step as number, factor * (r[`val_${metric}`] as number)] as const),
    },
  ].filter((x) => x.points.length > 0);
  if (loss.length)
    await writePlot(join(outDir, "loss"), {
      kind: "line",
      title: "training loss",
      xLabel: "step",
      yLabel: "loss",
      series: [{ name: "train loss", points: loss }],
    });
  if (series.length)
    await writePlot(join(outDir, "eval"), { kind: "line", title: metric, xLabel: "step", yLabel: `${metric}${unit}`, yBounds: bounds, series });
}
