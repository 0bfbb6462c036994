/** Typed helpers over onnx-proto's generated ModelProto classes: tensors, attributes, value infos. */
import onnxProto from "onnx-proto";
import { internal } from "../errors.ts";
import type { DType, Shape } from "../ir/dtype-shape.ts";
import type { HostData } from "../ir/graph.ts";

export const onnx = onnxProto.onnx;
export type NodeProto = InstanceType<typeof onnx.NodeProto>;
export type TensorProto = InstanceType<typeof onnx.TensorProto>;

/** The ONNX opset this project emits and tests against (LayerNormalization-17, axes-as-input reductions, block-wise DequantizeLinear-21). */
export const OPSET = 21;

const ELEM: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
  float16: onnx.TensorProto.DataType.FLOAT16,
};

/** ONNX's element type of `dtype`; a number is already one (types the IR does not have, as uint4). */
export function elemType(dtype: DType | number): number {
  return typeof dtype === "number" ? dtype : ELEM[dtype];
}

export function bytesOf(data: HostData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function tensorProto(name: string, dtype: DType | number, dims: readonly number[], data: HostData): TensorProto {
  return onnx.TensorProto.create({ name, dataType: elemType(dtype), dims: [...dims], rawData: bytesOf(data) });
}

/** An initializer whose bytes live at [offset, offset+length) of an external data file. */
export function externalTensorProto(
  name: string,
  dtype: DType | number,
  dims: readonly number[],
  location: string,
  offset: number,
  length: number,
): TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType: elemType(dtype),
    dims: [...dims],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: "location", value: location },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(length) },
    ],
  });
}

export function int64Tensor(name: string, values: readonly number[], scalar = false): TensorProto {
  return tensorProto(name, "int64", scalar ? [] : [values.length], BigInt64Array.from(values.map(BigInt)));
}

export type AttrValue = number | string | number[] | TensorProto | { float: number };

/** Integers become INT(S) attributes; wrap a float as {float: x} to force FLOAT. */
export function attr(name: string, v: AttrValue) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === "number") {
    if (!Number.isInteger(v)) internal(`attribute ${name}=${v}: wrap non-integers as {float}`);
    return { name, type: T.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.TENSOR, t: v };
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, domain = ""): NodeProto {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    domain,
    attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
  });
}

export function valueInfo(name: string, dtype: DType, shape: Shape) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: elemType(dtype),
        shape: { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}
