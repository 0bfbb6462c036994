/**
 * Tucker and CP tensors (TensorLy / tltorch conventions) on host `Dense` tensors.
 *
 * Tucker: T = G ×_1 U_1 … ×_N U_N, core G [r_1, …, r_N], factor U_n [I_n, r_n], i.e.
 *   T[i_1..i_N] = Σ_{a_1..a_N} G[a_1..a_N] · Π_n U_n[i_n, a_n].
 * CP:     T[i_1..i_N] = Σ_r w_r · Π_n U_n[i_n, r],  factor U_n [I_n, R], weights w [R] (default 1).
 */
import { ShapeError } from "../errors.ts";
import { type Dense, modeDot, modeGram, sizeOf, transpose2d } from "./dense.ts";
import { leadingEigenvectors } from "./linalg.ts";

export interface TuckerTensor {
  core: Dense;
  /** factors[n] has shape [I_n, r_n]. */
  factors: Dense[];
}

export interface CpTensor {
  /** Per-component weights [R]; all ones when absent. */
  weights?: Dense;
  /** factors[n] has shape [I_n, R]. */
  factors: Dense[];
}

/** Mode sizes I_n of a Tucker or CP tensor (its factors' row counts). */
export function factorModeSizes(t: TuckerTensor | CpTensor): number[] {
  return t.factors.map((f) => f.shape[0]);
}

/**
 * Check that core and factors fit together (and, when given, the expected mode sizes); throws a
 * ShapeError naming the first mismatch.
 */
export function validateTucker(t: TuckerTensor, modeSizes?: readonly number[]): void {
  const n = t.core.shape.length;
  if (t.factors.length !== n) {
    throw new ShapeError(`Tucker: a core with ${n} modes needs ${n} factors, got ${t.factors.length}`);
  }
  if (modeSizes && modeSizes.length !== n) {
    throw new ShapeError(`Tucker: expected ${modeSizes.length} modes [${modeSizes.join(", ")}], the core has ${n} ([${t.core.shape.join(", ")}])`);
  }
  t.factors.forEach((f, i) => {
    const r = t.core.shape[i];
    if (f.shape.length !== 2 || f.shape[1] !== r) {
      throw new ShapeError(`Tucker: factor[${i}] must have shape [I_${i}, ${r}] to match core rank ${r} on mode ${i}, got [${f.shape.join(", ")}]`);
    }
    if (modeSizes && f.shape[0] !== modeSizes[i]) {
      throw new ShapeError(`Tucker: factor[${i}] has ${f.shape[0]} rows but mode ${i} has size ${modeSizes[i]} (expected shape [${modeSizes.join(", ")}])`);
    }
  });
}

/** Check CP factors share one rank R (and match `modeSizes` when given). */
export function validateCp(t: CpTensor, modeSizes?: readonly number[]): void {
  if (t.factors.length === 0) throw new ShapeError("CP: needs at least one factor, got none");
  const rank = t.factors[0].shape[1];
  if (modeSizes && modeSizes.length !== t.factors.length) {
    throw new ShapeError(`CP: expected ${modeSizes.length} factors for modes [${modeSizes.join(", ")}], got ${t.factors.length}`);
  }
  t.factors.forEach((f, i) => {
    if (f.shape.length !== 2 || f.shape[1] !== rank) {
      throw new ShapeError(`CP: factor[${i}] must have shape [I_${i}, ${rank}] (rank of factor[0]), got [${f.shape.join(", ")}]`);
    }
    if (modeSizes && f.shape[0] !== modeSizes[i]) {
      throw new ShapeError(`CP: factor[${i}] has ${f.shape[0]} rows but mode ${i} has size ${modeSizes[i]}`);
    }
  });
  if (t.weights && t.weights.data.length !== rank) {
    throw new ShapeError(`CP: weights must have length R = ${rank}, got ${t.weights.data.length}`);
  }
}

/**
 * The full tensor G ×_1 U_1 … ×_N U_N. Modes are applied in order of increasing growth I_n/r_n
 * so the intermediates stay small for as long as possible (the result is the same in any order).
 */
export function tuckerToTensor(t: TuckerTensor): Dense {
  validateTucker(t);
  const order = t.factors.map((f, n) => ({ n, growth: f.shape[0] / Math.max(f.shape[1], 1) })).sort((a, b) => a.growth - b.growth || a.n - b.n);
  let out = t.core;
  for (const { n } of order) out = modeDot(out, t.factors[n], n);
  return out;
}

/** The full tensor Σ_r w_r · U_1[:, r] ∘ … ∘ U_N[:, r]. */
export function cpToTensor(t: CpTensor): Dense {
  validateCp(t);
  const shape = factorModeSizes(t);
  const R = t.factors[0].shape[1];
  const n = shape.length;
  const out = new Float64Array(sizeOf(shape));
  // Khatri–Rao style: for each component, accumulate the outer product mode by mode
  const partial = new Float64Array(out.length);
  for (let r = 0; r < R; r++) {
    const w = t.weights ? t.weights.data[r] : 1;
    if (w === 0) continue;
    partial[0] = w;
    let len = 1;
    for (let m = 0; m < n; m++) {
      const f = t.factors[m];
      const I = shape[m];
      // partial[k·I + i] = partial[k] · U_m[i, r], written back to front so it can stay in place
      for (let k = len - 1; k >= 0; k--) {
        const p = partial[k];
        for (let i = I - 1; i >= 0; i--) partial[k * I + i] = p * f.data[i * R + r];
      }
      len *= I;
    }
    for (let k = 0; k < out.length; k++) out[k] += partial[k];
  }
  return { shape, data: out };
}

/** Parameters of one Tucker tensor: Σ_n I_n r_n (factors) + Π_n r_n (core). */
export function tuckerParamCount(modeSizes: readonly number[], ranks: readonly number[]): number {
  if (modeSizes.length !== ranks.length) {
    throw new ShapeError(`tuckerParamCount: ${modeSizes.length} mode sizes but ${ranks.length} ranks`);
  }
  let sum = 0;
  let prod = 1;
  for (let i = 0; i < ranks.length; i++) {
    sum += modeSizes[i] * ranks[i];
    prod *= ranks[i];
  }
  return sum + prod;
}

/** Parameters of one CP tensor of rank R: R · Σ_n I_n (weights, when kept, are not counted). */
export function cpParamCount(modeSizes: readonly number[], rank: number): number {
  let sum = 0;
  for (const s of modeSizes) sum += s;
  return rank * sum;
}

/**
 * Truncated higher-order SVD: U_n = the r_n leading left singular vectors of the mode-n
 * unfolding, G = T ×_1 U_1ᵀ … ×_N U_Nᵀ. Exact when r_n equals the multilinear rank.
 */
export function hosvd(t: Dense, ranks: readonly number[]): TuckerTensor {
  if (ranks.length !== t.shape.length) {
    throw new ShapeError(`hosvd: ${t.shape.length} modes need ${t.shape.length} ranks, got [${ranks.join(", ")}]`);
  }
  const factors = ranks.map((r, n) => {
    if (!Number.isInteger(r) || r < 1 || r > t.shape[n]) {
      throw new ShapeError(`hosvd: rank on mode ${n} must be an integer in [1, ${t.shape[n]}], got ${r}`);
    }
    return leadingEigenvectors(modeGram(t, n), r).u;
  });
  let core = t;
  factors.forEach((u, n) => {
    core = modeDot(core, transpose2d(u), n);
  });
  return { core, factors };
}
