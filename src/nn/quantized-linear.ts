/**
 * A frozen linear layer whose weight is held block-wise quantized (src/tensor/quantize.ts): its
 * codes and scales become initializers and y = x·Ŵᵀ one QuantMatMul, so neither the forward nor
 * the backward pass keeps a float32 copy of W.
 */
import { quantMatmul } from "../ir/builder.ts";
import type { Graph, Value } from "../ir/graph.ts";
import type { QuantizedMatrix } from "../tensor/quantize.ts";

/** The codes and scales of weight `name` as initializers ("<name>.codes", "<name>.scales"). */
export function quantizedWeight(g: Graph, name: string, q: QuantizedMatrix): { codes: Value; scales: Value } {
  const blocks = q.scales.length / q.rows;
  return {
    codes: g.initializer(`${name}.codes`, q.codes, [q.rows, blocks, (q.block * q.bits) / 8], "uint8"),
    scales: g.initializer(`${name}.scales`, q.scales, [q.rows, blocks]),
  };
}

/** x·Ŵᵀ for Ŵ [out, in] (HuggingFace's layout). */
export function quantizedLinear(x: Value, w: { codes: Value; scales: Value }, q: QuantizedMatrix): Value {
  return quantMatmul(x, w.codes, w.scales, { bits: q.bits, block: q.block, k: q.cols, transB: true });
}
