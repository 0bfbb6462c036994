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
 * All R[p,l] of tensor t as one value [P?, L?, r_in, dOut] (index modes first, present only if
 * the construction has them). Index modes are contracted before the output-side factors, so
 * intermediates stay at rank size.
 */
export function allSlicesR(set: AdapterSet, t: number, get: Get): Value {
  const { construction, factorization, headLayout } = set.config;
  const spec = CONSTRUCTION_SPECS[construction];
  const f = (i: number) => get(factorKey(t, i));
  const att = spec.hasAtt;
  const iQkv = att ? 3 : 2;
  const iDepth = iQkv + (spec.stacksProjections ? 1 : 0);
  const prefix = (spec.stacksProjections ? "P" : "") + (spec.stacksDepth ? "L" : "");
  const heads = headLayout === "head_major" ? "HJ" : "JH";
  let r: Value;
  if (factorization === "cp") {
    // superdiagonal core: R[a, o] = Π (index-factor rows)[a] · U_out[o, a]
    const idx = [spec.stacksProjections ? [f(iQkv), "Pr"] : undefined, spec.stacksDepth ? [f(iDepth), "Lr"] : undefined].filter(
      (x): x is [Value, string] => x !== undefined,
    );
    const out: [Value, string][] = att ? [[f(1), "Jr"], [f(2), "Hr"]] : [[f(1), "Or"]];
    const all = [...idx, ...out];
    r = b.einsum(`${all.map(([, s]) => s).join(",")}->${prefix}r${att ? heads : "O"}`, ...all.map(([v]) => v));
  } else {
    let cur = "a" + (att ? "bc" : "b") + (spec.stacksProjections ? "q" : "") + (spec.stacksDepth ? "e" : "");
    r = get(coreKey(t));
    if (spec.stacksProjections) {
      const next = "P" + cur.replace("q", "");
      r = b.einsum(`${cur},Pq->${next}`, r, f(iQkv));
      cur = next;
    }
    if (spec.stacksDepth) {
      const p = cur.startsWith("P") ? "P" : "";
      const next = p + "L" + cur.slice(p.length).replace("e", "");
      r = b.einsum(`${cur},Le->${next}`, r, f(iDepth));
      cur = next;
    }
    return outputSide(r, f(1), att ? f(2) : undefined, headLayout === "head_major", set.shape.dOut);
  }
  const dims = r.shape as number[];
  const lead = dims.slice(0, prefix.length);
  return att ? b.reshape(r, [...lead, dims[prefix.length], set.shape.dOut]) : r;
}

/**
 * The output-side factors applied to a core C [..., a, b] (U_out [dOut, b]) or [..., a, b, c]
 * (U_dh [dh, b], U_heads [H, c]), as GEMMs on flattened views rather than Einsum: ONNX Runtime ran
 * these contractions and their gradients (three or more contracted indices) at 3–25 GFLOP/s,
 * which made the stacked constructions' steps up to 25 % slower than LoRA's at the same budget.
 * With heads, the first contraction is a product batched over (... a) that leaves the other
 * rank axis where the second, flat GEMM wants it, so the core is never transposed: ONNX Runtime's
 * Transpose of such small inner axes took 1 ms a step on 2 threads and 10 on 16 (a tenth of the
 * step's adapter cost there), and so did its gradient.
 */
function outputSide(core: Value, uOut: Value, uHeads: Value | undefined, headMajor: boolean, dOut: number): Value {
  const dims = core.shape as number[];
  if (!uHeads) {
    const rows = b.matmul(b.reshape(core, [-1, dims.at(-1)!]), uOut, { transB: true }); // [(... a), dOut]
    return b.reshape(rows, [...dims.slice(0, -1), dOut]);
  }
  const [rb, rc] = dims.slice(-2);
  const n = dims.slice(0, -2).reduce((x, y) => x * y, 1); // (... a)
  const c3 = b.reshape(core, [n, rb, rc]);
  const [dh, H] = [uOut.shape[0] as number, uHeads.shape[0] as number];
  // head-major R[n, h, j]: S[n, h, b] = Σ_c U_heads[h, c] C[n, b, c], then Σ_b S[n·h, b] U_dh[j, b];
  // interleaved R[n, j, h]: V[n, j, c] = Σ_b U_dh[j, b] C[n, b, c], then Σ_c V[n·j, c] U_heads[h, c]
  const [first, rows, second] = headMajor
    ? [b.matmul(uHeads, c3, { transB: true }), n * H, uOut]
    : [b.matmul(uOut, c3), n * dh, uHeads];
  const r = b.matmul(b.reshape(first, [rows, first.shape[2] as number]), second, { transB: true });
  return b.reshape(r, [...dims.slice(0, -2), dOut]);
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
    if (!all) {
      // [P?, L?, r_in, dOut] with the index modes flattened into one leading axis, so each
      // projection copies only its own [r_in, dOut] row (and its cotangent is one row too)
      const r = allSlicesR(set, t, get);
      const dims = r.shape as number[];
      const nIdx = dims.length - 2;
      all = nIdx === 0 ? r : b.reshape(r, [dims.slice(0, nIdx).reduce((x, y) => x * y, 1), ...dims.slice(nIdx)]);
      rAll.set(t, all);
    }
    if (all.rank !== 3) return all;
    const L = spec.stacksDepth ? set.shape.layers : 1;
    const i = (fixed.qkv ?? 0) * L + (fixed.depth ?? 0);
    return b.reshape(b.slice(all, 0, i, i + 1), (all.shape as number[]).slice(1));
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
