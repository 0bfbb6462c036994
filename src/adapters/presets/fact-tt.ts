/**
 * FacT-TT (Jie & Deng 2023, arXiv 2212.03145) as a tensor-train: every linear layer, one
 * (in, out, projection, depth) tensor-train per shape group, each bond rank min(r, the rank of its
 * unfolding). Parameters per group: Σ_k r_{k−1} I_k r_k.
 */
import { modeSizes } from "../constructions.ts";
import type { AdapterPreset } from "./types.ts";

export const factTt: AdapterPreset = {
  name: "fact_tt",
  source: "Jie & Deng 2023, FacT: Factor-Tuning for Lightweight Adaptation on Vision Transformer (arXiv 2212.03145)",
  options: () => ({ construction: "qkv_depth", factorization: "tt", targetModules: "all-linear" }),
  ranks: (r, group) => {
    const sizes = modeSizes("qkv_depth", group.shape);
    const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
    return sizes.slice(0, -1).map((_, k) => Math.min(r, prod(sizes.slice(0, k + 1)), prod(sizes.slice(k + 1))));
  },
};
