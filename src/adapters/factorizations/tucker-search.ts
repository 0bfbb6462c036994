/**
 * The Tucker rank search behind `ranksForBudget` (see its rule in params.ts): per tensor, the
 * per-mode ranks whose count Σ I_n r_n + Π r_n is the largest not above a budget, ties to the
 * most balanced vector.
 */

export interface Best {
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
export function searchTucker(sizes: readonly number[], b: number, cap: boolean, floor: number): Best {
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
    if (k === order.length) {
      leaf(S, P, maxR, minR);
      return;
    }
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
