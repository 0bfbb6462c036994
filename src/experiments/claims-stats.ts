/**
 * The paper's claims as paired differences between constructions over seeds, with intervals
 * corrected for the number of claims tested (Bonferroni: each at level 1 − α/m), exact sign
 * tests with Holm's step-down adjustment, a verdict per cell, and the seed count that would decide
 * an undecided one. Pure: runs in, table out (claims.ts runs the experiments, claims-doc.ts writes it).
 */
import { ConfigError } from "../errors.ts";
import { CONFIDENCE, type PairedComparison, pairedComparison, tQuantile } from "./stats.ts";

/** A claim: a per-seed score that is positive when the claim holds (in the metric's better direction). */
export interface Claim {
  id: string;
  /** The claim as the paper states it. */
  text: string;
  /** How the per-seed difference is formed, for the table's notes. */
  difference: string;
  /** Arms whose per-seed values form the difference (the same seeds in all). */
  arms: string[];
  /** The difference from the arms' values at one seed (in `arms` order), positive when the claim holds. */
  score: (values: number[]) => number;
}

export const CLAIMS: Claim[] = [
  {
    id: "qkv_depth",
    text: "QKV_Depth beats LoRA at equal parameters",
    difference: "qkv_depth − lora",
    arms: ["qkv_depth", "lora"],
    score: ([a, l]) => a - l,
  },
  {
    id: "att_qkv_depth",
    text: "Att_QKV_Depth beats LoRA at equal parameters",
    difference: "att_qkv_depth − lora",
    arms: ["att_qkv_depth", "lora"],
    score: ([a, l]) => a - l,
  },
  {
    id: "att_least",
    text: "The Att (heads) mode helps less than the QKV or Depth mode",
    difference: "mean(qkv, depth) − att",
    arms: ["qkv", "depth", "att"],
    score: ([q, d, a]) => (q + d) / 2 - a,
  },
];

export type Verdict = "supported" | "contradicted" | "not decided";

export interface ClaimCell {
  claim: string;
  task: string;
  budget: string;
  /** Seeds with every arm of the claim finished. */
  seeds: number;
  /** Mean and corrected interval of the per-seed score (points for fraction metrics), positive = the claim's direction. */
  comparison?: PairedComparison;
  /** Holm-adjusted sign-test p-value. */
  holmP: number;
  verdict: Verdict;
  /** Seeds at which the corrected interval would exclude 0 if the mean and spread stayed as measured (Infinity when the mean is 0). */
  seedsToDecide: number;
}

/** Per-seed values of one arm at one budget of one task; `better` turns a metric into "higher is better" points. */
export interface ArmValues {
  task: string;
  budget: string;
  arm: string;
  bySeed: Map<number, number>;
}

/** The most seeds the searches below try; past it they answer +Infinity. */
export const MAX_SEEDS = 10_000;

/** The least n ≥ 2 with t_{level, n−1} · sd / √n < |mean| (the interval then excludes 0), searched up to `max`. */
export function seedsToExclude(mean: number, sd: number, level: number, max = MAX_SEEDS): number {
  if (!(sd > 0)) return mean !== 0 ? 2 : Number.POSITIVE_INFINITY;
  if (mean === 0) return Number.POSITIVE_INFINITY;
  for (let n = 2; n <= max; n++) if ((tQuantile(level, n - 1) * sd) / Math.sqrt(n) < Math.abs(mean)) return n;
  return Number.POSITIVE_INFINITY;
}

/** The least n ≥ 2 whose interval half-width t_{level, n−1} · sd / √n is at most `halfWidth`. */
export function seedsForHalfWidth(sd: number, halfWidth: number, level: number, max = MAX_SEEDS): number {
  if (!(halfWidth > 0)) throw new ConfigError(`an interval half-width must be positive, got ${halfWidth}`);
  for (let n = 2; n <= max; n++) if ((tQuantile(level, n - 1) * sd) / Math.sqrt(n) <= halfWidth) return n;
  return Number.POSITIVE_INFINITY;
}

/** Holm's step-down adjusted p-values, in the input order. */
export function holm(ps: readonly number[]): number[] {
  const order = ps.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(ps.length);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (ps.length - rank) * p));
    out[i] = running;
  });
  return out;
}

/** The claims' cells over tasks × budgets from the arms' per-seed values, corrected for all cells that have data. */
export function claimCells(
  values: readonly ArmValues[],
  tasks: readonly string[],
  budgets: readonly string[],
  claims = CLAIMS,
  alpha = 1 - CONFIDENCE,
): ClaimCell[] {
  const of = (task: string, budget: string, arm: string) => values.find((v) => v.task === task && v.budget === budget && v.arm === arm)?.bySeed;
  const raw: { claim: Claim; task: string; budget: string; scores: number[] }[] = [];
  for (const claim of claims) {
    for (const task of tasks) {
      for (const budget of budgets) {
        const series = claim.arms.map((a) => of(task, budget, a));
        const seeds = series.every(Boolean) ? [...series[0]!.keys()].filter((s) => series.every((m) => m!.has(s))).sort((a, b) => a - b) : [];
        raw.push({ claim, task, budget, scores: seeds.map((s) => claim.score(series.map((m) => m!.get(s)!))) });
      }
    }
  }
  const tested = raw.filter((r) => r.scores.length >= 2).length;
  const level = 1 - alpha / Math.max(1, tested);
  const comparisons = raw.map((r) => (r.scores.length ? pairedComparison(r.scores, new Array(r.scores.length).fill(0), level) : undefined));
  const testedIdx = raw.map((r, i) => (r.scores.length >= 2 ? i : -1)).filter((i) => i >= 0);
  const adjusted = holm(testedIdx.map((i) => comparisons[i]!.signP));
  return raw.map((r, i) => {
    const c = comparisons[i];
    const k = testedIdx.indexOf(i);
    const decided = c && r.scores.length >= 2 && (c.lo > 0 || c.hi < 0);
    const verdict: Verdict = decided ? (c.lo > 0 ? "supported" : "contradicted") : "not decided";
    return {
      claim: r.claim.id,
      task: r.task,
      budget: r.budget,
      seeds: r.scores.length,
      comparison: c,
      holmP: k >= 0 ? adjusted[k] : 1,
      verdict,
      seedsToDecide: c && r.scores.length >= 2 ? seedsToExclude(c.mean, c.std, level) : Number.POSITIVE_INFINITY,
    };
  });
}

/** The Bonferroni level of `cells` (each interval's two-sided confidence). */
export function correctedLevel(cells: readonly ClaimCell[], alpha = 1 - CONFIDENCE): number {
  return 1 - alpha / Math.max(1, cells.filter((c) => c.seeds >= 2).length);
}
