/**
 * A TensLoRA group in the graph: every adapted projection (p, l) adds s · (x U_in) R[p,l], where
 * U_in is the input factor and R[p,l] [r_in, dOut] comes from the small core and factors,
 * computed once per step for all slices of a tensor. The full tensor is never built.
 */
import * as b from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import type { AdapterConfig, AdapterGroup } from "./config.ts";
import { CONSTRUCTION_SPECS, tensorCount, tensorIndex, tensorModes } from "./constructions.ts";
import { FACTORIZATIONS } from "./factorizations/index.ts";
import { graphOps } from "./factorizations/ops.ts";
import type { SiteUpdate } from "./method.ts";

type Get = (name: string) => Value;

const prefix = (g: number) => `tenslora.${g === 0 ? "" : `g${g}.`}`;
/** The file key of parameter `key` ("core", "factors.<i>", "cores.<i>") of tensor t in group g. */
export const tensorKey = (t: number, key: string, g = 0) => `${prefix(g)}${t}.${key}`;
export const factorKey = (t: number, i: number, g = 0) => tensorKey(t, `factors.${i}`, g);

/**
 * All R[p,l] of the tensors `ts` of a group as one value [T, r_in, S, dOut]: S = P·L slices per
 * tensor, p-major (1 when the construction stacks neither), behind the rank axes, so each
 * projection's slice and its cotangent are one strided block each. The tensors of a group share
 * their shapes, so their parameters are stacked and every product of the factorisation's slice
 * definition runs once for all of them, batched over T: att's 36 tensors were otherwise 36 × 8
 * tiny products a step (about 11 ms of its 0.55 s step on 2 threads, mostly per-node overhead).
 */
export function tensorSlicesR(config: AdapterConfig, group: AdapterGroup, ts: number[], get: Get): Value {
  const stack = (key: string) =>
    b.concat(
      ts.map((t) => get(tensorKey(t, key, group.index))).map((v) => b.reshape(v, [1, ...(v.shape as number[])])),
      0,
    );
  return FACTORIZATIONS[config.factorization].slices(graphOps, stack, tensorModes(group.construction, group.shape, config.headLayout === "head_major"));
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

/**
 * How each site of a TensLoRA group adds its update: y += s·(x U_in) R[p,l], x U_in shared by the
 * sites of one tensor; a transposed site (heads on its input) adds s·(x Rᵀ) U_inᵀ.
 */
export function tensorSiteUpdates(config: AdapterConfig, group: AdapterGroup, get: Get): (p: number, l: number) => SiteUpdate {
  const slice = groupSlices(config, group, get);
  const fact = FACTORIZATIONS[config.factorization];
  const scaling = config.scaling;
  // U_in [dIn, r_in] (a TT core [1, dIn, r₁] is reshaped)
  const input = (key: string) => {
    const u = get(key);
    return u.rank === 2 ? u : b.reshape(u, (u.shape as number[]).slice(-2));
  };
  return (p, l) => {
    const key = tensorKey(tensorIndex(group.construction, group.shape, p, l).tensor, fact.inputKey, group.index);
    if (group.members[p].transposed) {
      return { output: (x) => b.matmul(b.matmul(x, slice(p, l), { transB: true }), input(key), { transB: true, alpha: scaling }) };
    }
    return {
      input: { key, value: () => input(key), transB: false },
      output: (_x, xu) => {
        const r = slice(p, l);
        return b.matmul(xu!, r, { alpha: scaling }); // [B, T, dOut]
      },
    };
  };
}
