/**
 * Parameter counts of LoRA and the TensLoRA constructions (the official code's
 * `parameter_count.py` formulas), LoRA-equivalent ranks, and the rank-by-budget search that
 * turns "as many parameters as LoRA r = 8" into per-mode Tucker ranks.
 */
import { ConfigError } from "../errors.ts";
import { type AdapterOptions, planAdapter } from "./config.ts";
import { type Construction, type ModelShape, tensorCount } from "./constructions.ts";
import { DEFAULT_FACTORIZATION, type Factorization } from "./factorizations/index.ts";
import type { GroupPlan } from "./groups.ts";
import { REFERENCE_METHOD, methodOf } from "./methods.ts";
import type { LinearSite } from "../nn/sites.ts";

export type { Factorization };

/**
 * Trainable parameters of an adapter family:
 * - lora: P·L · r(dIn + dOut) (P projections per layer, 3 for q, k, v);
 * - Tucker: tensorCount × (Σ_n I_n r_n + Π_n r_n);
 * - CP:     tensorCount × R · Σ_n I_n;
 * - TT:     tensorCount × Σ_k r_{k−1} I_k r_k (r_0 = r_N = 1).
 * `lora` ignores `factorization`.
 */
export function paramCount(
  construction: Construction,
  shape: ModelShape,
  ranks: number | readonly number[],
  factorization: Factorization = DEFAULT_FACTORIZATION,
): number {
  const m = methodOf(construction);
  return tensorCount(construction, shape) * m.tensorParams(shape, m.normalizeRanks(shape, ranks, factorization).ranks, factorization);
}

/** LoRA's parameter count at rank r (the "isoparameter" reference). */
export function isoLoRA(shape: ModelShape, r: number): number {
  return paramCount(REFERENCE_METHOD, shape, r);
}

/** The (real) LoRA rank with the same parameter count: count / (P·L·(dIn + dOut)). */
export function loraEquivalentRank(count: number, shape: ModelShape): number {
  return count / isoLoRA(shape, 1);
}

/**
 * The slack train, compare and params use unless told otherwise: the most balanced ranks within
 * 1 % below the budget's best count (the strict rule's exact fits are often degenerate).
 */
export const DEFAULT_RANK_SLACK = 0.01;

export interface BudgetOptions {
  /** Keep r_n ≤ I_n (default true): a larger rank cannot add expressiveness. */
  capAtModeSize?: boolean;
  /** Default "tucker". */
  factorization?: Factorization;
  /**
   * Relative count tolerance (default 0). With slack σ > 0 every vector whose count is within
   * (1 − σ)·best count … best count ties, so balance decides (see ranksForBudget).
   */
  slack?: number;
}

export interface BudgetResult {
  ranks: number[];
  count: number;
  /** loraEquivalentRank(count). */
  loraRank: number;
}

/**
 * Per-mode ranks whose parameter count is the largest not above `budget`.
 *
 * Rule: among rank vectors with every r_n ≥ 1, r_n ≤ Π_{m≠n} r_m (a larger rank is wasted: no
 * tensor has a multilinear rank beyond that) and, with `capAtModeSize` (default), r_n ≤ I_n,
 * take the largest count ≤ budget; ties go to the most balanced vector (smallest max/min ratio),
 * then to the lexicographically smallest one (modes in `modeNames` order).
 * With `slack` σ > 0, first find that largest count C, then among vectors with count in
 * [⌈(1 − σ)·C⌉, C] take the smallest ratio, then the largest count, then lexicographic order.
 * (σ = 0 is exactly the plain rule. Exact fits are often lopsided — e.g. rank 1 on `qkv` — so a
 * percent of slack usually buys a far more balanced vector.)
 *
 * Search: exhaustive depth-first over all modes but the largest one, whose rank is then solved
 * in closed form (the count is linear in it). Subtrees are cut by a monotone lower bound on their
 * count and, once the answer must be at least as balanced as the best so far, by their ratio.
 * The tree is first searched with the ratio of every partial vector capped at ρ = 2, 4, 8, …:
 * a best vector whose ratio is within ρ is then provably the answer, so most budgets finish in a
 * few small passes.
 *
 * `lora` returns [r]; CP returns [R] = ⌊budget / Σ I_n⌋ (no cap: a CP rank may exceed the mode
 * sizes); TT returns equal bond ranks, each capped at its unfolding's bound with
 * `capAtModeSize`, the largest that fit.
 * Throws a ConfigError naming the minimum budget when even all-ones ranks do not fit.
 */
export function ranksForBudget(c: Construction, shape: ModelShape, budget: number, opts: BudgetOptions = {}): BudgetResult {
  const factorization = opts.factorization ?? DEFAULT_FACTORIZATION;
  const cap = opts.capAtModeSize ?? true;
  const slack = opts.slack ?? 0;
  if (!Number.isFinite(budget) || budget < 1) {
    throw new ConfigError(`parameter budget must be a finite number ≥ 1, got ${budget}`);
  }
  if (!(slack >= 0 && slack < 1)) throw new ConfigError(`slack must be in [0, 1), got ${slack}`);
  const minimum = paramCount(c, shape, 1, factorization);
  if (budget < minimum) {
    throw new ConfigError(
      `parameter budget ${budget} is below the smallest "${c}" (${factorization}) adapter for this model, ${minimum} parameters (all ranks 1); raise the budget to at least ${minimum}`,
    );
  }
  const tc = tensorCount(c, shape);
  const perTensor = Math.floor(budget / tc);
  const ranks = methodOf(c).forBudget(shape, perTensor, { capAtModeSize: cap, slack }, factorization);
  const total = paramCount(c, shape, ranks, factorization);
  return { ranks, count: total, loraRank: loraEquivalentRank(total, shape) };
}

/** What a budget names: LoRA's count at rank r on the same sites, or a total count. */
export type GroupBudget = { isoLora: number } | { total: number };

/** LoRA's parameters per unit rank on a group's sites: Σ (in + out) over its sites. */
export function loraPerRank(group: GroupPlan): number {
  return group.grid.flat().reduce((n, s) => n + s.inFeatures + s.outFeatures, 0);
}

/**
 * Ranks for every shape group of an adapter from one budget. Each group gets LoRA's count on its
 * own sites (iso-LoRA r: r · Σ(in + out)); a total budget is shared in proportion to those
 * counts, so `{ total: isoLoRA count }` and `{ isoLora: r }` agree. Each group's ranks are then
 * `ranksForBudget` of its construction and shape.
 */
export function groupRanksForBudget(
  opts: Omit<AdapterOptions, "ranks" | "groupRanks">,
  sites: LinearSite[],
  budget: GroupBudget,
  search: Omit<BudgetOptions, "factorization"> = {},
): { groupRanks: Record<string, number[]>; groups: { name: string; budget: number; result: BudgetResult }[] } {
  const { groups } = planAdapter({ ...opts, ranks: 1 }, sites);
  const perRank = groups.map(loraPerRank);
  const total = perRank.reduce((a, b) => a + b, 0);
  const out = groups.map((g, i) => {
    const b = "isoLora" in budget ? budget.isoLora * perRank[i] : Math.floor((budget.total * perRank[i]) / total);
    const factorization = methodOf(g.construction).factorization(opts.factorization);
    return { name: g.name, budget: b, result: ranksForBudget(g.construction, g.shape, b, { ...search, factorization }) };
  });
  return { groupRanks: Object.fromEntries(out.map((g) => [g.name, g.result.ranks])), groups: out };
}
