/**
 * A TensLoRA group in the graph: every adapted projection (p, l) adds s · (x U_in) R[p,l], where
 * U_in is the input factor and R[p,l] [r_in, dOut] comes from the small core and factors,
 * computed once per step for all slices of a tensor, or, where they would hold many bytes for the
 * whole step, one slice at a time where it is read and again in the backward pass. The full
 * tensor is never built.
 */
import * as b from "../ir/builder.ts";
import { zeroAfter } from "../ir/checkpoint.ts";
import { customVjp } from "../ir/custom-vjp.ts";
import type { Value } from "../ir/graph.ts";
import type { AdapterConfig, AdapterGroup } from "./config.ts";
import { CONSTRUCTION_SPECS, modeIndex, tensorCount, tensorIndex, tensorModes } from "./constructions.ts";
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

/** K/V under the GQA "mean" rule read R's mean over their query-head groups, a small op on R, not on the activations. */
function kvMean(group: AdapterGroup, p: number, r: Value): Value {
  const kv = group.members[p].kv;
  if (!kv) return r;
  const [rIn, dOut] = r.shape as number[];
  return b.reshape(b.reduceMean(b.reshape(r, [rIn, kv.heads, dOut / (kv.heads * kv.dim), kv.dim]), [2]), [rIn, kv.heads * kv.dim]);
}

/**
 * One group's R[p,l] as the site reads it, built lazily and shared: every tensor's slices in one
 * value on first use, then one [r_in, dOut] per projection (its cotangent is one slice too, and
 * the engine concatenates the slices' cotangents instead of adding zero-padded copies).
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
    r = kvMean(group, p, b.reshape(S === 1 ? rt : b.slice(rt, 1, i, i + 1), [rIn, dOut]));
    perSite.set(key, r);
    return r;
  };
}

/**
 * Tensor t's slices with its index modes restricted to `ranges` (mode position → [start, end)),
 * [r_in, S', dOut] p-major: the same factorisation over the parameters sliced on the axes that run
 * over those modes. `zero` (from `zeroAfter`) is added to the sliced parameters (to all of them
 * when nothing is restricted), so that a build for the backward pass is a new value that runs only
 * there.
 */
function restrictedSlices(config: AdapterConfig, group: AdapterGroup, get: Get, tensor: number, ranges: Map<number, [number, number]>, zero?: Value): Value {
  const def = FACTORIZATIONS[config.factorization];
  const modes = tensorModes(group.construction, group.shape, config.headLayout === "head_major");
  const axes = new Map(def.params(modes, group.ranks).map((s) => [s.key, s.modes]));
  const restricted = (key: string) => {
    let v = get(tensorKey(tensor, key, group.index));
    let sliced = false;
    axes.get(key)!.forEach((m, axis) => {
      const range = ranges.get(m);
      if (!range) return;
      v = b.slice(v, axis, range[0], range[1]);
      sliced = true;
    });
    if (zero && (sliced || ranges.size === 0)) v = b.add(v, zero);
    return b.reshape(v, [1, ...(v.shape as number[])]);
  };
  const sizes = modes.sizes.map((n, i) => (ranges.has(i) ? ranges.get(i)![1] - ranges.get(i)![0] : n));
  const r = def.slices(graphOps, restricted, { ...modes, sizes }); // [1, r_in, S', dOut]
  return b.reshape(r, (r.shape as number[]).slice(1));
}

/** R[p,l] alone, built from its tensor's parameters restricted to (p, l). */
function siteSlice(config: AdapterConfig, group: AdapterGroup, get: Get, p: number, l: number, zero?: Value): Value {
  const { tensor, fixed } = tensorIndex(group.construction, group.shape, p, l);
  const ranges = new Map<number, [number, number]>();
  if (fixed.qkv !== undefined) ranges.set(modeIndex(group.construction, "qkv"), [fixed.qkv, fixed.qkv + 1]);
  if (fixed.depth !== undefined) ranges.set(modeIndex(group.construction, "depth"), [fixed.depth, fixed.depth + 1]);
  const r = restrictedSlices(config, group, get, tensor, ranges, zero);
  const [rIn, , dOut] = r.shape as number[];
  return kvMean(group, p, b.reshape(r, [rIn, dOut]));
}

/**
 * R[p,l] as the backward pass of a group built slice by slice sees it: a slice of the batched
 * definition over a chunk of `chunk` layers of its tensor (all of the tensor where it does not stack
 * the layers). The forward pass never computes it; its slices' cotangents are concatenated and
 * differentiated once per chunk, so no concatenation holds more than a chunk of slices at once.
 */
function chunkedSlices(config: AdapterConfig, group: AdapterGroup, get: Get, chunk: number): (p: number, l: number) => Value {
  const depthMode = modeIndex(group.construction, "depth");
  const L = group.shape.layers;
  const chunks = new Map<string, { r: Value; start: number; n: number }>();
  return (p, l) => {
    const { tensor, fixed } = tensorIndex(group.construction, group.shape, p, l);
    const start = depthMode < 0 ? 0 : Math.floor(l / chunk) * chunk;
    const key = `${tensor},${start}`;
    let c = chunks.get(key);
    if (!c) {
      const n = depthMode < 0 ? 1 : Math.min(chunk, L - start);
      const ranges = new Map<number, [number, number]>(depthMode < 0 ? [] : [[depthMode, [start, start + n]]]);
      c = { r: restrictedSlices(config, group, get, tensor, ranges), start, n };
      chunks.set(key, c);
    }
    const [rIn, S, dOut] = c.r.shape as number[];
    const i = (fixed.qkv ?? 0) * c.n + (depthMode < 0 ? 0 : l - c.start);
    return kvMean(group, p, b.reshape(S === 1 ? c.r : b.slice(c.r, 1, i, i + 1), [rIn, dOut]));
  };
}

/**
 * alpha · a·R (a·Rᵀ with `transB`) for the slice R = `declared`, computed from `built`, a copy of R
 * built for this product alone; its gradient is declared's, so R's cotangent joins the other
 * slices' of its chunk in one Concat and the slices' definition is differentiated once per chunk,
 * as when R is read from `declared`. The backward pass builds R again (`rebuild`, behind the
 * cotangent) for a's cotangent, so no R outlives its product and `declared` is never computed.
 */
function productWithSlice(a: Value, declared: Value, built: Value, rebuild: (zero: Value) => Value, transB: boolean, alpha: number): Value {
  const y = b.matmul(a, built, { transB, alpha });
  customVjp([a, declared, built], [y], ([g], [needA, needR]) => {
    const da = needA ? b.matmul(g!, rebuild(zeroAfter(g!)), { transB: !transB, alpha }) : undefined;
    if (!needR) return [da, undefined, undefined];
    // one flat GEMM over the batch axes where the shapes are known, as the MatMul rule does
    const flat = a.shape.every((d) => typeof d === "number");
    const a2 = flat ? b.reshape(a, [-1, a.shape.at(-1)!]) : a;
    const g2 = flat ? b.reshape(g!, [-1, g!.shape.at(-1)!]) : g!;
    const dr = transB ? b.matmul(g2, a2, { transA: true, alpha }) : b.matmul(a2, g2, { transA: true, alpha });
    // a's cotangent waits for R's: ONNX Runtime otherwise runs every slice's xᵀ·g only where the
    // slices' cotangents are concatenated, after the whole backward pass, and holds each g
    // [tokens, dOut] until then (512 MiB of them at the 1B shape, for 262 MiB of slices)
    return [da && b.add(da, zeroAfter(dr)), dr, undefined];
  });
  return y;
}

/**
 * A group whose slices R[p,l] hold at least this many bytes of float32 together (P·L slices of
 * [r_in, dOut]) builds each slice where its site reads it, and again in the backward pass, instead
 * of all at once for the whole step. At LoRA's budget that is every group of the Llama-3.2-1B shape
 * (28 to 262 MiB at r = 16), and no group of ViT-B or RoBERTa-base (at most 13.4 MiB at r = 8),
 * whose steps are short enough that the per-node overhead of one build per slice would show.
 */
const REMAT_SLICE_BYTES = 16 * 2 ** 20;

/** How a group's sites are built in the graph. */
export interface SiteGraphOptions {
  /** Build slices one at a time from this many bytes of R per group (default `REMAT_SLICE_BYTES`; 0: always). */
  rematSliceBytes?: number;
}

/**
 * How each site of a TensLoRA group adds its update: y += s·(x U_in) R[p,l], x U_in shared by the
 * sites of one tensor; a transposed site (heads on its input) adds s·(x Rᵀ) U_inᵀ.
 */
export function tensorSiteUpdates(config: AdapterConfig, group: AdapterGroup, get: Get, options: SiteGraphOptions = {}): (p: number, l: number) => SiteUpdate {
  const fact = FACTORIZATIONS[config.factorization];
  const scaling = config.scaling;
  const threshold = options.rematSliceBytes ?? REMAT_SLICE_BYTES;
  const perLayer = 4 * group.shape.projections.length * fact.inputRank(group.ranks) * group.shape.dOut;
  const oneByOne = perLayer * group.shape.layers >= threshold;
  // chunks of at most 4 × the threshold: smaller ones add more cotangents of the output factors
  // (one [dOut, r_out] per chunk) to their sum, a larger one is a larger Concat at the end of the
  // backward pass (262 MiB for gate and up at the 1B shape took ONNX Runtime's arena a new region)
  const slice = oneByOne ? chunkedSlices(config, group, get, Math.max(1, Math.floor((4 * threshold) / perLayer))) : groupSlices(config, group, get);
  const times = (p: number, l: number, a: Value, transB: boolean, alpha: number) => {
    const r = slice(p, l);
    if (!oneByOne) return b.matmul(a, r, { transB, alpha });
    const build = (zero?: Value) => siteSlice(config, group, get, p, l, zero);
    return productWithSlice(a, r, build(), build, transB, alpha);
  };
  // U_in [dIn, r_in] (a TT core [1, dIn, r₁] is reshaped)
  const input = (key: string) => {
    const u = get(key);
    return u.rank === 2 ? u : b.reshape(u, (u.shape as number[]).slice(-2));
  };
  return (p, l) => {
    const key = tensorKey(tensorIndex(group.construction, group.shape, p, l).tensor, fact.inputKey, group.index);
    if (group.members[p].transposed) {
      return { output: (x) => b.matmul(times(p, l, x, true, 1), input(key), { transB: true, alpha: scaling }) };
    }
    return {
      input: { key, value: () => input(key), transB: false },
      output: (_x, xu) => times(p, l, xu!, false, scaling), // [B, T, dOut]
    };
  };
}
