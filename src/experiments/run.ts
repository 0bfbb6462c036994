/**
 * `tenslora train` as a library call: resolve the model, data and adapter from a RunConfig,
 * train, and leave a run folder with the resolved config, metrics, adapters, summary and plots.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { CONSTRUCTIONS } from "../adapters/constructions.ts";
import { adapterShape, type AdapterSet } from "../adapters/adapter-set.ts";
import { isoLoRA, ranksForBudget } from "../adapters/params.ts";
import { ConfigError } from "../errors.ts";
import type { TrainableSet } from "../models/build.ts";
import { createAdapter, modelContext } from "../models/context.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { writePlot } from "../train/plot.ts";
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

/** The adapter of a run: ranks from --ranks, --budget or --iso-lora, in that order. */
export function adapterFor(model: LoadedModel, cfg: RunConfig): { adapter?: AdapterSet; trainable: TrainableSet; warnings: string[] } {
  if (!(METHODS as readonly string[]).includes(cfg.construction)) {
    throw new ConfigError(`unknown construction "${cfg.construction}"; valid: ${METHODS.join(", ")}`);
  }
  if (cfg.construction === "head") return { trainable: "head", warnings: [] };
  if (cfg.construction === "full") return { trainable: "all", warnings: [] };
  const ctx = modelContext(model);
  const targets = cfg.targetModules.split(",").map((s) => s.trim()).filter(Boolean);
  const { shape } = adapterShape(ctx.sites, targets, ctx.heads, ctx.layers);
  const factorization = cfg.factorization as "tucker" | "cp";
  let ranks: number[];
  if (cfg.ranks) ranks = parseRanks(cfg.ranks);
  else if (cfg.construction === "lora") ranks = [cfg.isoLora];
  else ranks = ranksForBudget(cfg.construction as never, shape, cfg.budget > 0 ? cfg.budget : isoLoRA(shape, cfg.isoLora), { factorization, slack: cfg.rankSlack }).ranks;
  const { set, warnings } = createAdapter(model, {
    construction: cfg.construction,
    ranks,
    factorization,
    headLayout: cfg.headLayout as "head_major" | "interleaved",
    targetModules: targets,
    scaling: cfg.construction === "lora" ? undefined : cfg.scaling,
    loraAlpha: cfg.construction === "lora" ? cfg.scaling * ranks[0] : undefined,
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

/** Train one run into `outDir`; with `resume`, continue the run saved there. */
export async function runTraining(cfg: RunConfig, outDir: string, hooks: RunHooks = {}, resume = false): Promise<RunResult> {
  mkdirSync(outDir, { recursive: true });
  const prepared = await prepareData(cfg, hooks.warn);
  const model = await prepared.loadModel(cfg.seed);
  const { adapter, trainable, warnings } = adapterFor(model, cfg);
  for (const w of warnings) hooks.warn?.(w);
  writeFileSync(join(outDir, "config.json"), JSON.stringify(cfg, null, 2) + "\n");
  const tc = trainConfig(cfg, model.family.task);
  const result = await train({ model, adapter, trainable, data: prepared.data, config: tc, outDir, resume, onEvent: hooks.onEvent, shouldStop: hooks.shouldStop });
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
  writeFileSync(join(outDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  await writeRunPlots(outDir, tc.metric);
  return result;
}

/** Loss and eval-metric curves from metrics.jsonl, as SVG and PNG. */
export async function writeRunPlots(outDir: string, metric: string): Promise<void> {
  const path = join(outDir, "metrics.jsonl");
  if (!existsSync(path)) return;
  const recs = readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string>);
  const loss = recs.filter((r) => r.type === "train").map((r) => [r.step as number, r.loss as number] as const);
  const evals = recs.filter((r) => r.type === "eval").map((r) => [r.step as number, r[metric] as number] as const);
  if (loss.length) await writePlot(join(outDir, "loss"), { kind: "line", title: "training loss", xLabel: "step", yLabel: "loss", series: [{ name: "train loss", points: loss }] });
  if (evals.length) await writePlot(join(outDir, "eval"), { kind: "line", title: `test ${metric}`, xLabel: "step", yLabel: metric, series: [{ name: metric, points: evals }] });
}
