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
import { ConfigError } from "../errors.ts";
import { createAdapter, defaultTargets, modelContext } from "../models/context.ts";
import type { LoadedModel } from "../models/load.ts";
import { writePlot } from "../train/plot.ts";
import type { TaskData } from "../train/task-data.ts";
import { type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";
import { runDir } from "../train/run-dir.ts";
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

function checkMethods(methods: string[]): void {
  const valid: string[] = [...DEFAULT_METHODS];
  const bad = methods.filter((m) => !valid.includes(m));
  if (bad.length) throw new ConfigError(`unknown construction ${bad.map((b) => `"${b}"`).join(", ")}; valid: ${valid.join(", ")}`);
}

async function runOne(o: CompareOptions, method: string, seed: number, backbone: number): Promise<RunSummary> {
  const dir = join(o.outDir, "runs", `${method}-seed${seed}`);
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
  const r = await train({ model, adapter, trainable, data: o.data, config, store: runDir(dir), runtime: nodeRuntime, onEvent: (e) => o.onEvent?.(method, seed, e) });
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
  const probe = await o.loadModel(o.seeds[0]);
  const head = new Set(probe.family.headParameters(probe.config));
  const backbone = [...probe.weights].filter(([k]) => !head.has(k)).reduce((a, [, t]) => a + t.data.length, 0);
  const rows: CompareRow[] = [];
  for (const method of o.methods) {
    const runs: RunSummary[] = [];
    for (const seed of o.seeds) {
      const s = await runOne(o, method, seed, backbone);
      o.log?.(`${method} seed ${seed}: best ${o.config.metric} ${isFractionMetric(o.config.metric) ? (100 * s.best).toFixed(2) : s.best.toFixed(4)}`);
      runs.push(s);
    }
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
  writeFileSync(join(o.outDir, "results.json"), JSON.stringify({ metric: o.config.metric, isoLoraRank: o.isoLoraRank, backboneParams: backbone, rows }, null, 2));
  writeFileSync(join(o.outDir, "results.md"), markdownTable(rows, o.config.metric));
  await writePlot(join(o.outDir, "metric-vs-params"), {
    kind: "scatter",
    title: `best test ${o.config.metric} vs trainable adapter parameters (iso-LoRA r=${o.isoLoraRank})`,
    xLabel: "adapter parameters",
    yLabel: `best ${o.config.metric}`,
    logX: true,
    series: [
      { name: "TensLoRA / LoRA", points: rows.filter((r) => r.params > 0 && r.method !== "full").map((r) => ({ x: r.params, y: r.best.mean, label: r.method })) },
      { name: "full fine-tuning", points: rows.filter((r) => r.method === "full").map((r) => ({ x: r.params, y: r.best.mean, label: "full" })) },
    ].filter((s) => s.points.length > 0),
  });
  return rows;
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
