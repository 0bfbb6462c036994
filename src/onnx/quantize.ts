/**
 * Dynamic int8 quantization of an inference graph's weight matrices, the kind of model that
 * transformers.js loads as `model_quantized.onnx` (dtype "q8"): every MatMul / FusedMatMul / Gemm
 * whose right operand is a 2-D float32 weight initializer reads 8-bit weights with one symmetric
 * scale per output column; its activations are quantized to uint8 at run time
 * (DynamicQuantizeLinear), multiplied in integers (MatMulInteger), and rescaled to float.
 * The weights are stored as uint8 with zero point 128, not as int8: on x86 without VNNI,
 * ONNX Runtime multiplies uint8 × int8 with vpmaddubsw, whose int16 pair sums saturate for
 * full-range weights (logits off by 0.1 and more on a ViT), while uint8 × uint8 takes a kernel
 * that widens first. Weights stay inline (see model-file.ts inlineWeights) while this runs.
 */
import { type GraphProto, type ModelProto, graphOf } from "./model-file.ts";
import { type NodeProto, node, onnx, tensorProto } from "./proto.ts";

/** The weight quantizations the ONNX export and the runtime offer. */
export type Quantization = "q8";

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const UINT8 = onnx.TensorProto.DataType.UINT8;
const ZERO_POINT = 128;
const WEIGHT_ZERO_POINT = "weights_q8_zero_point";

interface WeightUse {
  /** The activation input. */
  a: string;
  w: string;
  transB: boolean;
  alpha: number;
  /** Gemm's addend. */
  c?: string;
}

const attrOf = (n: NodeProto, name: string) => n.attribute?.find((a) => a.name === name);

/** The node as activation · weight (+ c), or undefined when it is not one this pass rewrites. */
function weightUse(n: NodeProto, weights: Map<string, { dims: number[] }>): WeightUse | undefined {
  const kind =
    n.domain === "com.microsoft"
      ? n.opType === "FusedMatMul"
        ? "fused"
        : undefined
      : n.opType === "MatMul"
        ? "plain"
        : n.opType === "Gemm"
          ? "gemm"
          : undefined;
  if (!kind) return undefined;
  const [a, w, c] = n.input as string[];
  const info = weights.get(w);
  if (info?.dims.length !== 2) return undefined;
  if (Number(attrOf(n, "transA")?.i ?? 0) !== 0) return undefined;
  if (kind === "gemm" && c && attrOf(n, "beta") && attrOf(n, "beta")!.f !== 1) return undefined;
  return { a, w, transB: Number(attrOf(n, "transB")?.i ?? 0) === 1, alpha: attrOf(n, "alpha")?.f ?? 1, c: kind === "gemm" ? c : undefined };
}

/** uint8 [K, N] (int8 values + 128) with per-column scales from a float32 weight stored [K, N] (or [N, K] when transposed). */
function quantizeWeight(data: Float32Array, dims: number[], transposed: boolean): { q: Uint8Array; scale: Float32Array; K: number; N: number } {
  const [K, N] = transposed ? [dims[1], dims[0]] : [dims[0], dims[1]];
  const at = (k: number, n: number) => (transposed ? data[n * K + k] : data[k * N + n]);
  const scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(at(k, n)));
    scale[n] = m > 0 ? m / 127 : 1;
  }
  const q = new Uint8Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) q[k * N + n] = Math.round(at(k, n) / scale[n]) + ZERO_POINT;
  return { q, scale, K, N };
}

/** Rewrite `proto` in place; returns how many weight matrices became int8. */
export function quantizeDynamicInt8(proto: ModelProto): number {
  const g: GraphProto = graphOf(proto);
  const weights = new Map(
    g.initializer.filter((t) => t.dataType === FLOAT && t.rawData?.length).map((t) => [t.name!, { dims: (t.dims ?? []).map(Number), tensor: t }]),
  );
  const out: NodeProto[] = [];
  const quantized = new Map<string, { q: string; scale: Float32Array }>();
  const activations = new Map<string, [string, string, string]>();
  let count = 0;
  for (const n of g.node) {
    const use = weightUse(n, weights);
    if (!use) {
      out.push(n);
      continue;
    }
    const key = `${use.w}|${use.transB}`;
    let wq = quantized.get(key);
    if (!wq) {
      const { dims, tensor } = weights.get(use.w)!;
      const raw = tensor.rawData!;
      const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const { q, scale, K, N } = quantizeWeight(data, dims, use.transB);
      const name = `${use.w}_q8${use.transB ? "_t" : ""}`;
      g.initializer.push(onnx.TensorProto.create({ name, dataType: UINT8, dims: [K, N], rawData: q }));
      wq = { q: name, scale };
      quantized.set(key, wq);
      count++;
    }
    let act = activations.get(use.a);
    if (!act) {
      act = [`${use.a}_u8`, `${use.a}_scale`, `${use.a}_zp`];
      out.push(node("DynamicQuantizeLinear", [use.a], act));
      activations.set(use.a, act);
    }
    const y = n.output![0];
    const p = `${y}_q8`;
    const colScale = `${p}_wscale`;
    g.initializer.push(
      tensorProto(
        colScale,
        "float32",
        [wq.scale.length],
        wq.scale.map((s) => s * use.alpha),
      ),
    );
    out.push(
      node("MatMulInteger", [act[0], wq.q, act[2], WEIGHT_ZERO_POINT], [`${p}_i32`]),
      node("Cast", [`${p}_i32`], [`${p}_f`], { to: FLOAT }),
      node("Mul", [act[1], colScale], [`${p}_scale`]),
      node("Mul", [`${p}_f`, `${p}_scale`], [use.c ? `${p}_y` : y]),
    );
    if (use.c) out.push(node("Add", [`${p}_y`, use.c], [y]));
  }
  if (count > 0) g.initializer.push(onnx.TensorProto.create({ name: WEIGHT_ZERO_POINT, dataType: UINT8, dims: [], rawData: Uint8Array.of(ZERO_POINT) }));
  g.node = out;
  // float weights no node reads any more
  const read = new Set(g.node.flatMap((n) => n.input ?? []));
  g.initializer = g.initializer.filter((t) => read.has(t.name!) || !weights.has(t.name!));
  return count;
}
