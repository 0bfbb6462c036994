/**
 * One vector–Jacobian product per primitive: given the output cotangents (undefined where an
 * output has none) and which inputs need one, return the input cotangents. Broadcasting and
 * fan-out are the engine's job (vjp.ts).
 */
import { UnsupportedOpError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import { checkAxis } from "../ir/dtype-shape.ts";
import { parseEinsum } from "../ir/infer.ts";
import type { Node, Value } from "../ir/graph.ts";
import { Op } from "../ir/ops.ts";

type Ct = Value | undefined;
export type VjpRule<O extends Op> = (node: Node<O>, cts: Ct[], needs: boolean[]) => Ct[];

const ct0 = (cts: Ct[], op: Op): Value => cts[0] ?? UnsupportedOpError.raise(`${op}: first output has no cotangent`);
const none = (n: Node): Ct[] => n.inputs.map(() => undefined);

const reduceRule =
  (mean: boolean): VjpRule<Op.ReduceSum | Op.ReduceMean> =>
  ({ inputs: [x], params: { axes, keepdims } }, [g]) => {
    const rank = x.shape.length;
    const norm = axes.map((a) => checkAxis(a, rank, "Reduce"));
    const kept = keepdims
      ? g!
      : b.reshape(
          g!,
          x.shape.map((d, i) => (norm.includes(i) ? 1 : d)),
        );
    const full = b.expand(kept, [...x.shape]);
    if (!mean) return [full];
    const count = norm.reduce((n, a) => n * (x.shape[a] as number), 1);
    return [b.div(full, count)];
  };

/** d(α·op(A)·op(B)); a frozen 2-D B fed by a batched A gets its gradient from one flat GEMM. */
function matmulVjp(n: Node<Op.MatMul>, cts: Ct[], needs: boolean[]): Ct[] {
  const g = ct0(cts, n.op);
  const [A, B] = n.inputs;
  const { transA, transB, alpha } = n.params;
  let dA: Ct, dB: Ct;
  if (needs[0]) {
    dA = transA ? b.matmul(B, g, { transA: transB, transB: true, alpha }) : b.matmul(g, B, { transB: !transB, alpha });
  }
  if (needs[1]) {
    const flat = B.rank === 2 && A.rank > 2 && !transA && A.shape.every((d) => typeof d === "number");
    const A2 = flat ? b.reshape(A, [-1, A.shape.at(-1)!]) : A;
    const g2 = flat ? b.reshape(g, [-1, g.shape.at(-1)!]) : g;
    dB = transB ? b.matmul(g2, A2, { transA: true, transB: transA, alpha }) : b.matmul(A2, g2, { transA: !transA, alpha });
  }
  return [dA, dB];
}

/** Each operand's cotangent is the einsum of the output cotangent with the other operands. */
function einsumVjp(n: Node<Op.Einsum>, cts: Ct[], needs: boolean[]): Ct[] {
  const g = ct0(cts, n.op);
  const { ins, out } = parseEinsum(n.params.equation, n.inputs.length);
  return n.inputs.map((x, i) => {
    if (!needs[i]) return undefined;
    const others = ins.filter((_, j) => j !== i);
    const avail = new Set([...out, ...others.join("")]);
    // Indices only this operand carries were summed away: broadcast the cotangent back along them.
    const kept = [...ins[i]].filter((c) => avail.has(c)).join("");
    const eq = `${[out, ...others].join(",")}->${kept}`;
    let ct = b.einsum(eq, g, ...n.inputs.filter((_, j) => j !== i));
    if (kept.length !== ins[i].length) {
      ct = b.reshape(
        ct,
        [...ins[i]].map((c, k) => (avail.has(c) ? x.shape[k] : 1)),
      );
      ct = b.expand(ct, [...x.shape]);
    }
    return ct;
  });
}

export const vjpRules: { [O in Op]: VjpRule<O> } = {
  [Op.Add]: (_n, [g]) => [g, g],
  [Op.Sub]: (_n, [g], needs) => [g, needs[1] ? b.neg(g!) : undefined],
  // d(ab) = b·da + a·db
  [Op.Mul]: ({ inputs: [x, y] }, [g], needs) => [needs[0] ? b.mul(g!, y) : undefined, needs[1] ? b.mul(g!, x) : undefined],
  // d(a/b) = da/b − (a/b)·db/b
  [Op.Div]: ({ inputs: [, y], outputs: [z] }, [g], needs) => [needs[0] ? b.div(g!, y) : undefined, needs[1] ? b.neg(b.div(b.mul(g!, z), y)) : undefined],
  // d(x^e) = e·x^(e−1)·dx + x^e·ln x·de
  [Op.Pow]: ({ inputs: [x, e], outputs: [z] }, [g], needs) => [
    needs[0] ? b.mul(g!, b.mul(e, b.pow(x, b.sub(e, 1)))) : undefined,
    needs[1] ? b.mul(g!, b.mul(z, b.log(x))) : undefined,
  ],
  [Op.Where]: ({ inputs: [c] }, [g], needs) => [undefined, needs[1] ? b.where(c, g!, 0) : undefined, needs[2] ? b.where(c, 0, g!) : undefined],
  [Op.Neg]: (_n, [g]) => [b.neg(g!)],
  // d(eˣ) = eˣ·dx
  [Op.Exp]: ({ outputs: [z] }, [g]) => [b.mul(g!, z)],
  // d(ln x) = dx/x
  [Op.Log]: ({ inputs: [x] }, [g]) => [b.div(g!, x)],
  // d√x = dx / (2√x)
  [Op.Sqrt]: ({ outputs: [z] }, [g]) => [b.div(b.mul(g!, 0.5), z)],
  // d erf(x) = 2/√π · e^(−x²) dx, with the constant folded into the exponent
  [Op.Erf]: ({ inputs: [x] }, [g]) => [b.mul(g!, b.exp(b.sub(Math.log(2 / Math.sqrt(Math.PI)), b.mul(x, x))))],
  // d tanh x = (1 − tanh²x)·dx
  [Op.Tanh]: ({ outputs: [z] }, [g]) => [b.mul(g!, b.sub(1, b.mul(z, z)))],
  [Op.Cast]: ({ inputs: [x] }, [g]) => [b.cast(g!, x.dtype)],
  [Op.MatMul]: matmulVjp,
  // Ŵ is frozen: dx = g · Ŵ (or g · Ŵᵀ), the same codes read the other way, never a kept float copy
  [Op.QuantMatMul]: ({ inputs: [, codes, scales], params }, [g], needs) => {
    if (needs[1] || needs[2]) UnsupportedOpError.raise("QuantMatMul: the quantized weight is frozen; it has no gradient");
    return [b.quantMatmul(g!, { codes, scales }, { ...params, transB: !params.transB }), undefined, undefined];
  },
  [Op.Einsum]: einsumVjp,
  // dx = y ⊙ (g − Σ g⊙y)
  [Op.Softmax]: ({ outputs: [y], params: { axis } }, [g]) => [b.mul(y, b.sub(g!, b.reduceSum(b.mul(g!, y), [axis], true)))],
  // dx = g − softmax(x)·Σ g
  [Op.LogSoftmax]: ({ outputs: [y], params: { axis } }, [g]) => [b.sub(g!, b.mul(b.exp(y), b.reduceSum(g!, [axis], true)))],
  // x̂ = (x−μ)/σ;  dx = (1/σ)·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)) with ĝ = g⊙γ
  [Op.LayerNorm]: ({ inputs: [x, scale], outputs: [, mean, invStd] }, cts, needs) => {
    if (cts[1] || cts[2]) UnsupportedOpError.raise("LayerNorm: gradients through the saved mean/invStd outputs");
    const g = cts[0]!;
    const xhat = needs[0] || needs[1] ? b.mul(b.sub(x, mean), invStd) : undefined;
    const last = x.shape.length - 1;
    let dx: Ct;
    if (needs[0]) {
      const gh = b.mul(g, scale);
      const inner = b.sub(b.sub(gh, b.reduceMean(gh, [last], true)), b.mul(xhat!, b.reduceMean(b.mul(gh, xhat!), [last], true)));
      dx = b.mul(inner, invStd);
    }
    return [dx, needs[1] ? b.mul(g, xhat!) : undefined, needs[2] ? g : undefined];
  },
  [Op.ReduceSum]: reduceRule(false),
  [Op.ReduceMean]: reduceRule(true),
  [Op.Reshape]: ({ inputs: [x] }, [g]) => [b.reshape(g!, [...x.shape])],
  [Op.Transpose]: ({ params: { perm } }, [g]) => {
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [b.transpose(g!, inv)];
  },
  [Op.Concat]: ({ inputs, params: { axis } }, [g], needs) => {
    const a = checkAxis(axis, inputs[0].shape.length, "Concat");
    let start = 0;
    return inputs.map((x, i) => {
      const d = x.shape[a] as number;
      const ct = needs[i] ? b.slice(g!, a, start, start + d) : undefined;
      start += d;
      return ct;
    });
  },
  [Op.Slice]: ({ inputs: [x], params: { axis, start, end } }, [g]) => {
    const a = checkAxis(axis, x.shape.length, "Slice");
    return [b.pad(g!, a, start, (x.shape[a] as number) - end)];
  },
  [Op.Pad]: ({ inputs: [x], params: { axis, before } }, [g]) => {
    const a = checkAxis(axis, x.shape.length, "Pad");
    return [b.slice(g!, a, before, before + (x.shape[a] as number))];
  },
  // the engine sums the cotangent back to the input's shape
  [Op.Expand]: (_n, [g]) => [g],
  [Op.Gather]: ({ inputs: [data, idx], params: { axis } }, [g]) => {
    if (checkAxis(axis, data.shape.length, "Gather") !== 0) UnsupportedOpError.raise("Gather: gradient only along axis 0");
    return [b.scatterAdd(g!, idx, data.shape[0] as number), undefined];
  },
  [Op.ScatterAdd]: ({ inputs: [, idx] }, [g]) => [b.gather(g!, idx, 0), undefined],
  [Op.OneHot]: none,
  [Op.Less]: none,
  [Op.Arange]: none,
  [Op.Size]: none,
  [Op.Constant]: none,
  // the mask is a constant draw; dropout's gradient flows through the Mul that applies it
  [Op.DropoutMask]: none,
  // d loss/d logits = (softmax ⊙ valid − onehot), divided by the count for the mean
  [Op.SoftmaxCrossEntropy]: ({ inputs: [logits, labels], outputs: [, logProb], params: { reduction } }, cts) => {
    if (cts[1]) UnsupportedOpError.raise("SoftmaxCrossEntropy: gradients through logProb; use logSoftmax instead");
    const oh = b.oneHot(labels, logits.shape[1] as number, logits.dtype);
    const valid = b.reduceSum(oh, [1], true);
    const scale = reduction === "sum" ? cts[0]! : b.div(cts[0]!, b.reduceSum(valid, [0, 1], false));
    return [b.mul(b.sub(b.mul(b.exp(logProb), valid), oh), scale), undefined];
  },
};
