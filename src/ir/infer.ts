/** Shape and dtype inference, one rule per op. */
import { ShapeError } from "../errors.ts";
import { type DType, type Dim, type Shape, addDims, broadcastShapes, checkAxis, isFloat, shapeToString, sizeOf } from "./dtype-shape.ts";
import { Op, type OpParams } from "./ops.ts";

export interface TypeInfo {
  dtype: DType;
  shape: Shape;
}

type Typed = { readonly dtype: DType; readonly shape: Shape };
export type InferRule<O extends Op> = (inputs: readonly Typed[], params: OpParams<O>) => TypeInfo[];

function arity(op: Op, inputs: readonly Typed[], n: number): void {
  if (inputs.length !== n) throw new ShapeError(`${op} takes ${n} inputs, got ${inputs.length}`);
}

function sameDtype(op: Op, inputs: readonly Typed[]): DType {
  const d = inputs[0].dtype;
  for (const x of inputs) {
    if (x.dtype !== d) throw new ShapeError(`${op}: mixed dtypes ${inputs.map((i) => i.dtype).join(", ")}; cast first`);
  }
  return d;
}

function floatOnly(op: Op, x: Typed): void {
  if (!isFloat(x.dtype)) throw new ShapeError(`${op} needs a float input, got ${x.dtype}`);
}

const binary =
  <O extends Op>(op: O): InferRule<O> =>
  (inputs) => {
    arity(op, inputs, 2);
    return [{ dtype: sameDtype(op, inputs), shape: broadcastShapes(inputs[0].shape, inputs[1].shape, op) }];
  };

const unary =
  <O extends Op>(op: O): InferRule<O> =>
  (inputs) => {
    arity(op, inputs, 1);
    floatOnly(op, inputs[0]);
    return [{ dtype: inputs[0].dtype, shape: inputs[0].shape }];
  };

const reduce =
  <O extends Op.ReduceSum | Op.ReduceMean>(op: O): InferRule<O> =>
  (inputs, { axes, keepdims }) => {
    arity(op, inputs, 1);
    const x = inputs[0];
    const norm = new Set(axes.map((a) => checkAxis(a, x.shape.length, op)));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!norm.has(i)) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    return [{ dtype: x.dtype, shape }];
  };

const sameAsInput =
  <O extends Op.Softmax | Op.LogSoftmax>(op: O): InferRule<O> =>
  (inputs, { axis }) => {
    arity(op, inputs, 1);
    floatOnly(op, inputs[0]);
    checkAxis(axis, inputs[0].shape.length, op);
    return [{ dtype: inputs[0].dtype, shape: inputs[0].shape }];
  };

/** Parse an explicit einsum equation "ab,bc->ac" into operand and output subscripts. */
export function parseEinsum(equation: string, nInputs: number): { ins: string[]; out: string } {
  const m = /^([a-zA-Z,]+)->([a-zA-Z]*)$/.exec(equation.replace(/\s+/g, ""));
  if (!m) throw new ShapeError(`Einsum "${equation}": only explicit equations like "ab,bc->ac" are supported`);
  const ins = m[1].split(",");
  if (ins.length !== nInputs) throw new ShapeError(`Einsum "${equation}" names ${ins.length} operands, got ${nInputs}`);
  for (const s of [...ins, m[2]]) {
    if (new Set(s).size !== s.length) throw new ShapeError(`Einsum "${equation}": repeated index in "${s}" (diagonals) is not supported`);
  }
  for (const c of m[2]) {
    if (!ins.some((s) => s.includes(c))) throw new ShapeError(`Einsum "${equation}": output index "${c}" is in no operand`);
  }
  return { ins, out: m[2] };
}

function matmulShape(a: Shape, b: Shape, p: OpParams<Op.MatMul>): Dim[] {
  if (a.length < 2 || b.length < 2) {
    throw new ShapeError(`MatMul needs rank ≥ 2 operands, got ${shapeToString(a)} and ${shapeToString(b)}; reshape vectors`);
  }
  const [m, ka] = p.transA ? [a.at(-1)!, a.at(-2)!] : [a.at(-2)!, a.at(-1)!];
  const [kb, n] = p.transB ? [b.at(-1)!, b.at(-2)!] : [b.at(-2)!, b.at(-1)!];
  if (ka !== kb) {
    throw new ShapeError(
      `MatMul: inner dims differ (${ka} vs ${kb}) for ${shapeToString(a)}${p.transA ? "ᵀ" : ""} · ${shapeToString(b)}${p.transB ? "ᵀ" : ""}`,
    );
  }
  return [...broadcastShapes(a.slice(0, -2), b.slice(0, -2), "MatMul batch"), m, n];
}

export const inferRules: { [O in Op]: InferRule<O> } = {
  [Op.Add]: binary(Op.Add),
  [Op.Sub]: binary(Op.Sub),
  [Op.Mul]: binary(Op.Mul),
  [Op.Div]: binary(Op.Div),
  [Op.Pow]: binary(Op.Pow),
  [Op.Where]: (inputs) => {
    arity(Op.Where, inputs, 3);
    if (inputs[0].dtype !== "bool") throw new ShapeError(`Where: condition must be bool, got ${inputs[0].dtype}`);
    const dtype = sameDtype(Op.Where, inputs.slice(1));
    const s = broadcastShapes(broadcastShapes(inputs[0].shape, inputs[1].shape, "Where"), inputs[2].shape, "Where");
    return [{ dtype, shape: s }];
  },
  [Op.Less]: (inputs) => {
    arity(Op.Less, inputs, 2);
    sameDtype(Op.Less, inputs);
    return [{ dtype: "bool", shape: broadcastShapes(inputs[0].shape, inputs[1].shape, Op.Less) }];
  },
  [Op.Neg]: unary(Op.Neg),
  [Op.Exp]: unary(Op.Exp),
  [Op.Log]: unary(Op.Log),
  [Op.Sqrt]: unary(Op.Sqrt),
  [Op.Erf]: unary(Op.Erf),
  [Op.Tanh]: unary(Op.Tanh),
  [Op.Cast]: (inputs, { to }) => {
    arity(Op.Cast, inputs, 1);
    return [{ dtype: to, shape: inputs[0].shape }];
  },
  [Op.MatMul]: (inputs, p) => {
    arity(Op.MatMul, inputs, 2);
    return [{ dtype: sameDtype(Op.MatMul, inputs), shape: matmulShape(inputs[0].shape, inputs[1].shape, p) }];
  },
  [Op.QuantMatMul]: (inputs, p) => {
    const { k, transB } = p;
    arity(Op.QuantMatMul, inputs, p.bits === 16 ? 2 : 3);
    const [x, codes, scales] = inputs;
    floatOnly(Op.QuantMatMul, x);
    const n = codes.shape[0];
    if (p.bits === 16) {
      if (x.dtype !== "float32" || codes.dtype !== "float16")
        throw new ShapeError(`QuantMatMul: x is float32 and codes float16, got ${x.dtype}, ${codes.dtype}`);
      if (codes.shape.length !== 2 || codes.shape[1] !== k)
        throw new ShapeError(`QuantMatMul: float16 codes ${shapeToString(codes.shape)} for k=${k}: expected [N,${k}]`);
    } else {
      const { bits, block } = p;
      if (x.dtype !== "float32" || codes.dtype !== "uint8" || scales.dtype !== "float32") {
        throw new ShapeError(`QuantMatMul: x and scales are float32 and codes uint8, got ${x.dtype}, ${codes.dtype}, ${scales.dtype}`);
      }
      const nb = codes.shape[1];
      const want = [n, Math.ceil(k / block), (block * bits) / 8];
      if (
        codes.shape.length !== 3 ||
        codes.shape.some((d, i) => d !== want[i]) ||
        scales.shape.length !== 2 ||
        scales.shape[0] !== n ||
        scales.shape[1] !== nb
      ) {
        throw new ShapeError(
          `QuantMatMul: ${bits}-bit codes ${shapeToString(codes.shape)} and scales ${shapeToString(scales.shape)} for k=${k}, block ${block}: expected ${shapeToString(want)} and [${n},${want[1]}]`,
        );
      }
    }
    const inner = transB ? k : n;
    if (x.shape.length < 2 || x.shape.at(-1) !== inner) {
      throw new ShapeError(`QuantMatMul: x ${shapeToString(x.shape)} must end in ${inner} for a weight [${n},${k}]${transB ? "ᵀ" : ""}`);
    }
    return [{ dtype: "float32", shape: [...x.shape.slice(0, -1), transB ? n : k] }];
  },
  [Op.Einsum]: (inputs, { equation }) => {
    const { ins, out } = parseEinsum(equation, inputs.length);
    const dims = new Map<string, Dim>();
    ins.forEach((s, i) => {
      if (s.length !== inputs[i].shape.length) {
        throw new ShapeError(`Einsum "${equation}": operand ${i} "${s}" has rank ${inputs[i].shape.length}`);
      }
      [...s].forEach((c, j) => {
        const d = inputs[i].shape[j];
        const prev = dims.get(c);
        if (prev !== undefined && prev !== d) throw new ShapeError(`Einsum "${equation}": index ${c} is ${prev} and ${d}`);
        dims.set(c, d);
      });
    });
    return [{ dtype: sameDtype(Op.Einsum, inputs), shape: [...out].map((c) => dims.get(c)!) }];
  },
  [Op.Softmax]: sameAsInput(Op.Softmax),
  [Op.LogSoftmax]: sameAsInput(Op.LogSoftmax),
  [Op.LayerNorm]: (inputs) => {
    arity(Op.LayerNorm, inputs, 3);
    const [x, scale, bias] = inputs;
    floatOnly(Op.LayerNorm, x);
    const d = x.shape.at(-1);
    for (const w of [scale, bias]) {
      if (w.shape.length !== 1 || w.shape[0] !== d) {
        throw new ShapeError(`LayerNorm: scale/bias must be [${d}] for input ${shapeToString(x.shape)}, got ${shapeToString(w.shape)}`);
      }
    }
    const stat = [...x.shape.slice(0, -1), 1];
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: x.dtype, shape: stat },
      { dtype: x.dtype, shape: stat },
    ];
  },
  [Op.ReduceSum]: reduce(Op.ReduceSum),
  [Op.ReduceMean]: reduce(Op.ReduceMean),
  [Op.Reshape]: (inputs, { shape }) => {
    arity(Op.Reshape, inputs, 1);
    const x = inputs[0];
    const n = sizeOf(x.shape);
    const out = [...shape];
    const free = out.indexOf(-1);
    const known = out.filter((d) => d !== -1);
    if (out.filter((d) => d === -1).length > 1) throw new ShapeError(`Reshape: at most one -1 in ${shapeToString(shape)}`);
    const m = sizeOf(known);
    if (n !== undefined && m !== undefined) {
      if (free >= 0) {
        if (m === 0 || n % m !== 0) throw new ShapeError(`Reshape: ${shapeToString(x.shape)} cannot become ${shapeToString(shape)}`);
        out[free] = n / m;
      } else if (n !== m) {
        throw new ShapeError(`Reshape: ${shapeToString(x.shape)} (${n} elements) cannot become ${shapeToString(shape)} (${m})`);
      }
    } else if (free >= 0) {
      throw new ShapeError(`Reshape: -1 needs concrete dims, got ${shapeToString(x.shape)} → ${shapeToString(shape)}`);
    }
    return [{ dtype: x.dtype, shape: out }];
  },
  [Op.Transpose]: (inputs, { perm }) => {
    arity(Op.Transpose, inputs, 1);
    const x = inputs[0];
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== x.shape.length || sorted.some((p, i) => p !== i)) {
      throw new ShapeError(`Transpose: perm [${perm}] is not a permutation of 0..${x.shape.length - 1} for ${shapeToString(x.shape)}`);
    }
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
  },
  [Op.Concat]: (inputs, { axis }) => {
    if (inputs.length < 1) throw new ShapeError("Concat needs at least one input");
    const dtype = sameDtype(Op.Concat, inputs);
    const r = inputs[0].shape.length;
    const a = checkAxis(axis, r, "Concat");
    let total: Dim = 0;
    for (const x of inputs) {
      if (x.shape.length !== r || x.shape.some((d, i) => i !== a && d !== inputs[0].shape[i])) {
        throw new ShapeError(`Concat on axis ${a}: ${inputs.map((i) => shapeToString(i.shape)).join(" vs ")}`);
      }
      const d = x.shape[a];
      total = addDims(total, d);
    }
    const shape = [...inputs[0].shape];
    shape[a] = total;
    return [{ dtype, shape }];
  },
  [Op.Slice]: (inputs, { axis, start, end }) => {
    arity(Op.Slice, inputs, 1);
    const x = inputs[0];
    const a = checkAxis(axis, x.shape.length, "Slice");
    const d = x.shape[a];
    // a symbolic dim is only known at run time: the slice must then start and end inside any length ≥ end
    if (!(0 <= start && start < end && (typeof d !== "number" || end <= d))) {
      throw new ShapeError(`Slice: [${start}, ${end}) must lie in [0, ${d}] on axis ${a} of ${shapeToString(x.shape)}`);
    }
    const shape = [...x.shape];
    shape[a] = end - start;
    return [{ dtype: x.dtype, shape }];
  },
  [Op.Pad]: (inputs, { axis, before, after }) => {
    arity(Op.Pad, inputs, 1);
    const x = inputs[0];
    const a = checkAxis(axis, x.shape.length, "Pad");
    const d = x.shape[a];
    if (typeof d !== "number" || before < 0 || after < 0) throw new ShapeError(`Pad: bad padding ${before}/${after} of dim ${d}`);
    const shape = [...x.shape];
    shape[a] = d + before + after;
    return [{ dtype: x.dtype, shape }];
  },
  [Op.Expand]: (inputs, { shape }) => {
    arity(Op.Expand, inputs, 1);
    return [{ dtype: inputs[0].dtype, shape: broadcastShapes(inputs[0].shape, shape, "Expand") }];
  },
  [Op.Gather]: (inputs, { axis }) => {
    arity(Op.Gather, inputs, 2);
    const [data, idx] = inputs;
    if (idx.dtype !== "int64" && idx.dtype !== "int32") throw new ShapeError(`Gather: indices must be int64/int32, got ${idx.dtype}`);
    const a = checkAxis(axis, data.shape.length, "Gather");
    return [{ dtype: data.dtype, shape: [...data.shape.slice(0, a), ...idx.shape, ...data.shape.slice(a + 1)] }];
  },
  [Op.ScatterAdd]: (inputs, { rows }) => {
    arity(Op.ScatterAdd, inputs, 2);
    const [updates, idx] = inputs;
    const k = idx.shape.length;
    if (updates.shape.length < k || idx.shape.some((d, i) => d !== updates.shape[i])) {
      throw new ShapeError(`ScatterAdd: updates ${shapeToString(updates.shape)} must start with indices' shape ${shapeToString(idx.shape)}`);
    }
    return [{ dtype: updates.dtype, shape: [rows, ...updates.shape.slice(k)] }];
  },
  [Op.OneHot]: (inputs, { depth, dtype }) => {
    arity(Op.OneHot, inputs, 1);
    return [{ dtype, shape: [...inputs[0].shape, depth] }];
  },
  [Op.Constant]: (inputs, { dtype, shape, data }) => {
    arity(Op.Constant, inputs, 0);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new ShapeError(`Constant: ${data.length} values for shape [${shape}]`);
    return [{ dtype, shape }];
  },
  [Op.Arange]: (inputs, { axis }) => {
    arity(Op.Arange, inputs, 1);
    const x = inputs[0];
    return [{ dtype: "int64", shape: [x.shape[checkAxis(axis, x.shape.length, Op.Arange)]] }];
  },
  [Op.Size]: (inputs, { axis }) => {
    arity(Op.Size, inputs, 1);
    checkAxis(axis, inputs[0].shape.length, Op.Size);
    return [{ dtype: "int64", shape: [] }];
  },
  [Op.DropoutMask]: (inputs, { ratio }) => {
    arity(Op.DropoutMask, inputs, 1);
    floatOnly(Op.DropoutMask, inputs[0]);
    if (!(ratio >= 0 && ratio < 1)) throw new ShapeError(`Dropout ratio ${ratio} must be in [0, 1)`);
    return [{ dtype: inputs[0].dtype, shape: inputs[0].shape }];
  },
  [Op.SoftmaxCrossEntropy]: (inputs, { ignoreIndex }) => {
    arity(Op.SoftmaxCrossEntropy, inputs, 2);
    const [logits, labels] = inputs;
    floatOnly(Op.SoftmaxCrossEntropy, logits);
    if (logits.shape.length !== 2 || labels.shape.length !== 1 || labels.shape[0] !== logits.shape[0]) {
      throw new ShapeError(`SoftmaxCrossEntropy: logits [N, C] and labels [N], got ${shapeToString(logits.shape)} and ${shapeToString(labels.shape)}`);
    }
    if (labels.dtype !== "int64") throw new ShapeError(`SoftmaxCrossEntropy: labels must be int64, got ${labels.dtype}`);
    // the VJP finds ignored rows as labels whose one-hot row is zero
    const c = logits.shape[1];
    if (ignoreIndex >= 0 && (typeof c !== "number" || ignoreIndex < c)) {
      throw new ShapeError(`SoftmaxCrossEntropy: ignoreIndex ${ignoreIndex} must lie outside the classes [0, ${c}); use a negative value such as -100`);
    }
    return [
      { dtype: logits.dtype, shape: [] },
      { dtype: logits.dtype, shape: logits.shape },
    ];
  },
};
