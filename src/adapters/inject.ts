/**
 * Adapters in the graph. Every adapted projection (p, l) adds s · (x U_in) R[p,l]: U_in is the
 * input factor (LoRA: Aᵀ) and R[p,l] [r_in, dOut] comes from the small core and factors, computed
 * once per step for all slices of a tensor. The full tensor is never built.
 */
import * as b from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import { type AdapterSet, coreKey, factorKey, loraKeys } from "./adapter-set.ts";
import type { AdapterConfig, AdapterGroup } from "./config.ts";
import { CONSTRUCTION_SPECS, tensorCount, tensorIndex } from "./constructions.ts";
import type { LinearSite, ProjectionHook } from "./sites.ts";

type Get = (name: string) => Value;

/** All R[p,l] of tensor t of a group (default the first) as one value [r_in, S, dOut] (see `tensorSlicesR`). */
export function allSlicesR(set: AdapterSet, t: number, get: Get, group: AdapterGroup = set.groups[0]): Value {
  const r = tensorSlicesR(set.config, group, [t], get);
  return b.reshape(r, (r.shape as number[]).slice(1));
}

/**
 * All R[p,l] of the tensors `ts` as one value [T, r_in, S, dOut]: S = P·L slices per tensor,
 * p-major (1 when the construction stacks neither), behind the rank axes, so each projection's
 * slice and its cotangent are one strided block each. The tensors of a construction share their
 * shapes, so their cores and factors are stacked and every product below runs once for all of
 * them, batched over T: att's 36 tensors were otherwise 36 × 8 tiny products a step (about 11 ms
 * of its 0.55 s step on 2 threads, mostly per-node overhead). Every contraction is a GEMM, flat or batched, and
 * no operand is ever transposed: ONNX Runtime ran Einsum on these shapes (three or more
 * contracted indices, or its own internal transposes) at 3–25 GFLOP/s, and its Transpose of the
 * core's small inner axes, with its gradient, took 1 ms a step on 2 threads and 10 ms each on 16.
 */
function tensorSlicesR(config: AdapterConfig, group: AdapterGroup, ts: number[], get: Get): Value {
  const { factorization, headLayout } = config;
  const spec = CONSTRUCTION_SPECS[group.construction];
  const T = ts.length;
  const stack = (key: (t: number) => string) =>
    b.concat(
      ts.map((t) => get(key(t))).map((v) => b.reshape(v, [1, ...(v.shape as number[])])),
      0,
    );
  const f = (i: number) => stack((t) => factorKey(t, i, group.index)); // [T, ...]
  const att = spec.hasAtt;
  const iQkv = att ? 3 : 2;
  const iDepth = iQkv + (spec.stacksProjections ? 1 : 0);
  const dOut = group.shape.dOut;
  if (factorization === "cp") {
    // superdiagonal core: R[a, o] = Π (index-factor rows)[a] · U_out[o, a]
    const prefix = (spec.stacksProjections ? "P" : "") + (spec.stacksDepth ? "L" : "");
    const idx = [spec.stacksProjections ? [f(iQkv), "tPr"] : undefined, spec.stacksDepth ? [f(iDepth), "tLr"] : undefined].filter(
      (x): x is [Value, string] => x !== undefined,
    );
    const out: [Value, string][] = att ? [[f(1), "tJr"], [f(2), "tHr"]] : [[f(1), "tOr"]];
    const all = [...idx, ...out];
    const r = b.einsum(`${all.map(([, s]) => s).join(",")}->tr${prefix}${att ? (headLayout === "head_major" ? "HJ" : "JH") : "O"}`, ...all.map(([v]) => v));
    return b.reshape(r, [T, r.shape[1], -1, dOut]);
  }
  // The index modes are the core's last axes, contracted with their factors' Kronecker product
  // K[(p l), (q e)] = F[p, q]·G[l, e] (36 × 36 at most) in one product. One mode at a time needed
  // a product batched over every rank triple with 3 × 3 matrices: ten times slower.
  const core = stack((t) => coreKey(t, group.index)); // [T, a, b, (c), (q), (e)]
  const rankDims = (core.shape as number[]).slice(1, att ? 4 : 3);
  const idx = [spec.stacksProjections ? f(iQkv) : undefined, spec.stacksDepth ? f(iDepth) : undefined].filter((x): x is Value => x !== undefined);
  const k = idx.length === 2 ? kron(idx[0], idx[1]) : idx[0]; // [T, S, (q e)]
  const S = k ? (k.shape[1] as number) : 1;
  const qe = k ? (k.shape[2] as number) : 1;
  if (att) {
    // [T, (a b c), S]; the output-side products then keep every gradient small
    const c = k ? b.matmul(b.reshape(core, [T, rankDims.reduce((x, y) => x * y, 1), qe]), k, { transB: true }) : core;
    return outputSideHeads(c, T, rankDims, S, f(1), f(2), headLayout === "head_major");
  }
  // [T, a, S, b] by a product batched over a, so that U_out meets [T, (a S), b]: applied to
  // [T, a, b, S] batched over a instead, U_out's gradient was an [a, dOut, b] tensor (3 M values
  // for depth at ViT-B size) summed over a
  const [a, rb] = rankDims;
  const c = k ? b.matmul(b.reshape(k, [T, 1, S, qe]), b.reshape(core, [T, a, rb, qe]), { transB: true }) : core;
  return b.reshape(b.matmul(b.reshape(c, [T, a * S, rb]), f(1), { transB: true }), [T, a, S, dOut]);
}

/** The Kronecker product of F [T, P, q] and G [T, L, e]: K[t, (p l), (q e)] = F[t, p, q]·G[t, l, e]. */
function kron(F: Value, G: Value): Value {
  const [T, P, q] = F.shape as number[];
  const [, L, e] = G.shape as number[];
  return b.reshape(b.mul(b.reshape(F, [T, P, 1, q, 1]), b.reshape(G, [T, 1, L, 1, e])), [T, P * L, q * e]);
}

/**
 * U_dh [T, dh, b] and U_heads [T, H, c] applied to C [T, a, b, c, S], giving [T, a, S, dOut] with
 * dOut head-major (h, j) or interleaved (j, h): two products, each batched over the rank axes in
 * front of the one it contracts and taking that operand transposed (which the GEMM does as it
 * packs).
 */
function outputSideHeads(c: Value, T: number, [a, rb, rc]: number[], S: number, uDh: Value, uHeads: Value, headMajor: boolean): Value {
  const [dh, H] = [uDh.shape[1] as number, uHeads.shape[1] as number];
  const t = (x: Value, dims: number[], u: Value) =>
    b.matmul(b.reshape(x, [T, ...dims]), b.reshape(u, [T, 1, ...(u.shape as number[]).slice(1)]), { transA: true, transB: true });
  const r = headMajor
    ? t(t(c, [a * rb, rc, S], uHeads), [a, rb, S * H], uDh) // [T, (a b), S, H] → [T, a, (S H), dh]
    : t(t(c, [a, rb, rc * S], uDh), [a, rc, S * dh], uHeads); // [T, a, (c S), dh] → [T, a, (S dh), H]
  return b.reshape(r, [T, a, S, H * dh]);
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
      all ??= tensorSlicesR(config, group, Array.from({ length: tensorCount(group.construction, group.shape) }, (_, i) => i), get); // [T, r_in, S, dOut]
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
  return (x: Value, sites: LinearSite[]) => {
    const at = sites.map((site) => where.get(site.path));
    // x times every input factor in one GEMM per kind: LoRA's A [r, in], and U_in [in, r] of each
    // distinct (group, tensor) read by a site that is not transposed
    const loraSites = sites.filter((_, i) => at[i] && lora(at[i]!.group));
    const us = projectOnce(x, loraSites.map((s) => get(loraKeys(s).a)), true);
    const uIn = new Map<string, number>();
    const uInKeys: string[] = [];
    at.forEach((a) => {
      if (!a || lora(a.group) || a.group.members[a.p].transposed) return;
      const k = factorKey(tensorIndex(a.group.construction, a.group.shape, a.p, a.l).tensor, 0, a.group.index);
      if (!uIn.has(k)) uIn.set(k, uInKeys.push(k) - 1);
    });
    const xu = projectOnce(x, uInKeys.map(get), false); // [B, T, r_in] each
    return sites.map((site, i) => {
      const a = at[i];
      if (!a) return undefined;
      if (lora(a.group)) return b.matmul(us[loraSites.indexOf(site)], get(loraKeys(site).b), { transB: true, alpha: scaling });
      const r = a.slice(a.p, a.l);
      const u = factorKey(tensorIndex(a.group.construction, a.group.shape, a.p, a.l).tensor, 0, a.group.index);
      // transposed (heads on the input): y += s·(x Rᵀ) U_inᵀ
      if (a.group.members[a.p].transposed) return b.matmul(b.matmul(x, r, { transB: true }), get(u), { transB: true, alpha: scaling });
      return b.matmul(xu[uIn.get(u)!], r, { alpha: scaling }); // [B, T, dOut]
    });
  };
}
