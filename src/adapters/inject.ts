/**
 * Adapters in the graph. Every adapted projection (p, l) adds s · (x U_in) R[p,l]: U_in is the
 * input factor (LoRA: Aᵀ) and R[p,l] [r_in, dOut] comes from the small core and factors, computed
 * once per step for all slices of a tensor. The full tensor is never built.
 */
import * as b from "../ir/builder.ts";
import type { Value } from "../ir/graph.ts";
import type { ProjectionHook } from "../models/types.ts";
import { type AdapterSet, coreKey, factorKey, loraKeys } from "./adapter-set.ts";
import { CONSTRUCTION_SPECS, type SliceIndex, tensorCount, tensorIndex } from "./constructions.ts";

type Get = (name: string) => Value;

/** All R[p,l] of tensor t as one value [r_in, S, dOut] (see `tensorSlicesR`). */
export function allSlicesR(set: AdapterSet, t: number, get: Get): Value {
  const r = tensorSlicesR(set, [t], get);
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
function tensorSlicesR(set: AdapterSet, ts: number[], get: Get): Value {
  const { construction, factorization, headLayout } = set.config;
  const spec = CONSTRUCTION_SPECS[construction];
  const T = ts.length;
  const stack = (key: (t: number) => string) =>
    b.concat(
      ts.map((t) => get(key(t))).map((v) => b.reshape(v, [1, ...(v.shape as number[])])),
      0,
    );
  const f = (i: number) => stack((t) => factorKey(t, i)); // [T, ...]
  const att = spec.hasAtt;
  const iQkv = att ? 3 : 2;
  const iDepth = iQkv + (spec.stacksProjections ? 1 : 0);
  const dOut = set.shape.dOut;
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
  const core = stack((t) => coreKey(t)); // [T, a, b, (c), (q), (e)]
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

/** The projection hook that adds every adapted layer's update; values are built lazily and shared. */
export function adapterHook(set: AdapterSet, get: Get): ProjectionHook {
  const { construction, scaling } = set.config;
  const spec = CONSTRUCTION_SPECS[construction];
  const where = new Map<string, { p: number; l: number }>();
  set.grid.forEach((row, p) => row.forEach((site, l) => where.set(site.path, { p, l })));
  // every tensor's slices in one value, built on first use; then one [r_in, S, dOut] per tensor
  let all: Value | undefined;
  const perTensor = new Map<number, Value>();
  const sliceR = (t: number, fixed: SliceIndex["fixed"]): Value => {
    let rt = perTensor.get(t);
    if (!rt) {
      all ??= tensorSlicesR(set, Array.from({ length: tensorCount(construction, set.shape) }, (_, i) => i), get); // [T, r_in, S, dOut]
      const dims = (all.shape as number[]).slice(1);
      perTensor.set(t, (rt = b.reshape(all.shape[0] === 1 ? all : b.slice(all, 0, t, t + 1), dims)));
    }
    const [rIn, S, dOut] = rt.shape as number[];
    const L = spec.stacksDepth ? set.shape.layers : 1;
    const i = (fixed.qkv ?? 0) * L + (fixed.depth ?? 0);
    // one [r_in, dOut] slice per projection: its cotangent is one slice too, and the engine
    // concatenates the slices' cotangents instead of adding zero-padded copies
    return b.reshape(S === 1 ? rt : b.slice(rt, 1, i, i + 1), [rIn, dOut]);
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
