/**
 * Naive reference implementations of every primitive, in plain TypeScript over float64 arrays.
 * Written for obviousness, not speed: every op is a loop over output (or input) multi-indices,
 * independent of the IR, its lowering and ONNX Runtime. Tests compare the engine against these.
 */

export interface Tensor {
  shape: number[];
  data: Float64Array;
}

export function tensor(shape: number[], data: ArrayLike<number>): Tensor {
  const n = sizeOf(shape);
  if (data.length !== n) throw new Error(`reference: ${data.length} values for shape [${shape}]`);
  return { shape: [...shape], data: Float64Array.from(data) };
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** The multi-index of flat position `flat` in a row-major array of `shape`. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

function ravel(idx: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let i = 0; i < shape.length; i++) flat = flat * shape[i] + idx[i];
  return flat;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

// ---------------------------------------------------------------------------------------------
// elementwise

export function broadcastShape(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const e = s[i - (rank - s.length)] ?? 1;
      if (e !== 1 && d !== 1 && e !== d) throw new Error(`reference: [${shapes.join("] [")}] do not broadcast`);
      if (e !== 1) d = e;
    }
    out.push(d);
  }
  return out;
}

/** The element of `t` that broadcasting maps to output multi-index `idx`. */
function at(t: Tensor, idx: readonly number[]): number {
  const lead = idx.length - t.shape.length;
  let flat = 0;
  for (let i = 0; i < t.shape.length; i++) flat = flat * t.shape[i] + (t.shape[i] === 1 ? 0 : idx[lead + i]);
  return t.data[flat];
}

export function map(xs: Tensor[], f: (...v: number[]) => number): Tensor {
  const shape = broadcastShape(...xs.map((x) => x.shape));
  const data = new Float64Array(sizeOf(shape));
  for (let k = 0; k < data.length; k++) {
    const idx = unravel(k, shape);
    data[k] = f(...xs.map((x) => at(x, idx)));
  }
  return { shape, data };
}

export const add = (a: Tensor, b: Tensor) => map([a, b], (x, y) => x + y);
export const sub = (a: Tensor, b: Tensor) => map([a, b], (x, y) => x - y);
export const mul = (a: Tensor, b: Tensor) => map([a, b], (x, y) => x * y);
export const div = (a: Tensor, b: Tensor) => map([a, b], (x, y) => x / y);
export const pow = (a: Tensor, b: Tensor) => map([a, b], (x, y) => x ** y);
export const neg = (a: Tensor) => map([a], (x) => -x);
export const exp = (a: Tensor) => map([a], Math.exp);
export const log = (a: Tensor) => map([a], Math.log);
export const sqrt = (a: Tensor) => map([a], Math.sqrt);
export const tanh = (a: Tensor) => map([a], Math.tanh);
export const erfT = (a: Tensor) => map([a], erf);
/** cond ≠ 0 picks a, else b; all three broadcast. */
export const where = (cond: Tensor, a: Tensor, b: Tensor) => map([cond, a, b], (c, x, y) => (c !== 0 ? x : y));

/** Cast as C's static_cast does: float32 rounds to nearest, integers truncate toward zero. */
export function cast(x: Tensor, to: "float32" | "float64" | "int32" | "int64"): Tensor {
  const f = to === "float32" ? Math.fround : to === "float64" ? (v: number) => v : Math.trunc;
  return map([x], f);
}

/**
 * erf to ~1e-15. For |x| < 3 the series erf x = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)),
 * whose terms are all positive (no cancellation); beyond, erfc from its continued fraction
 * erfc x = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), evaluated bottom-up.
 */
export function erf(x: number): number {
  if (x < 0) return -erf(-x);
  if (x === 0) return 0;
  if (x < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return 1 - Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

// ---------------------------------------------------------------------------------------------
// contractions

export interface MatMulOpts {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/** alpha · op(A) · op(B) over the last two axes, leading axes broadcast. */
export function matmul(a: Tensor, b: Tensor, { transA = false, transB = false, alpha = 1 }: MatMulOpts = {}): Tensor {
  const [ar, br] = [a.shape.length, b.shape.length];
  const [m, k] = transA ? [a.shape[ar - 1], a.shape[ar - 2]] : [a.shape[ar - 2], a.shape[ar - 1]];
  const [k2, n] = transB ? [b.shape[br - 1], b.shape[br - 2]] : [b.shape[br - 2], b.shape[br - 1]];
  if (k !== k2) throw new Error(`reference matmul: inner dims ${k} vs ${k2}`);
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, m, n];
  const data = new Float64Array(sizeOf(shape));
  for (let f = 0; f < data.length; f++) {
    const idx = unravel(f, shape);
    const bi = idx.slice(0, -2);
    const [i, j] = [idx[idx.length - 2], idx[idx.length - 1]];
    let s = 0;
    for (let p = 0; p < k; p++) {
      const av = at(a, [...bi, ...(transA ? [p, i] : [i, p])]);
      const bv = at(b, [...bi, ...(transB ? [j, p] : [p, j])]);
      s += av * bv;
    }
    data[f] = alpha * s;
  }
  return { shape, data };
}

/** Explicit einsum ("ab,bc->ac"): a loop over every assignment of every index letter. */
export function einsum(equation: string, ...xs: Tensor[]): Tensor {
  const [lhs, out] = equation.replace(/\s+/g, "").split("->");
  const ins = lhs.split(",");
  const dims = new Map<string, number>();
  ins.forEach((s, i) => [...s].forEach((c, j) => dims.set(c, xs[i].shape[j])));
  const letters = [...dims.keys()];
  const sizes = letters.map((c) => dims.get(c)!);
  const shape = [...out].map((c) => dims.get(c)!);
  const data = new Float64Array(sizeOf(shape));
  for (let f = 0; f < sizeOf(sizes); f++) {
    const val = new Map(unravel(f, sizes).map((v, i) => [letters[i], v]));
    let p = 1;
    ins.forEach(
      (s, i) =>
        (p *=
          xs[i].data[
            ravel(
              [...s].map((c) => val.get(c)!),
              xs[i].shape,
            )
          ]),
    );
    data[
      ravel(
        [...out].map((c) => val.get(c)!),
        shape,
      )
    ] += p;
  }
  return { shape, data };
}

// ---------------------------------------------------------------------------------------------
// normalisation and reductions

/** Apply `f` to every 1-D fibre of `x` along `axis` (f maps a fibre to a same-length fibre). */
function alongAxis(x: Tensor, axis: number, f: (v: number[]) => number[]): Tensor {
  const a = normAxis(axis, x.shape.length);
  const st = stridesOf(x.shape)[a];
  const out = new Float64Array(x.data.length);
  for (let base = 0; base < x.data.length; base++) {
    if (unravel(base, x.shape)[a] !== 0) continue;
    const fibre = Array.from({ length: x.shape[a] }, (_, i) => x.data[base + i * st]);
    f(fibre).forEach((v, i) => (out[base + i * st] = v));
  }
  return { shape: [...x.shape], data: out };
}

export function softmax(x: Tensor, axis: number): Tensor {
  return alongAxis(x, axis, (v) => {
    const m = Math.max(...v);
    const e = v.map((t) => Math.exp(t - m));
    const s = e.reduce((p, q) => p + q, 0);
    return e.map((t) => t / s);
  });
}

export function logSoftmax(x: Tensor, axis: number): Tensor {
  return alongAxis(x, axis, (v) => {
    const m = Math.max(...v);
    const lse = m + Math.log(v.reduce((p, q) => p + Math.exp(q - m), 0));
    return v.map((t) => t - lse);
  });
}

/** Over the last axis: y = (x − μ)/√(σ² + eps) · scale + bias, with μ and 1/√(σ² + eps) kept as [..., 1]. */
export function layerNorm(x: Tensor, scale: Tensor, bias: Tensor, eps: number): { y: Tensor; mean: Tensor; invStd: Tensor } {
  const d = x.shape[x.shape.length - 1];
  const rows = x.data.length / d;
  const y = new Float64Array(x.data.length);
  const mean = new Float64Array(rows);
  const invStd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const v = x.data.subarray(r * d, (r + 1) * d);
    const mu = v.reduce((p, q) => p + q, 0) / d;
    const variance = v.reduce((p, q) => p + (q - mu) ** 2, 0) / d;
    const is = 1 / Math.sqrt(variance + eps);
    mean[r] = mu;
    invStd[r] = is;
    for (let i = 0; i < d; i++) y[r * d + i] = (v[i] - mu) * is * scale.data[i] + bias.data[i];
  }
  const stat = [...x.shape.slice(0, -1), 1];
  return { y: { shape: [...x.shape], data: y }, mean: { shape: stat, data: mean }, invStd: { shape: stat, data: invStd } };
}

function reduce(x: Tensor, axes: number[], keepdims: boolean, mean: boolean): Tensor {
  const norm = new Set(axes.map((a) => normAxis(a, x.shape.length)));
  const kept = x.shape.map((d, i) => (norm.has(i) ? 1 : d));
  const data = new Float64Array(sizeOf(kept));
  for (let f = 0; f < x.data.length; f++) {
    const idx = unravel(f, x.shape).map((v, i) => (norm.has(i) ? 0 : v));
    data[ravel(idx, kept)] += x.data[f];
  }
  const count = x.data.length / data.length;
  if (mean) for (let i = 0; i < data.length; i++) data[i] /= count;
  return { shape: keepdims ? kept : x.shape.filter((_, i) => !norm.has(i)), data };
}

export const reduceSum = (x: Tensor, axes: number[], keepdims = false) => reduce(x, axes, keepdims, false);
export const reduceMean = (x: Tensor, axes: number[], keepdims = false) => reduce(x, axes, keepdims, true);

// ---------------------------------------------------------------------------------------------
// movement

export function reshape(x: Tensor, shape: number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return { shape: shape.map((d) => (d === -1 ? x.data.length / known : d)), data: x.data.slice() };
}

/**
 * W [n, k] from block-wise codes as ONNX Runtime's MatMulNBits defines them: row r, block j holds
 * `block` codes (two 4-bit codes a byte, the even column in the low nibble); w = (c − 2^(bits−1))·scale[r, j].
 */
export function dequantizeBlocks(codes: Tensor, scales: Tensor, bits: 4 | 8, block: number, k: number): Tensor {
  const [n, blocks, bytes] = codes.shape;
  const data = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let col = 0; col < k; col++) {
      const j = Math.floor(col / block);
      const i = col % block;
      const byte = codes.data[(r * blocks + j) * bytes + (bits === 8 ? i : Math.floor(i / 2))];
      const c = bits === 8 ? byte : i % 2 === 0 ? byte % 16 : Math.floor(byte / 16);
      data[r * k + col] = (c - 2 ** (bits - 1)) * scales.data[r * blocks + j];
    }
  }
  return { shape: [n, k], data };
}

/** IEEE binary16 bit patterns decoded by the standard's formula: (−1)^s · 2^(e−15) · (1 + m/1024), subnormals (−1)^s · 2^−14 · m/1024. */
export function halfBits(bits: Tensor): Tensor {
  const decode = (h: number) => {
    const [sign, e, m] = [h >= 0x8000 ? -1 : 1, Math.floor(h / 1024) % 32, h % 1024];
    if (e === 31) throw new Error(`halfBits: ${h} is not finite`);
    return sign * (e === 0 ? 2 ** -14 * (m / 1024) : 2 ** (e - 15) * (1 + m / 1024));
  };
  return { shape: bits.shape, data: Float64Array.from(bits.data, decode) };
}

export function transpose(x: Tensor, perm: number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]);
  const data = new Float64Array(x.data.length);
  for (let f = 0; f < data.length; f++) {
    const idx = unravel(f, shape);
    const src = new Array<number>(perm.length);
    perm.forEach((p, i) => (src[p] = idx[i]));
    data[f] = x.data[ravel(src, x.shape)];
  }
  return { shape, data };
}

export function concat(xs: Tensor[], axis: number): Tensor {
  const a = normAxis(axis, xs[0].shape.length);
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, x) => s + x.shape[a], 0);
  const data = new Float64Array(sizeOf(shape));
  for (let f = 0; f < data.length; f++) {
    const idx = unravel(f, shape);
    let i = 0;
    let pos = idx[a];
    while (pos >= xs[i].shape[a]) pos -= xs[i++].shape[a];
    const src = [...idx];
    src[a] = pos;
    data[f] = xs[i].data[ravel(src, xs[i].shape)];
  }
  return { shape, data };
}

export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const a = normAxis(axis, x.shape.length);
  const shape = [...x.shape];
  shape[a] = end - start;
  const data = new Float64Array(sizeOf(shape));
  for (let f = 0; f < data.length; f++) {
    const idx = unravel(f, shape);
    idx[a] += start;
    data[f] = x.data[ravel(idx, x.shape)];
  }
  return { shape, data };
}

export function pad(x: Tensor, axis: number, before: number, after: number): Tensor {
  const a = normAxis(axis, x.shape.length);
  const shape = [...x.shape];
  shape[a] += before + after;
  const data = new Float64Array(sizeOf(shape));
  for (let f = 0; f < x.data.length; f++) {
    const idx = unravel(f, x.shape);
    idx[a] += before;
    data[ravel(idx, shape)] = x.data[f];
  }
  return { shape, data };
}

export function expand(x: Tensor, shape: number[]): Tensor {
  return map([x, { shape, data: new Float64Array(sizeOf(shape)) }], (v) => v);
}

/** data[..., idx, ...] along `axis`; negative indices count from the back, as in ONNX. */
export function gather(data: Tensor, idx: Tensor, axis: number): Tensor {
  const a = normAxis(axis, data.shape.length);
  const shape = [...data.shape.slice(0, a), ...idx.shape, ...data.shape.slice(a + 1)];
  const out = new Float64Array(sizeOf(shape));
  const k = idx.shape.length;
  for (let f = 0; f < out.length; f++) {
    const o = unravel(f, shape);
    let i = idx.data[ravel(o.slice(a, a + k), idx.shape)];
    if (i < 0) i += data.shape[a];
    out[f] = data.data[ravel([...o.slice(0, a), i, ...o.slice(a + k)], data.shape)];
  }
  return { shape, data: out };
}

/** Zeros of [rows, ...updates.shape[k:]], with updates[i..., :] added into row idx[i...]. */
export function scatterAdd(updates: Tensor, idx: Tensor, rows: number): Tensor {
  const k = idx.shape.length;
  const rest = updates.shape.slice(k);
  const shape = [rows, ...rest];
  const out = new Float64Array(sizeOf(shape));
  const inner = sizeOf(rest);
  for (let i = 0; i < idx.data.length; i++) {
    for (let j = 0; j < inner; j++) out[idx.data[i] * inner + j] += updates.data[i * inner + j];
  }
  return { shape, data: out };
}

/** A one-hot over a new last axis; indices outside [0, depth) give a zero row. */
export function oneHot(idx: Tensor, depth: number): Tensor {
  const out = new Float64Array(idx.data.length * depth);
  idx.data.forEach((v, i) => {
    if (v >= 0 && v < depth) out[i * depth + v] = 1;
  });
  return { shape: [...idx.shape, depth], data: out };
}

// ---------------------------------------------------------------------------------------------
// training

/** Mean of −log softmax(logits)[label] over rows whose label ≠ ignoreIndex; also logProb. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, ignoreIndex: number): { loss: Tensor; logProb: Tensor } {
  const logProb = logSoftmax(logits, 1);
  const c = logits.shape[1];
  let total = 0;
  let count = 0;
  labels.data.forEach((l, r) => {
    if (l === ignoreIndex) return;
    total -= logProb.data[r * c + l];
    count++;
  });
  return { loss: { shape: [], data: Float64Array.of(total / count) }, logProb };
}
