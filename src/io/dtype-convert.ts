/**
 * Typed values of a safetensors tensor: float32 for weights (F16, BF16 and F64 checkpoints are
 * converted), int32 or int64 for token ids and labels. Conversions that could change a value
 * (an I64 outside int32, an integer with no exact float32) fail instead of rounding silently.
 *
 * @example
 * const ids = toInt32(golden.tensors.get("input_ids")!, "input_ids"); // I64 in the file
 */
import { FormatError } from "../errors.ts";
import { DTYPE_ARRAYS, requireLittleEndianHost, type DtypeArrays, type SafetensorsDtype, type TensorEntry } from "./safetensors-bytes.ts";

/**
 * The values as float32. F32 gives a view when aligned (it shares memory with the file), else a
 * copy; F16, BF16 and F64 are converted (F64 rounds to nearest); integer and BOOL tensors are
 * converted only when every value is exactly representable. `what` names the tensor in errors.
 */
export function toFloat32(entry: TensorEntry, what = "tensor"): Float32Array {
  switch (entry.dtype) {
    case "F32":
      return typedView(entry, "F32");
    case "F64":
      return Float32Array.from(typedView(entry, "F64"));
    case "F16":
      return f16BitsToFloat32(typedView(entry, "F16"));
    case "BF16":
      return bf16BitsToFloat32(typedView(entry, "BF16"));
  }
  const ints = integerView(entry, what);
  const out = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) {
    const x = ints[i];
    out[i] = Number(x);
    if (typeof x === "bigint" ? BigInt(out[i]) !== x : out[i] !== x) {
      throw new FormatError(`${what}: ${entry.dtype} value ${ints[i]} at index ${i} has no exact float32 ` + `representation; read it with toBigInt64 instead`);
    }
  }
  return out;
}

/** Integer (or BOOL) values as int32; I64 values outside the int32 range are an error. */
export function toInt32(entry: TensorEntry, what = "tensor"): Int32Array {
  if (entry.dtype === "I32") return typedView(entry, "I32");
  const ints = integerView(entry, what);
  const out = new Int32Array(ints.length);
  for (let i = 0; i < ints.length; i++) {
    const x = ints[i];
    out[i] = Number(x);
    if (typeof x === "bigint" ? BigInt(out[i]) !== x : out[i] !== x) {
      throw new FormatError(`${what}: ${entry.dtype} value ${ints[i]} at index ${i} is outside the int32 range; ` + `read it with toBigInt64 instead`);
    }
  }
  return out;
}

/** Integer (or BOOL) values as int64 (golden `input_ids` are I64). */
export function toBigInt64(entry: TensorEntry, what = "tensor"): BigInt64Array {
  if (entry.dtype === "I64") return typedView(entry, "I64");
  const ints = integerView(entry, what);
  const out = new BigInt64Array(ints.length);
  for (let i = 0; i < ints.length; i++) out[i] = BigInt(ints[i]);
  return out;
}

type IntegerArray = BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

function integerView(entry: TensorEntry, what: string): IntegerArray {
  switch (entry.dtype) {
    case "I64":
    case "I32":
    case "I16":
    case "I8":
    case "U8":
    case "BOOL":
      return typedView(entry, entry.dtype);
    default:
      throw new FormatError(`${what}: expected an integer or BOOL dtype, found ${entry.dtype}; ` + `use toFloat32 for floats`);
  }
}

/** IEEE binary16 bit patterns to float32 (exact: every half value is a float). */
export function f16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      // zero or subnormal: mantissa · 2^-24, exact in float32
      out[i] = (sign ? -mantissa : mantissa) * 2 ** -24;
    } else if (exponent === 0x1f) {
      outBits[i] = sign | 0x7f800000 | (mantissa << 13); // inf, or NaN keeping its payload
    } else {
      outBits[i] = sign | ((exponent + 112) << 23) | (mantissa << 13); // rebias 15 → 127
    }
  }
  return out;
}

/**
 * float32 values to IEEE binary16 bit patterns, rounded to nearest, ties to even (beyond 65504
 * to infinity, NaN to a quiet NaN). @petamoriken/float16's Float16Array rounds the same way at
 * 60–100 ns a value, which made an f16 base load 3× slower than int8's; this loop works on the
 * bits instead (the tests check it against that library).
 */
export function float32ToF16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const abs = bits[i] & 0x7fffffff;
    let h: number;
    if (abs >= 0x47800000) {
      h = abs > 0x7f800000 ? 0x7e00 : 0x7c00; // NaN, or at least 2^16: infinite
    } else if (abs < 0x38800000) {
      // below 2^-14: a subnormal half, a whole number of 2^-24 steps (rounding up to 1024 gives the smallest normal's bits)
      const steps = Math.abs(values[i]) * 2 ** 24;
      const whole = Math.floor(steps);
      const rest = steps - whole;
      h = rest > 0.5 || (rest === 0.5 && whole % 2 === 1) ? whole + 1 : whole;
    } else {
      // rebias the exponent (127 → 15) and drop 13 mantissa bits, ties to even; a carry out of the mantissa raises the exponent
      const rebiased = abs - 0x38000000;
      h = (rebiased + 0xfff + ((rebiased >>> 13) & 1)) >>> 13;
    }
    out[i] = ((bits[i] >>> 16) & 0x8000) | h;
  }
  return out;
}

/** bfloat16 bit patterns to float32: bfloat16 is the top half of a float32. */
export function bf16BitsToFloat32(bits: Uint16Array): Float32Array {
  const outBits = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return new Float32Array(outBits.buffer);
}

/** A typed view of the entry's bytes, or a copy when they are not aligned to the element size. */
function typedView<D extends SafetensorsDtype>(entry: TensorEntry, dtype: D): DtypeArrays[D] {
  requireLittleEndianHost();
  const Ctor = DTYPE_ARRAYS[dtype];
  const aligned = entry.bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0;
  const bytes = aligned ? entry.bytes : new Uint8Array(entry.bytes); // the copy starts at offset 0
  return new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
}
