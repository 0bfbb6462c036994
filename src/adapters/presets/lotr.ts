/**
 * LoTR (Bershatsky, Cherniuk, Daulbaev, Mikhalev, Oseledets 2024, arXiv 2402.01376):
 * ΔW_l = L · G_l · Rᵀ with L and R shared across the layers and an r × r core per layer: partial
 * Tucker over (in, out, depth) per projection, depth kept whole. Parameters per projection:
 * 2·d·r + L·r².
 */
import type { AdapterPreset } from "./types.ts";

export const lotr: AdapterPreset = {
  name: "lotr",
  source: "Bershatsky et al. 2024, LoTR: Low Tensor Rank Weight Adaptation (arXiv 2402.01376)",
  options: () => ({ construction: "depth", factorization: "partial_tucker" }),
};
