/**
 * Ranks from a spectrum (`--ranks auto`): given each mode's energy fractions σ_k²/Σσ² (from
 * `multilinearSpectrum` of an update tensor, e.g. after a short warm-up), choose per-mode
 * Tucker ranks for a construction at a parameter budget.
 *
 * Rule: for a threshold τ, mode n gets the fewest components whose energies sum to ≥ τ (at
 * least 1, at most its size), lowered where it breaks r_n ≤ Π_{m≠n} r_m (a larger rank is
 * wasted). τ is the largest threshold, among the modes' cumulative energies, whose ranks fit
 * the budget. What the budget has left is then spent one rank at a time on the mode whose next
 * component carries the most energy (two modes at once where the wasted-rank rule blocks every
 * single raise), while the count fits and no rank is wasted.
 */
import { ConfigError } from "../errors.ts";
import type { Dense } from "../tensor/dense.ts";
import { type ModeSpectrum, multilinearSpectrum } from "./analysis.ts";
import { type Construction, type ModeName, type ModelShape, modeNames, modeSizes } from "./constructions.ts";
import { paramCount } from "./params.ts";
import { methodOf } from "./methods.ts";

/** Energy fractions per mode name (descending, summing to 1; all zero for a zero update). */
export type ModeEnergies = Partial<Record<ModeName, readonly number[]>>;

function ranksAt(tau: number, energies: readonly (readonly number[])[], sizes: readonly number[]): number[] {
  const ranks = energies.map((e, n) => {
    let sum = 0;
    let k = 0;
    while (k < Math.min(e.length, sizes[n]) && sum < tau - 1e-12) sum += e[k++];
    return Math.max(1, Math.min(k, sizes[n]));
  });
  for (let changed = true; changed; ) {
    changed = false;
    ranks.forEach((r, n) => {
      const others = ranks.reduce((a, v, m) => (m === n ? a : a * v), 1);
      if (r > others) {
        ranks[n] = others;
        changed = true;
      }
    });
  }
  return ranks;
}

const wasted = (ranks: readonly number[]) => ranks.some((r, n) => r > ranks.reduce((a, v, m) => (m === n ? a : a * v), 1));

/** Per-mode ranks that keep the most of each mode's energy within a parameter budget (the `--ranks energy` choice). */
export function ranksFromEnergy(construction: Construction, shape: ModelShape, energies: ModeEnergies, budget: number): number[] {
  if (!methodOf(construction).spectrumRanks) throw new ConfigError(`ranks from a spectrum are for tensor constructions; LoRA's rank is its budget's`);
  const names = modeNames(construction);
  const sizes = modeSizes(construction, shape);
  const e = names.map((m) => {
    const v = energies[m];
    if (!v) throw new ConfigError(`ranks from a spectrum: no energies for mode \`${m}\` of "${construction}" (given: ${Object.keys(energies).join(", ")})`);
    return v;
  });
  const count = (r: readonly number[]) => paramCount(construction, shape, r);
  const ones = names.map(() => 1);
  if (count(ones) > budget) {
    throw new ConfigError(`parameter budget ${budget} is below the smallest "${construction}" adapter (${count(ones)} parameters, all ranks 1)`);
  }
  const thresholds = [...new Set(e.flatMap((v) => v.map((_, k) => v.slice(0, k + 1).reduce((a, b) => a + b, 0))))].sort((a, b) => b - a);
  let ranks = ones;
  for (const tau of thresholds) {
    const r = ranksAt(tau, e, sizes);
    if (count(r) <= budget) {
      ranks = r;
      break;
    }
  }
  // a single raise can be blocked by the wasted-rank rule alone (from all ones, every raise is):
  // then raising two modes together is considered
  const next = (n: number) => e[n][ranks[n]] ?? 0;
  for (;;) {
    let best: { move: number[]; gain: number } | undefined;
    const consider = (move: number[]) => {
      if (move.some((n) => ranks[n] >= sizes[n])) return;
      const raised = ranks.map((r, m) => (move.includes(m) ? r + 1 : r));
      if (count(raised) > budget || wasted(raised)) return;
      const gain = move.reduce((a, n) => a + next(n), 0);
      if (!best || gain > best.gain) best = { move, gain };
    };
    for (let n = 0; n < ranks.length; n++) consider([n]);
    if (!best) for (let a = 0; a < ranks.length; a++) for (let b = a + 1; b < ranks.length; b++) consider([a, b]);
    if (!best) return ranks;
    const { move } = best;
    ranks = ranks.map((r, m) => (move.includes(m) ? r + 1 : r));
  }
}

/**
 * Energy fractions of every construction mode from a stacked update tensor [in, dh, heads, qkv,
 * depth] (`stackUpdateTensor`): `out` is the (dh, heads) pair as one mode, whose unfolding is
 * that of the tensor with the two merged (its rows in another order, which leaves the singular
 * values alone).
 */
export function modeEnergies(stacked: Dense): ModeEnergies {
  const [dIn, dh, heads, P, L] = stacked.shape;
  const [inMode, dhMode, headsMode, qkv, depth] = multilinearSpectrum(stacked);
  const out = multilinearSpectrum({ shape: [dIn, dh * heads, P, L], data: stacked.data })[1];
  const e = (m: ModeSpectrum) => [...m.energy];
  return { in: e(inMode), out: e(out), dh: e(dhMode), heads: e(headsMode), qkv: e(qkv), depth: e(depth) };
}
