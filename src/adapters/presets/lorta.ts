/**
 * LoRTA (Hounie, Kanatsoulis, Tandon, Ribeiro 2024, arXiv 2410.04060): one CP tensor over
 * (in, dh, heads, {q, k, v, o}, depth). The attention output enters transposed, so that its head
 * axis (on its input side) lines up with Q/K/V's. Parameters: R·(d + dh + H + 4 + L).
 */
import { type AdapterPreset, attentionSites } from "./types.ts";

export const lorta: AdapterPreset = {
  name: "lorta",
  source: "Hounie et al. 2024, LoRTA: Low Rank Tensor Adaptation of Large Language Models (arXiv 2410.04060)",
  options: (sites) => ({ construction: "att_qkv_depth", factorization: "cp", targetModules: attentionSites(sites) }),
};
