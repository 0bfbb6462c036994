/**
 * A comparison's results as rows (one per arm and budget) with 95 % intervals over seeds, the
 * paired differences against LoRA at the same budget and against the arm's default sibling,
 * and the markdown table. Pure: it reads run summaries, not files.
 */
import { type Arm, REFERENCE_ARM, defaultSibling, isBaseline } from "./arms.ts";
import { type Interval, type PairedComparison, meanInterval, pairedComparison } from "./stats.ts";

/** What one finished run reports (its folder's summary.json). */
export interface RunSummary {
  arm: string;
  /** Budget label ("r8", "p12000"); "" for the baselines, which do not depend on it. */
  budget: string;
  seed: number;
  ranks: number[] | null;
  adapterParams: number;
  trainableParams: number;
  /** Test metric at the evaluation chosen on validation (on test when there is no validation split). */
  selected: number;
  /** Validation metric there (NaN without a validation split). */
  validation: number;
  selectedStep: number;
  /** The best test metric over evaluations (the paper's number). */
  bestTest: number;
  final: number;
  stepSeconds: number;
}

/** What a finished run reports, as `train` returns it and summary.json stores it. */
export interface RunOutcome {
  trainableParams: number;
  best: { value: number; step: number; test: number } | null;
  bestTest: { value: number } | null;
  validationSize: number;
  finalValue: number;
  stepSeconds: number;
}

/** One run of a comparison in the table's terms: which arm, budget and seed, and what it reached. */
export function runSummary(id: Pick<RunSummary, "arm" | "budget" | "seed" | "ranks" | "adapterParams">, r: RunOutcome): RunSummary {
  return {
    ...id,
    trainableParams: r.trainableParams,
    selected: r.best?.test ?? Number.NaN,
    validation: r.validationSize > 0 && r.best ? r.best.value : Number.NaN,
    selectedStep: r.best?.step ?? 0,
    bestTest: r.bestTest?.value ?? Number.NaN,
    final: r.finalValue,
    stepSeconds: r.stepSeconds,
  };
}

/** One row of a comparison: a method at a budget, its metric over seeds and its parameter count. */
export interface CurveRow {
  arm: string;
  method: string;
  budget: string;
  /** The budget in parameters ("" budget: 0). */
  budgetParams: number;
  ranks: number[] | null;
  params: number;
  selected: Interval;
  bestTest: Interval;
  final: Interval;
  stepSeconds: number;
  /** Against LoRA at the same budget (absent for LoRA itself and the baselines). */
  vsLora?: PairedComparison;
  /** Against the same construction with every setting at its default (variants only). */
  vsDefault?: PairedComparison & { against: string };
}

/** Per-seed values of `key` for two arms' runs, on the seeds both have. */
function paired(a: RunSummary[], b: RunSummary[], key: "selected"): PairedComparison | undefined {
  const bySeed = new Map(b.map((r) => [r.seed, r[key]]));
  const shared = a.filter((r) => bySeed.has(r.seed));
  if (shared.length === 0) return undefined;
  return pairedComparison(
    shared.map((r) => r[key]),
    shared.map((r) => bySeed.get(r.seed)!),
  );
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

/** Rows in arm order, budgets in the given order; baselines once, after the adapters. */
export function curveRows(arms: readonly Arm[], budgets: readonly { label: string; params: number }[], runs: readonly RunSummary[]): CurveRow[] {
  const of = (arm: string, budget: string) => runs.filter((r) => r.arm === arm && r.budget === budget);
  const rows: CurveRow[] = [];
  const row = (arm: Arm, budget: { label: string; params: number }): CurveRow | undefined => {
    const rs = of(arm.name, budget.label);
    if (!rs.length) return undefined;
    const out: CurveRow = {
      arm: arm.name,
      method: arm.method,
      budget: budget.label,
      budgetParams: budget.params,
      ranks: rs[0].ranks,
      params: rs[0].adapterParams,
      selected: meanInterval(rs.map((r) => r.selected)),
      bestTest: meanInterval(rs.map((r) => r.bestTest)),
      final: meanInterval(rs.map((r) => r.final)),
      stepSeconds: median(rs.map((r) => r.stepSeconds)),
    };
    if (!isBaseline(arm.method) && arm.name !== REFERENCE_ARM) {
      const ref = of(REFERENCE_ARM, budget.label);
      if (ref.length) out.vsLora = paired(rs, ref, "selected");
    }
    const sibling = defaultSibling(arm, arms);
    if (sibling && sibling.name !== arm.name) {
      const d = paired(rs, of(sibling.name, budget.label), "selected");
      if (d) out.vsDefault = { ...d, against: sibling.name };
    }
    return out;
  };
  for (const budget of budgets) {
    for (const arm of arms) {
      if (isBaseline(arm.method)) continue;
      const r = row(arm, budget);
      if (r) rows.push(r);
    }
  }
  for (const arm of arms.filter((a) => isBaseline(a.method))) {
    const r = row(arm, { label: "", params: 0 });
    if (r) rows.push(r);
  }
  return rows;
}

/** One varied setting (an arm name's "+…" tag) against the default, over every construction and budget it ran at. */
export interface PooledVariant extends PairedComparison {
  tag: string;
  /** The (construction, budget) cells pooled. */
  cells: number;
}

/**
 * Pairs (variant, default sibling) of the same seed, pooled over constructions and budgets.
 * The pairs of one seed share its data split and head initialisation, so they are not fully
 * independent: the interval is a summary, the per-construction rows are the primary result.
 */
export function pooledVariants(arms: readonly Arm[], runs: readonly RunSummary[]): PooledVariant[] {
  const byTag = new Map<string, { a: number[]; b: number[]; cells: Set<string> }>();
  for (const arm of arms) {
    const sibling = defaultSibling(arm, arms);
    if (!sibling || sibling.name === arm.name) continue;
    const tag = arm.name.slice(arm.method.length + 1);
    const entry = byTag.get(tag) ?? { a: [], b: [], cells: new Set<string>() };
    for (const r of runs.filter((x) => x.arm === arm.name)) {
      const base = runs.find((x) => x.arm === sibling.name && x.budget === r.budget && x.seed === r.seed);
      if (!base) continue;
      entry.a.push(r.selected);
      entry.b.push(base.selected);
      entry.cells.add(`${arm.method}@${r.budget}`);
    }
    if (entry.a.length) byTag.set(tag, entry);
  }
  return [...byTag].map(([tag, e]) => ({ tag, cells: e.cells.size, ...pairedComparison(e.a, e.b) }));
}

/** Whether a metric is a fraction, shown as a percentage (accuracy, F1, MCC; not perplexity or loss). */
export const isFractionMetric = (metric: string): boolean => metric !== "perplexity" && metric !== "loss";

/** How plots show a metric, as the tables do: fractions in percent, within the values the metric can take. */
export function metricAxis(metric: string): { factor: number; unit: string; bounds: readonly [number, number] } {
  if (!isFractionMetric(metric)) return { factor: 1, unit: "", bounds: [0, Infinity] };
  return { factor: 100, unit: " (%)", bounds: metric === "mcc" ? [-100, 100] : [0, 100] };
}

/** A metric value as the tables show it: fractions in percent with 2 decimals, others with 3. */
const shown = (metric: string) => (x: number) => (isFractionMetric(metric) ? (100 * x).toFixed(2) : x.toFixed(3));

/** "81.67 [79.5, 83.8]" (a lone seed: no interval). */
export function formatInterval(i: Interval, metric: string): string {
  const f = shown(metric);
  return Number.isNaN(i.lo) ? f(i.mean) : `${f(i.mean)} [${f(i.lo)}, ${f(i.hi)}]`;
}

function formatPaired(p: PairedComparison | undefined, metric: string): string {
  if (!p) return "–";
  const f = shown(metric);
  const sign = (x: number) => `${x >= 0 ? "+" : "−"}${f(Math.abs(x))}`;
  const ci = Number.isNaN(p.lo) ? "" : ` [${sign(p.lo)}, ${sign(p.hi)}]`;
  return `${sign(p.mean)}${ci} (${p.positive}/${p.n} up, p = ${p.signP.toPrecision(2)})`;
}

/** The comparison as a Markdown table: each method's metric by budget, with intervals over seeds. */
export function markdownTable(rows: readonly CurveRow[], metric: string, seeds: number, validation: boolean, pooled: readonly PooledVariant[] = []): string {
  const variants = rows.some((r) => r.vsDefault);
  const unit = isFractionMetric(metric) ? " (%)" : "";
  const points = isFractionMetric(metric) ? "points" : metric;
  const chosen = validation ? `test ${metric} at best validation${unit}` : `best test ${metric}${unit}`;
  const lines = [
    `| budget | construction | ranks | parameters | ${chosen} | best test ${metric}, the paper's reporting${unit} | Δ vs LoRA (${points}) |${variants ? ` Δ vs default (${points}) |` : ""} step time |`,
    `|---|---|---|---:|---:|---:|---:|${variants ? "---:|" : ""}---:|`,
    ...rows.map(
      (r) =>
        `| ${r.budget || "–"} | ${r.arm} | ${r.ranks ? r.ranks.join(",") : "–"} | ${r.params.toLocaleString("en-US")} | ${formatInterval(r.selected, metric)} | ${formatInterval(r.bestTest, metric)} | ${formatPaired(r.vsLora, metric)} |` +
        `${variants ? ` ${r.vsDefault ? `${formatPaired(r.vsDefault, metric)} vs ${r.vsDefault.against}` : "–"} |` : ""} ${(r.stepSeconds * 1000).toFixed(1)} ms |`,
    ),
  ];
  const selection = validation
    ? `The evaluation is chosen on the validation split (held out from the training data); the test ${metric} there is reported. "Best test" is the best test ${metric} over all evaluations${isFractionMetric(metric) ? "" : " (the lowest)"}, as the paper reports it: it picks the epoch on the test set and flatters every method.`
    : `No validation split (--val-fraction 0): the evaluation is chosen on the test set, as the paper does.`;
  return (
    `${lines.join("\n")}\n\n${selection} Mean [95 % t interval] over ${seeds} seeds. Δ = per-seed paired difference (the arm minus LoRA or its default)${isFractionMetric(metric) ? " in points" : `; lower ${metric} is better`} ` +
    `(mean [95 % t interval]), with how many seeds' values went up and the exact two-sided sign test's p (with 3 seeds it cannot go below 0.25, with 5 below 0.0625). ` +
    `"head" trains only the ${isFractionMetric(metric) ? "classifier" : "LM head"} (0 adapter parameters); "full" trains every weight.\n` +
    (pooled.length
      ? `\n| setting vs its default | pooled over | Δ (${points}) |\n|---|---|---:|\n${pooled.map((p) => `| ${p.tag} | ${p.cells} (construction, budget) cells, ${p.n} seed pairs | ${formatPaired(p, metric)} |`).join("\n")}\n\n` +
        `Pooled: every (construction, budget, seed) pair of the setting and the construction's default arm. Pairs of one seed share its data split and head initialisation, so they are not independent and the interval is only a summary.\n`
      : "")
  );
}
