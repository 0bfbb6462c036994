/**
 * The paper's comparison as one call: every construction at the same parameter budget (LoRA
 * rank r), the linear probe and full fine-tuning as the floor and the ceiling, several seeds,
 * one data set and schedule for all. Finished runs in the output folder are reused, so an
 * interrupted comparison resumes where it stopped.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONSTRUCTIONS } from "../adapters/constructions.ts";
import { groupRanksForBudget, type Factorization } from "../adapters/params.ts";
import type { HeadLayout } from "../adapters/reference.ts";
import { ConfigError, RunInterruptedError } from "../errors.ts";
import { createAdapter, defaultTargets, modelContext } from "../models/context.ts";
import type { LoadedModel } from "../models/load.ts";
import { listCheckpoints } from "../train/checkpoint.ts";
import { writePlot } from "../train/plot.ts";
import type { TaskData } from "../train/task-data.ts";
import { type TrainConfig, type TrainEvent, metricValue, train } from "../train/trainer.ts";
import type { RunConfig } from "./run-config.ts";
import { type PreparedData, backboneParams, trainConfig } from "./run.ts";
import { runFolderStore } from "../train/run-folder-store.ts";
import { nodeRuntime } from "../runtime/session.ts";

export const BASELINES = ["head", "full"] as const;
export const DEFAULT_METHODS = [...CONSTRUCTIONS, ...BASELINES];

export interface CompareOptions {
  /** A fresh model per run (its new head is seeded). */
  loadModel: (seed: number) => Promise<LoadedModel>;
  data: TaskData;
  methods: string[];
  isoLoraRank: number;
  factorization: Factorization;
  /** See ranksForBudget: the most balanced ranks within this fraction below the budget. */
  rankSlack: number;
  headLayout: HeadLayout;
  seeds: number[];
  config: TrainConfig;
  /** Learning rate for full fine-tuning (every weight moves; the adapters' rate is too high for it). */
  fullLr: number;
  outDir: string;
  onEvent?: (method: string, seed: number, e: TrainEvent) => void;
  log?: (s: string) => void;
  /** Continue a run from the checkpoint left in its folder (a queue worker taking over a stalled run). */
  resume?: boolean;
  /** Polled between steps: true checkpoints the run and throws RunInterruptedError. */
  shouldStop?: () => boolean;
}

export interface RunSummary {
  method: string;
  seed: number;
  ranks: number[] | null;
  adapterParams: number;
  trainableParams: number;
  best: number;
  bestStep: number;
  final: number;
  stepSeconds: number;
}

export interface CompareRow {
  method: string;
  ranks: number[] | null;
  params: number;
  percentOfBackbone: number;
  best: { mean: number; std: number };
  final: { mean: number; std: number };
  stepSeconds: number;
  seeds: number;
}

/** Whether a metric is a fraction, shown as a percentage (accuracy, F1, MCC; not perplexity or loss). */
export const isFractionMetric = (metric: string): boolean => metric !== "perplexity" && metric !== "loss";

const meanStd = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
};

export function checkMethods(methods: string[]): void {
  const valid: string[] = [...DEFAULT_METHODS];
  const bad = methods.filter((m) => !valid.includes(m));
  if (bad.length) throw new ConfigError(`unknown construction ${bad.map((b) => `"${b}"`).join(", ")}; valid: ${valid.join(", ")}`);
}

export const runDir = (outDir: string, method: string, seed: number): string => join(outDir, "runs", `${method}-seed${seed}`);

/** One method × seed (reused when its summary exists); what a queue worker runs for a comparison. */
export async function runOne(o: CompareOptions, method: string, seed: number, backbone: number): Promise<RunSummary> {
  const dir = runDir(o.outDir, method, seed);
  const summaryPath = join(dir, "summary.json");
  if (existsSync(summaryPath)) return JSON.parse(readFileSync(summaryPath, "utf8")) as RunSummary;
  const model = await o.loadModel(seed);
  let adapter;
  let ranks: number[] | null = null;
  if (!(BASELINES as readonly string[]).includes(method)) {
    const base = { construction: method, factorization: o.factorization, headLayout: o.headLayout, targetModules: defaultTargets(model) };
    const budget = { isoLora: o.isoLoraRank };
    const groupRanks = method === "lora" ? undefined : groupRanksForBudget(base, modelContext(model).sites, budget, { slack: o.rankSlack }).groupRanks;
    ranks = groupRanks ? Object.values(groupRanks)[0] : [o.isoLoraRank];
    adapter = createAdapter(model, { ...base, ranks, groupRanks, seed }).set;
  }
  const trainable = method === "head" ? "head" : method === "full" ? "all" : "adapter+head";
  const config = { ...o.config, seed, lr: method === "full" ? o.fullLr : o.config.lr };
  const resume = Boolean(o.resume) && listCheckpoints(dir).length > 0;
  const r = await train({ model, adapter, trainable, data: o.data, config, store: runFolderStore(dir), runtime: nodeRuntime, resume, onEvent: (e) => o.onEvent?.(method, seed, e), shouldStop: o.shouldStop });
  if (r.interrupted) throw new RunInterruptedError(`${method} seed ${seed} stopped at step ${r.steps}; its checkpoint is in ${dir}`);
  const adapterParams = method === "full" ? backbone : adapter ? [...adapter.tensors.values()].reduce((a, t) => a + t.data.length, 0) : 0;
  const summary: RunSummary = {
    method,
    seed,
    ranks,
    adapterParams,
    trainableParams: r.trainableParams,
    best: r.best?.value ?? Number.NaN,
    bestStep: r.best?.step ?? 0,
    final: r.finalValue,
    stepSeconds: r.stepSeconds,
  };
  writeFileSync(summaryPath, JSON.stringify(summary, null, 2));
  return summary;
}

/** Run (or reuse) every method × seed, then write results.json, results.md and the plot. */
export async function compare(o: CompareOptions): Promise<CompareRow[]> {
  checkMethods(o.methods);
  if (!o.seeds.length) throw new ConfigError("compare needs at least one seed");
  mkdirSync(o.outDir, { recursive: true });
  const backbone = backboneParams(await o.loadModel(o.seeds[0]));
  const runs: RunSummary[] = [];
  for (const method of o.methods) {
    for (const seed of o.seeds) {
      const s = await runOne(o, method, seed, backbone);
      o.log?.(`${method} seed ${seed}: best ${o.config.metric} ${isFractionMetric(o.config.metric) ? (100 * s.best).toFixed(2) : s.best.toFixed(4)}`);
      runs.push(s);
    }
  }
  return writeResults(o.outDir, { metric: o.config.metric, isoLoraRank: o.isoLoraRank, backbone, methods: o.methods }, runs);
}

export interface ResultsSetting {
  metric: string;
  isoLoraRank: number;
  backbone: number;
  /** Row order; each row gathers the runs whose `method` is this name. */
  methods: string[];
}

/** results.json, results.md and the plot in `outDir`, from finished runs (in-process or from a queue). */
export async function writeResults(outDir: string, s: ResultsSetting, summaries: RunSummary[]): Promise<CompareRow[]> {
  mkdirSync(outDir, { recursive: true });
  const { metric, backbone } = s;
  const rows: CompareRow[] = [];
  for (const method of s.methods) {
    const runs = summaries.filter((r) => r.method === method);
    if (!runs.length) continue;
    rows.push({
      method,
      ranks: runs[0].ranks,
      params: runs[0].adapterParams,
      percentOfBackbone: (100 * runs[0].adapterParams) / backbone,
      best: meanStd(runs.map((r) => r.best)),
      final: meanStd(runs.map((r) => r.final)),
      stepSeconds: runs.map((r) => r.stepSeconds).sort((a, b) => a - b)[Math.floor(runs.length / 2)],
      seeds: runs.length,
    });
  }
  writeFileSync(join(outDir, "results.json"), JSON.stringify({ metric, isoLoraRank: s.isoLoraRank, backboneParams: backbone, rows }, null, 2));
  writeFileSync(join(outDir, "results.md"), markdownTable(rows, metric));
  await writePlot(join(outDir, "metric-vs-params"), {
    kind: "scatter",
    title: `best test ${metric} vs trainable adapter parameters (iso-LoRA r=${s.isoLoraRank})`,
    xLabel: "adapter parameters",
    yLabel: `best ${metric}`,
    logX: true,
    series: [
      { name: "TensLoRA / LoRA", points: rows.filter((r) => r.params > 0 && r.method !== "full").map((r) => ({ x: r.params, y: r.best.mean, label: r.method })) },
      { name: "full fine-tuning", points: rows.filter((r) => r.method === "full").map((r) => ({ x: r.params, y: r.best.mean, label: "full" })) },
    ].filter((s) => s.points.length > 0),
  });
  return rows;
}

/** The comparison's options from a resolved run config: shared by `compare` and the queue worker, so both run the same thing. */
export async function compareOptions(cfg: RunConfig, prepared: PreparedData, s: { methods: string[]; seeds: number[]; fullLr: number; outDir: string }): Promise<CompareOptions> {
  const probe = await prepared.loadModel(s.seeds[0]);
  return {
    loadModel: prepared.loadModel,
    data: prepared.data,
    methods: s.methods,
    isoLoraRank: cfg.isoLora,
    factorization: cfg.factorization as Factorization,
    rankSlack: cfg.rankSlack,
    headLayout: cfg.headLayout as HeadLayout,
    seeds: s.seeds,
    config: trainConfig(cfg, probe.family.task),
    fullLr: s.fullLr,
    outDir: s.outDir,
  };
}

export function markdownTable(rows: CompareRow[], metric: string): string {
  const lora = rows.find((r) => r.method === "lora")?.stepSeconds;
  const k = isFractionMetric(metric) ? 100 : 1;
  const pct = (x: { mean: number; std: number }) => `${(k * x.mean).toFixed(k === 100 ? 2 : 3)} ± ${(k * x.std).toFixed(k === 100 ? 2 : 3)}`;
  const lines = [
    `| construction | ranks | parameters | % of backbone | best ${metric}${k === 100 ? " (%)" : ""} | final ${metric}${k === 100 ? " (%)" : ""} | step time${lora ? " (× LoRA)" : ""} |`,
    "|---|---|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.method} | ${r.ranks ? r.ranks.join(",") : "–"} | ${r.params.toLocaleString("en-US")} | ${r.percentOfBackbone.toFixed(3)} | ${pct(r.best)} | ${pct(r.final)} | ${(r.stepSeconds * 1000).toFixed(1)} ms${lora ? ` (${(r.stepSeconds / lora).toFixed(2)})` : ""} |`,
    ),
  ];
  return `${lines.join("\n")}\n\nBest = the best test ${metric} over evaluations (the paper's reporting); final = after the last step. Mean ± std over ${rows[0]?.seeds ?? 0} seeds; "head" trains only the ${k === 100 ? "classifier (linear probe)" : "LM head"} and has 0 adapter parameters.\n`;
}
