/**
 * A GGUF (version 3) file writer, the format llama.cpp and Ollama load: a header, typed metadata
 * key/values, tensor descriptors, then the tensor data, each tensor aligned to
 * `general.alignment` (32 bytes). Tensors are given in row-major [rows, cols] order; GGUF lists
 * dimensions innermost first (ne[0] = cols), so the shape is written reversed. Tensors are stored
 * as F32, F16 (round to nearest even) or Q8_0 (blocks of 32 values along a row: an F16 scale
 * d = max|x| / 127 and 32 int8 values round(x / d)), ggml's reference quantisation.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { setFloat16 } from "@petamoriken/float16";
import { ConfigError } from "../errors.ts";
import { namingPath } from "./atomic-file.ts";

/** ggml tensor types this writer stores (their ggml_type ids). */
export const GGML_TYPES = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPES;

/** Values in a Q8_0 block. */
export const Q8_0_BLOCK = 32;
const Q8_0_BYTES = 2 + Q8_0_BLOCK;
export const GGUF_ALIGNMENT = 32;

const VALUE_TYPES = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
type ScalarType = "u32" | "i32" | "f32" | "bool" | "string";

/** A metadata value with its GGUF type (JSON numbers do not say whether they are u32 or f32). */
export type GgufValue =
  | { type: "u32" | "i32" | "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; of: "i32" | "u32" | "f32"; value: ArrayLike<number> }
  | { type: "array"; of: "string"; value: readonly string[] };

export const gguf = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  strings: (value: readonly string[]): GgufValue => ({ type: "array", of: "string", value }),
  i32s: (value: ArrayLike<number>): GgufValue => ({ type: "array", of: "i32", value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({ type: "array", of: "f32", value }),
};

export interface GgufTensor {
  name: string;
  /** Row-major shape, outermost first (a weight matrix is [out, in]). */
  shape: readonly number[];
  data: Float32Array;
  type: GgmlType;
}

/** Bytes a tensor of `shape` takes as `type`. */
export function tensorBytes(shape: readonly number[], type: GgmlType): number {
  const n = shape.reduce((a, b) => a * b, 1);
  if (type === "F32") return 4 * n;
  if (type === "F16") return 2 * n;
  return (n / Q8_0_BLOCK) * Q8_0_BYTES;
}

/** Whether a tensor of `shape` can be stored as Q8_0: rows a whole number of blocks. */
export function fitsQ8_0(shape: readonly number[]): boolean {
  return shape[shape.length - 1] % Q8_0_BLOCK === 0;
}

/** Little-endian byte sink that grows as it is written. */
class Bytes {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  length = 0;
  #need(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // the offset first: #need may replace buf and view
  u32(v: number) {
    const at = this.#need(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number) {
    const at = this.#need(4);
    this.view.setInt32(at, v, true);
  }
  u64(v: number) {
    const at = this.#need(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  f32(v: number) {
    const at = this.#need(4);
    this.view.setFloat32(at, v, true);
  }
  u8(v: number) {
    const at = this.#need(1);
    this.view.setUint8(at, v);
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    const at = this.#need(b.length);
    this.buf.set(b, at);
  }
  pad(align: number) {
    const n = (align - (this.length % align)) % align;
    this.#need(n);
    this.buf.fill(0, this.length - n, this.length);
  }
  scalar(type: ScalarType, v: number | boolean | string) {
    if (type === "string") this.string(v as string);
    else if (type === "bool") this.u8(v ? 1 : 0);
    else this[type](v as number);
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function checkValue(key: string, v: GgufValue): void {
  const ints = v.type === "array" ? (v.of === "string" ? [] : Array.from(v.value as ArrayLike<number>)) : typeof v.value === "number" ? [v.value] : [];
  const kind = v.type === "array" ? v.of : v.type;
  if (kind === "u32" && ints.some((x) => !Number.isInteger(x) || x < 0 || x > 0xffffffff)) throw new ConfigError(`GGUF key ${key}: ${kind} value out of range`);
  if (kind === "i32" && ints.some((x) => !Number.isInteger(x) || x < -0x80000000 || x > 0x7fffffff))
    throw new ConfigError(`GGUF key ${key}: ${kind} value out of range`);
}

/** A tensor's bytes as `type`. */
export function encodeTensor(t: GgufTensor): Uint8Array {
  const n = t.data.length;
  const out = new Uint8Array(tensorBytes(t.shape, t.type));
  const view = new DataView(out.buffer);
  if (t.type === "F32") {
    for (let i = 0; i < n; i++) view.setFloat32(4 * i, t.data[i], true);
  } else if (t.type === "F16") {
    for (let i = 0; i < n; i++) setFloat16(view, 2 * i, t.data[i], true);
  } else {
    for (let b = 0; b < n / Q8_0_BLOCK; b++) {
      const x = t.data.subarray(b * Q8_0_BLOCK, (b + 1) * Q8_0_BLOCK);
      let amax = 0;
      for (const v of x) amax = Math.max(amax, Math.abs(v));
      // float32 arithmetic, as ggml's reference quantiser does
      const d = Math.fround(amax / 127);
      const id = d ? Math.fround(1 / d) : 0;
      const at = b * Q8_0_BYTES;
      setFloat16(view, at, d, true);
      // C's roundf: halves away from zero
      for (let i = 0; i < Q8_0_BLOCK; i++) {
        const q = Math.fround(x[i] * id);
        view.setInt8(at + 2 + i, Math.sign(q) * Math.round(Math.abs(q)));
      }
    }
  }
  return out;
}

/**
 * Write a GGUF file at `path` (to a temporary name, then renamed): `metadata` in the order given
 * (general.architecture first, as llama.cpp's writers do), then `tensors` in order.
 */
export function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[]): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new ConfigError(`GGUF tensor ${t.name} is listed twice`);
    names.add(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new ConfigError(`GGUF tensor ${t.name}: shape [${t.shape}] holds ${n} values, data has ${t.data.length}`);
    if (t.type === "Q8_0" && !fitsQ8_0(t.shape))
      throw new ConfigError(
        `GGUF tensor ${t.name}: rows of ${t.shape[t.shape.length - 1]} values are not whole Q8_0 blocks of ${Q8_0_BLOCK}; store it as F16 or F32`,
      );
  }
  const head = new Bytes();
  head.buf.set(new TextEncoder().encode("GGUF"));
  head.length = 4;
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [key, v] of metadata) {
    checkValue(key, v);
    head.string(key);
    head.u32(VALUE_TYPES[v.type]);
    if (v.type === "array") {
      head.u32(VALUE_TYPES[v.of]);
      head.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) head.scalar(v.of, v.value[i]);
    } else head.scalar(v.type, v.value);
  }
  let offset = 0;
  for (const t of tensors) {
    head.string(t.name);
    head.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) head.u64(t.shape[d]);
    head.u32(GGML_TYPES[t.type]);
    head.u64(offset);
    offset += Math.ceil(tensorBytes(t.shape, t.type) / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  head.pad(GGUF_ALIGNMENT);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    namingPath(path, () => {
      writeSync(fd, head.bytes());
      const zeros = new Uint8Array(GGUF_ALIGNMENT);
      for (const t of tensors) {
        const b = encodeTensor(t);
        writeSync(fd, b);
        const pad = (GGUF_ALIGNMENT - (b.length % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
        if (pad) writeSync(fd, zeros, 0, pad);
      }
      fsyncSync(fd);
    });
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
