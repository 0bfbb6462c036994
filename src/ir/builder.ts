/**
 * Primitive ops as functions over values. Each call appends one node to the operands' graph;
 * a plain number operand becomes a scalar constant of the other operand's dtype.
 */
import { ShapeError, internal } from "../errors.ts";
import type { DType, Dim } from "./dtype-shape.ts";
import type { Graph, Value } from "./graph.ts";
import { Op, type OpParams } from "./ops.ts";

/** An operand of an elementwise op: a graph value, or a number lifted to a constant of the other operand's dtype. */
export type Operand = Value | number;

function graphOf(...xs: Operand[]): Graph {
  for (const x of xs) if (typeof x !== "number") return x.graph;
  return internal("an op needs at least one Value operand");
}

function one<O extends Op>(g: Graph, op: O, inputs: Value[], params: OpParams<O>): Value {
  return g.bind(op, inputs, params)[0];
}

/** A constant of the given shape (a scalar by default). */
export function constant(g: Graph, values: number | ArrayLike<number>, shape: number[] = [], dtype: DType = "float32"): Value {
  const n = shape.reduce((a, b) => a * b, 1);
  const src = typeof values === "number" ? new Array<number>(n).fill(values) : Array.from(values);
  let data: OpParams<Op.Constant>["data"];
  if (dtype === "float32") data = Float32Array.from(src);
  else if (dtype === "float64") data = Float64Array.from(src);
  else if (dtype === "int64") data = BigInt64Array.from(src.map((v) => BigInt(v)));
  else if (dtype === "int32") data = Int32Array.from(src);
  else throw new ShapeError(`constant: dtype ${dtype} is not supported`);
  return one(g, Op.Constant, [], { data, dtype, shape });
}

function lift(g: Graph, x: Operand, like: Operand): Value {
  if (typeof x !== "number") return x;
  const dtype = typeof like === "number" ? "float32" : like.dtype;
  return constant(g, x, [], dtype);
}

const binary =
  (op: Op.Add | Op.Sub | Op.Mul | Op.Div | Op.Pow) =>
  (a: Operand, b: Operand): Value => {
    const g = graphOf(a, b);
    return one(g, op, [lift(g, a, b), lift(g, b, a)], {});
  };

/** Elementwise a + b, with broadcasting. */
export const add = binary(Op.Add);
/** Elementwise a − b, with broadcasting. */
export const sub = binary(Op.Sub);
/** Elementwise a · b, with broadcasting. */
export const mul = binary(Op.Mul);
/** Elementwise a / b, with broadcasting. */
export const div = binary(Op.Div);
/** Elementwise a to the power b, with broadcasting. */
export const pow = binary(Op.Pow);

const unary =
  (op: Op.Neg | Op.Exp | Op.Log | Op.Sqrt | Op.Erf | Op.Tanh) =>
  (x: Value): Value =>
    one(x.graph, op, [x], {});

/** Elementwise −x. */
export const neg = unary(Op.Neg);
/** Elementwise eˣ. */
export const exp = unary(Op.Exp);
/** Elementwise natural logarithm. */
export const log = unary(Op.Log);
/** Elementwise square root. */
export const sqrt = unary(Op.Sqrt);
/** Elementwise error function (exact GELU uses it). */
export const erf = unary(Op.Erf);
/** Elementwise hyperbolic tangent. */
export const tanh = unary(Op.Tanh);

/** Elementwise choice: a where cond is true, else b. */
export function where(cond: Value, a: Operand, b: Operand): Value {
  const g = cond.graph;
  return one(g, Op.Where, [cond, lift(g, a, b), lift(g, b, a)], {});
}

/** Elementwise a < b, as booleans. */
export function less(a: Operand, b: Operand): Value {
  const g = graphOf(a, b);
  return one(g, Op.Less, [lift(g, a, b), lift(g, b, a)], {});
}

/** int64 [n] = 0, 1, …, n−1 with n = x.shape[axis] (symbolic or not). */
export function arange(x: Value, axis: number): Value {
  return one(x.graph, Op.Arange, [x], { axis });
}

/** int64 scalar: x.shape[axis] at run time. */
export function size(x: Value, axis: number): Value {
  return one(x.graph, Op.Size, [x], { axis });
}

/** x converted to another dtype (x itself when it already has it). */
export function cast(x: Value, to: DType): Value {
  return x.dtype === to ? x : one(x.graph, Op.Cast, [x], { to });
}

/** alpha · op(a) · op(b) over the last two axes, batched with broadcasting. */
export function matmul(a: Value, b: Value, opts: Partial<OpParams<Op.MatMul>> = {}): Value {
  return one(a.graph, Op.MatMul, [a, b], { transA: false, transB: false, alpha: 1, ...opts });
}

/** x · Ŵᵀ (transB) or x · Ŵ for a quantized frozen weight Ŵ [N, k] given as codes and scales (float16 codes have none). */
export function quantMatmul(x: Value, w: QuantWeight, params: OpParams<Op.QuantMatMul>): Value {
  return one(x.graph, Op.QuantMatMul, w.scales ? [x, w.codes, w.scales] : [x, w.codes], params);
}

/** The inputs QuantMatMul reads a frozen weight from: block codes and their scales, or float16 codes alone. */
export interface QuantWeight {
  codes: Value;
  scales?: Value;
}

/** Einstein summation over the operands, as numpy.einsum spells the equation. */
export function einsum(equation: string, ...xs: Value[]): Value {
  return one(xs[0].graph, Op.Einsum, xs, { equation });
}

/** Softmax along an axis. */
export function softmax(x: Value, axis = -1): Value {
  return one(x.graph, Op.Softmax, [x], { axis });
}

/** Log-softmax along an axis (stable where log(softmax) is not). */
export function logSoftmax(x: Value, axis = -1): Value {
  return one(x.graph, Op.LogSoftmax, [x], { axis });
}

/** Layer normalisation over the last axis; also returns the saved mean and 1/σ. */
export function layerNormParts(x: Value, scale: Value, bias: Value, eps: number): { y: Value; mean: Value; invStd: Value } {
  const [y, mean, invStd] = x.graph.bind(Op.LayerNorm, [x, scale, bias], { eps });
  return { y, mean, invStd };
}

/** Sum over the given axes. */
export function reduceSum(x: Value, axes: number[], keepdims = false): Value {
  return one(x.graph, Op.ReduceSum, [x], { axes, keepdims });
}

/** Mean over the given axes. */
export function reduceMean(x: Value, axes: number[], keepdims = false): Value {
  return one(x.graph, Op.ReduceMean, [x], { axes, keepdims });
}

/** x with a new shape of the same size (sizes may be symbolic). */
export function reshape(x: Value, shape: Dim[]): Value {
  return one(x.graph, Op.Reshape, [x], { shape });
}

/** x with its axes permuted. */
export function transpose(x: Value, perm: number[]): Value {
  return one(x.graph, Op.Transpose, [x], { perm });
}

/** The values joined along an axis. */
export function concat(xs: Value[], axis: number): Value {
  return xs.length === 1 ? xs[0] : one(xs[0].graph, Op.Concat, xs, { axis });
}

/** x[start:end] along one axis. */
export function slice(x: Value, axis: number, start: number, end: number): Value {
  return one(x.graph, Op.Slice, [x], { axis, start, end });
}

/** x with zeros added before and after along one axis. */
export function pad(x: Value, axis: number, before: number, after: number): Value {
  return one(x.graph, Op.Pad, [x], { axis, before, after });
}

/** x broadcast to a larger shape. */
export function expand(x: Value, shape: Dim[]): Value {
  return one(x.graph, Op.Expand, [x], { shape });
}

/** Rows of data picked by integer indices along an axis (embedding lookup). */
export function gather(data: Value, indices: Value, axis = 0): Value {
  return one(data.graph, Op.Gather, [data, indices], { axis });
}

/** A [rows, …] tensor of zeros with each update added at its index row (gather's gradient). */
export function scatterAdd(updates: Value, indices: Value, rows: number): Value {
  return one(updates.graph, Op.ScatterAdd, [updates, indices], { rows });
}

/** One-hot vectors of the given depth for integer indices. */
export function oneHot(indices: Value, depth: number, dtype: DType = "float32"): Value {
  return one(indices.graph, Op.OneHot, [indices], { depth, dtype });
}

/** A seeded dropout mask shaped like `like`: 0 with probability ratio, else 1/(1 − ratio). */
export function dropoutMask(like: Value, ratio: number, seed: number): Value {
  return one(like.graph, Op.DropoutMask, [like], { ratio, seed });
}

/** Softmax cross-entropy over rows whose label is not `ignoreIndex`: their mean, or their sum (a chunk of a larger mean). */
export function softmaxCrossEntropy(logits: Value, labels: Value, ignoreIndex = -100, reduction: "mean" | "sum" = "mean"): { loss: Value; logProb: Value } {
  const [loss, logProb] = logits.graph.bind(Op.SoftmaxCrossEntropy, [logits, labels], { ignoreIndex, reduction });
  return { loss, logProb };
}
