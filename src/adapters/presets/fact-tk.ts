/**
 * FacT-TK (Jie & Deng 2023, arXiv 2212.03145): the attention and MLP matrices of all layers in
 * one Tucker tensor: every linear layer, one (in, out, projection, depth) tensor per shape group,
 * each rank min(r, its mode size). Parameters per group: Σ I_n r_n + Π r_n.
 */
import { modeSizes } from "../constructions.ts";
import type { AdapterPreset } from "./types.ts";

export const factTk: AdapterPreset = {
  name: "fact_tk",
  source: "Jie & Deng 2023, FacT: Factor-Tuning for Lightweight Adaptation on Vision Transformer (arXiv 2212.03145)",
  options: () => ({ construction: "qkv_depth", factorization: "tucker", targetModules: "all-linear" }),
  ranks: (r, group) => modeSizes("qkv_depth", group.shape).map((n) => Math.min(r, n)),
};
