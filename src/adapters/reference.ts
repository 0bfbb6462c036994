/**
 * CPU reference for the update matrices of every construction, in two independent ways:
 *
 * 1. folded (the official code's route, for tests only): rebuild the FULL tensor, take the slice
 *    at the index modes (qkv = p, depth = l), unfold it to M [dIn, dOut];
 * 2. sliced (DESIGN.md §2, what merge and the graph use): M = U_in · R[p,l] with
 *    R[p,l] [r_in, dOut] from the core contracted with the index-mode rows first, then with the
 *    output-side factors. Nothing of size dIn·dOut·P·L is ever built.
 *
 * The adapter acts as y = x Wᵀ + s · x M, so in nn.Linear convention ΔW = s · Mᵀ [dOut, dIn].
 *
 * Head layout of the (in, dh, heads) constructions: `head_major` puts (j, h) at output column
 * h·dh + j (HuggingFace heads own contiguous blocks); `interleaved` puts it at j·H + h, the
 * row-major `tl.unfold(T, 0)` of the official code.
 */
import { ShapeError } from "../errors.ts";
import {
  type Dense,
  matmul,
  modeDot,
  modeDotVector,
  permute,
  reshape,
  scale,
  sliceMode,
  transpose2d,
  unfold,
} from "../tensor/dense.ts";
import {
  type CpTensor,
  type TuckerTensor,
  cpToTensor,
  isTucker,
  tuckerToTensor,
  validateCp,
  validateTucker,
} from "../tensor/tucker.ts";
import {
  CONSTRUCTION_SPECS,
  type Construction,
  type ModelShape,
  modeIndex,
  modeSizes,
  parseConstruction,
  tensorCount,
  tensorIndex,
} from "./constructions.ts";

export type HeadLayout = "head_major" | "interleaved";

/** LoRA's pair: A [r, dIn], B [dOut, r]; ΔW = s · B A. */
export interface LoraPair {
  a: Dense;
  b: Dense;
}

export type AdapterTensor = TuckerTensor | CpTensor | LoraPair;

/** Everything that defines the update matrices of one adapter family. */
export interface AdapterState {
  construction: Construction;
  shape: ModelShape;
  /** One entry per tensor, indexed by `tensorIndex(...).tensor`. */
  tensors: AdapterTensor[];
  headLayout: HeadLayout;
  scaling: number;
}

function isLoraPair(t: AdapterTensor): t is LoraPair {
  return (t as LoraPair).a !== undefined && (t as LoraPair).b !== undefined;
}

/** The two matrices with M = U_in · R[p,l]. */
export interface SliceFactors {
  /** [dIn, r_in]: factor 0 (Tucker, CP) or Aᵀ (LoRA). */
  uIn: Dense;
  /** [r_in, dOut]. */
  r: Dense;
}

function checkTensor(c: Construction, shape: ModelShape, t: AdapterTensor): void {
  const lora = CONSTRUCTION_SPECS[c].kind === "lora";
  if (lora !== isLoraPair(t)) {
    throw new ShapeError(`construction "${c}" needs ${lora ? "LoRA pairs {a, b}" : "Tucker or CP tensors"}, got ${isLoraPair(t) ? "a LoRA pair" : "a factorised tensor"}`);
  }
  if (isLoraPair(t)) {
    const [r, dIn] = t.a.shape;
    if (t.a.shape.length !== 2 || dIn !== shape.dIn || t.b.shape.length !== 2 || t.b.shape[0] !== shape.dOut || t.b.shape[1] !== r) {
      throw new ShapeError(`LoRA pair: A must be [r, ${shape.dIn}] and B [${shape.dOut}, r], got A [${t.a.shape.join(", ")}], B [${t.b.shape.join(", ")}]`);
    }
    return;
  }
  const sizes = modeSizes(c, shape);
  if (isTucker(t)) validateTucker(t, sizes);
  else validateCp(t, sizes);
}

function tensorFor(state: AdapterState, p: number, l: number): AdapterTensor {
  const c = parseConstruction(state.construction);
  const count = tensorCount(c, state.shape);
  if (state.tensors.length !== count) {
    throw new ShapeError(`construction "${c}" has ${count} tensors for this model, got ${state.tensors.length}`);
  }
  const t = state.tensors[tensorIndex(c, state.shape, p, l).tensor];
  checkTensor(c, state.shape, t);
  return t;
}

/**
 * The (in, dh, heads) slice as [dIn, dOut] with the chosen head layout. head_major: column
 * h·dh + j, i.e. permute to (in, heads, dh) and reshape; interleaved: TensorLy's unfold(T, 0).
 */
function attToMatrix(t: Dense, layout: HeadLayout): Dense {
  const [rows, dh, heads] = t.shape;
  if (layout === "interleaved") return unfold(t, 0);
  return reshape(permute(t, [0, 2, 1]), [rows, heads * dh]);
}

function checkLayout(layout: string): void {
  if (layout !== "head_major" && layout !== "interleaved") {
    throw new ShapeError(`headLayout must be "head_major" or "interleaved", got "${layout}"`);
  }
}

/** M [dIn, dOut] of projection (p, l), unscaled, by folding the full tensor (test reference). */
export function updateMatrixFolded(state: AdapterState, p: number, l: number): Dense {
  const c = parseConstruction(state.construction);
  checkLayout(state.headLayout);
  const t = tensorFor(state, p, l);
  if (isLoraPair(t)) return transpose2d(matmul(t.b, t.a)); // M = (B A)ᵀ
  let full = isTucker(t) ? tuckerToTensor(t) : cpToTensor(t);
  const { fixed } = tensorIndex(c, state.shape, p, l);
  // slice the later mode first so the earlier mode's position is unchanged
  if (fixed.depth !== undefined) full = sliceMode(full, modeIndex(c, "depth"), fixed.depth);
  if (fixed.qkv !== undefined) full = sliceMode(full, modeIndex(c, "qkv"), fixed.qkv);
  return CONSTRUCTION_SPECS[c].hasAtt ? attToMatrix(full, state.headLayout) : full;
}

/** ΔW [dOut, dIn] = s · Mᵀ through the folded tensor. */
export function deltaWeightReference(state: AdapterState, p: number, l: number): Dense {
  return scale(transpose2d(updateMatrixFolded(state, p, l)), state.scaling);
}

/**
 * U_in [dIn, r_in] and R[p,l] [r_in, dOut] with M = U_in · R[p,l], without folding the tensor:
 * - Tucker: G' = G ×_qkv U_qkv[p, :] ×_depth U_depth[l, :] (vectors: those modes vanish), then
 *   R = G' ×_out U_out (mode 0 left at rank r_in), or for att G' ×_dh U_dh ×_heads U_heads
 *   unfolded with the head layout;
 * - CP: R[a, :] = w_a · U_qkv[p, a] · U_depth[l, a] · (output-side factor row a), the same
 *   contraction with a superdiagonal core;
 * - LoRA: U_in = Aᵀ, R = Bᵀ.
 */
export function sliceFactorsR(
  construction: Construction,
  shape: ModelShape,
  tensor: AdapterTensor,
  headLayout: HeadLayout,
  p: number,
  l: number,
): SliceFactors {
  const c = parseConstruction(construction);
  checkLayout(headLayout);
  checkTensor(c, shape, tensor);
  if (isLoraPair(tensor)) return { uIn: transpose2d(tensor.a), r: transpose2d(tensor.b) };
  const { fixed } = tensorIndex(c, shape, p, l);
  const att = CONSTRUCTION_SPECS[c].hasAtt;
  const iQkv = modeIndex(c, "qkv");
  const iDepth = modeIndex(c, "depth");
  if (isTucker(tensor)) {
    let g = tensor.core;
    const row = (n: number, i: number): Float64Array => {
      const f = tensor.factors[n];
      return Float64Array.from(f.data.subarray(i * f.shape[1], (i + 1) * f.shape[1]));
    };
    // depth first: it is the last mode, so removing it leaves the qkv mode's position unchanged
    if (fixed.depth !== undefined) g = modeDotVector(g, row(iDepth, fixed.depth), iDepth);
    if (fixed.qkv !== undefined) g = modeDotVector(g, row(iQkv, fixed.qkv), iQkv);
    if (!att) return { uIn: tensor.factors[0], r: modeDot(g, tensor.factors[1], 1) };
    g = modeDot(modeDot(g, tensor.factors[1], 1), tensor.factors[2], 2); // [r_in, dh, H]
    return { uIn: tensor.factors[0], r: attToMatrix(g, headLayout) };
  }
  return { uIn: tensor.factors[0], r: cpSliceR(tensor, att, headLayout, iQkv, iDepth, fixed) };
}

/** R[p,l] of a CP tensor, written out entry by entry. */
function cpSliceR(
  t: CpTensor,
  att: boolean,
  layout: HeadLayout,
  iQkv: number,
  iDepth: number,
  fixed: { qkv?: number; depth?: number },
): Dense {
  const R = t.factors[0].shape[1];
  const coef = new Float64Array(R);
  for (let a = 0; a < R; a++) {
    let v = t.weights ? t.weights.data[a] : 1;
    if (fixed.qkv !== undefined) v *= t.factors[iQkv].data[fixed.qkv * R + a];
    if (fixed.depth !== undefined) v *= t.factors[iDepth].data[fixed.depth * R + a];
    coef[a] = v;
  }
  if (!att) {
    const out = t.factors[1];
    const dOut = out.shape[0];
    const r = new Float64Array(R * dOut);
    for (let a = 0; a < R; a++) for (let c = 0; c < dOut; c++) r[a * dOut + c] = coef[a] * out.data[c * R + a];
    return { shape: [R, dOut], data: r };
  }
  const [uDh, uHeads] = [t.factors[1], t.factors[2]];
  const dh = uDh.shape[0];
  const H = uHeads.shape[0];
  const r = new Float64Array(R * dh * H);
  for (let a = 0; a < R; a++) {
    for (let j = 0; j < dh; j++) {
      for (let h = 0; h < H; h++) {
        const col = layout === "head_major" ? h * dh + j : j * H + h;
        r[a * dh * H + col] = coef[a] * uDh.data[j * R + a] * uHeads.data[h * R + a];
      }
    }
  }
  return { shape: [R, dh * H], data: r };
}

/** ΔW [dOut, dIn] = s · (U_in R[p,l])ᵀ through the sliced path (what merge folds into W). */
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
