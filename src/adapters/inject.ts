/**
 * Adapters in the graph. Every adapted projection (p, l) adds s · (x U_in) R[p,l]: U_in is the
 * input factor (LoRA: Aᵀ) and R[p,l] [r_in, dOut] comes from the small core and factors, computed
 * once per step for all slices of a tensor. The full tensor is never built.
 */
import * as b from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import type { ProjectionHook } from "../models/types.ts";
import { type AdapterSet, coreKey, factorKey, loraKeys } from "./adapter-set.ts";
import { CONSTRUCTION_SPECS, type SliceIndex, tensorIndex } from "./constructions.ts";

type Get = (name: string) => Value;

/**
 * All R[p,l] of tensor t as one value [r_in, S, dOut]: S = P·L slices, p-major (1 when the
 * construction stacks neither), behind the rank axes, so each projection's slice and its
 * cotangent are one strided block each. Every contraction is a GEMM, flat or batched, and no
 * operand is ever transposed: ONNX Runtime ran Einsum on these shapes (three or more contracted
 * indices, or its own internal transposes) at 3–25 GFLOP/s, and its Transpose of the core's small
 * inner axes, with its gradient, took 1 ms a step on 2 threads and 10 ms each on 16.
 */
export function allSlicesR(set: AdapterSet, t: number, get: Get): Value {
  const { construction, factorization, headLayout } = set.config;
  const spec = CONSTRUCTION_SPECS[construction];
  const f = (i: number) => get(factorKey(t, i));
  const att = spec.hasAtt;
  const iQkv = att ? 3 : 2;
  const iDepth = iQkv + (spec.stacksProjections ? 1 : 0);
  const dOut = set.shape.dOut;
  if (factorization === "cp") {
    // superdiagonal core: R[a, o] = Π (index-factor rows)[a] · U_out[o, a]
    const prefix = (spec.stacksProjections ? "P" : "") + (spec.stacksDepth ? "L" : "");
    const idx = [spec.stacksProjections ? [f(iQkv), "Pr"] : undefined, spec.stacksDepth ? [f(iDepth), "Lr"] : undefined].filter(
      (x): x is [Value, string] => x !== undefined,
    );
    const out: [Value, string][] = att ? [[f(1), "Jr"], [f(2), "Hr"]] : [[f(1), "Or"]];
    const all = [...idx, ...out];
    const r = b.einsum(`${all.map(([, s]) => s).join(",")}->r${prefix}${att ? (headLayout === "head_major" ? "HJ" : "JH") : "O"}`, ...all.map(([v]) => v));
    return b.reshape(r, [r.shape[0], -1, dOut]);
  }
  // The index modes are the core's last axes, contracted with their factors' Kronecker product
  // K[(p l), (q e)] = F[p, q]·G[l, e] (36 × 36 at most) in one product. One mode at a time needed
  // a product batched over every rank triple with 3 × 3 matrices: ten times slower.
  const core = get(coreKey(t));
  const rankDims = (core.shape as number[]).slice(0, att ? 3 : 2);
  const idx = [spec.stacksProjections ? f(iQkv) : undefined, spec.stacksDepth ? f(iDepth) : undefined].filter((x): x is Value => x !== undefined);
  const k = idx.length === 2 ? kron(idx[0], idx[1]) : idx[0]; // [S, (q e)]
  const S = k ? (k.shape[0] as number) : 1;
  const qe = k ? (k.shape[1] as number) : 1;
  if (att) {
    // [(a b c), S] by one flat GEMM; the output-side products then keep every gradient small
    const c = k ? b.matmul(b.reshape(core, [rankDims.reduce((x, y) => x * y, 1), qe]), k, { transB: true }) : core;
    return outputSideHeads(c, rankDims, S, f(1), f(2), headLayout === "head_major");
  }
  // [a, S, b] by a product batched over a, so that U_out meets a flat [(a S), b]: batched over a
  // instead, U_out's gradient was an [a, dOut, b] tensor summed over a, and depth's step 3 % slower
  const [a, rb] = rankDims;
  const c = k ? b.matmul(k, b.reshape(core, [a, rb, qe]), { transB: true }) : core;
  return b.reshape(b.matmul(b.reshape(c, [a * S, rb]), f(1), { transB: true }), [a, S, dOut]);
}

/** The Kronecker product of F [P, q] and G [L, e]: K[(p l), (q e)] = F[p, q]·G[l, e]. */
function kron(F: Value, G: Value): Value {
  const [P, q] = F.shape as number[];
  const [L, e] = G.shape as number[];
  return b.reshape(b.mul(b.reshape(F, [P, 1, q, 1]), b.reshape(G, [1, L, 1, e])), [P * L, q * e]);
}

/**
 * U_dh [dh, b] and U_heads [H, c] applied to C [a, b, c, S], giving [a, S, dOut] with dOut
 * head-major (h, j) or interleaved (j, h): two products, each batched over the rank axes in front
 * of the one it contracts and taking that operand transposed (which the GEMM does as it packs).
 */
function outputSideHeads(c: Value, [a, rb, rc]: number[], S: number, uDh: Value, uHeads: Value, headMajor: boolean): Value {
  const [dh, H] = [uDh.shape[0] as number, uHeads.shape[0] as number];
  const t = (x: Value, dims: number[], u: Value) => b.matmul(b.reshape(x, dims), u, { transA: true, transB: true });
  const r = headMajor
    ? t(t(c, [a * rb, rc, S], uHeads), [a, rb, S * H], uDh) // [(a b), S, H] → [a, (S H), dh]
    : t(t(c, [a, rb, rc * S], uDh), [a, rc, S * dh], uHeads); // [a, (c S), dh] → [a, (S dh), H]
  return b.reshape(r, [a, S, H * dh]);
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

/** The projection hook that adds every adapted layer's update; values are built lazily and shared. */
export function adapterHook(set: AdapterSet, get: Get): ProjectionHook {
  const { construction, scaling } = set.config;
  const spec = CONSTRUCTION_SPECS[construction];
  const where = new Map<string, { p: number; l: number }>();
  set.grid.forEach((row, p) => row.forEach((site, l) => where.set(site.path, { p, l })));
  const rAll = new Map<number, Value>();
  const sliceR = (t: number, fixed: SliceIndex["fixed"]): Value => {
    let all = rAll.get(t);
    if (!all) rAll.set(t, (all = allSlicesR(set, t, get))); // [r_in, S, dOut]
    const [rIn, S, dOut] = all.shape as number[];
    const L = spec.stacksDepth ? set.shape.layers : 1;
    const i = (fixed.qkv ?? 0) * L + (fixed.depth ?? 0);
    // one [r_in, dOut] slice per projection: its cotangent is one slice too, and the engine
    // concatenates the slices' cotangents instead of adding zero-padded copies
    return b.reshape(S === 1 ? all : b.slice(all, 1, i, i + 1), [rIn, dOut]);
  };
  return (x, sites) => {
    const covered = sites.map((site) => where.get(site.path));
    if (spec.kind === "lora") {
      const keys = sites.map((site, i) => (covered[i] ? loraKeys(site) : undefined));
      const us = projectOnce(x, keys.flatMap((k) => (k ? [get(k.a)] : [])), true); // [B, T, r] each
      let j = 0;
      return keys.map((k) => k && b.matmul(us[j++], get(k.b), { transB: true, alpha: scaling })); // [B, T, dOut]
    }
    const at = covered.map((c) => c && tensorIndex(construction, set.shape, c.p, c.l));
    // projections of one tensor share its U_in, so x·U_in is computed once per distinct tensor
    const tensors = [...new Set(at.flatMap((a) => (a ? [a.tensor] : [])))];
    const us = projectOnce(x, tensors.map((t) => get(factorKey(t, 0))), false); // [B, T, r_in] each
    return at.map((a) => a && b.matmul(us[tensors.indexOf(a.tensor)], sliceR(a.tensor, a.fixed), { alpha: scaling })); // [B, T, dOut]
  };
}
