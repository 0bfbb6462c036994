/**
 * The paper's comparison as one call: every arm (construction × varied settings, see arms.ts)
 * at every parameter budget, the linear probe and full fine-tuning as the floor and the ceiling,
 * several seeds, one data set and schedule for all. The evaluation is chosen on a validation
 * split held out from the training data; the paper's best-test number is kept beside it.
 * Finished runs in the output folder are reused, so an interrupted comparison resumes where it
 * stopped; a finished run made with other settings is an error, not silently mixed in.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { adapterParamCount } from "../adapters/adapter-set.ts";
import { planAdapter } from "../adapters/config.ts";
import { type GroupBudget, groupRanksForBudget } from "../adapters/params.ts";
import type { LinearSite } from "../adapters/sites.ts";
import { ConfigError } from "../errors.ts";
import { createAdapter, defaultTargets, modelContext } from "../models/context.ts";
import type { LoadedModel } from "../models/load.ts";
import { writeCurvePlot } from "../train/curve-plot.ts";
import type { TaskData } from "../train/task-data.ts";
import { type TrainConfig, type TrainEvent, train } from "../train/trainer.ts";
import { type Arm, type ArmGrid, type Budget, budgetLabel, expandArms, isBaseline } from "./arms.ts";
import { type AutoRankOptions, autoRanks } from "./auto-ranks.ts";
import { type CurveRow, type PooledVariant, type RunSummary, curveRows, isFractionMetric, markdownTable, pooledVariants } from "./curve.ts";

export { BASELINES, DEFAULT_METHODS } from "./arms.ts";
export { isFractionMetric, markdownTable, type CurveRow as CompareRow } from "./curve.ts";

export interface CompareOptions extends ArmGrid {
  /** A fresh model per run (its new head is seeded). */
  loadModel: (seed: number) => Promise<LoadedModel>;
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
  outDir: string;
  onEvent?: (run: string, e: TrainEvent) => void;
  log?: (s: string) => void;
}

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

interface Job {
  arm: Arm;
  budget?: { label: string; params: number; budget: Budget };
  seed: number;
}

function writeJson(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  renameSync(tmp, path);
}

const groupBudget = (b: Budget): GroupBudget => (b.kind === "iso-lora" ? { isoLora: b.rank } : { total: b.count });

/** The budget in parameters: LoRA's at that rank on the adapted layers, or the count. */
function budgetParams(b: Budget, sites: LinearSite[], targetModules: string[]): number {
  return groupRanksForBudget({ construction: "lora", targetModules }, sites, groupBudget(b)).groups.reduce((a, g) => a + g.budget, 0);
}

/**
 * Ranks of an adapter arm at a budget, per shape group: the solver's, or (one group only) from
 * the warm-up's spectrum. `ranks` = the first group's, for the table.
 */
async function ranksOf(o: CompareOptions, arm: Arm, model: LoadedModel, budget: Budget): Promise<{ ranks: number[]; groupRanks: Record<string, number[]> }> {
  const sites = modelContext(model).sites;
  const base = { construction: arm.method, factorization: arm.factorization, headLayout: arm.headLayout, targetModules: defaultTargets(model) };
  const solved = groupRanksForBudget(base, sites, groupBudget(budget), { slack: o.rankSlack });
  if (arm.method === "lora" || arm.ranks === "solver") return { ranks: Object.values(solved.groupRanks)[0], groupRanks: solved.groupRanks };
  const { groups } = planAdapter({ ...base, ranks: 1 }, sites);
  if (groups.length !== 1) throw new ConfigError(`--ranks auto reads one spectrum, for adapters of one shape group; these targets form ${groups.length} (${groups.map((g) => g.name).join(", ")})`);
  const setup = { loadModel: o.loadModel, data: o.data, config: o.config, seed: o.seeds[0], outDir: join(o.outDir, "warmup"), ...o.autoRank };
  const ranks = await autoRanks(setup, groups[0], arm.headLayout, solved.groups[0].budget);
  return { ranks, groupRanks: { [groups[0].name]: ranks } };
}

async function runOne(o: CompareOptions, job: Job, backbone: number): Promise<RunSummary> {
  const { arm, budget, seed } = job;
  const dir = budget ? join(o.outDir, "runs", budget.label, `${arm.name}-seed${seed}`) : join(o.outDir, "runs", `${arm.name}-seed${seed}`);
  const config: TrainConfig = { ...o.config, seed, lr: arm.method === "full" ? o.fullLr : o.config.lr, coreLrScale: arm.coreLrScale };
  const settings = { arm, budget: budget ? { label: budget.label, params: budget.params } : null, config: { ...config, threads: undefined }, rankSlack: o.rankSlack };
  const summaryPath = join(dir, "summary.json");
  if (existsSync(summaryPath)) {
    const saved = JSON.parse(readFileSync(summaryPath, "utf8")) as RunSummary & { settings?: unknown };
    if (JSON.stringify(saved.settings) !== JSON.stringify(settings)) {
      throw new ConfigError(`${dir} holds a finished run made with other settings; compare into a new --out (or delete that folder)`);
    }
    return saved;
  }
  const model = await o.loadModel(seed);
  let adapter;
  let ranks: number[] | null = null;
  if (!isBaseline(arm.method)) {
    const chosen = await ranksOf(o, arm, model, budget!.budget);
    ranks = chosen.ranks;
    adapter = createAdapter(model, { construction: arm.method, ranks, groupRanks: chosen.groupRanks, factorization: arm.factorization, headLayout: arm.headLayout, targetModules: defaultTargets(model), seed }).set;
  }
  const trainable = arm.method === "head" ? "head" : arm.method === "full" ? "all" : "adapter+head";
  const label = budget ? `${arm.name}@${budget.label}/seed${seed}` : `${arm.name}/seed${seed}`;
  const r = await train({ model, adapter, trainable, data: o.data, config, outDir: dir, onEvent: (e) => o.onEvent?.(label, e) });
  const summary: RunSummary & { settings: unknown } = {
    arm: arm.name,
    budget: budget?.label ?? "",
    seed,
    ranks,
    adapterParams: arm.method === "full" ? backbone : adapter ? adapterParamCount(adapter) : 0,
    trainableParams: r.trainableParams,
    selected: r.best?.test ?? Number.NaN,
    validation: r.validationSize > 0 && r.best ? r.best.value : Number.NaN,
    selectedStep: r.best?.step ?? 0,
    bestTest: r.bestTest?.value ?? Number.NaN,
    final: r.finalValue,
    stepSeconds: r.stepSeconds,
    settings,
  };
  writeJson(summaryPath, summary);
  return summary;
}

/** Run (or reuse) every arm × budget × seed, then write results.json, results.md and the plot. */
export async function compare(o: CompareOptions): Promise<CompareResult> {
  const arms = expandArms(o);
  if (!o.seeds.length) throw new ConfigError("compare needs at least one seed");
  if (!o.budgets.length && arms.some((a) => !isBaseline(a.method))) throw new ConfigError("compare needs at least one budget (--budgets or --budget-params)");
  mkdirSync(o.outDir, { recursive: true });
  const probe = await o.loadModel(o.seeds[0]);
  const head = new Set(probe.family.headParameters(probe.config));
  const backbone = [...probe.weights].filter(([k]) => !head.has(k)).reduce((a, [, t]) => a + t.data.length, 0);
  const sites = modelContext(probe).sites;
  const budgets = o.budgets.map((b) => ({ label: budgetLabel(b), params: budgetParams(b, sites, defaultTargets(probe)), budget: b }));
  if (new Set(budgets.map((b) => b.label)).size !== budgets.length) throw new ConfigError(`a budget is listed twice: ${budgets.map((b) => b.label).join(", ")}`);
  const jobs: Job[] = [];
  for (const arm of arms) {
    for (const budget of isBaseline(arm.method) ? [undefined] : budgets) for (const seed of o.seeds) jobs.push({ arm, budget, seed });
  }
  const runs: RunSummary[] = [];
  for (const job of jobs) {
    const s = await runOne(o, job, backbone);
    const show = (v: number) => (isFractionMetric(o.config.metric) ? (100 * v).toFixed(2) : v.toFixed(4));
    o.log?.(`${s.arm}${s.budget ? ` @ ${s.budget}` : ""} seed ${s.seed}: test ${o.config.metric} ${show(s.selected)} (best test ${show(s.bestTest)})`);
    runs.push(s);
  }
  const rows = curveRows(arms, budgets, runs);
  const valFraction = o.config.valFraction ?? 0;
  const pooled = pooledVariants(arms, runs);
  const result: CompareResult = { metric: o.config.metric, backboneParams: backbone, budgets: budgets.map(({ label, params }) => ({ label, params })), seeds: o.seeds, valFraction, rows, pooled, runs };
  writeJson(join(o.outDir, "results.json"), result);
  writeFileSync(join(o.outDir, "results.md"), markdownTable(rows, o.config.metric, o.seeds.length, valFraction > 0, pooled));
  await writeCurve(join(o.outDir, "metric-vs-params"), rows, o.config.metric, valFraction > 0);
  return result;
}

/** Points of one budget are spread a few percent apart on x, so their error bars stay apart. */
const DODGE = 1.035;

async function writeCurve(path: string, rows: CurveRow[], metric: string, validation: boolean): Promise<void> {
  const names = [...new Set(rows.filter((r) => r.budget).map((r) => r.arm))];
  const lines = names.map((name, i) => ({
    name,
    points: rows
      .filter((r) => r.arm === name)
      .map((r) => ({ x: r.params * DODGE ** (i - (names.length - 1) / 2), y: r.selected.mean, lo: r.selected.lo, hi: r.selected.hi })),
  }));
  const references = rows.filter((r) => !r.budget).map((r) => ({ name: r.arm, y: r.selected.mean }));
  if (!lines.length) return;
  await writeCurvePlot(path, {
    title: `${validation ? `test ${metric} at best validation` : `best test ${metric}`} vs adapter parameters (mean, 95 % CI)`,
    xLabel: "adapter parameters (log; points of one budget spread apart)",
    yLabel: `test ${metric}`,
    width: 860,
    height: 500,
    lines,
    references,
  });
}
