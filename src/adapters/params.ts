/**
 * Parameter counts of LoRA and the TensLoRA constructions (the official code's
 * `parameter_count.py` formulas), LoRA-equivalent ranks, and the rank-by-budget search that
 * turns "as many parameters as LoRA r = 8" into per-mode Tucker ranks.
 */
import { ConfigError } from "../errors.ts";
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

export interface BudgetOptions {
  /** Keep r_n ≤ I_n (default true): a larger rank cannot add expressiveness. */
  capAtModeSize?: boolean;
  /** Default "tucker". */
  factorization?: Factorization;
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
 *
 * Search: exhaustive depth-first over all modes but the largest one, whose rank is then the
 * largest the budget allows (the count grows strictly with it, so no smaller value can win or
 * tie). Subtrees are cut by a monotone lower bound on their count, and — once an exact fit is
 * known — by their ratio. The tree is first searched with the ratio of every partial vector
 * capped at ρ = 2, 4, 8, …: an exact fit whose ratio is within ρ is then provably the answer,
 * so balanced budgets finish in a few small passes.
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
  if (!Number.isFinite(budget) || budget < 1) {
    throw new ConfigError(`parameter budget must be a finite number ≥ 1, got ${budget}`);
  }
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
    ranks = searchTucker(modeSizes(c, shape), perTensor, cap);
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

/** Is (count, ranks) better than `best` under the documented order? */
function better(count: number, ranks: readonly number[], max: number, min: number, best: Best | undefined): boolean {
  if (!best) return true;
  if (count !== best.count) return count > best.count;
  // ratios compared by cross-multiplication: max/min < best.max/best.min
  const lhs = max * best.min;
  const rhs = best.max * min;
  if (lhs !== rhs) return lhs < rhs;
  for (let i = 0; i < ranks.length; i++) if (ranks[i] !== best.ranks[i]) return ranks[i] < best.ranks[i];
  return false;
}

/** Best per-tensor Tucker ranks for `b` parameters per tensor (see ranksForBudget). */
function searchTucker(sizes: readonly number[], b: number, cap: boolean): number[] {
  const N = sizes.length;
  let s = 0; // the mode solved in closed form: the largest
  for (let n = 1; n < N; n++) if (sizes[n] > sizes[s]) s = n;
  const order = sizes.map((_, n) => n).filter((n) => n !== s);
  // Σ of the sizes of the modes still free after depth k (each at rank ≥ 1), the solved one included
  const freeAfter = order.map((_, k) => order.slice(k + 1).reduce((a, n) => a + sizes[n], sizes[s]));
  const ranks = new Array<number>(N).fill(1);
  let best: Best | undefined;

  const leaf = (S: number, P: number, maxR: number, minR: number): void => {
    let hi = Math.floor((b - S) / (sizes[s] + P));
    hi = Math.min(hi, P);
    if (cap) hi = Math.min(hi, sizes[s]);
    let lo = 1;
    // r_i ≤ Π_{j≠i} r_j = (P / r_i)·r_s  ⇔  r_s ≥ r_i² / P
    for (const i of order) lo = Math.max(lo, Math.ceil((ranks[i] * ranks[i]) / P));
    if (hi < lo) return;
    ranks[s] = hi;
    const count = S + (sizes[s] + P) * hi;
    const max = Math.max(maxR, hi);
    const min = Math.min(minR, hi);
    if (better(count, ranks, max, min, best)) best = { count, ranks: [...ranks], max, min };
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
      // once an exact fit is known only an exact fit at most as unbalanced can win
      if (best && best.count === b && mx * best.min > best.max * mn) continue;
      ranks[n] = r;
      dfs(k + 1, S2, P2, mx, mn, rho);
    }
    ranks[n] = 1;
  };

  for (let rho = 2; ; rho *= 2) {
    const full = rho >= b;
    dfs(0, 0, 1, 0, Infinity, full ? Infinity : rho);
    if (full || (best && best.count === b && best.max <= rho * best.min)) break;
  }
  if (!best) throw new Error(`internal: no Tucker ranks fit ${b} parameters per tensor for sizes [${sizes.join(", ")}]`);
  return best.ranks;
}

/** Names of the modes, for reports next to `ranksForBudget` results. */
export function rankLabels(construction: Construction, ranks: readonly number[]): string {
  const names = modeNames(construction);
  return ranks.map((r, i) => `${names[i] ?? "r"}=${r}`).join(" ");
}
