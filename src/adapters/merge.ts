/**
 * Folding an adapter into the frozen weights for zero-overhead inference: W += ΔW of every
 * adapted site (reference.ts `siteDeltaWeight`: s·(U_in R[p,l])ᵀ, K/V averaged over their
 * query-head groups, attention outputs transposed), computed on the CPU through the sliced path
 * (never the full tensor). Unmerge subtracts the same ΔW, restoring W up to float rounding.
 */
import { FormatError } from "../errors.ts";
import type { WeightMap } from "../nn/params.ts";
import { describeNonFinite } from "../tensor/finite.ts";
import { type AdapterSet, groupState } from "./adapter-set.ts";
import { siteDeltaWeight } from "./reference.ts";

function fold(weights: WeightMap, set: AdapterSet, sign: 1 | -1): WeightMap {
  const out: WeightMap = new Map(weights);
  for (const group of set.groups) {
    const state = groupState(set, group);
    group.grid.forEach((row, p) =>
      row.forEach((site, l) => {
        const key = `${site.path}.weight`;
        const w = out.get(key)!;
        const delta = siteDeltaWeight(state, group.members[p], p, l).data; // [out, in]
        const data = new Float32Array(w.data.length);
        for (let i = 0; i < data.length; i++) data[i] = w.data[i] + sign * delta[i];
        const bad = describeNonFinite(data);
        if (bad)
          throw new FormatError(
            `folding the adapter into ${key} gives ${bad} (scaling ${set.config.scaling}); the adapter's values overflow float32, use another checkpoint or retrain`,
          );
        out.set(key, { shape: w.shape, data });
      }),
    );
  }
  return out;
}

/** A new weight map with every adapted projection's update folded in (inputs are not modified). */
export function mergeAdapter(weights: WeightMap, set: AdapterSet): WeightMap {
  return fold(weights, set, 1);
}

/** The inverse of `mergeAdapter`. */
export function unmergeAdapter(weights: WeightMap, set: AdapterSet): WeightMap {
  return fold(weights, set, -1);
}
