/**
 * A frozen linear layer whose weight is held quantized (src/tensor/quantize.ts: block-wise codes
 * or float16): its codes (and scales) become initializers and y = x·Ŵᵀ one QuantMatMul, so
 * neither the forward nor the backward pass keeps a float32 copy of W.
 */
import { type QuantWeight, quantMatmul } from "../ir/builder.ts";
import type { Graph, Value } from "../ir/graph.ts";
import type { QuantizedMatrix } from "../tensor/quantize.ts";

/** The codes (and scales) of weight `name` as initializers ("<name>.codes", "<name>.scales"). */
export function quantizedWeight(g: Graph, name: string, q: QuantizedMatrix): QuantWeight {
  if (q.bits === 16) return { codes: g.initializer(`${name}.codes`, q.codes, [q.rows, q.cols], "float16") };
  const blocks = q.scales.length / q.rows;
  return {
    codes: g.initializer(`${name}.codes`, q.codes, [q.rows, blocks, (q.block * q.bits) / 8], "uint8"),
    scales: g.initializer(`${name}.scales`, q.scales, [q.rows, blocks]),
  };
}

/** x·Ŵᵀ for Ŵ [out, in] (HuggingFace's layout). */
export function quantizedLinear(x: Value, w: QuantWeight, q: QuantizedMatrix): Value {
  const params = q.bits === 16 ? { bits: q.bits, k: q.cols, transB: true } : { bits: q.bits, block: q.block, k: q.cols, transB: true };
  return quantMatmul(x, w, params);
}
