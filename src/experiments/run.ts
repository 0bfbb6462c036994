/**
 * `tenslora train` as a library call: resolve the model, data and adapter from a RunConfig,
 * train, and leave a run folder with the resolved config, metrics, adapters, summary and plots.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { writePlot } from "../train/plot.ts";
import type { TaskData } from "../train/task-data.ts";
import { type RunResult, type TrainEvent, train } from "../train/trainer.ts";
import { runDir } from "../train/run-dir.ts";
import { nodeRuntime } from "../runtime/session.ts";
import { type DataFormat, DATA_FORMATS, openDataset, taskDataFor } from "./datasets.ts";
import { embeddedTransferData, loadEmbedded } from "./embedded.ts";
import type { RunConfig } from "./run-config.ts";
import { adapterFor, trainConfig } from "./run-plan.ts";

export { METHODS, adapterFor, trainConfig } from "./run-plan.ts";

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
  const result = await train({ model, adapter, trainable, data: prepared.data, config: tc, store: runDir(outDir), runtime: nodeRuntime, resume, onEvent: hooks.onEvent, shouldStop: hooks.shouldStop });
  const summary = {
    construction: cfg.construction,
    ranks: adapter?.config.ranks ?? null,
    adapterParams: adapter ? [...adapter.tensors.values()].reduce((a, t) => a + t.data.length, 0) : 0,
    trainableParams: result.trainableParams,
    metric: tc.metric,
    best: result.best && { value: result.best.value, step: result.best.step },
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
