/**
 * Block-wise quantization of a weight matrix W [rows, cols] (HuggingFace's [out, in]) along its
 * columns, in the layout ONNX Runtime's MatMulNBits reads: per row, ⌈cols / block⌉ blocks of
 * `block` codes (the last block zero-padded), each block with one float32 scale.
 *
 * - int4: code c ∈ [0, 15] stands for (c − 8)·scale; two codes a byte, the even column in the low
 *   nibble. The scale is the block's largest-magnitude value divided by −8, so that value is
 *   exact and the full 16 levels are used (llama.cpp's q4_0). On Gaussian weights, blocks of 32
 *   give 8.5 % relative RMS error, against 9.7 % for ±7 levels, 8.6 % for NF4 and 8.0 % for
 *   asymmetric int4 (which needs a zero point per block); NF4 wins only from blocks of 128, and
 *   neither NF4 nor zero points have a MatMulNBits kernel as fast (docs/quantized-base.md).
 * - int8: code c ∈ [1, 255] stands for (c − 128)·scale, scale = max |w| / 127 (0.53 % error).
 *
 * A float16 matrix is the other kind of frozen weight: each value rounded to the nearest IEEE
 * binary16 (2 bytes, 11 significant bits: 0.02 % relative RMS error), no blocks and no scales.
 */
import { ConfigError, ShapeError } from "../errors.ts";
import { f16BitsToFloat32, float32ToF16Bits } from "../io/dtype-convert.ts";

export type QuantBits = 4 | 8;

/** Columns per scale: the block MatMulNBits handles fastest at these sizes, and 0.5 bit of scale per weight. */
export const QUANT_BLOCK = 32;

/** A frozen weight matrix held in fewer bytes than float32: block-wise codes, or float16. */
export type QuantizedMatrix = BlockQuantizedMatrix | Float16Matrix;

/** A [rows, cols] float32 matrix held as symmetric block-wise codes: each block of `block` values along a row shares one scale. */
export interface BlockQuantizedMatrix {
  bits: QuantBits;
  block: number;
  rows: number;
  cols: number;
  /** Codes [rows, blocks, block·bits/8]. */
  codes: Uint8Array;
  /** Scales [rows, blocks]. */
  scales: Float32Array;
}

/** A [rows, cols] float32 matrix rounded to float16: `codes` holds the IEEE binary16 bit patterns, row-major. */
export interface Float16Matrix {
  bits: 16;
  rows: number;
  cols: number;
  codes: Uint16Array;
}

/** The largest finite float16. */
const F16_MAX = 65504;

/** The zero code: (c − zero)·scale. */
export const zeroCode = (bits: QuantBits): number => 1 << (bits - 1);

export function blocksOf(cols: number, block: number): number {
  return Math.ceil(cols / block);
}

/** Quantize a row-major [rows, cols] matrix to `bits`-bit codes in blocks of `block` along each row; each block's largest magnitude maps to the most negative code. */
export function quantizeMatrix(data: Float32Array, rows: number, cols: number, bits: QuantBits, block = QUANT_BLOCK): BlockQuantizedMatrix {
  if (data.length !== rows * cols) throw new ShapeError(`quantizeMatrix: ${data.length} values for [${rows}, ${cols}]`);
  const nb = blocksOf(cols, block);
  const perBlock = (block * bits) / 8;
  const codes = new Uint8Array(rows * nb * perBlock);
  const scales = new Float32Array(rows * nb);
  const zero = zeroCode(bits);
  const max = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < nb; j++) {
      const start = r * cols + j * block;
      const len = Math.min(block, cols - j * block);
      let extreme = 0;
      for (let i = 0; i < len; i++) if (Math.abs(data[start + i]) > Math.abs(extreme)) extreme = data[start + i];
      const scale = extreme === 0 ? 1 : bits === 4 ? extreme / -8 : Math.abs(extreme) / 127;
      scales[r * nb + j] = scale;
      const out = (r * nb + j) * perBlock;
      for (let i = 0; i < block; i++) {
        const c = i < len ? Math.min(max, Math.max(0, Math.round(data[start + i] / scale) + zero)) : zero;
        if (bits === 8) codes[out + i] = c;
        else codes[out + (i >> 1)] |= i & 1 ? c << 4 : c;
      }
    }
  }
  return { bits, block, rows, cols, codes, scales };
}

/** A row-major [rows, cols] matrix rounded to the nearest float16 (ties to even), or a ConfigError for a value beyond float16's range. */
export function float16Matrix(data: Float32Array, rows: number, cols: number): Float16Matrix {
  if (data.length !== rows * cols) throw new ShapeError(`float16Matrix: ${data.length} values for [${rows}, ${cols}]`);
  let extreme = 0;
  for (const v of data) if (Math.abs(v) > Math.abs(extreme)) extreme = v;
  // float16 rounds anything from 65520 up to infinity, which would poison every product
  if (Math.abs(extreme) >= F16_MAX + 16) {
    throw new ConfigError(`a weight of ${extreme} is beyond float16's range (±${F16_MAX}); hold this base as int8 or f32 (--base-dtype int8 | f32)`);
  }
  return { bits: 16, rows, cols, codes: float32ToF16Bits(data) };
}

/** The bytes a quantized matrix holds (codes and scales). */
export function heldBytes(q: QuantizedMatrix): number {
  return q.codes.byteLength + (q.bits === 16 ? 0 : q.scales.byteLength);
}

/** W [rows, cols] as float32, exactly as the graph's dequantization computes it. */
export function dequantizeMatrix(q: QuantizedMatrix): Float32Array {
  if (q.bits === 16) return f16BitsToFloat32(q.codes);
  const { bits, block, rows, cols, codes, scales } = q;
  const nb = blocksOf(cols, block);
  const perBlock = (block * bits) / 8;
  const zero = zeroCode(bits);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) {
      const j = Math.floor(k / block);
      const i = k - j * block;
      const byte = codes[(r * nb + j) * perBlock + (bits === 8 ? i : i >> 1)];
      const c = bits === 8 ? byte : i & 1 ? byte >> 4 : byte & 15;
      out[r * cols + k] = Math.fround((c - zero) * scales[r * nb + j]);
    }
  }
  return out;
}
