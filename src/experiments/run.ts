/**
 * `tenslora train` as a library call: resolve the model, data and adapter from a RunConfig,
 * train, and leave a run folder with the resolved config, metrics, adapters, summary and plots.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CONSTRUCTIONS } from "../adapters/constructions.ts";
import type { AdapterSet } from "../adapters/adapter-set.ts";
import { groupRanksForBudget } from "../adapters/params.ts";
import { parseTargetModules } from "../adapters/targets.ts";
import { ConfigError } from "../errors.ts";
import type { TrainableSet } from "../models/build.ts";
import { createAdapter, modelContext } from "../models/context.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { writeFileAtomic } from "../io/safetensors.ts";
import { writePlot } from "../train/plot.ts";
import { type RunMode, openRunFolder } from "../train/run-folder.ts";
import { checkValFraction } from "../train/validation.ts";
import type { TaskData } from "../train/task-data.ts";
import { METRICS, type MetricName, type RunResult, type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";
import { type DataFormat, DATA_FORMATS, openDataset, taskDataFor } from "./datasets.ts";
import { embeddedTransferData, loadEmbedded } from "./embedded.ts";
import { type RunConfig, parseRanks } from "./run-config.ts";

export const METHODS = [...CONSTRUCTIONS, "head", "full"] as const;

export interface PreparedData {
  data: TaskData;
  /** Loads the model with a head sized for the data (seeded). */
  loadModel: (seed: number) => Promise<LoadedModel>;
  embedded: boolean;
  /** Unreadable files the loader skipped (warned about; counted in the run summary). */
  skipped: { path: string; reason: string }[];
}

export async function prepareData(cfg: RunConfig, warn: (s: string) => void = console.warn): Promise<PreparedData> {
  if (!cfg.model) {
    if (cfg.data) throw new ConfigError(`--data needs --model (without --model the embedded MNIST benchmark brings its own data)`);
    return { data: embeddedTransferData(100, 200, cfg.seed), loadModel: (seed) => loadEmbedded({ seed, threads: cfg.threads || undefined }), embedded: true, skipped: [] };
  }
  if (!cfg.data) throw new ConfigError(`--model needs --data (a data folder, a table file or "mnist")`);
  if (cfg.dataFormat && !(DATA_FORMATS as readonly string[]).includes(cfg.dataFormat)) {
    throw new ConfigError(`unknown --data-format "${cfg.dataFormat}"; valid: ${DATA_FORMATS.join(", ")}`);
  }
  const split = await openDataset(cfg.data, {
    format: (cfg.dataFormat || undefined) as DataFormat | undefined,
    seed: cfg.seed,
    testPath: cfg.evalData || undefined,
    textColumn: cfg.textColumn || undefined,
    textPairColumn: cfg.textPairColumn || undefined,
    labelColumn: cfg.labelColumn || undefined,
    warn,
  });
  const labels = split.split.train.classNames;
  const load = async (seed: number) => loadModel(cfg.model, { numLabels: labels.length, labels, seed });
  const probe = await load(cfg.seed);
  const skipped = split.kind === "image" ? [...split.split.train.skipped, ...split.split.test.skipped] : [];
  return { data: taskDataFor(probe, split, { maxLength: cfg.maxLength, augment: cfg.augment }), loadModel: load, embedded: false, skipped };
}

function parseLayers(text: string): number[] {
  const parts = text.split(",").map((x) => x.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) throw new ConfigError(`--layers-to-transform takes block indices separated by commas (e.g. 0,1,2), got "${text}"`);
  return parts.map(Number);
}

/** The adapter of a run: ranks from --ranks, --budget or --iso-lora, in that order. */
export function adapterFor(model: LoadedModel, cfg: RunConfig): { adapter?: AdapterSet; trainable: TrainableSet; warnings: string[] } {
  if (!(METHODS as readonly string[]).includes(cfg.construction)) {
    throw new ConfigError(`unknown construction "${cfg.construction}"; valid: ${METHODS.join(", ")}`);
  }
  if (cfg.construction === "head") return { trainable: "head", warnings: [] };
  if (cfg.construction === "full") return { trainable: "all", warnings: [] };
  const lora = cfg.construction === "lora";
  const base = {
    construction: cfg.construction,
    factorization: cfg.factorization as "tucker" | "cp",
    headLayout: cfg.headLayout as "head_major" | "interleaved",
    targetModules: parseTargetModules(cfg.targetModules),
    layersToTransform: cfg.layersToTransform ? parseLayers(cfg.layersToTransform) : undefined,
    gqa: cfg.gqa as "mean" | "separate",
  };
  let ranks: number[];
  let groupRanks: Record<string, number[]> | undefined;
  if (cfg.ranks) ranks = parseRanks(cfg.ranks);
  else if (lora) ranks = [cfg.isoLora];
  else {
    const budget = cfg.budget > 0 ? { total: cfg.budget } : { isoLora: cfg.isoLora };
    ({ groupRanks } = groupRanksForBudget(base, modelContext(model).sites, budget, { slack: cfg.rankSlack }));
    ranks = Object.values(groupRanks)[0];
  }
  const { set, warnings } = createAdapter(model, {
    ...base,
    ranks,
    groupRanks,
    scaling: lora ? undefined : cfg.scaling,
    loraAlpha: lora ? cfg.scaling * ranks[0] : undefined,
    seed: cfg.seed,
  });
  return { adapter: set, trainable: "adapter+head", warnings };
}

export function trainConfig(cfg: RunConfig, task: "image-classification" | "text-classification"): TrainConfig {
  if (!(METRICS as readonly string[]).includes(cfg.metric)) throw new ConfigError(`unknown metric "${cfg.metric}"; valid: ${METRICS.join(", ")}`);
  for (const k of ["epochs", "batchSize"] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new ConfigError(`--${k === "batchSize" ? "batch-size" : k} must be a positive integer, got ${cfg[k]}`);
  }
  if (!(cfg.lr > 0)) throw new ConfigError(`--lr must be positive, got ${cfg.lr}`);
  checkValFraction(cfg.valFraction);
  if (!(cfg.coreLrScale > 0)) throw new ConfigError(`--core-lr-scale must be a positive number, got ${cfg.coreLrScale}`);
  return {
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    warmup: cfg.warmup >= 0 ? cfg.warmup : task === "text-classification" ? 0.1 : 0,
    minLr: cfg.minLr,
    seed: cfg.seed,
    evalEvery: cfg.evalEvery,
    saveEvery: cfg.saveEvery,
    maxGradNorm: cfg.maxGradNorm,
    metric: cfg.metric as MetricName,
    dropout: cfg.dropout,
    threads: cfg.threads || undefined,
    valFraction: cfg.valFraction,
    coreLrScale: cfg.coreLrScale,
  };
}

export interface RunHooks {
  onEvent?: (e: TrainEvent) => void;
  shouldStop?: () => boolean;
  warn?: (s: string) => void;
}

/**
 * Train one run into `outDir`, which the run locks: "new" needs an empty (or absent) folder,
 * "overwrite" empties it, "resume" (or `true`) continues the run saved there and, if refused,
 * leaves the folder as it was.
 */
export async function runTraining(cfg: RunConfig, outDir: string, hooks: RunHooks = {}, mode: RunMode | boolean = "new"): Promise<RunResult> {
  const resume = mode === true || mode === "resume";
  const lock = openRunFolder(outDir, resume ? "resume" : mode === "overwrite" ? "overwrite" : "new");
  try {
    return await trainInto(cfg, outDir, hooks, resume);
  } finally {
    lock.release();
  }
}

async function trainInto(cfg: RunConfig, outDir: string, hooks: RunHooks, resume: boolean): Promise<RunResult> {
  const prepared = await prepareData(cfg, hooks.warn);
  const model = await prepared.loadModel(cfg.seed);
  const { adapter, trainable, warnings } = adapterFor(model, cfg);
  for (const w of warnings) hooks.warn?.(w);
  const tc = trainConfig(cfg, model.family.task);
  // a resumed run keeps the config it was started with (train() refuses a different one)
  if (!resume) writeFileAtomic(join(outDir, "config.json"), new TextEncoder().encode(JSON.stringify(cfg, null, 2) + "\n"));
  const result = await train({ model, adapter, trainable, data: prepared.data, config: tc, outDir, resume, onEvent: hooks.onEvent, shouldStop: hooks.shouldStop, warn: hooks.warn });
  const summary = {
    construction: cfg.construction,
    ranks: adapter?.config.ranks ?? null,
    adapterParams: adapter ? [...adapter.tensors.values()].reduce((a, t) => a + t.data.length, 0) : 0,
    trainableParams: result.trainableParams,
    metric: tc.metric,
    best: result.best && { value: result.best.value, step: result.best.step, test: result.best.test },
    bestTest: result.bestTest,
    validationSize: result.validationSize,
    final: result.final,
    steps: result.steps,
    interrupted: result.interrupted,
    stepSeconds: result.stepSeconds,
    samplesPerSecond: tc.batchSize / result.stepSeconds,
    skippedFiles: prepared.skipped.length,
    skipped: prepared.skipped.map((f) => f.path),
  };
  writeFileAtomic(join(outDir, "summary.json"), new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"));
  await writeRunPlots(outDir, tc.metric);
  return result;
}

/** Loss and eval-metric curves from metrics.jsonl, as SVG and PNG. */
export async function writeRunPlots(outDir: string, metric: string): Promise<void> {
  const path = join(outDir, "metrics.jsonl");
  if (!existsSync(path)) return;
  const recs = readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string>);
  const loss = recs.filter((r) => r.type === "train").map((r) => [r.step as number, r.loss as number] as const);
  const evalRecs = recs.filter((r) => r.type === "eval");
  const series = [
    { name: `test ${metric}`, points: evalRecs.map((r) => [r.step as number, r[metric] as number] as const) },
    { name: `validation ${metric}`, points: evalRecs.filter((r) => typeof r[`val_${metric}`] === "number").map((r) => [r.step as number, r[`val_${metric}`] as number] as const) },
  ].filter((x) => x.points.length > 0);
  if (loss.length) await writePlot(join(outDir, "loss"), { kind: "line", title: "training loss", xLabel: "step", yLabel: "loss", series: [{ name: "train loss", points: loss }] });
  if (series.length) await writePlot(join(outDir, "eval"), { kind: "line", title: metric, xLabel: "step", yLabel: metric, series });
}
