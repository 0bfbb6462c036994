/**
 * `compare --claims`: the paper's claims taken to every embedded task (the MNIST ViT, the two
 * text-classification benchmarks, the causal LM) at LoRA's rank-4 and rank-8 budgets, over a
 * range of seeds. Runs go seed by seed across all tasks, so whatever finished when it is stopped
 * is a complete set of paired comparisons; finished runs are reused (each task's folder is an
 * ordinary comparison), so it resumes where it stopped. After every seed the per-task results
 * and the claims table (claims-doc.ts) are rewritten.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CONSTRUCTIONS } from "../adapters/constructions.ts";
import { ConfigError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-file.ts";
import { type Budget, REFERENCE_ARM } from "./arms.ts";
import { type ArmValues, CLAIMS, type ClaimCell, claimCells } from "./claims-stats.ts";
import { type Timing, appendTiming, readTiming } from "./claims-timing.ts";
import { type CompareJob, type CompareOptions, type ComparePlan, compareOptions, planCompare, runOne, writeResults } from "./compare.ts";
import { type RunSummary, isFractionMetric } from "./curve.ts";
import { DEFAULTS, applyConfig } from "./run-config.ts";
import { embeddedOverrides } from "./embedded-benchmarks.ts";
import { prepareData } from "./run.ts";
import type { Runtime } from "../runtime/types.ts";
import type { TrainEvent } from "../train/trainer.ts";

/** A column of the claims table: an embedded benchmark and how `compare` is told to run it. */
export interface ClaimTask {
  name: string;
  title: string;
  settings: { task: string; dataset?: string };
}

/** The embedded benchmarks `compare --claims` takes the paper's claims to, in the table's column order. */
export const CLAIM_TASKS: ClaimTask[] = [
  { name: "vision", title: "MNIST ViT (digits 5–9)", settings: { task: "" } },
  { name: "sentiment", title: "sentiment sentences", settings: { task: "text-classification", dataset: "sentiment" } },
  { name: "spam", title: "SpamAssassin", settings: { task: "text-classification", dataset: "spam" } },
  { name: "causal-lm", title: "Brown causal LM", settings: { task: "causal-lm" } },
];

/** The arms the claims compare: LoRA and the constructions a claim names. */
export const CLAIM_ARMS: string[] = [...new Set(CLAIMS.flatMap((c) => c.arms))].sort(
  (a, b) => CONSTRUCTIONS.indexOf(a as never) - CONSTRUCTIONS.indexOf(b as never),
);

/** The tasks named in `list` ("vision,spam"); all of them for "". */
export function claimTasks(list: string): ClaimTask[] {
  if (!list) return CLAIM_TASKS;
  const names = list.split(",").map((s) => s.trim());
  const unknown = names.filter((n) => !CLAIM_TASKS.some((t) => t.name === n));
  if (unknown.length) throw new ConfigError(`--claims-tasks: unknown ${unknown.join(", ")}; valid: ${CLAIM_TASKS.map((t) => t.name).join(", ")}`);
  return CLAIM_TASKS.filter((t) => names.includes(t.name));
}

export const CLAIM_BUDGETS: Budget[] = [
  { kind: "iso-lora", rank: 4 },
  { kind: "iso-lora", rank: 8 },
];

export interface ClaimsOptions {
  seeds: number[];
  runtime: Runtime;
  outDir: string;
  tasks?: ClaimTask[];
  threads?: number;
  log?: (s: string) => void;
  onEvent?: (run: string, e: TrainEvent) => void;
  /** Only tabulate the runs that finished; train nothing (the table of a run still under way, or stopped). */
  reportOnly?: boolean;
  /** Called with the table after every seed (claims-doc.ts renders it). */
  onTable?: (t: ClaimsTable) => void;
}

export interface ClaimsTask {
  name: string;
  title: string;
  metric: string;
  /** Seeds with every arm at every budget finished. */
  seeds: number[];
  about?: string;
}

/** What a claims run measured: its tasks and budgets, every claim's cell, and the seed-to-seed spread. */
export interface ClaimsTable {
  tasks: ClaimsTask[];
  budgets: string[];
  cells: ClaimCell[];
  /** Wall and CPU seconds spent by claims runs, summed over every invocation. */
  wallSeconds: number;
  cpuSeconds: number;
  runs: number;
  /** Classification tasks: each arm's mean test MCC at the selected evaluation (the paper's CoLA metric), beside the accuracy the claims are judged on. */
  mcc: { task: string; budget: string; arm: string; n: number; mean: number }[];
  /** Per task and budget: the spread (sample sd, in table units) of each construction's per-seed difference against LoRA. */
  spread: { task: string; budget: string; arm: string; n: number; sd: number }[];
}

/** A metric as a "higher is better" number in the table's units: points for fractions, minus perplexity otherwise. */
export function tableUnits(metric: string, v: number): number {
  return isFractionMetric(metric) ? 100 * v : -v;
}

interface Prepared {
  task: ClaimTask;
  options: CompareOptions;
  plan: ComparePlan;
  about?: string;
  runs: RunSummary[];
}

function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Run (or reuse) every task × budget × arm × seed, seed by seed; returns the claims table of what finished. */
export async function runClaims(o: ClaimsOptions): Promise<ClaimsTable> {
  mkdirSync(o.outDir, { recursive: true });
  const tasks = o.tasks ?? CLAIM_TASKS;
  const prepared: Prepared[] = [];
  for (const task of tasks) {
    const cfg = applyConfig(
      applyConfig(DEFAULTS, embeddedOverrides(task.settings.task), "embedded defaults"),
      { ...task.settings, threads: o.threads ?? 0 },
      "claims",
    );
    const data = await prepareData(cfg, o.runtime, (s) => o.log?.(`${task.name}: ${s}`));
    const options = await compareOptions(cfg, data, {
      methods: CLAIM_ARMS,
      factorizations: [cfg.factorization as never],
      headLayouts: [cfg.headLayout as never],
      coreLrScales: [cfg.coreLrScale],
      rankModes: ["solver"],
      budgets: CLAIM_BUDGETS,
      seeds: o.seeds,
      fullLr: cfg.lr / 5,
      outDir: join(o.outDir, task.name),
      runtime: o.runtime,
    });
    prepared.push({ task, options, plan: await planCompare(options), about: data.about, runs: [] });
  }
  const timingPath = join(o.outDir, "timing.jsonl");
  let table = tabulate(prepared, readTiming(timingPath));
  for (const seed of o.seeds) {
    for (const p of prepared) {
      for (const job of p.plan.jobs.filter((j: CompareJob) => j.seed === seed)) {
        const fresh = !existsSync(join(p.options.outDir, "runs", job.budget?.label ?? "", `${job.arm.name}-seed${seed}`, "summary.json"));
        if (fresh && o.reportOnly) continue;
        const wall = Date.now();
        const cpu = process.cpuUsage();
        const s = await runOne({ ...p.options, onEvent: o.onEvent && ((run, e) => o.onEvent!(`${p.task.name} ${run}`, e)) }, job, p.plan.backbone);
        if (fresh) {
          const used = process.cpuUsage(cpu);
          appendTiming(timingPath, { wallSeconds: (Date.now() - wall) / 1000, cpuSeconds: (used.user + used.system) / 1e6, runs: 1 });
        }
        p.runs = [...p.runs.filter((r) => !(r.arm === s.arm && r.budget === s.budget && r.seed === s.seed)), s];
        const metric = p.options.config.metric;
        o.log?.(
          `${p.task.name} ${s.arm} @ ${s.budget} seed ${seed}: test ${metric} ${isFractionMetric(metric) ? (100 * s.selected).toFixed(2) : s.selected.toFixed(3)}${fresh ? "" : " (reused)"}`,
        );
      }
      if (!p.runs.length) continue;
      const done = [...new Set(p.runs.map((r) => r.seed))].sort((a, b) => a - b);
      const c = p.options;
      await writeResults(
        c.outDir,
        { metric: c.config.metric, arms: p.plan.arms, budgets: p.plan.budgets, seeds: done, valFraction: c.config.valFraction ?? 0, backbone: p.plan.backbone },
        p.runs,
      );
    }
    table = tabulate(prepared, readTiming(timingPath));
    writeJson(join(o.outDir, "claims.json"), {
      ...table,
      cells: table.cells.map((c) => ({ ...c, seedsToDecide: Number.isFinite(c.seedsToDecide) ? c.seedsToDecide : null })),
    });
    o.onTable?.(table);
  }
  return table;
}

/** The test MCC logged at a run's selected evaluation (NaN when the run logged none). */
function selectedMcc(outDir: string, r: RunSummary): number {
  const path = join(outDir, "runs", r.budget, `${r.arm}-seed${r.seed}`, "metrics.jsonl");
  if (!existsSync(path)) return Number.NaN;
  const evals = readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type?: string; step?: number; mcc?: number });
  return evals.filter((e) => e.type === "eval" && e.step === r.selectedStep).at(-1)?.mcc ?? Number.NaN;
}

function tabulate(prepared: Prepared[], timing: Timing): ClaimsTable {
  const budgets = CLAIM_BUDGETS.map((b) => (b.kind === "iso-lora" ? `r${b.rank}` : `p${b.count}`));
  const values: ArmValues[] = [];
  const tasks: ClaimsTask[] = [];
  for (const p of prepared) {
    const metric = p.options.config.metric;
    for (const budget of budgets) {
      for (const arm of p.plan.arms) {
        const bySeed = new Map(p.runs.filter((r) => r.arm === arm.name && r.budget === budget).map((r) => [r.seed, tableUnits(metric, r.selected)]));
        values.push({ task: p.task.name, budget, arm: arm.name, bySeed });
      }
    }
    const complete = [...new Set(p.runs.map((r) => r.seed))].filter((s) =>
      p.plan.jobs.filter((j) => j.seed === s).every((j) => p.runs.some((r) => r.arm === j.arm.name && r.budget === (j.budget?.label ?? "") && r.seed === s)),
    );
    tasks.push({ name: p.task.name, title: p.task.title, metric, seeds: complete.sort((a, b) => a - b), about: p.about });
  }
  const spread: ClaimsTable["spread"] = [];
  for (const v of values) {
    if (v.arm === REFERENCE_ARM) continue;
    const ref = values.find((x) => x.task === v.task && x.budget === v.budget && x.arm === REFERENCE_ARM)!.bySeed;
    const d = [...v.bySeed].filter(([s]) => ref.has(s)).map(([s, x]) => x - ref.get(s)!);
    if (d.length < 2) continue;
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    spread.push({ task: v.task, budget: v.budget, arm: v.arm, n: d.length, sd: Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (d.length - 1)) });
  }
  const mcc: ClaimsTable["mcc"] = [];
  for (const p of prepared.filter((q) => q.options.config.metric === "accuracy")) {
    for (const budget of budgets) {
      for (const arm of p.plan.arms) {
        const xs = p.runs
          .filter((r) => r.arm === arm.name && r.budget === budget)
          .map((r) => selectedMcc(p.options.outDir, r))
          .filter(Number.isFinite);
        if (xs.length) mcc.push({ task: p.task.name, budget, arm: arm.name, n: xs.length, mean: xs.reduce((a, b) => a + b, 0) / xs.length });
      }
    }
  }
  const cells = claimCells(
    values,
    prepared.map((p) => p.task.name),
    budgets,
    CLAIMS,
  );
  return { tasks, budgets, cells, ...timing, spread, mcc };
}
