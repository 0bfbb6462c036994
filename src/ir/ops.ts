/**
 * The closed set of primitive ops. Composites (GELU, attention, cross-entropy helpers, Tucker
 * slices) are functions over these in `functional.ts`; inference, lowering and VJP rules cover
 * only the primitives, each in a table keyed by `Op` so a missing rule is a compile error.
 */
import type { DType, Dim } from "./dtype-shape.ts";

export enum Op {
  // elementwise, broadcasting
  Add = "Add",
  Sub = "Sub",
  Mul = "Mul",
  Div = "Div",
  Pow = "Pow",
  Where = "Where",
  Less = "Less",
  Neg = "Neg",
  Exp = "Exp",
  Log = "Log",
  Sqrt = "Sqrt",
  Erf = "Erf",
  Tanh = "Tanh",
  Cast = "Cast",
  // contractions
  MatMul = "MatMul",
  QuantMatMul = "QuantMatMul",
  Einsum = "Einsum",
  // normalisation and reductions
  Softmax = "Softmax",
  LogSoftmax = "LogSoftmax",
  LayerNorm = "LayerNorm",
  ReduceSum = "ReduceSum",
  ReduceMean = "ReduceMean",
  // movement
  Reshape = "Reshape",
  Transpose = "Transpose",
  Concat = "Concat",
  Slice = "Slice",
  Pad = "Pad",
  Expand = "Expand",
  Gather = "Gather",
  ScatterAdd = "ScatterAdd",
  OneHot = "OneHot",
  // sources and training
  Constant = "Constant",
  Arange = "Arange",
  Size = "Size",
  DropoutMask = "DropoutMask",
  SoftmaxCrossEntropy = "SoftmaxCrossEntropy",
}

type NoParams = Record<string, never>;

/** Typed per-op parameters. */
export interface OpParamsMap {
  [Op.Add]: NoParams;
  [Op.Sub]: NoParams;
  [Op.Mul]: NoParams;
  [Op.Div]: NoParams;
  [Op.Pow]: NoParams;
  [Op.Where]: NoParams;
  /** a < b elementwise with broadcasting; a bool result. */
  [Op.Less]: NoParams;
  [Op.Neg]: NoParams;
  [Op.Exp]: NoParams;
  [Op.Log]: NoParams;
  [Op.Sqrt]: NoParams;
  [Op.Erf]: NoParams;
  [Op.Tanh]: NoParams;
  [Op.Cast]: { to: DType };
  /** y = alpha · op(A) · op(B), batched over leading dims with broadcasting. */
  [Op.MatMul]: { transA: boolean; transB: boolean; alpha: number };
  /**
   * x · Ŵᵀ (transB) or x · Ŵ with Ŵ [N, k] the frozen weight of inputs codes (uint8
   * [N, blocks, block·bits/8]) and scales (float32 [N, blocks]), src/tensor/quantize.ts's layout;
   * at 16 bits the one input codes is Ŵ itself in float16 [N, k]. The codes are an initializer
   * (a frozen weight): at 4 bits the lowering reads their bytes as ONNX uint4.
   */
  [Op.QuantMatMul]: { bits: 4 | 8; block: number; k: number; transB: boolean } | { bits: 16; k: number; transB: boolean };
  [Op.Einsum]: { equation: string };
  [Op.Softmax]: { axis: number };
  [Op.LogSoftmax]: { axis: number };
  /** Over the last axis; outputs [y, mean, invStd] (mean and invStd keep a trailing 1). */
  [Op.LayerNorm]: { eps: number };
  [Op.ReduceSum]: { axes: number[]; keepdims: boolean };
  [Op.ReduceMean]: { axes: number[]; keepdims: boolean };
  /** Target shape; -1 infers one dim. */
  [Op.Reshape]: { shape: Dim[] };
  [Op.Transpose]: { perm: number[] };
  [Op.Concat]: { axis: number };
  [Op.Slice]: { axis: number; start: number; end: number };
  /** Zero padding of one axis: `before` and `after` elements. */
  [Op.Pad]: { axis: number; before: number; after: number };
  [Op.Expand]: { shape: Dim[] };
  /** data[..., indices, ...] along `axis` (embedding lookup with axis 0). */
  [Op.Gather]: { axis: number };
  /** Inverse of Gather along axis 0: rows of `updates` added into zeros of `rows` rows. */
  [Op.ScatterAdd]: { rows: number };
  /** float one-hot over a new last axis; indices outside [0, depth) give a zero row. */
  [Op.OneHot]: { depth: number; dtype: DType };
  [Op.Constant]: { data: Float32Array | Float64Array | BigInt64Array | Int32Array; dtype: DType; shape: number[] };
  /**
   * int64 0, 1, …, n−1 where n is dim `axis` of the input: position indices for a symbolic length
   * (causal masks, cache positions), which a Constant cannot hold.
   */
  [Op.Arange]: { axis: number };
  /** int64 scalar: dim `axis` of the input at run time (a cache's past length). */
  [Op.Size]: { axis: number };
  /** A {0, 1/(1-ratio)} mask with the shape of its input, drawn from a seeded stream. */
  [Op.DropoutMask]: { ratio: number; seed: number };
  /** Cross-entropy over rows whose label ≠ ignoreIndex, their mean or sum; outputs [loss, logProb]. */
  [Op.SoftmaxCrossEntropy]: { ignoreIndex: number; reduction: "mean" | "sum" };
}

export type OpParams<O extends Op> = OpParamsMap[O];
