/**
 * CPU reference for the update matrices of every construction, in two independent ways:
 *
 * 1. folded (the official code's route, for tests only): rebuild the FULL tensor, take the slice
 *    at the index modes (qkv = p, depth = l), unfold it to M [dIn, dOut];
 * 2. sliced (docs/adapters.md §2, what merge, export and the graph use): M = U_in · R[p,l] with
 *    R[p,l] [r_in, dOut] from the factorisation's own slice definition (the same one the graph
 *    runs, evaluated here in float64). Nothing of size dIn·dOut·P·L is ever built.
 *
 * The adapter acts as y = x Wᵀ + s · x M, so in nn.Linear convention ΔW = s · Mᵀ [dOut, dIn].
 *
 * Head layout of the (in, dh, heads) constructions: `head_major` puts (j, h) at output column
 * h·dh + j (HuggingFace heads own contiguous blocks); `interleaved` puts it at j·H + h, the
 * row-major `tl.unfold(T, 0)` of the official code.
 */
import { ShapeError } from "../errors.ts";
import { type Dense, matmul, scale, transpose2d } from "../tensor/dense.ts";
import type { CpTensor, TuckerTensor } from "../tensor/tucker.ts";
import { type Construction, type ModelShape, tensorCount, tensorIndex } from "./constructions.ts";
import type { Factorization } from "./factorizations/index.ts";
import { methodOf } from "./methods.ts";

/** How a projection's output features are ordered by head: contiguous per head, or interleaved. */
export type HeadLayout = "head_major" | "interleaved";

/** LoRA's pair: A [r, dIn], B [dOut, r]; ΔW = s · B A. */
export interface LoraPair {
  a: Dense;
  b: Dense;
}

/** A factorised tensor: its factorisation's named parameters ("core", "factors.<i>", "cores.<k>", …) and ranks. */
export interface FactorisedTensor {
  factorization: Factorization;
  ranks: number[];
  params: Map<string, Dense>;
}

export type AdapterTensor = FactorisedTensor | LoraPair;

/** A Tucker or CP tensor (TensorLy's layout) as an adapter tensor; CP weights are folded into factor 0. */
export function factorisedFrom(t: TuckerTensor | CpTensor): FactorisedTensor {
  const named = (factors: Dense[]) => factors.map((u, i): [string, Dense] => [`factors.${i}`, u]);
  if ("core" in t) return { factorization: "tucker", ranks: [...t.core.shape], params: new Map([["core", t.core], ...named(t.factors)]) };
  const [u0, ...rest] = t.factors;
  const R = u0.shape[1];
  const w = t.weights;
  const first = w ? { shape: u0.shape, data: Float64Array.from(u0.data, (v, i) => v * w.data[i % R]) } : u0;
  return { factorization: "cp", ranks: [R], params: new Map(named([first, ...rest])) };
}

/** Everything that defines the update matrices of one adapter family. */
export interface AdapterState {
  construction: Construction;
  shape: ModelShape;
  /** One entry per tensor, indexed by `tensorIndex(...).tensor`. */
  tensors: AdapterTensor[];
  headLayout: HeadLayout;
  scaling: number;
}

/** The two matrices with M = U_in · R[p,l]. */
export interface SliceFactors {
  /** [dIn, r_in]: factor 0 (Tucker, CP), the first core (TT) or Aᵀ (LoRA). */
  uIn: Dense;
  /** [r_in, dOut]. */
  r: Dense;
}

function tensorFor(state: AdapterState, p: number, l: number): AdapterTensor {
  const c = state.construction;
  const count = tensorCount(c, state.shape);
  if (state.tensors.length !== count) {
    throw new ShapeError(`construction "${c}" has ${count} tensors for this model, got ${state.tensors.length}`);
  }
  const t = state.tensors[tensorIndex(c, state.shape, p, l).tensor];
  methodOf(c).checkTensor(state.shape, t);
  return t;
}

function checkLayout(layout: string): void {
  if (layout !== "head_major" && layout !== "interleaved") {
    throw new ShapeError(`headLayout must be "head_major" or "interleaved", got "${layout}"`);
  }
}

/** M [dIn, dOut] of projection (p, l), unscaled, by folding the full tensor (test reference). */
export function updateMatrixFolded(state: AdapterState, p: number, l: number): Dense {
  checkLayout(state.headLayout);
  return methodOf(state.construction).folded(state.shape, tensorFor(state, p, l), state.headLayout, p, l);
}

/** ΔW [dOut, dIn] = s · Mᵀ through the folded tensor. */
export function deltaWeightReference(state: AdapterState, p: number, l: number): Dense {
  return scale(transpose2d(updateMatrixFolded(state, p, l)), state.scaling);
}

/**
 * U_in [dIn, r_in] and R[p,l] [r_in, dOut] with M = U_in · R[p,l], without folding the tensor: the
 * factorisation's slices (its one definition, shared with the graph) on the host in float64, then
 * the (p, l) slice. LoRA: U_in = Aᵀ, R = Bᵀ.
 */
export function sliceFactorsR(
  construction: Construction,
  shape: ModelShape,
  tensor: AdapterTensor,
  headLayout: HeadLayout,
  p: number,
  l: number,
): SliceFactors {
  const method = methodOf(construction);
  checkLayout(headLayout);
  return method.slice(shape, tensor, headLayout, p, l);
}

/** ΔW [dOut, dIn] = s · (U_in R[p,l])ᵀ through the sliced path. */
export function deltaWeightSliced(state: AdapterState, p: number, l: number): Dense {
  const t = tensorFor(state, p, l);
  const { uIn, r } = sliceFactorsR(state.construction, state.shape, t, state.headLayout, p, l);
  return scale(transpose2d(matmul(uIn, r)), state.scaling);
}

/**
 * Columns of M [rows, H·dh] averaged over each query-head group: column j·dh + c of the result is
 * the mean of columns (j·g + i)·dh + c, i < g = H / kvHeads (query head h reads K/V head ⌊h/g⌋).
 */
export function meanOverQueryHeads(m: Dense, kvHeads: number, headDim: number): Dense {
  const [rows, cols] = m.shape;
  const g = cols / (kvHeads * headDim);
  const out = new Float64Array(rows * kvHeads * headDim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < kvHeads; j++) {
      for (let c = 0; c < headDim; c++) {
        let sum = 0;
        for (let i = 0; i < g; i++) sum += m.data[r * cols + (j * g + i) * headDim + c];
        out[(r * kvHeads + j) * headDim + c] = sum / g;
      }
    }
  }
  return { shape: [rows, kvHeads * headDim], data: out };
}

/** How a site reads its group's slice: K/V averaged to their heads, an attention output transposed. */
export interface SliceView {
  /** K/V under the GQA "mean" rule: their heads and head size. */
  kv?: { heads: number; dim: number };
  transposed: boolean;
}

/**
 * ΔW [out, in] of the site that is projection p of block l, with its view: s · (U_in R̄)ᵀ where R̄
 * is R[p,l] (K/V: averaged over query-head groups), or s · U_in R[p,l] for a transposed site.
 */
export function siteDeltaWeight(state: AdapterState, view: SliceView, p: number, l: number): Dense {
  const t = tensorFor(state, p, l);
  const { uIn, r } = sliceFactorsR(state.construction, state.shape, t, state.headLayout, p, l);
  const rv = view.kv ? meanOverQueryHeads(r, view.kv.heads, view.kv.dim) : r;
  const m = matmul(uIn, rv);
  return scale(view.transposed ? m : transpose2d(m), state.scaling);
}
