import { ShapeError } from "../errors.ts";
import { checkAxis, type DType, type Dim } from "../ir/dtype-shape.ts";
import type { HostData, Node, Value } from "../ir/graph.ts";
import { Op } from "../ir/ops.ts";
import { type AttrValue, type NodeProto, elemType, int64Tensor, node, onnx, tensorProto, type TensorProto } from "./proto.ts";

export interface LowerCtx {
  name(v: Value): string;
  fresh(prefix: string): string;
  emit(n: NodeProto): void;
  /** A small constant initializer; returns its name. */
  constant(t: (name: string) => TensorProto): string;
  /** An int64 [1] tensor holding a dim's run-time value (a symbol read from a graph input's shape). */
  dim(d: Dim): string;
  /** Initializer `v`'s bytes as another ONNX element type and shape (no copy: the same external range). */
  view(v: Value, dataType: number, dims: readonly number[]): string;
  /**
   * An initializer computed from initializer `v`'s data by `make`, once per export, data and `key`
   * (the graph's products that ask for it share one array, which nothing keeps after the export but
   * the weight store); for layouts no view of the bytes gives.
   */
  derived(v: Value, key: string, dataType: number, dims: readonly number[], make: (data: HostData) => HostData): string;
}

export type LowerRule<O extends Op> = (ctx: LowerCtx, n: Node<O>) => void;

const io = (ctx: LowerCtx, n: Node) => [n.inputs.map((x) => ctx.name(x)), n.outputs.map((x) => ctx.name(x))] as const;

const direct =
  <O extends Op>(opType: string, attrs: (n: Node<O>) => Record<string, AttrValue> = () => ({})): LowerRule<O> =>
  (ctx, n) => {
    const [ins, outs] = io(ctx, n);
    ctx.emit(node(opType, ins, outs, attrs(n)));
  };

const ints = (ctx: LowerCtx, values: readonly number[], scalar = false) => ctx.constant((nm) => int64Tensor(nm, values, scalar));

function scalarOf(ctx: LowerCtx, dtype: DType, v: number): string {
  const data: HostData = dtype === "float64" ? Float64Array.of(v) : dtype === "int64" ? BigInt64Array.of(BigInt(v)) : Float32Array.of(v);
  return ctx.constant((nm) => tensorProto(nm, dtype, [], data));
}

/**
 * The target shape of Reshape/Expand as an int64 tensor. A symbolic dim the input has at the same
 * position (counted from the back for Expand) becomes ONNX's "keep" value (0 / 1) in a constant;
 * any other symbolic dim makes the shape a run-time Concat of the dims.
 */
function targetShape(ctx: LowerCtx, x: Value, shape: readonly Dim[], keep: 0 | 1): string {
  const lead = keep === 1 ? shape.length - x.rank : 0;
  const kept = shape.map((d, i) => (typeof d === "number" ? d : i >= lead && x.shape[i - lead] === d ? keep : undefined));
  if (kept.every((d) => d !== undefined)) return ints(ctx, kept as number[]);
  const out = ctx.fresh("shape");
  ctx.emit(
    node(
      "Concat",
      shape.map((d) => (typeof d === "number" ? ints(ctx, [d]) : ctx.dim(d))),
      [out],
      { axis: 0 },
    ),
  );
  return out;
}

/** The int64 scalar `out` = dim `axis` of tensor `x`. */
function sizeOf(ctx: LowerCtx, x: string, axis: number, out: string): void {
  const len = ctx.fresh("len");
  ctx.emit(node("Shape", [x], [len], { start: axis, end: axis + 1 }));
  ctx.emit(node("Squeeze", [len, ints(ctx, [0])], [out]));
}

const reduce =
  <O extends Op.ReduceSum | Op.ReduceMean>(opType: string): LowerRule<O> =>
  (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    const axes = n.params.axes.map((a) => checkAxis(a, n.inputs[0].rank, opType));
    // the IR reads empty axes as "reduce nothing"; ONNX's default would reduce every axis
    ctx.emit(node(opType, [x, ints(ctx, axes)], [y], { keepdims: n.params.keepdims ? 1 : 0, noop_with_empty_axes: 1 }));
  };

/** FusedMatMul (com.microsoft) takes the transposes and alpha for free on float32; other dtypes spell them out. */
function lowerMatMul(ctx: LowerCtx, n: Node<Op.MatMul>): void {
  const [[a, b], [y]] = io(ctx, n);
  const { transA, transB, alpha } = n.params;
  const [A, B] = n.inputs;
  if (!transA && !transB && alpha === 1) return ctx.emit(node("MatMul", [a, b], [y]));
  if (A.rank === 2 && B.rank === 2) {
    return ctx.emit(node("Gemm", [a, b], [y], { transA: +transA, transB: +transB, alpha: { float: alpha } }));
  }
  if (A.dtype === "float32") {
    return ctx.emit(node("FusedMatMul", [a, b], [y], { transA: +transA, transB: +transB, alpha: { float: alpha } }, "com.microsoft"));
  }
  const swap = (v: Value, name: string) => {
    const perm = [...Array(v.rank).keys()];
    [perm[v.rank - 2], perm[v.rank - 1]] = [perm[v.rank - 1], perm[v.rank - 2]];
    const t = ctx.fresh("t");
    ctx.emit(node("Transpose", [name], [t], { perm }));
    return t;
  };
  const prod = alpha === 1 ? y : ctx.fresh("mm");
  ctx.emit(node("MatMul", [transA ? swap(A, a) : a, transB ? swap(B, b) : b], [prod]));
  if (alpha !== 1) ctx.emit(node("Mul", [prod, scalarOf(ctx, A.dtype, alpha)], [y]));
}

/**
 * A float32 scalar 1 that ONNX Runtime can only compute once `x` exists (the concatenation of an
 * empty slice of x with a constant 1). Scaling the block scales by it keeps a dequantization next
 * to its product: without it the node reads only initializers, runs at the start of the step, and
 * the backward pass's float32 Ŵ of every layer is held through the forward.
 */
function oneAfter(ctx: LowerCtx, x: string): string {
  const [one1, one] = ["qone1", "qone"].map((p) => ctx.fresh(p));
  ctx.emit(node("Concat", [emptyAfter(ctx, x), ctx.constant((nm) => tensorProto(nm, "float32", [1], Float32Array.of(1)))], [one1], { axis: 0 }));
  ctx.emit(node("Reshape", [one1, ints(ctx, [])], [one]));
  return one;
}

/** An empty 1-D `dtype` tensor that ONNX Runtime can only compute once the float32 `x` exists: x's first zero elements. */
function emptyAfter(ctx: LowerCtx, x: string, dtype: DType = "float32"): string {
  const [flat, none] = ["qdepflat", "qdepnone"].map((p) => ctx.fresh(p));
  ctx.emit(node("Reshape", [x, ints(ctx, [-1])], [flat]));
  ctx.emit(node("Slice", [flat, ints(ctx, [0]), ints(ctx, [0])], [none]));
  if (dtype === "float32") return none;
  const cast = ctx.fresh("qdepcast");
  ctx.emit(node("Cast", [none], [cast], { to: elemType(dtype) }));
  return cast;
}

/**
 * x · Ŵᵀ at 4 bits is com.microsoft MatMulNBits on the codes (its own layout and zero point 8,
 * accuracy level 0: float32 arithmetic). x · Ŵᵀ at 8 bits with few rows (a decoding step) is two
 * 4-bit MatMulNBits on the codes' nibbles (`lowerInt8Nibbles`). Everything else dequantizes Ŵ with
 * one block-wise DequantizeLinear-21 into a float32 temporary, freed after its one product: x · Ŵ,
 * the backward pass, because no kernel reads the codes that way round (MatMulNBits on a transposed
 * packing would quantize Ŵᵀ in other blocks, a different Ŵ); and x · Ŵᵀ at 8 bits with many rows,
 * where a float32 GEMM after the dequantization beats both MatMulNBits' 8-bit kernel and the two
 * 4-bit products (docs/quantized-base.md). At 4 bits DequantizeLinear reads the same bytes as
 * uint4 [N, blocks·block] (MatMulNBits' layout puts the even column in the low nibble, as ONNX
 * packs 4-bit tensors). ONNX Runtime never constant-folds DequantizeLinear, where a Cast of the
 * initializer would be folded at load into a float32 initializer that lives as long as the session.
 */
function lowerQuantMatMul(ctx: LowerCtx, n: Node<Op.QuantMatMul>): void {
  if (n.params.bits === 16) return lowerHalfMatMul(ctx, n);
  const [[x, codes, scales], [y]] = io(ctx, n);
  const { bits, block, k, transB } = n.params;
  const [rows, blocks] = n.inputs[1].shape as number[];
  if (transB && bits === 4) {
    return ctx.emit(node("MatMulNBits", [x, codes, scales], [y], { K: k, N: rows, bits, block_size: block, accuracy_level: 0 }, "com.microsoft"));
  }
  if (transB && fewRows(n.inputs[0])) return lowerInt8Nibbles(ctx, n);
  const dims = [rows, blocks * block];
  const zeros = sharedZeros(ctx, `dq${bits}:${rows}x${blocks}`, (nm) => quantZeroPoints(nm, bits, rows, blocks));
  let flat: string;
  if (bits === 4) flat = ctx.view(n.inputs[1], UINT4, dims);
  else ctx.emit(node("Reshape", [codes, ints(ctx, dims)], [(flat = ctx.fresh("qcodes"))]));
  const [s, w] = [ctx.fresh("qscales"), ctx.fresh("qw")];
  ctx.emit(node("Mul", [scales, oneAfter(ctx, x)], [s]));
  const padded = blocks * block !== k;
  const wp = padded ? ctx.fresh("qwpad") : w;
  ctx.emit(node("DequantizeLinear", [flat, s, zeros], [wp], { axis: 1, block_size: block }));
  if (padded) ctx.emit(node("Slice", [wp, ints(ctx, [0]), ints(ctx, [k]), ints(ctx, [1])], [w]));
  floatProduct(ctx, x, w, y, transB);
}

/**
 * Rows of x up to which x · Ŵᵀ at 8 bits takes the two 4-bit products; a free row count (a step
 * graph run at one row per sequence after the prompt) counts as few. At the SmolLM2-135M and
 * Llama-3.2-1B projections (ORT 1.30, 2-core AVX2 machine) the two products took 0.15–0.96 of the
 * dequantization's time at 1–16 rows, 0.83–1.29 at 64 and 1.6–2.8 at 512 (docs/quantized-base.md).
 */
const FEW_ROWS = 16;

function fewRows(x: Value): boolean {
  const lead = x.shape.slice(0, -1);
  return lead.some((d) => typeof d !== "number") || lead.reduce<number>((a, d) => a * (d as number), 1) <= FEW_ROWS;
}

/**
 * x · Ŵᵀ on 8-bit codes as two 4-bit MatMulNBits (accuracy level 0, float32 arithmetic), since
 * MatMulNBits' own 8-bit kernel at that level took longer than dequantizing Ŵ ourselves (10–35×
 * float32's time at one row, ORT 1.30 on AVX2): (c − 128)·s = (c >> 4 − 8)·16s + (c & 15)·s. The
 * nibble planes and the scales times 16 are initializers derived from the codes and scales at
 * export, one byte a weight in all (a copy: no view of the bytes puts one nibble of each code in
 * its own tensor).
 */
function lowerInt8Nibbles(ctx: LowerCtx, n: Node<Op.QuantMatMul>): void {
  const [[x, , scales], [y]] = io(ctx, n);
  const { block, k } = n.params as { block: number; k: number };
  const [rows, blocks] = n.inputs[1].shape as number[];
  const uint8 = elemType("uint8");
  const plane = (half: "high" | "low") => ctx.derived(n.inputs[1], `${half}4`, uint8, [rows, blocks, block / 2], (c) => int8NibblePlane(c as Uint8Array, half));
  const scales16 = ctx.derived(n.inputs[2], "x16", elemType("float32"), [rows, blocks], (s) => (s as Float32Array).map((v) => v * 16));
  // MatMulNBits' 4-bit zero points: two a byte along the blocks
  const zeros = sharedZeros(ctx, `nb0:${rows}x${blocks}`, (nm) =>
    tensorProto(nm, uint8, [rows, Math.ceil(blocks / 2)], new Uint8Array(rows * Math.ceil(blocks / 2))),
  );
  const [yh, yl] = [ctx.fresh("q8high"), ctx.fresh("q8low")];
  const attrs = { K: k, N: rows, bits: 4, block_size: block, accuracy_level: 0 };
  ctx.emit(node("MatMulNBits", [x, plane("high"), scales16], [yh], attrs, "com.microsoft"));
  ctx.emit(node("MatMulNBits", [x, plane("low"), scales, zeros], [yl], attrs, "com.microsoft"));
  ctx.emit(node("Add", [yh, yl], [y]));
}

/**
 * One half of each 8-bit code [rows, blocks, block] as a 4-bit code, in MatMulNBits' 4-bit layout
 * [rows, blocks, block / 2] (the even column in the low nibble): "high" c >> 4, "low" c & 15. Then
 * (c − 128)·s = (high − 8)·16s + low·s: two 4-bit products, the high one with the default zero
 * point 8 and the block scales times 16 (exact in float32), the low one with zero point 0.
 */
export function int8NibblePlane(codes: Uint8Array, half: "high" | "low"): Uint8Array {
  if (codes.length % 2) throw new ShapeError(`int8NibblePlane: ${codes.length} codes, expected blocks of an even size`);
  const plane = new Uint8Array(codes.length / 2);
  for (let t = 0; t < plane.length; t++) {
    const [even, odd] = [codes[2 * t], codes[2 * t + 1]];
    plane[t] = half === "high" ? (even >> 4) | (odd & 0xf0) : (even & 15) | ((odd & 15) << 4);
  }
  return plane;
}

/** y = x · wᵀ (transB) or x · w for a float32 temporary w. */
function floatProduct(ctx: LowerCtx, x: string, w: string, y: string, transB: boolean): void {
  if (transB) ctx.emit(node("FusedMatMul", [x, w], [y], { transA: 0, transB: 1, alpha: { float: 1 } }, "com.microsoft"));
  else ctx.emit(node("MatMul", [x, w], [y]));
}

/** ONNX's 4-bit unsigned element type (TensorProto.DataType.UINT4, newer than onnx-proto's enum). */
const UINT4 = 21;

/** Zero-point initializers already in a model, by kind and shape: every weight of a shape shares one (the forward and backward products too). */
const zeroPointNames = new WeakMap<LowerCtx, Map<string, string>>();

function sharedZeros(ctx: LowerCtx, key: string, make: (name: string) => TensorProto): string {
  let names = zeroPointNames.get(ctx);
  if (!names) zeroPointNames.set(ctx, (names = new Map()));
  let name = names.get(key);
  if (!name) names.set(key, (name = ctx.constant(make)));
  return name;
}

/** The zero code of every block, [rows, blocks], in the codes' element type: uint4 8 or uint8 128. */
function quantZeroPoints(name: string, bits: 4 | 8, rows: number, blocks: number): TensorProto {
  const count = rows * blocks;
  const zero = 1 << (bits - 1);
  // two uint4 values a byte, the first in the low nibble
  const raw = bits === 4 ? new Uint8Array(Math.ceil(count / 2)).fill(zero * 17) : new Uint8Array(count).fill(zero);
  return onnx.TensorProto.create({ name, dataType: bits === 4 ? UINT4 : elemType("uint8"), dims: [rows, blocks], rawData: raw });
}

/**
 * x · Ŵᵀ or x · Ŵ for a float16 Ŵ [N, k]: ONNX Runtime's CPU kernels have no float16 matrix
 * product, so Ŵ is cast to a float32 temporary for its one product. The Cast reads Ŵ behind an
 * empty [0, k] float16 slice of x: a Cast of the initializer alone would be constant-folded at
 * load into a float32 initializer that lives as long as the session (the float32 base again),
 * and would run before the step, holding every layer's float32 Ŵ at once.
 */
function lowerHalfMatMul(ctx: LowerCtx, n: Node<Op.QuantMatMul>): void {
  const [[x, codes], [y]] = io(ctx, n);
  const [none, joined, w] = ["hnone", "hjoined", "hw"].map((p) => ctx.fresh(p));
  ctx.emit(node("Reshape", [emptyAfter(ctx, x, "float16"), ints(ctx, [0, n.params.k])], [none], { allowzero: 1 }));
  ctx.emit(node("Concat", [none, codes], [joined], { axis: 0 }));
  ctx.emit(node("Cast", [joined], [w], { to: elemType("float32") }));
  floatProduct(ctx, x, w, y, n.params.transB);
}

/**
 * LayerNormalization-17 on float32. ORT's CPU kernel saves mean/invStd only in float32 (stash_type 1),
 * while the IR types them as the input's dtype, so float64 is spelled out in primitives.
 */
function lowerLayerNorm(ctx: LowerCtx, n: Node<Op.LayerNorm>): void {
  const [[x, scale, bias], [y, mean, invStd]] = io(ctx, n);
  const dtype = n.inputs[0].dtype;
  if (dtype === "float32") {
    return ctx.emit(node("LayerNormalization", [x, scale, bias], [y, mean, invStd], { axis: -1, epsilon: { float: n.params.eps }, stash_type: 1 }));
  }
  const last = ints(ctx, [-1]);
  const [d, sq, v, ve, sd, xhat, ys] = ["d", "sq", "var", "ve", "sd", "xhat", "ys"].map((p) => ctx.fresh(p));
  ctx.emit(node("ReduceMean", [x, last], [mean], { keepdims: 1 }));
  ctx.emit(node("Sub", [x, mean], [d]));
  ctx.emit(node("Mul", [d, d], [sq]));
  ctx.emit(node("ReduceMean", [sq, last], [v], { keepdims: 1 }));
  ctx.emit(node("Add", [v, scalarOf(ctx, dtype, n.params.eps)], [ve]));
  ctx.emit(node("Sqrt", [ve], [sd]));
  ctx.emit(node("Reciprocal", [sd], [invStd]));
  ctx.emit(node("Mul", [d, invStd], [xhat]));
  ctx.emit(node("Mul", [xhat, scale], [ys]));
  ctx.emit(node("Add", [ys, bias], [y]));
}

export const lowerRules: { [O in Op]: LowerRule<O> } = {
  [Op.Add]: direct("Add"),
  [Op.Sub]: direct("Sub"),
  [Op.Mul]: direct("Mul"),
  [Op.Div]: direct("Div"),
  [Op.Pow]: direct("Pow"),
  [Op.Where]: direct("Where"),
  [Op.Less]: direct("Less"),
  [Op.Neg]: direct("Neg"),
  [Op.Exp]: direct("Exp"),
  [Op.Log]: direct("Log"),
  [Op.Sqrt]: direct("Sqrt"),
  [Op.Erf]: direct("Erf"),
  [Op.Tanh]: direct("Tanh"),
  [Op.Cast]: direct("Cast", (n) => ({ to: elemType(n.params.to) })),
  [Op.MatMul]: lowerMatMul,
  [Op.QuantMatMul]: lowerQuantMatMul,
  [Op.Einsum]: direct("Einsum", (n) => ({ equation: n.params.equation })),
  [Op.Softmax]: direct("Softmax", (n) => ({ axis: n.params.axis })),
  [Op.LogSoftmax]: direct("LogSoftmax", (n) => ({ axis: n.params.axis })),
  [Op.LayerNorm]: lowerLayerNorm,
  [Op.ReduceSum]: reduce("ReduceSum"),
  [Op.ReduceMean]: reduce("ReduceMean"),
  [Op.Reshape]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    ctx.emit(node("Reshape", [x, targetShape(ctx, n.inputs[0], n.params.shape, 0)], [y]));
  },
  [Op.Transpose]: direct("Transpose", (n) => ({ perm: n.params.perm })),
  [Op.Concat]: direct("Concat", (n) => ({ axis: n.params.axis })),
  [Op.Slice]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    const { axis, start, end } = n.params;
    ctx.emit(node("Slice", [x, ints(ctx, [start]), ints(ctx, [end]), ints(ctx, [axis])], [y]));
  },
  [Op.Pad]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    const r = n.inputs[0].rank;
    const a = checkAxis(n.params.axis, r, "Pad");
    const pads = new Array<number>(2 * r).fill(0);
    pads[a] = n.params.before;
    pads[r + a] = n.params.after;
    ctx.emit(node("Pad", [x, ints(ctx, pads)], [y], { mode: "constant" }));
  },
  [Op.Expand]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    ctx.emit(node("Expand", [x, targetShape(ctx, n.inputs[0], n.params.shape, 1)], [y]));
  },
  [Op.Gather]: direct("Gather", (n) => ({ axis: n.params.axis })),
  [Op.ScatterAdd]: (ctx, n) => {
    const [[upd, idx], [y]] = io(ctx, n);
    const [u, ix] = n.inputs;
    const rest = u.shape.slice(ix.rank) as number[];
    const zeros = ctx.fresh("zeros");
    const value = tensorProto("", u.dtype, [1], u.dtype === "float64" ? Float64Array.of(0) : Float32Array.of(0));
    ctx.emit(node("ConstantOfShape", [ints(ctx, [n.params.rows, ...rest])], [zeros], { value }));
    const idx64 = ix.dtype === "int64" ? idx : ctx.fresh("idx64");
    if (ix.dtype !== "int64") ctx.emit(node("Cast", [idx], [idx64], { to: elemType("int64") }));
    const idxN = ctx.fresh("idxN");
    ctx.emit(node("Unsqueeze", [idx64, ints(ctx, [-1])], [idxN]));
    ctx.emit(node("ScatterND", [zeros, idxN, upd], [y], { reduction: "add" }));
  },
  // ONNX counts indices in [-depth, 0) from the back and ORT's CPU kernel has only int64/float
  // variants: move negatives out of range, one-hot in float32, then cast.
  [Op.OneHot]: (ctx, n) => {
    const [[idx], [y]] = io(ctx, n);
    const { depth, dtype } = n.params;
    const idx64 = n.inputs[0].dtype === "int64" ? idx : ctx.fresh("idx64");
    if (idx64 !== idx) ctx.emit(node("Cast", [idx], [idx64], { to: elemType("int64") }));
    const [isNeg, safe] = [ctx.fresh("isNeg"), ctx.fresh("safe")];
    ctx.emit(node("Less", [idx64, scalarOf(ctx, "int64", 0)], [isNeg]));
    ctx.emit(node("Where", [isNeg, scalarOf(ctx, "int64", depth), idx64], [safe]));
    const values = ctx.constant((nm) => tensorProto(nm, "float32", [2], Float32Array.of(0, 1)));
    const oh = dtype === "float32" ? y : ctx.fresh("oh");
    ctx.emit(node("OneHot", [safe, ints(ctx, [depth], true), values], [oh], { axis: -1 }));
    if (oh !== y) ctx.emit(node("Cast", [oh], [y], { to: elemType(dtype) }));
  },
  [Op.Constant]: (ctx, n) => {
    const [, [y]] = io(ctx, n);
    const { data, dtype, shape } = n.params;
    ctx.emit(node("Constant", [], [y], { value: tensorProto("", dtype, shape, data) }));
  },
  [Op.Arange]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    const n0 = ctx.fresh("n");
    sizeOf(ctx, x, checkAxis(n.params.axis, n.inputs[0].rank, "Arange"), n0);
    ctx.emit(node("Range", [scalarOf(ctx, "int64", 0), n0, scalarOf(ctx, "int64", 1)], [y]));
  },
  [Op.Size]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    sizeOf(ctx, x, checkAxis(n.params.axis, n.inputs[0].rank, "Size"), y);
  },
  [Op.DropoutMask]: (ctx, n) => {
    const [[x], [y]] = io(ctx, n);
    const { ratio, seed } = n.params;
    const dtype = n.inputs[0].dtype;
    const [dropped, mask, maskF] = [ctx.fresh("dropped"), ctx.fresh("mask"), ctx.fresh("maskF")];
    const training = ctx.constant((nm) => tensorProto(nm, "bool", [], Uint8Array.of(1)));
    ctx.emit(node("Dropout", [x, scalarOf(ctx, dtype, ratio), training], [dropped, mask], { seed }));
    ctx.emit(node("Cast", [mask], [maskF], { to: elemType(dtype) }));
    ctx.emit(node("Mul", [maskF, scalarOf(ctx, dtype, 1 / (1 - ratio))], [y]));
  },
  [Op.SoftmaxCrossEntropy]: direct("SoftmaxCrossEntropyLoss", (n) => ({ reduction: n.params.reduction, ignore_index: n.params.ignoreIndex })),
};
