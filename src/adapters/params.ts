/**
 * Parameter counts of LoRA and the TensLoRA constructions (the official code's
 * `parameter_count.py` formulas), LoRA-equivalent ranks, and the rank-by-budget search that
 * turns "as many parameters as LoRA r = 8" into per-mode Tucker ranks.
 */
import { ConfigError } from "../errors.ts";
import { type AdapterOptions, planAdapter } from "./config.ts";
import type { GroupPlan } from "./groups.ts";
import type { LinearSite } from "./sites.ts";
import { cpParamCount, tuckerParamCount } from "../tensor/tucker.ts";
import {
  CONSTRUCTION_SPECS,
  type Construction,
  type ModelShape,
  modeNames,
  modeSizes,
  normalizeRanks,
  parseConstruction,
  tensorCount,
} from "./constructions.ts";

export type Factorization = "tucker" | "cp";

function checkFactorization(f: string): Factorization {
  if (f === "tucker" || f === "cp") return f;
  throw new ConfigError(`unknown factorization "${f}"; valid factorizations: tucker, cp`);
}

/** CP has one rank R shared by every mode: a number, [R], or a per-mode list with equal entries. */
function cpRank(c: Construction, ranks: number | readonly number[]): number {
  const list = typeof ranks === "number" ? [ranks] : [...ranks];
  const R = list[0];
  if (list.length === 0 || list.some((r) => r !== R)) {
    throw new ConfigError(`CP factorization of "${c}" takes one rank R shared by all modes, got [${list.join(", ")}]`);
  }
  if (!Number.isInteger(R) || R < 1) throw new ConfigError(`CP rank must be an integer ≥ 1, got ${R}`);
  return R;
}

/**
 * Trainable parameters of an adapter family:
 * - lora: P·L · r(dIn + dOut) (P projections per layer, 3 for q, k, v);
 * - Tucker: tensorCount × (Σ_n I_n r_n + Π_n r_n);
 * - CP:     tensorCount × R · Σ_n I_n.
 * `lora` ignores `factorization`.
 */
export function paramCount(
  construction: Construction,
  shape: ModelShape,
  ranks: number | readonly number[],
  factorization: Factorization = "tucker",
): number {
  const c = parseConstruction(construction);
  checkFactorization(factorization);
  const tc = tensorCount(c, shape);
  if (CONSTRUCTION_SPECS[c].kind === "lora") {
    const [r] = normalizeRanks(c, shape, ranks).ranks;
    return tc * r * (shape.dIn + shape.dOut);
  }
  const sizes = modeSizes(c, shape);
  if (factorization === "cp") return tc * cpParamCount(sizes, cpRank(c, ranks));
  return tc * tuckerParamCount(sizes, normalizeRanks(c, shape, ranks).ranks);
}

/** LoRA's parameter count at rank r (the "isoparameter" reference). */
export function isoLoRA(shape: ModelShape, r: number): number {
  return paramCount("lora", shape, r);
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
 * `lora` returns [r]; CP returns [R] (no cap: a CP rank may exceed the mode sizes).
 * Throws a ConfigError naming the minimum budget when even all-ones ranks do not fit.
 */
export function ranksForBudget(
  construction: Construction,
  shape: ModelShape,
  budget: number,
  opts: BudgetOptions = {},
): BudgetResult {
  const c = parseConstruction(construction);
  const factorization = checkFactorization(opts.factorization ?? "tucker");
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
  let ranks: number[];
  if (CONSTRUCTION_SPECS[c].kind === "lora") {
    let r = Math.floor(perTensor / (shape.dIn + shape.dOut));
    if (cap) r = Math.min(r, shape.dIn, shape.dOut);
    ranks = [r];
  } else if (factorization === "cp") {
    ranks = [Math.floor(perTensor / modeSizes(c, shape).reduce((a, b) => a + b, 0))];
  } else {
    const sizes = modeSizes(c, shape);
    const exact = searchTucker(sizes, perTensor, cap, 0);
    ranks = exact.ranks;
    if (slack > 0) {
      const floor = Math.ceil((1 - slack) * exact.count);
      if (floor < exact.count) ranks = searchTucker(sizes, perTensor, cap, floor).ranks;
    }
  }
  const count = paramCount(c, shape, ranks, factorization);
  return { ranks, count, loraRank: loraEquivalentRank(count, shape) };
}

interface Best {
  count: number;
  ranks: number[];
  max: number;
  min: number;
}

/** max_a/min_a < max_b/min_b, by cross-multiplication (exact on integers). */
function lessRatio(maxA: number, minA: number, maxB: number, minB: number): -1 | 0 | 1 {
  const l = maxA * minB;
  const r = maxB * minA;
  return l < r ? -1 : l > r ? 1 : 0;
}

function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/**
 * Per-tensor Tucker search (see ranksForBudget). `floor` = 0: largest count ≤ b first, then
 * ratio, then lexicographic. `floor` > 0: count in [floor, b], smallest ratio first, then largest
 * count, then lexicographic.
 */
function searchTucker(sizes: readonly number[], b: number, cap: boolean, floor: number): Best {
  const ratioFirst = floor > 0;
  const N = sizes.length;
  let s = 0; // the mode solved in closed form: the largest
  for (let n = 1; n < N; n++) if (sizes[n] > sizes[s]) s = n;
  const Is = sizes[s];
  const order = sizes.map((_, n) => n).filter((n) => n !== s);
  // Σ of the sizes of the modes still free after depth k (each at rank ≥ 1), the solved one included
  const freeAfter = order.map((_, k) => order.slice(k + 1).reduce((a, n) => a + sizes[n], Is));
  const ranks = new Array<number>(N).fill(1);
  let best: Best | undefined;

  const better = (count: number, max: number, min: number): boolean => {
    if (!best) return true;
    const ratio = lessRatio(max, min, best.max, best.min);
    if (!ratioFirst && count !== best.count) return count > best.count;
    if (ratio !== 0) return ratio < 0;
    if (count !== best.count) return count > best.count;
    return lexLess(ranks, best.ranks);
  };

  const leaf = (S: number, P: number, maxR: number, minR: number): void => {
    // count = S + (I_s + P)·r_s ≤ b; r_s ≤ P (wasted-rank rule), r_s ≤ I_s with the cap
    let hi = Math.min(Math.floor((b - S) / (Is + P)), P);
    if (cap) hi = Math.min(hi, Is);
    let lo = 1;
    // r_i ≤ Π_{j≠i} r_j = (P / r_i)·r_s  ⇔  r_s ≥ r_i² / P
    for (const i of order) lo = Math.max(lo, Math.ceil((ranks[i] * ranks[i]) / P));
    let r = hi;
    if (ratioFirst) {
      lo = Math.max(lo, Math.ceil((floor - S) / (Is + P)));
      if (hi < lo) return;
      // the most balanced r_s in [lo, hi], the largest among equally balanced ones
      r = hi <= maxR ? hi : Math.max(lo, maxR);
    }
    if (hi < lo) return;
    ranks[s] = r;
    const count = S + (Is + P) * r;
    const max = Math.max(maxR, r);
    const min = Math.min(minR, r);
    if (better(count, max, min)) best = { count, ranks: [...ranks], max, min };
  };

  const dfs = (k: number, S: number, P: number, maxR: number, minR: number, rho: number): void => {
    if (k === order.length) return leaf(S, P, maxR, minR);
    const n = order[k];
    const I = sizes[n];
    let lo = 1;
    let hi = cap ? I : b;
    if (k > 0) {
      lo = Math.max(lo, Math.ceil(maxR / rho));
      hi = Math.min(hi, Math.floor(minR * rho));
    }
    for (let r = lo; r <= hi; r++) {
      const S2 = S + I * r;
      const P2 = P * r;
      const mx = Math.max(maxR, r);
      const mn = Math.min(minR, r);
      // lower bound on the count of any completion; monotone in r, so `break`
      if (S2 + freeAfter[k] + Math.max(P2, mx * mx) > b) break;
      // a completion is at least as unbalanced as its prefix: cut when it cannot win on ratio
      const mustBeBalanced = best !== undefined && (ratioFirst || best.count === b);
      if (mustBeBalanced && lessRatio(mx, mn, best!.max, best!.min) > 0) continue;
      ranks[n] = r;
      dfs(k + 1, S2, P2, mx, mn, rho);
    }
    ranks[n] = 1;
  };

  for (let rho = 2; ; rho *= 2) {
    const full = rho >= b;
    dfs(0, 0, 1, 0, Infinity, full ? Infinity : rho);
    // in count-first order only an exact fit is safe to stop on; ratio-first needs any answer
    const settled = best !== undefined && (ratioFirst || best.count === b) && best.max <= rho * best.min;
    if (full || settled) break;
  }
  if (!best) throw new Error(`internal: no Tucker ranks fit ${b} parameters per tensor for sizes [${sizes.join(", ")}]`);
  return best;
}

/** Names of the modes, for reports next to `ranksForBudget` results. */
export function rankLabels(construction: Construction, ranks: readonly number[]): string {
  const names = modeNames(construction);
  return ranks.map((r, i) => `${names[i] ?? "r"}=${r}`).join(" ");
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
    const factorization = g.construction === "lora" ? "tucker" : (opts.factorization ?? "tucker");
    return { name: g.name, budget: b, result: ranksForBudget(g.construction, g.shape, b, { ...search, factorization }) };
  });
  return { groupRanks: Object.fromEntries(out.map((g) => [g.name, g.result.ranks])), groups: out };
}
