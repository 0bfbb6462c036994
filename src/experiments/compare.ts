/**
 * The paper's comparison as one call: every arm (construction × varied settings, see arms.ts)
 * at every parameter budget, the linear probe and full fine-tuning as the floor and the ceiling,
 * several seeds, one data set and schedule for all. The evaluation is chosen on a validation
 * split held out from the training data; the paper's best-test number is kept beside it.
 * Finished runs in the output folder are reused, so an interrupted comparison resumes where it
 * stopped; a finished run made with other settings is an error, not silently mixed in. One run
 * (an arm × budget × seed) is also what a queue worker runs (`runOne`), and a finished queue's
 * summaries go through the same `writeResults`.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type AdapterSet, adapterParamCount } from "../adapters/adapter-set.ts";
import { planAdapter } from "../adapters/config.ts";
import { ADAPTER_METHODS, REFERENCE_METHOD } from "../adapters/methods.ts";
import { type GroupBudget, groupRanksForBudget } from "../adapters/params.ts";
import type { LinearSite } from "../nn/sites.ts";
import { ConfigError, RunInterruptedError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { createAdapter, defaultTargets, modelContext } from "../pipeline/context.ts";
import type { LoadedModel } from "../models/load.ts";
import { listCheckpoints } from "../train/checkpoint.ts";
import { writeCurvePlot } from "../train/curve-plot.ts";
import type { TaskData } from "../tasks/task-data.ts";
import { type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";
import { type Arm, type ArmGrid, type Budget, budgetLabel, expandArms, isBaseline } from "./arms.ts";
import { type AutoRankOptions, autoRanks } from "./auto-ranks.ts";
import {
  type CurveRow,
  type PooledVariant,
  type RunSummary,
  curveRows,
  isFractionMetric,
  markdownTable,
  metricAxis,
  pooledVariants,
  runSummary,
} from "./curve.ts";
import type { RunConfig } from "./run-config.ts";
import { type PreparedData, backboneParams, trainConfig } from "./run.ts";
import { runFolderStore } from "../train/run-folder-store.ts";
import type { Runtime } from "../runtime/types.ts";

export { DEFAULT_METHODS } from "./arms.ts";
export { isFractionMetric, markdownTable, type CurveRow as CompareRow, type RunSummary } from "./curve.ts";

export interface CompareOptions extends ArmGrid {
  /** The backend every run trains on. */
  runtime: Runtime;
  /** A fresh model per run (its new head is seeded). */
  loadModel: (seed: number) => Promise<LoadedModel>;
  /** The model to plan from (shapes, sizes) without a load of its own (PreparedData.peekModel). */
  peekModel?: () => Promise<LoadedModel>;
  data: TaskData;
  budgets: Budget[];
  /** See ranksForBudget: the most balanced ranks within this fraction below the budget. */
  rankSlack: number;
  seeds: number[];
  /** Shared by every run; `valFraction` sets the validation split, `seed` is replaced per run. */
  config: TrainConfig;
  /** Learning rate for full fine-tuning (every weight moves; the adapters' rate is too high for it). */
  fullLr: number;
  /** The warm-up that `--ranks auto` reads its spectrum from. */
  autoRank?: Partial<AutoRankOptions>;
  /** The pretrained model's identity (PreparedData.model), part of every run's settings. */
  model?: string;
  outDir: string;
  /** Each run's training events, tagged with the run's label. */
  onEvent?: (run: string, e: TrainEvent) => void;
  /** Progress lines (default: the console). */
  log?: (s: string) => void;
  /** Called once the runs are planned, with their count; then `onRunDone` with each run's result line (else `log` gets it). */
  onPlan?: (runs: number) => void;
  /** Each finished (or reused) run's result line. */
  onRunDone?: (line: string) => void;
  /** Continue a run from the checkpoint left in its folder (a queue worker taking over a stalled run). */
  resume?: boolean;
  /** Polled between steps: true checkpoints the run and throws RunInterruptedError. */
  shouldStop?: () => boolean;
}

/** A comparison's results: one row per method and budget, over the seeds. */
export interface CompareResult {
  metric: string;
  backboneParams: number;
  budgets: { label: string; params: number }[];
  seeds: number[];
  valFraction: number;
  rows: CurveRow[];
  /** Each varied setting against the default, pooled over constructions and budgets. */
  pooled: PooledVariant[];
  runs: RunSummary[];
}

/** A budget with its size in parameters on the model at hand. */
export interface ResolvedBudget {
  label: string;
  params: number;
  budget: Budget;
}

/** One run of a comparison: an arm at a budget (none for the baselines) with a seed. */
export interface CompareJob {
  arm: Arm;
  budget?: ResolvedBudget;
  seed: number;
}

function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

const groupBudget = (b: Budget): GroupBudget => (b.kind === "iso-lora" ? { isoLora: b.rank } : { total: b.count });

/** The budget in parameters: LoRA's at that rank on the adapted layers, or the count. */
function budgetParams(b: Budget, sites: LinearSite[], targetModules: string[]): number {
  return groupRanksForBudget({ construction: REFERENCE_METHOD, targetModules }, sites, groupBudget(b)).groups.reduce((a, g) => a + g.budget, 0);
}

/** Turn a budget into a parameter count for a model (an iso-LoRA rank counts LoRA's parameters at that rank). */
export function resolveBudget(b: Budget, model: LoadedModel): ResolvedBudget {
  return { label: budgetLabel(b), params: budgetParams(b, modelContext(model).sites, defaultTargets(model)), budget: b };
}

/** A run's folder: runs/<budget label>/<arm>-seed<seed> (baselines: runs/<arm>-seed<seed>). */
export const runDir = (outDir: string, arm: string, budget: string, seed: number): string =>
  budget ? join(outDir, "runs", budget, `${arm}-seed${seed}`) : join(outDir, "runs", `${arm}-seed${seed}`);

/**
 * Ranks of an adapter arm at a budget, per shape group: the solver's, or (one group only) from
 * the warm-up's spectrum. `ranks` = the first group's, for the table.
 */
async function ranksOf(o: CompareOptions, arm: Arm, model: LoadedModel, budget: Budget): Promise<{ ranks: number[]; groupRanks: Record<string, number[]> }> {
  const sites = modelContext(model).sites;
  const base = { construction: arm.method, factorization: arm.factorization, headLayout: arm.headLayout, targetModules: defaultTargets(model) };
  const solved = groupRanksForBudget(base, sites, groupBudget(budget), { slack: o.rankSlack });
  if (isBaseline(arm.method) || !ADAPTER_METHODS[arm.method].spectrumRanks || arm.ranks === "solver")
    return { ranks: Object.values(solved.groupRanks)[0], groupRanks: solved.groupRanks };
  const { groups } = planAdapter({ ...base, ranks: 1 }, sites);
  if (groups.length !== 1)
    throw new ConfigError(
      `--ranks auto reads one spectrum, for adapters of one shape group; these targets form ${groups.length} (${groups.map((g) => g.name).join(", ")})`,
    );
  const setup = {
    runtime: o.runtime,
    loadModel: o.loadModel,
    data: o.data,
    config: o.config,
    seed: o.seeds[0],
    outDir: join(o.outDir, "warmup"),
    ...o.autoRank,
  };
  const ranks = await autoRanks(setup, groups[0], arm.headLayout, solved.groups[0].budget);
  return { ranks, groupRanks: { [groups[0].name]: ranks } };
}

/** A run's folder, training settings and what identifies it in its summary (a finished run is reused only with the same). */
function runSetup(o: CompareOptions, { arm, budget, seed }: CompareJob) {
  const config: TrainConfig = { ...o.config, seed, lr: arm.method === "full" ? o.fullLr : (arm.lr ?? o.config.lr), coreLrScale: arm.coreLrScale };
  const settings = {
    arm,
    budget: budget ? { label: budget.label, params: budget.params } : null,
    config: { ...config, threads: undefined },
    rankSlack: o.rankSlack,
    // absent (and so left out of the JSON) for models without one, whose finished runs stay valid
    model: o.model,
  };
  return { dir: runDir(o.outDir, arm.name, budget?.label ?? "", seed), config, settings };
}

/** The finished run in the job's folder, if any; one made with other settings is an error. */
export function finishedRun(o: CompareOptions, job: CompareJob): RunSummary | undefined {
  const { dir, settings } = runSetup(o, job);
  const summaryPath = join(dir, "summary.json");
  if (!existsSync(summaryPath)) return undefined;
  const saved = JSON.parse(readFileSync(summaryPath, "utf8")) as RunSummary & { settings?: unknown };
  if (JSON.stringify(saved.settings) !== JSON.stringify(settings)) {
    throw new ConfigError(`${dir} holds a finished run made with other settings; compare into a new --out (or delete that folder)`);
  }
  return saved;
}

/** One arm × budget × seed (reused when its summary exists); what a queue worker runs for a comparison. */
export async function runOne(o: CompareOptions, job: CompareJob, backbone: number): Promise<RunSummary> {
  const { arm, budget, seed } = job;
  const { dir, config, settings } = runSetup(o, job);
  const summaryPath = join(dir, "summary.json");
  const finished = finishedRun(o, job);
  if (finished) return finished;
  const model = await o.loadModel(seed);
  let adapter: AdapterSet | undefined;
  let ranks: number[] | null = null;
  if (!isBaseline(arm.method)) {
    const chosen = await ranksOf(o, arm, model, budget!.budget);
    ranks = chosen.ranks;
    adapter = createAdapter(model, {
      construction: arm.method,
      ranks,
      groupRanks: chosen.groupRanks,
      factorization: arm.factorization,
      headLayout: arm.headLayout,
      targetModules: defaultTargets(model),
      seed,
    }).set;
  }
  const trainable = arm.method === "head" ? "head" : arm.method === "full" ? "all" : "adapter+head";
  const label = budget ? `${arm.name}@${budget.label}/seed${seed}` : `${arm.name}/seed${seed}`;
  const resume = Boolean(o.resume) && listCheckpoints(dir).length > 0;
  const r = await train({
    model,
    adapter,
    trainable,
    data: o.data,
    config,
    store: runFolderStore(dir),
    runtime: o.runtime,
    resume,
    onEvent: (e) => o.onEvent?.(label, e),
    shouldStop: o.shouldStop,
  });
  if (r.interrupted) throw new RunInterruptedError(`${label} stopped at step ${r.steps}; its checkpoint is in ${dir}`);
  const summary: RunSummary & { settings: unknown } = {
    ...runSummary(
      { arm: arm.name, budget: budget?.label ?? "", seed, ranks, adapterParams: arm.method === "full" ? backbone : adapter ? adapterParamCount(adapter) : 0 },
      r,
    ),
    settings,
  };
  writeJson(summaryPath, summary);
  return summary;
}

/** Everything a comparison will run, resolved before the first run starts. */
export interface ComparePlan {
  arms: Arm[];
  budgets: ResolvedBudget[];
  jobs: CompareJob[];
  backbone: number;
}

/** The arms, the budgets in parameters and the runs of a comparison, checked before anything trains. */
export async function planCompare(o: CompareOptions): Promise<ComparePlan> {
  const arms = expandArms(o);
  if (!o.seeds.length) throw new ConfigError("compare needs at least one seed");
  // the default arm carries no rate and trains at config.lr, so a first rate that differs would be silently ignored
  if (o.lrs && o.lrs[0] !== o.config.lr)
    throw new ConfigError(
      `lrs[0] is the default arm's rate and must equal config.lr: got lrs[0] = ${o.lrs[0]}, config.lr = ${o.config.lr}; set config.lr to ${o.lrs[0]}`,
    );
  if (!o.budgets.length && arms.some((a) => !isBaseline(a.method))) throw new ConfigError("compare needs at least one budget (--budgets or --budget-params)");
  const probe = await (o.peekModel?.() ?? o.loadModel(o.seeds[0]));
  const budgets = o.budgets.map((b) => resolveBudget(b, probe));
  if (new Set(budgets.map((b) => b.label)).size !== budgets.length)
    throw new ConfigError(`a budget is listed twice: ${budgets.map((b) => b.label).join(", ")}`);
  const jobs: CompareJob[] = [];
  for (const arm of arms) {
    for (const budget of isBaseline(arm.method) ? [undefined] : budgets) for (const seed of o.seeds) jobs.push({ arm, budget, seed });
  }
  return { arms, budgets, jobs, backbone: backboneParams(probe) };
}

/** Run (or reuse) every arm × budget × seed, then write results.json, results.md and the plot. */
export async function compare(o: CompareOptions): Promise<CompareResult> {
  const plan = await planCompare(o);
  // every finished run is checked before the first one trains: a folder of another comparison fails now, not an hour in
  const reused = new Set(plan.jobs.filter((job) => finishedRun(o, job)));
  o.onPlan?.(plan.jobs.length);
  if (reused.size) o.log?.(`${reused.size} of ${plan.jobs.length} runs are finished in ${o.outDir} and reused`);
  mkdirSync(o.outDir, { recursive: true });
  const runs: RunSummary[] = [];
  for (const job of plan.jobs) {
    const s = await runOne(o, job, plan.backbone);
    const show = (v: number) => (isFractionMetric(o.config.metric) ? (100 * v).toFixed(2) : v.toFixed(4));
    const line = `${s.arm}${s.budget ? ` @ ${s.budget}` : ""} seed ${s.seed}: test ${o.config.metric} ${show(s.selected)} (best test ${show(s.bestTest)})${reused.has(job) ? ", reused" : ""}`;
    (o.onRunDone ?? o.log)?.(line);
    runs.push(s);
  }
  return writeResults(
    o.outDir,
    { metric: o.config.metric, arms: plan.arms, budgets: plan.budgets, seeds: o.seeds, valFraction: o.config.valFraction ?? 0, backbone: plan.backbone },
    runs,
  );
}

export interface ResultsSetting {
  metric: string;
  /** Row order. */
  arms: readonly Arm[];
  budgets: readonly { label: string; params: number }[];
  seeds: number[];
  valFraction: number;
  backbone: number;
}

/** results.json, results.md and the plot in `outDir`, from finished runs (in-process or from a queue). */
export async function writeResults(outDir: string, s: ResultsSetting, runs: RunSummary[]): Promise<CompareResult> {
  mkdirSync(outDir, { recursive: true });
  const rows = curveRows(s.arms, s.budgets, runs);
  const pooled = pooledVariants(s.arms, runs);
  const budgets = s.budgets.map(({ label, params }) => ({ label, params }));
  const result: CompareResult = { metric: s.metric, backboneParams: s.backbone, budgets, seeds: s.seeds, valFraction: s.valFraction, rows, pooled, runs };
  writeJson(join(outDir, "results.json"), result);
  writeFileAtomic(join(outDir, "results.md"), markdownTable(rows, s.metric, s.seeds.length, s.valFraction > 0, pooled));
  await writeCurve(join(outDir, "metric-vs-params"), rows, s.metric, s.valFraction > 0);
  return result;
}

/** A comparison's options from a resolved run config: shared by `compare` and the queue worker, so both run the same thing. */
export async function compareOptions(
  cfg: RunConfig,
  prepared: PreparedData,
  s: ArmGrid & { budgets: Budget[]; seeds: number[]; fullLr: number; outDir: string; runtime: Runtime },
): Promise<CompareOptions> {
  const probe = await (prepared.peekModel?.() ?? prepared.loadModel(s.seeds[0]));
  return {
    runtime: s.runtime,
    loadModel: prepared.loadModel,
    peekModel: prepared.peekModel,
    data: prepared.data,
    methods: s.methods,
    factorizations: s.factorizations,
    headLayouts: s.headLayouts,
    coreLrScales: s.coreLrScales,
    rankModes: s.rankModes,
    lrs: s.lrs,
    budgets: s.budgets,
    rankSlack: cfg.rankSlack,
    seeds: s.seeds,
    config: trainConfig(cfg, probe.family.task),
    fullLr: s.fullLr,
    outDir: s.outDir,
    model: prepared.model,
  };
}

/** Points of one budget are spread a few percent apart on x, so their error bars stay apart. */
const DODGE = 1.035;

async function writeCurve(path: string, rows: CurveRow[], metric: string, validation: boolean): Promise<void> {
  const names = [...new Set(rows.filter((r) => r.budget).map((r) => r.arm))];
  const { factor, unit, bounds } = metricAxis(metric);
  const lines = names.map((name, i) => ({
    name,
    points: rows
      .filter((r) => r.arm === name)
      .map((r) => ({
        x: r.params * DODGE ** (i - (names.length - 1) / 2),
        y: factor * r.selected.mean,
        lo: factor * r.selected.lo,
        hi: factor * r.selected.hi,
      })),
  }));
  const references = rows.filter((r) => !r.budget).map((r) => ({ name: r.arm, y: factor * r.selected.mean }));
  if (!lines.length) return;
  await writeCurvePlot(path, {
    title: `${validation ? `test ${metric} at best validation` : `best test ${metric}`} vs adapter parameters (mean, 95 % CI)`,
    xLabel: "adapter parameters (log; points of one budget spread apart)",
    yLabel: `test ${metric}${unit}`,
    yBounds: bounds,
    width: 860,
    height: 500,
    lines,
    references,
  });
}
