/**
 * Adapters in the graph. Every adapted projection (p, l) adds s · (x U_in) R[p,l]: U_in is the
 * input factor (LoRA: Aᵀ) and R[p,l] [r_in, dOut] comes from the small core and factors, computed
 * once per step for all slices of a tensor. The full tensor is never built.
 */
import * as b from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import { type AdapterSet, loraKeys, tensorKey } from "./adapter-set.ts";
import type { AdapterConfig, AdapterGroup } from "./config.ts";
import { CONSTRUCTION_SPECS, tensorCount, tensorIndex, tensorModes } from "./constructions.ts";
import { FACTORIZATIONS } from "./factorizations/index.ts";
import { graphOps } from "./factorizations/ops.ts";
import type { LinearSite, ProjectionHook } from "../nn/sites.ts";

type Get = (name: string) => Value;

/** All R[p,l] of tensor t of a group (default the first) as one value [r_in, S, dOut] (see `tensorSlicesR`). */
export function allSlicesR(set: AdapterSet, t: number, get: Get, group: AdapterGroup = set.groups[0]): Value {
  const r = tensorSlicesR(set.config, group, [t], get);
  return b.reshape(r, (r.shape as number[]).slice(1));
}

/**
 * All R[p,l] of the tensors `ts` of a group as one value [T, r_in, S, dOut]: S = P·L slices per
 * tensor, p-major (1 when the construction stacks neither), behind the rank axes, so each
 * projection's slice and its cotangent are one strided block each. The tensors of a group share
 * their shapes, so their parameters are stacked and every product of the factorisation's slice
 * definition runs once for all of them, batched over T: att's 36 tensors were otherwise 36 × 8
 * tiny products a step (about 11 ms of its 0.55 s step on 2 threads, mostly per-node overhead).
 */
function tensorSlicesR(config: AdapterConfig, group: AdapterGroup, ts: number[], get: Get): Value {
  const stack = (key: string) =>
    b.concat(
      ts.map((t) => get(tensorKey(t, key, group.index))).map((v) => b.reshape(v, [1, ...(v.shape as number[])])),
      0,
    );
  return FACTORIZATIONS[config.factorization].slices(graphOps, stack, tensorModes(group.construction, group.shape, config.headLayout === "head_major"));
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

/**
 * One group's R[p,l] as the site reads it, built lazily and shared: every tensor's slices in one
 * value on first use, then one [r_in, dOut] per projection (its cotangent is one slice too, and
 * the engine concatenates the slices' cotangents instead of adding zero-padded copies); K/V under
 * the GQA "mean" rule take the mean over their query-head groups, a small op on R, not on the
 * activations.
 */
function groupSlices(config: AdapterConfig, group: AdapterGroup, get: Get): (p: number, l: number) => Value {
  const spec = CONSTRUCTION_SPECS[group.construction];
  let all: Value | undefined;
  const perTensor = new Map<number, Value>();
  const perSite = new Map<string, Value>();
  const tensorR = (t: number): Value => {
    let rt = perTensor.get(t);
    if (!rt) {
      all ??= tensorSlicesR(
        config,
        group,
        Array.from({ length: tensorCount(group.construction, group.shape) }, (_, i) => i),
        get,
      ); // [T, r_in, S, dOut]
      const dims = (all.shape as number[]).slice(1);
      perTensor.set(t, (rt = b.reshape(all.shape[0] === 1 ? all : b.slice(all, 0, t, t + 1), dims)));
    }
    return rt;
  };
  return (p, l) => {
    const key = `${p},${l}`;
    let r = perSite.get(key);
    if (r) return r;
    const { tensor, fixed } = tensorIndex(group.construction, group.shape, p, l);
    const rt = tensorR(tensor);
    const [rIn, S, dOut] = rt.shape as number[];
    const L = spec.stacksDepth ? group.shape.layers : 1;
    const i = (fixed.qkv ?? 0) * L + (fixed.depth ?? 0);
    r = b.reshape(S === 1 ? rt : b.slice(rt, 1, i, i + 1), [rIn, dOut]);
    const kv = group.members[p].kv;
    if (kv) r = b.reshape(b.reduceMean(b.reshape(r, [rIn, kv.heads, dOut / (kv.heads * kv.dim), kv.dim]), [2]), [rIn, kv.heads * kv.dim]);
    perSite.set(key, r);
    return r;
  };
}

/** The projection hook that adds every adapted layer's update; values are built lazily and shared. */
export function adapterHook(set: AdapterSet, get: Get): ProjectionHook {
  const { config } = set;
  const scaling = config.scaling;
  const where = new Map<string, { group: AdapterGroup; p: number; l: number; slice: (p: number, l: number) => Value }>();
  for (const group of set.groups) {
    const slice = groupSlices(config, group, get);
    group.grid.forEach((row, p) => row.forEach((site, l) => where.set(site.path, { group, p, l, slice })));
  }
  const lora = (g: AdapterGroup) => CONSTRUCTION_SPECS[g.construction].kind === "lora";
  const fact = FACTORIZATIONS[config.factorization];
  // U_in [dIn, r_in] of tensor t of a group (a TT core [1, dIn, r₁] is reshaped)
  const inputKey = (a: { group: AdapterGroup; p: number; l: number }) =>
    tensorKey(tensorIndex(a.group.construction, a.group.shape, a.p, a.l).tensor, fact.inputKey, a.group.index);
  const input = (key: string) => {
    const u = get(key);
    return u.rank === 2 ? u : b.reshape(u, (u.shape as number[]).slice(-2));
  };
  return (x: Value, sites: LinearSite[]) => {
    const at = sites.map((site) => where.get(site.path));
    // x times every input factor in one GEMM per kind: LoRA's A [r, in], and U_in [in, r] of each
    // distinct (group, tensor) read by a site that is not transposed
    const loraSites = sites.filter((_, i) => at[i] && lora(at[i]!.group));
    const us = projectOnce(
      x,
      loraSites.map((s) => get(loraKeys(s).a)),
      true,
    );
    const uIn = new Map<string, number>();
    const uInKeys: string[] = [];
    at.forEach((a) => {
      if (!a || lora(a.group) || a.group.members[a.p].transposed) return;
      const k = inputKey(a);
      if (!uIn.has(k)) uIn.set(k, uInKeys.push(k) - 1);
    });
    const xu = projectOnce(x, uInKeys.map(input), false); // [B, T, r_in] each
    return sites.map((site, i) => {
      const a = at[i];
      if (!a) return undefined;
      if (lora(a.group)) return b.matmul(us[loraSites.indexOf(site)], get(loraKeys(site).b), { transB: true, alpha: scaling });
      const r = a.slice(a.p, a.l);
      const u = inputKey(a);
      // transposed (heads on the input): y += s·(x Rᵀ) U_inᵀ
      if (a.group.members[a.p].transposed) return b.matmul(b.matmul(x, r, { transB: true }), input(u), { transB: true, alpha: scaling });
      return b.matmul(xu[uIn.get(u)!], r, { alpha: scaling }); // [B, T, dOut]
    });
  };
}
