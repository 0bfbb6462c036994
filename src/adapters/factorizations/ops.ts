/**
 * The few tensor operations a factorisation's slices are written with, in two implementations:
 * IR values (the training graph) and dense host arrays in float64 (merge, export, analysis). A
 * factorisation states its slices once against this interface, so the graph and the host compute
 * the same thing by construction.
 */
import { ShapeError } from "../../errors.ts";
import * as b from "../../ir/builder.ts";
import type { Value } from "../../ir/graph.ts";
import { type Dense, permute, reshape, sizeOf, strides } from "../../tensor/dense.ts";

export interface SliceOps<V> {
  shape(v: V): number[];
  reshape(v: V, shape: number[]): V;
  /** Batched matrix product over the last two axes, leading axes broadcast (numpy's matmul). */
  matmul(a: V, b: V, o?: { transA?: boolean; transB?: boolean }): V;
  /** Elementwise product with numpy broadcasting. */
  mul(a: V, b: V): V;
  /** Reorder axes (numpy's transpose). */
  transpose(v: V, perm: number[]): V;
}

export const graphOps: SliceOps<Value> = {
  shape: (v) => v.shape as number[],
  reshape: (v, s) => b.reshape(v, s),
  matmul: (x, y, o = {}) => b.matmul(x, y, o),
  mul: (x, y) => b.mul(x, y),
  transpose: (v, perm) => b.transpose(v, perm),
};

/** The broadcast shape of two shapes (right-aligned), or a ShapeError. */
function broadcast(a: readonly number[], c: readonly number[], what: string): number[] {
  const n = Math.max(a.length, c.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = c[c.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new ShapeError(`${what}: shapes [${a.join(", ")}] and [${c.join(", ")}] do not broadcast`);
    return Math.max(x, y);
  });
}

/** Offset into `t` (shape `shape`, right-aligned against `out`) of the output index `idx`. */
function offsetOf(shape: readonly number[], idx: readonly number[]): number {
  const st = strides(shape);
  const lead = idx.length - shape.length;
  let o = 0;
  for (let k = 0; k < shape.length; k++) if (shape[k] !== 1) o += idx[lead + k] * st[k];
  return o;
}

function* indices(shape: readonly number[]): Generator<number[]> {
  const idx = new Array<number>(shape.length).fill(0);
  for (let n = sizeOf(shape); n > 0; n--) {
    yield idx;
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
}

export const hostOps: SliceOps<Dense> = {
  shape: (v) => v.shape,
  reshape: (v, s) => reshape(v, s),
  transpose: (v, perm) => permute(v, perm),
  mul(x, y) {
    const shape = broadcast(x.shape, y.shape, "mul");
    const out = new Float64Array(sizeOf(shape));
    let i = 0;
    for (const idx of indices(shape)) out[i++] = x.data[offsetOf(x.shape, idx)] * y.data[offsetOf(y.shape, idx)];
    return { shape, data: out };
  },
  matmul(x, y, o = {}) {
    const [m, k] = o.transA ? [x.shape.at(-1)!, x.shape.at(-2)!] : [x.shape.at(-2)!, x.shape.at(-1)!];
    const [k2, n] = o.transB ? [y.shape.at(-1)!, y.shape.at(-2)!] : [y.shape.at(-2)!, y.shape.at(-1)!];
    if (k !== k2) throw new ShapeError(`matmul: inner sizes differ, [${x.shape.join(", ")}] · [${y.shape.join(", ")}]`);
    const lead = broadcast(x.shape.slice(0, -2), y.shape.slice(0, -2), "matmul");
    const out = new Float64Array(sizeOf(lead) * m * n);
    const xs = x.shape.slice(0, -2);
    const ys = y.shape.slice(0, -2);
    let base = 0;
    for (const idx of indices(lead)) {
      const xo = offsetOf(xs, idx) * m * k;
      const yo = offsetOf(ys, idx) * k * n;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const a = x.data[xo + (o.transA ? p * m + i : i * k + p)];
            const c = y.data[yo + (o.transB ? j * k + p : p * n + j)];
            acc += a * c;
          }
          out[base + i * n + j] = acc;
        }
      }
      base += m * n;
    }
    return { shape: [...lead, m, n], data: out };
  },
};
