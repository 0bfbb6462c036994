/** Host tensors: a typed array with a dtype and a concrete shape, exchanged with compiled graphs. */
import { ShapeError } from "../errors.ts";
import type { DType } from "../ir/dtype-shape.ts";

/** float16 tensors hold their IEEE binary16 bit patterns in a Uint16Array. */
export type HostArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

/** A tensor in JavaScript memory (typed array, dtype, shape), as graphs take and return them. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: HostArray;
}

/** A host tensor, checked: the data must fill the shape exactly. */
export function hostTensor(dtype: DType, shape: number[], data: HostArray): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new ShapeError(`host tensor: ${data.length} values do not fill shape [${shape}] (${n})`);
  return { dtype, shape, data };
}

/** A float32 host tensor of a shape, from numbers (zeros when none are given). */
export const f32 = (shape: number[], data: ArrayLike<number> | Float32Array = new Float32Array(shape.reduce((a, b) => a * b, 1))) =>
  hostTensor("float32", shape, data instanceof Float32Array ? data : Float32Array.from(data));

/** An int64 host tensor of a shape, from numbers or bigints. */
export const i64 = (shape: number[], data: ArrayLike<number | bigint>) => hostTensor("int64", shape, BigInt64Array.from(Array.from(data, (v) => BigInt(v))));
