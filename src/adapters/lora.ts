/**
 * LoRA (Hu et al., PEFT's layout) as an adapter method: every adapted site owns a pair A [r, in],
 * B [out, r] with ΔW = s · B A, saved under PEFT's keys with PEFT's config fields, its scaling
 * PEFT's lora_alpha / r (/ √r with rsLoRA). One rank r; no factorisation and no spectrum ranks.
 */
import { ConfigError, ShapeError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import type { LinearSite } from "../nn/sites.ts";
import { matmul, transpose2d } from "../tensor/dense.ts";
import type { ModelShape } from "./constructions.ts";
import { DEFAULT_FACTORIZATION } from "./factorizations/index.ts";
import type { AdapterMethod } from "./method.ts";
import type { AdapterTensor, LoraPair } from "./reference.ts";

/** PEFT's file keys of a site's pair. */
export const loraKeys = (site: LinearSite) => ({
  a: `base_model.model.${site.path}.lora_A.weight`,
  b: `base_model.model.${site.path}.lora_B.weight`,
});

export function isLoraPair(t: AdapterTensor): t is LoraPair {
  return (t as LoraPair).a !== undefined && (t as LoraPair).b !== undefined;
}

function oneRank(ranks: number | readonly number[]): number[] {
  const list = typeof ranks === "number" ? [ranks] : [...ranks];
  if (list.length !== 1) throw new ConfigError(`construction "lora" takes one rank r, got ${list.length} ranks [${list.join(", ")}]`);
  if (!Number.isInteger(list[0]) || list[0] < 1) throw new ConfigError(`construction "lora": a rank must be an integer ≥ 1, got ${list[0]}`);
  return list;
}

function checkPair(shape: ModelShape, t: AdapterTensor): LoraPair {
  if (!isLoraPair(t)) throw new ShapeError(`construction "lora" needs LoRA pairs {a, b}, got a factorised tensor`);
  const [r, dIn] = t.a.shape;
  if (t.a.shape.length !== 2 || dIn !== shape.dIn || t.b.shape.length !== 2 || t.b.shape[0] !== shape.dOut || t.b.shape[1] !== r) {
    throw new ShapeError(`LoRA pair: A must be [r, ${shape.dIn}] and B [${shape.dOut}, r], got A [${t.a.shape.join(", ")}], B [${t.b.shape.join(", ")}]`);
  }
  return t;
}

/** LoRA's entry; a group's pairs are its sites p-major (tensor p·L + l). */
export const LORA: AdapterMethod = {
  factorised: false,
  spectrumRanks: false,
  peftAlpha: true,
  // each site owns its matrices, at its own width
  gqaMean: false,
  // LoRA has no factorisation; its config records the default, so every config names one
  factorization: () => DEFAULT_FACTORIZATION,
  rankNames: () => ["r"],
  checkRankList: () => {},
  normalizeRanks(shape, ranks) {
    const list = oneRank(ranks);
    const cap = Math.min(shape.dIn, shape.dOut);
    const warnings =
      list[0] > cap ? [`rank ${list[0]} on a [${shape.dOut}, ${shape.dIn}] matrix (max rank ${cap}) adds parameters without expressiveness`] : [];
    return { ranks: list, warnings };
  },
  checkRankBounds(shape, ranks) {
    if (ranks[0] > Math.max(shape.dIn, shape.dOut)) {
      throw new ConfigError(
        `construction "lora": rank ${ranks[0]} exceeds both sides of the [${shape.dOut}, ${shape.dIn}] matrix; use r ≤ ${Math.min(shape.dIn, shape.dOut)}`,
      );
    }
  },
  tensorParams: (shape, ranks) => ranks[0] * (shape.dIn + shape.dOut),
  forBudget(shape, perTensor, { capAtModeSize }) {
    const r = Math.floor(perTensor / (shape.dIn + shape.dOut));
    return [capAtModeSize ? Math.min(r, shape.dIn, shape.dOut) : r];
  },
  ranksWithoutHeads: (ranks) => [ranks[0]],
  params: (_config, group) =>
    group.grid.flat().flatMap((site) => {
      const k = loraKeys(site);
      const r = group.ranks[0];
      return [
        { name: k.a, shape: [r, site.inFeatures], zero: false, init: "kaiming_uniform" as const, std: 1 },
        { name: k.b, shape: [site.outFeatures, r], zero: true, std: 1 },
      ];
    }),
  tensors: (_config, group, get) =>
    group.grid.flat().map((site) => {
      const k = loraKeys(site);
      return { a: get(k.a), b: get(k.b) };
    }),
  checkTensor: (shape, t) => void checkPair(shape, t),
  folded(shape, t) {
    const { a, b } = checkPair(shape, t);
    return transpose2d(matmul(b, a)); // M = (B A)ᵀ
  },
  slice(shape, t) {
    const { a, b } = checkPair(shape, t);
    return { uIn: transpose2d(a), r: transpose2d(b) };
  },
  siteUpdates: (config, _group, get) => (_p, _l, site) => {
    const k = loraKeys(site);
    return {
      input: { key: k.a, value: () => get(k.a), transB: true },
      output: (_x, xa) => b.matmul(xa!, get(k.b), { transB: true, alpha: config.scaling }),
    };
  },
  configJson(c, groups) {
    // groups of another rank (from rank_pattern) keep the scaling: alpha = s·r (rsLoRA s·√r)
    const r = c.ranks[0];
    const other = groups.filter((g) => g.ranks[0] !== r).flatMap((g) => g.grid.flat().map((site) => [site.path, g.ranks[0]] as const));
    const alpha = (rank: number) => c.scaling * (c.useRslora ? Math.sqrt(rank) : rank);
    return {
      peft_type: "LORA",
      r,
      lora_alpha: c.loraAlpha,
      ...(other.length ? { rank_pattern: Object.fromEntries(other), alpha_pattern: Object.fromEntries(other.map(([k, v]) => [k, alpha(v)])) } : {}),
      use_rslora: c.useRslora ?? false,
      lora_dropout: 0,
      bias: "none",
      fan_in_fan_out: false,
      init_lora_weights: true,
      inference_mode: true,
    };
  },
};
