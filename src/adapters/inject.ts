/**
 * Adapters in the graph. Every adapted projection (p, l) adds s · (x U_in) R[p,l]: U_in is the
 * input factor (LoRA: Aᵀ) and R[p,l] [r_in, dOut] comes from the small core and factors, computed
 * once per step for all slices of a tensor, or slice by slice where they would be large
 * (tensor-graph.ts). The full tensor is never built.
 */
import * as b from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import type { AdapterSet } from "./adapter-set.ts";
import type { AdapterGroup } from "./config.ts";
import type { SiteUpdate } from "./method.ts";
import { methodOf } from "./methods.ts";
import { type SiteGraphOptions, tensorSlicesR } from "./tensor-graph.ts";
import type { LinearSite, ProjectionHook } from "../nn/sites.ts";

type Get = (name: string) => Value;

/** All R[p,l] of tensor t of a TensLoRA group (default the first) as one value [r_in, S, dOut] (see `tensorSlicesR`). */
export function allSlicesR(set: AdapterSet, t: number, get: Get, group: AdapterGroup = set.groups[0]): Value {
  const r = tensorSlicesR(set.config, group, [t], get);
  return b.reshape(r, (r.shape as number[]).slice(1));
}

/**
 * x times each input factor as one GEMM over the factors concatenated along their rank axis, then
 * a slice per factor: x is read once per group instead of once per factor, and since the engine
 * sums the slices' cotangents into one Concat, the backward's dx and d(factors) are one GEMM each
 * as well. `transB`: the factors are [r, in] (LoRA's A, rank axis 0), else [in, r] (U_in, axis 1).
 */
function projectOnce(x: Value, factors: Value[], transB: boolean): Value[] {
  if (factors.length === 0) return [];
  const rankAxis = transB ? 0 : 1;
  const u = b.matmul(x, b.concat(factors, rankAxis), { transB }); // [..., Σr]
  if (factors.length === 1) return [u];
  let start = 0;
  return factors.map((f) => b.slice(u, u.rank - 1, start, (start += f.shape[rankAxis] as number)));
}

/** The projection hook that adds every adapted layer's update; values are built lazily and shared (`options`: see `SiteGraphOptions`). */
export function adapterHook(set: AdapterSet, get: Get, options?: SiteGraphOptions): ProjectionHook {
  const where = new Map<string, { p: number; l: number; update: (p: number, l: number, site: LinearSite) => SiteUpdate }>();
  for (const group of set.groups) {
    const update = methodOf(group.construction).siteUpdates(set.config, group, get, options);
    group.grid.forEach((row, p) => row.forEach((site, l) => where.set(site.path, { p, l, update })));
  }
  return (x: Value, sites: LinearSite[]) => {
    const updates = sites.map((site) => {
      const a = where.get(site.path);
      return a?.update(a.p, a.l, site);
    });
    // x times every distinct input factor in one GEMM per orientation: the [r, in] ones (LoRA's A)
    // first, then the [in, r] ones (U_in of each tensor read by a site that is not transposed)
    const projected = new Map<string, Value>();
    for (const transB of [true, false]) {
      const inputs = new Map<string, () => Value>();
      for (const u of updates) if (u?.input?.transB === transB && !inputs.has(u.input.key)) inputs.set(u.input.key, u.input.value);
      const xu = projectOnce(
        x,
        [...inputs.values()].map((value) => value()),
        transB,
      );
      [...inputs.keys()].forEach((k, i) => projected.set(k, xu[i]));
    }
    return updates.map((u) => u?.output(x, u.input && projected.get(u.input.key)));
  };
}
