/**
 * The op table: every primitive `Op` has rows, and every row goes through one `checkOp`:
 * (a) shape inference against the reference's shape, (b) lower + run on ONNX Runtime against the
 * plain-TypeScript reference (test/reference.ts), (c) the VJP against central finite differences.
 * Rows run in float64 where ONNX Runtime's CPU kernels have a float64 variant.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { type CheckInput, checkValues, gradCheck } from "../src/runtime/grad-check.ts";
import { grad } from "../src/autodiff/vjp.ts";
import { vjpRules } from "../src/autodiff/rules.ts";
import { ConfigError, UnsupportedOpError } from "../src/errors.ts";
import * as b from "../src/ir/builder.ts";
import { dropout } from "../src/ir/functional.ts";
import type { DType } from "../src/ir/dtype-shape.ts";
import { Graph, type Value, typecheck } from "../src/ir/graph.ts";
import { Op } from "../src/ir/ops.ts";
import { type HostArray, type HostTensor, hostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import { Rng } from "../src/tensor/random.ts";
import * as R from "./reference.ts";
import type { Tensor } from "./reference.ts";

// ---------------------------------------------------------------------------------------------
// rows and the one checker

interface Tolerance {
  atol: number;
  rtol: number;
}

interface GradOpts {
  /** Finite-difference step (gradCheck's default: 1e-6 in float64, 1e-2 in float32). */
  eps?: number;
  /** Pass when |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|). */
  atol?: number;
  rtol?: number;
}

interface Row {
  op: Op;
  name: string;
  inputs: CheckInput[];
  build: (...xs: Value[]) => Value;
  reference: (...xs: Tensor[]) => Tensor;
  /** The output's dtype. */
  dtype: DType;
  /** false: forward only (no float input, or the VJP is deliberately unsupported). */
  grad?: false | GradOpts;
  tol?: Tolerance;
}

const FWD_TOL: Record<string, Tolerance> = { float64: { atol: 1e-12, rtol: 1e-11 }, float32: { atol: 1e-5, rtol: 1e-5 } };
const GRAD_TOL: Record<string, Required<Omit<GradOpts, "eps">>> = {
  float64: { atol: 1e-9, rtol: 1e-6 },
  float32: { atol: 1e-4, rtol: 1e-3 },
};

function hostOf(i: CheckInput): HostTensor {
  const src = Array.from(i.data as ArrayLike<number>);
  const data: HostArray =
    i.dtype === "float64"
      ? Float64Array.from(src)
      : i.dtype === "float32"
        ? Float32Array.from(src)
        : i.dtype === "int64"
          ? BigInt64Array.from(src.map((v) => BigInt(v)))
          : i.dtype === "int32"
            ? Int32Array.from(src)
            : i.dtype === "float16"
              ? Uint16Array.from(src)
              : Uint8Array.from(src);
  return hostTensor(i.dtype, i.shape, data);
}

function assertClose(actual: ArrayLike<number | bigint>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const e = expected[i];
    const ok = a === e || Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
    assert.ok(ok, `${what}[${i}]: got ${a}, expected ${e} (atol ${tol.atol}, rtol ${tol.rtol})`);
  }
}

/** Worst relative gradient error per op and dtype (|a − n| / max(|a|, |n|, atol/rtol)), for the summary. */
const worstByOp = new Map<string, number>();

/** The graph checkOp is building: a row without inputs (Constant) has no Value to take it from. */
let building: Graph | undefined;
const currentGraph = (): Graph => building ?? assert.fail("currentGraph() outside checkOp");

async function checkOp(row: Row): Promise<number | undefined> {
  const g = new Graph();
  building = g;
  const xs = checkValues(g, row.inputs);
  const y = row.build(...xs);
  assert.ok(
    g.nodes.some((n) => n.op === row.op),
    `row "${row.name}" never binds ${row.op}`,
  );
  typecheck(g);
  const ref = row.reference(...row.inputs.map((i) => R.tensor(i.shape, Array.from(i.data as ArrayLike<number>))));

  // (a) shape inference
  assert.deepEqual([...y.shape], ref.shape, `${row.name}: inferred shape`);
  assert.equal(y.dtype, row.dtype, `${row.name}: inferred dtype`);

  // (b) ONNX Runtime against the reference
  g.output("y", y);
  const session = await compile(g, { threads: 1 });
  try {
    const feeds = Object.fromEntries(row.inputs.filter((i) => !i.frozen).map((i) => [i.name, hostOf(i)]));
    const out = (await session.run(feeds)).y;
    assert.equal(out.dtype, row.dtype, `${row.name}: ORT output dtype`);
    assert.deepEqual(out.shape, ref.shape, `${row.name}: ORT output shape`);
    assertClose(out.data, ref.data, row.tol ?? FWD_TOL[row.dtype] ?? FWD_TOL.float64, row.name);
  } finally {
    session.dispose();
  }

  // (c) the VJP against central finite differences
  const differentiable = row.inputs.some((i) => (i.dtype === "float32" || i.dtype === "float64") && i.wrt !== false);
  if (row.grad === false || !differentiable) return undefined;
  const fdDtype = row.inputs.some((i) => i.dtype === "float32") || row.dtype === "float32" ? "float32" : "float64";
  const { atol, rtol } = { ...GRAD_TOL[fdDtype], ...row.grad };
  const eps = row.grad?.eps ?? (fdDtype === "float32" ? 1e-2 : 1e-6);
  // rtol 1 with atol/rtol as floor makes `worst` the relative error itself; passing means worst ≤ rtol.
  const r = await gradCheck(row.build, row.inputs, { eps, rtol: 1, atol: atol / rtol, maxElements: 64 });
  if (!(r.worst <= rtol)) {
    const detail = await gradCheck(row.build, row.inputs, { eps, rtol, atol, maxElements: 64 });
    assert.fail(`${row.name}: relative gradient error ${r.worst} > ${rtol}; ${detail.failures.join("; ")}`);
  }
  const key = `${row.op.padEnd(20)} ${fdDtype}`;
  worstByOp.set(key, Math.max(worstByOp.get(key) ?? 0, r.worst));
  return r.worst;
}

// ---------------------------------------------------------------------------------------------
// inputs

const rng = new Rng(20240611);

/** A float input with uniform values in [lo, hi), rounded to the input's precision. */
function fl(name: string, dtype: DType, shape: number[], lo = -1, hi = 1, wrt?: boolean): CheckInput {
  const n = R.sizeOf(shape);
  const raw = Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());
  const data = dtype === "float32" ? Array.from(Float32Array.from(raw)) : raw;
  return { name, dtype, shape, data, wrt };
}

function ix(name: string, shape: number[], values: number[], dtype: DType = "int64"): CheckInput {
  assert.equal(values.length, R.sizeOf(shape));
  return { name, dtype, shape, data: values };
}

const F64: DType = "float64";
const F32: DType = "float32";

// ---------------------------------------------------------------------------------------------
// the table

const rows: Row[] = [];

// elementwise, with broadcasting
for (const dtype of [F64, F32]) {
  rows.push(
    { op: Op.Add, name: `Add ${dtype} [2,3,4]+[4]`, dtype, inputs: [fl("a", dtype, [2, 3, 4]), fl("b", dtype, [4])], build: b.add, reference: R.add },
    { op: Op.Add, name: `Add ${dtype} [2,1,4]+[3,1]`, dtype, inputs: [fl("a", dtype, [2, 1, 4]), fl("b", dtype, [3, 1])], build: b.add, reference: R.add },
    { op: Op.Sub, name: `Sub ${dtype} [3,1]-[2,3,4]`, dtype, inputs: [fl("a", dtype, [3, 1]), fl("b", dtype, [2, 3, 4])], build: b.sub, reference: R.sub },
    { op: Op.Mul, name: `Mul ${dtype} [2,1,4]·[3,1]`, dtype, inputs: [fl("a", dtype, [2, 1, 4]), fl("b", dtype, [3, 1])], build: b.mul, reference: R.mul },
    { op: Op.Div, name: `Div ${dtype} [2,3]/[3]`, dtype, inputs: [fl("a", dtype, [2, 3]), fl("b", dtype, [3], 0.5, 2)], build: b.div, reference: R.div },
    {
      op: Op.Pow,
      name: `Pow ${dtype} [2,3]^[3]`,
      dtype,
      inputs: [fl("x", dtype, [2, 3], 0.5, 2), fl("e", dtype, [3], -1.5, 2)],
      build: b.pow,
      reference: R.pow,
    },
    { op: Op.Neg, name: `Neg ${dtype}`, dtype, inputs: [fl("x", dtype, [3, 4])], build: b.neg, reference: R.neg },
    { op: Op.Exp, name: `Exp ${dtype}`, dtype, inputs: [fl("x", dtype, [3, 4], -2, 2)], build: b.exp, reference: R.exp },
    { op: Op.Log, name: `Log ${dtype}`, dtype, inputs: [fl("x", dtype, [3, 4], 0.5, 3)], build: b.log, reference: R.log },
    { op: Op.Sqrt, name: `Sqrt ${dtype}`, dtype, inputs: [fl("x", dtype, [3, 4], 0.5, 3)], build: b.sqrt, reference: R.sqrt },
    { op: Op.Tanh, name: `Tanh ${dtype}`, dtype, inputs: [fl("x", dtype, [3, 4], -2, 2)], build: b.tanh, reference: R.tanh },
  );
}
rows.push(
  // a plain number operand becomes a scalar constant of the other operand's dtype
  {
    op: Op.Mul,
    name: "Mul float64 by a number",
    dtype: F64,
    inputs: [fl("a", F64, [2, 3])],
    build: (a) => b.mul(a, -2.5),
    reference: (a) => R.map([a], (v) => v * -2.5),
  },
  {
    op: Op.Sub,
    name: "Sub float32 number − x",
    dtype: F32,
    inputs: [fl("a", F32, [2, 3])],
    build: (a) => b.sub(1, a),
    reference: (a) => R.map([a], (v) => 1 - v),
  },
  // ONNX Runtime's CPU Erf is float32-only
  { op: Op.Erf, name: "Erf float32", dtype: F32, inputs: [fl("x", F32, [3, 4], -2.5, 2.5)], build: b.erf, reference: R.erfT },
  {
    op: Op.Where,
    name: "Where float64 cond[3,4] a[2,3,4] b[4]",
    dtype: F64,
    inputs: [ix("c", [3, 4], [1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], "bool"), fl("a", F64, [2, 3, 4]), fl("b", F64, [4])],
    build: (c, x, y) => b.where(c, x, y),
    reference: R.where,
  },
  {
    op: Op.Where,
    name: "Where float32 cond[2,1] a[2,3] 0",
    dtype: F32,
    inputs: [ix("c", [2, 1], [0, 1], "bool"), fl("a", F32, [2, 3])],
    build: (c, x) => b.where(c, x, 0),
    reference: (c, x) => R.where(c, x, R.tensor([], [0])),
  },
  {
    op: Op.Cast,
    name: "Cast float32→float64",
    dtype: F64,
    inputs: [fl("x", F32, [2, 3])],
    build: (x) => b.cast(x, F64),
    reference: (x) => R.cast(x, "float64"),
  },
  {
    op: Op.Cast,
    name: "Cast float64→float32",
    dtype: F32,
    inputs: [fl("x", F64, [2, 3])],
    build: (x) => b.cast(x, F32),
    reference: (x) => R.cast(x, "float32"),
  },
  { op: Op.Cast, name: "Cast int64→float64", dtype: F64, inputs: [ix("i", [4], [3, -2, 0, 7])], build: (x) => b.cast(x, F64), reference: (x) => x },
  {
    op: Op.Less,
    name: "Less float64 [2,3]<[3], equal values are not less",
    dtype: "bool",
    inputs: [
      { name: "a", dtype: F64, shape: [2, 3], data: [1, -2, 0.5, 3, 0, -1] },
      { name: "b", dtype: F64, shape: [3], data: [1, 0, 2] },
    ],
    build: (x, y) => b.less(x, y),
    reference: (x, y) => R.map([x, y], (u, v) => +(u < v)),
    grad: false,
  },
  {
    op: Op.Less,
    name: "Less int64 [4] < a number",
    dtype: "bool",
    inputs: [ix("i", [4], [3, -2, 0, 7])],
    build: (x) => b.less(x, 3),
    reference: (x) => R.map([x], (u) => +(u < 3)),
  },
  {
    op: Op.Cast,
    name: "Cast float64→int64 truncates",
    dtype: "int64",
    inputs: [{ name: "x", dtype: F64, shape: [6], data: [2.7, -1.3, 0.5, -0.5, 3, -4.99] }],
    build: (x) => b.cast(x, "int64"),
    reference: (x) => R.cast(x, "int64"),
    grad: false,
  },
);

// MatMul: every transA × transB × alpha, rank 3 with a broadcast batch, rank 2 (Gemm), batched × 2-D
const mmShape = (m: number, k: number, t: boolean, batch: number[]) => [...batch, ...(t ? [k, m] : [m, k])];
for (const dtype of [F64, F32]) {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const alpha of [1, -0.7]) {
        const opts = { transA, transB, alpha };
        const tag = `transA=${+transA} transB=${+transB} alpha=${alpha}`;
        // alpha reaches ONNX Runtime as a float32 attribute (Gemm's alpha; and the extended optimiser
        // folds a float64 scale Mul into FusedMatMul's alpha), so float64 is float32-accurate in alpha
        const tol = dtype === F64 && Math.fround(alpha) !== alpha ? { atol: 1e-12, rtol: 1e-7 } : undefined;
        rows.push({
          op: Op.MatMul,
          name: `MatMul ${dtype} [2|1 batch] ${tag}`,
          dtype,
          tol,
          inputs: [fl("a", dtype, mmShape(3, 4, transA, [2])), fl("b", dtype, mmShape(4, 5, transB, [1]))],
          build: (x, y) => b.matmul(x, y, opts),
          reference: (x, y) => R.matmul(x, y, opts),
        });
        if (dtype === F64) {
          rows.push({
            op: Op.MatMul,
            name: `MatMul ${dtype} 2-D ${tag}`,
            dtype,
            tol,
            inputs: [fl("a", dtype, mmShape(3, 4, transA, [])), fl("b", dtype, mmShape(4, 5, transB, []))],
            build: (x, y) => b.matmul(x, y, opts),
            reference: (x, y) => R.matmul(x, y, opts),
          });
        }
      }
    }
  }
  // a batched activation times a 2-D weight: the weight's gradient is one flattened GEMM
  for (const [transA, transB, alpha] of [
    [false, true, 1],
    [false, false, 0.5],
    [true, false, 1],
  ] as const) {
    const opts = { transA, transB, alpha };
    rows.push({
      op: Op.MatMul,
      name: `MatMul ${dtype} batched × 2-D weight transA=${+transA} transB=${+transB} alpha=${alpha}`,
      dtype,
      inputs: [fl("x", dtype, mmShape(3, 4, transA, [2])), fl("w", dtype, mmShape(4, 5, transB, []))],
      build: (x, w) => b.matmul(x, w, opts),
      reference: (x, w) => R.matmul(x, w, opts),
    });
  }
}

// QuantMatMul: x · Ŵᵀ (MatMulNBits; at 8 bits, two 4-bit MatMulNBits on the codes' nibbles up to
// 16 rows of x, dequantize-then-FusedMatMul above) and x · Ŵ (dequantize, then MatMul) against the
// dequantized weight; k = 48 leaves the second 32-column block half padding
for (const bits of [4, 8] as const) {
  for (const k of [64, 48]) {
    for (const transB of [true, false]) {
      // 6 rows of x, and at 8 bits also 18 (above the nibbles' 16)
      for (const seq of bits === 8 && transB ? [3, 9] : [3]) {
        const n = 5;
        const block = 32;
        const blocks = Math.ceil(k / block);
        const params = { bits, block, k, transB };
        const codes = Array.from({ length: n * blocks * ((block * bits) / 8) }, () => Math.floor(rng.uniform() * 256));
        rows.push({
          op: Op.QuantMatMul,
          name: `QuantMatMul int${bits} k=${k} transB=${+transB} rows=${2 * seq}`,
          dtype: F32,
          inputs: [
            fl("x", F32, [2, seq, transB ? k : n]),
            // the codes and scales of a frozen weight are initializers: the 4-bit lowering reads the codes' bytes as uint4
            { name: "codes", dtype: "uint8", shape: [n, blocks, (block * bits) / 8], data: codes, frozen: true },
            // int8 codes reach ±127: smaller scales keep Ŵ near the int4 rows' magnitude
            { ...fl("scales", F32, [n, blocks], -0.8 / 2 ** (bits - 1), 0.8 / 2 ** (bits - 1), false), frozen: true },
          ],
          build: (x, c, s) => b.quantMatmul(x, { codes: c, scales: s }, params),
          reference: (x, c, s) => R.matmul(x, R.dequantizeBlocks(c, s, bits, block, k), { transB }),
          // linear in x, so central differences are exact at any step: a larger one keeps the
          // float32 loss's rounding (a sum over up to 90 outputs, on WebGPU too) under the tolerance
          grad: { eps: 0.1 },
        });
      }
    }
  }
}
// float16 codes: x · Ŵᵀ and x · Ŵ (Ŵ cast to float32, then MatMul) against Ŵ decoded from its bits
// by the IEEE binary16 formula. The codes include the smallest subnormal, ±0 and ±65504 (the
// largest finite half); x is small so that the loss the finite differences read stays near 1
for (const transB of [true, false]) {
  const [n, k] = [5, 6];
  const special = [0x0001, 0x8000, 0x0000, 0x7bff, 0xfbff];
  // the others: normal halves of either sign below 2 in magnitude (exponent fields 1–15)
  const codes = Array.from(
    { length: n * k },
    (_, i) => special[i] ?? (rng.uniform() < 0.5 ? 0x8000 : 0) | (Math.floor(1 + rng.uniform() * 15) << 10) | Math.floor(rng.uniform() * 1024),
  );
  rows.push({
    op: Op.QuantMatMul,
    name: `QuantMatMul float16 transB=${+transB}`,
    dtype: F32,
    inputs: [fl("x", F32, [2, 3, transB ? k : n], -1e-4, 1e-4), { name: "codes", dtype: "float16", shape: [n, k], data: codes, wrt: false }],
    build: (x, c) => b.quantMatmul(x, { codes: c }, { bits: 16, k, transB }),
    reference: (x, c) => R.matmul(x, R.halfBits(c), { transB }),
    tol: { atol: 1e-5, rtol: 1e-4 },
  });
}

// Einsum
for (const [equation, shapes] of [
  ["ij->i", [[3, 4]]],
  [
    "ij,jk->ik",
    [
      [3, 4],
      [4, 2],
    ],
  ],
  [
    "bsi,ir,ro->bso",
    [
      [2, 3, 4],
      [4, 2],
      [2, 5],
    ],
  ],
  [
    "bhqd,bhkd->bhqk",
    [
      [1, 2, 3, 4],
      [1, 2, 5, 4],
    ],
  ],
  ["ijk->kj", [[2, 3, 4]]],
] as const) {
  rows.push({
    op: Op.Einsum,
    name: `Einsum float64 "${equation}"`,
    dtype: F64,
    inputs: shapes.map((s, i) => fl(`x${i}`, F64, [...s])),
    build: (...xs) => b.einsum(equation, ...xs),
    reference: (...xs) => R.einsum(equation, ...xs),
  });
}

// normalisation and reductions
rows.push(
  {
    op: Op.Softmax,
    name: "Softmax float64 middle axis",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3, 4], -2, 2)],
    build: (x) => b.softmax(x, 1),
    reference: (x) => R.softmax(x, 1),
  },
  {
    op: Op.Softmax,
    name: "Softmax float32 last axis",
    dtype: F32,
    inputs: [fl("x", F32, [2, 3, 4], -2, 2)],
    build: (x) => b.softmax(x, -1),
    reference: (x) => R.softmax(x, -1),
  },
  {
    op: Op.LogSoftmax,
    name: "LogSoftmax float64 middle axis",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3, 4], -2, 2)],
    build: (x) => b.logSoftmax(x, 1),
    reference: (x) => R.logSoftmax(x, 1),
  },
  {
    op: Op.LogSoftmax,
    name: "LogSoftmax float32 axis 0",
    dtype: F32,
    inputs: [fl("x", F32, [3, 4], -2, 2)],
    build: (x) => b.logSoftmax(x, 0),
    reference: (x) => R.logSoftmax(x, 0),
  },
);
for (const dtype of [F64, F32]) {
  const ln = () => [fl("x", dtype, [2, 3, 5], -2, 2), fl("scale", dtype, [5], 0.5, 1.5), fl("bias", dtype, [5])];
  const eps = 1e-5;
  rows.push(
    {
      op: Op.LayerNorm,
      name: `LayerNorm ${dtype} y`,
      dtype,
      inputs: ln(),
      build: (x, s, c) => b.layerNormParts(x, s, c, eps).y,
      reference: (x, s, c) => R.layerNorm(x, s, c, eps).y,
    },
    // gradients through the saved statistics are unsupported by design (only y is differentiated)
    {
      op: Op.LayerNorm,
      name: `LayerNorm ${dtype} mean`,
      dtype,
      inputs: ln(),
      build: (x, s, c) => b.layerNormParts(x, s, c, eps).mean,
      reference: (x, s, c) => R.layerNorm(x, s, c, eps).mean,
      grad: false,
    },
    {
      op: Op.LayerNorm,
      name: `LayerNorm ${dtype} invStd`,
      dtype,
      inputs: ln(),
      build: (x, s, c) => b.layerNormParts(x, s, c, eps).invStd,
      reference: (x, s, c) => R.layerNorm(x, s, c, eps).invStd,
      grad: false,
      tol: dtype === F32 ? { atol: 1e-5, rtol: 1e-4 } : undefined,
    },
  );
}
// rows far from zero mean (float64: float32 differences of such rows are too coarse; composites.test.ts
// checks float32 there against this float64 gradient)
rows.push({
  op: Op.LayerNorm,
  name: "LayerNorm float64 y, inputs around 50",
  dtype: F64,
  inputs: [fl("x", F64, [2, 3, 5], 48, 52), fl("scale", F64, [5], 0.5, 1.5), fl("bias", F64, [5])],
  build: (x, s, c) => b.layerNormParts(x, s, c, 1e-5).y,
  reference: (x, s, c) => R.layerNorm(x, s, c, 1e-5).y,
});
for (const [axes, keepdims] of [
  [[0, 2], false],
  [[-2], true],
  [[0, 1, 2], false],
] as const) {
  for (const [op, fn, ref] of [
    [Op.ReduceSum, b.reduceSum, R.reduceSum],
    [Op.ReduceMean, b.reduceMean, R.reduceMean],
  ] as const) {
    rows.push({
      op,
      name: `${op} float64 axes=[${axes}] keepdims=${keepdims}`,
      dtype: F64,
      inputs: [fl("x", F64, [2, 3, 4])],
      build: (x) => fn(x, [...axes], keepdims),
      reference: (x) => ref(x, [...axes], keepdims),
    });
  }
}
rows.push({
  op: Op.ReduceMean,
  name: "ReduceMean float64 axes=[] reduces nothing",
  dtype: F64,
  inputs: [fl("x", F64, [2, 3])],
  build: (x) => b.reduceMean(x, []),
  reference: (x) => x,
});
rows.push({
  op: Op.ReduceSum,
  name: "ReduceSum float32 axes=[1]",
  dtype: F32,
  inputs: [fl("x", F32, [2, 3, 4])],
  build: (x) => b.reduceSum(x, [1]),
  reference: (x) => R.reduceSum(x, [1]),
});

// movement
rows.push(
  {
    op: Op.Reshape,
    name: "Reshape float64 [2,3,4]→[4,-1]",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3, 4])],
    build: (x) => b.reshape(x, [4, -1]),
    reference: (x) => R.reshape(x, [4, -1]),
  },
  {
    op: Op.Reshape,
    name: "Reshape float32 [6]→[1,2,3]",
    dtype: F32,
    inputs: [fl("x", F32, [6])],
    build: (x) => b.reshape(x, [1, 2, 3]),
    reference: (x) => R.reshape(x, [1, 2, 3]),
  },
  {
    op: Op.Transpose,
    name: "Transpose float64 [2,0,1]",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3, 4])],
    build: (x) => b.transpose(x, [2, 0, 1]),
    reference: (x) => R.transpose(x, [2, 0, 1]),
  },
  {
    op: Op.Transpose,
    name: "Transpose float64 [0,2,1,3]",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3, 2, 2])],
    build: (x) => b.transpose(x, [0, 2, 1, 3]),
    reference: (x) => R.transpose(x, [0, 2, 1, 3]),
  },
  {
    op: Op.Concat,
    name: "Concat float64 middle axis, three inputs",
    dtype: F64,
    inputs: [fl("a", F64, [2, 1, 4]), fl("b", F64, [2, 2, 4]), fl("c", F64, [2, 3, 4])],
    build: (...xs) => b.concat(xs, 1),
    reference: (...xs) => R.concat(xs, 1),
  },
  {
    op: Op.Concat,
    name: "Concat float32 axis -1",
    dtype: F32,
    inputs: [fl("a", F32, [3, 2]), fl("b", F32, [3, 1])],
    build: (...xs) => b.concat(xs, -1),
    reference: (...xs) => R.concat(xs, -1),
  },
  {
    op: Op.Slice,
    name: "Slice float64 middle axis [1,4)",
    dtype: F64,
    inputs: [fl("x", F64, [2, 5, 3])],
    build: (x) => b.slice(x, 1, 1, 4),
    reference: (x) => R.slice(x, 1, 1, 4),
  },
  {
    op: Op.Slice,
    name: "Slice float64 axis -1 [0,2)",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3])],
    build: (x) => b.slice(x, -1, 0, 2),
    reference: (x) => R.slice(x, -1, 0, 2),
  },
  {
    op: Op.Pad,
    name: "Pad float64 middle axis 1/2",
    dtype: F64,
    inputs: [fl("x", F64, [2, 3, 4])],
    build: (x) => b.pad(x, 1, 1, 2),
    reference: (x) => R.pad(x, 1, 1, 2),
  },
  {
    op: Op.Pad,
    name: "Pad float32 axis 0 0/1",
    dtype: F32,
    inputs: [fl("x", F32, [2, 3])],
    build: (x) => b.pad(x, 0, 0, 1),
    reference: (x) => R.pad(x, 0, 0, 1),
  },
  {
    op: Op.Expand,
    name: "Expand float64 [3,1]→[2,3,4]",
    dtype: F64,
    inputs: [fl("x", F64, [3, 1])],
    build: (x) => b.expand(x, [2, 3, 4]),
    reference: (x) => R.expand(x, [2, 3, 4]),
  },
  {
    op: Op.Expand,
    name: "Expand float64 [1,4]→[3,4]",
    dtype: F64,
    inputs: [fl("x", F64, [1, 4])],
    build: (x) => b.expand(x, [3, 4]),
    reference: (x) => R.expand(x, [3, 4]),
  },
  {
    op: Op.Gather,
    name: "Gather float64 axis 0, repeated indices",
    dtype: F64,
    inputs: [fl("data", F64, [5, 3]), ix("idx", [2, 3], [4, 0, 4, 1, 4, 0])],
    build: (d, i) => b.gather(d, i, 0),
    reference: (d, i) => R.gather(d, i, 0),
  },
  {
    op: Op.Gather,
    name: "Gather float32 axis 0, int32 indices",
    dtype: F32,
    inputs: [fl("data", F32, [4, 2]), ix("idx", [3], [3, 3, 1], "int32")],
    build: (d, i) => b.gather(d, i, 0),
    reference: (d, i) => R.gather(d, i, 0),
  },
  {
    // the VJP covers axis 0 only (embedding lookups); the forward is general
    op: Op.Gather,
    name: "Gather float64 axis 1 (forward only)",
    dtype: F64,
    inputs: [fl("data", F64, [2, 5, 3]), ix("idx", [4], [1, 4, 1, 0])],
    build: (d, i) => b.gather(d, i, 1),
    reference: (d, i) => R.gather(d, i, 1),
    grad: false,
  },
  {
    op: Op.ScatterAdd,
    name: "ScatterAdd float64 repeated indices",
    dtype: F64,
    inputs: [fl("u", F64, [4, 3]), ix("idx", [4], [1, 3, 1, 1])],
    build: (u, i) => b.scatterAdd(u, i, 5),
    reference: (u, i) => R.scatterAdd(u, i, 5),
  },
  {
    op: Op.ScatterAdd,
    name: "ScatterAdd float64 2-D indices",
    dtype: F64,
    inputs: [fl("u", F64, [2, 2, 3]), ix("idx", [2, 2], [0, 2, 2, 0])],
    build: (u, i) => b.scatterAdd(u, i, 3),
    reference: (u, i) => R.scatterAdd(u, i, 3),
  },
  {
    op: Op.ScatterAdd,
    name: "ScatterAdd float32 int32 indices",
    dtype: F32,
    inputs: [fl("u", F32, [3, 2]), ix("idx", [3], [0, 0, 2], "int32")],
    build: (u, i) => b.scatterAdd(u, i, 4),
    reference: (u, i) => R.scatterAdd(u, i, 4),
  },
  {
    op: Op.OneHot,
    name: "OneHot float32, out-of-range and negative indices give zero rows",
    dtype: F32,
    inputs: [ix("idx", [2, 3], [0, 2, 3, -1, -7, 1])],
    build: (i) => b.oneHot(i, 3),
    reference: (i) => R.oneHot(i, 3),
  },
  {
    op: Op.OneHot,
    name: "OneHot float64, int32 indices",
    dtype: F64,
    inputs: [ix("idx", [4], [1, 5, -2, 0], "int32")],
    build: (i) => b.oneHot(i, 4, F64),
    reference: (i) => R.oneHot(i, 4),
  },
);

// sources and training
const constData = [1.5, -2, 0.25, 3, 1e-3, -7];
rows.push(
  {
    op: Op.Constant,
    name: "Constant float64 [2,3]",
    dtype: F64,
    inputs: [],
    build: () => b.constant(currentGraph(), constData, [2, 3], F64),
    reference: () => R.tensor([2, 3], constData),
  },
  {
    op: Op.Constant,
    name: "Constant int64 [3] (used by an op)",
    dtype: F64,
    inputs: [fl("x", F64, [3])],
    build: (x) => b.add(x, b.cast(b.constant(x.graph, [4, -1, 9], [3], "int64"), F64)),
    reference: (x) => R.add(x, R.tensor([3], [4, -1, 9])),
  },
  {
    op: Op.Arange,
    name: "Arange over axis -1 of a float64 [2,5]",
    dtype: "int64",
    inputs: [fl("x", F64, [2, 5])],
    build: (x) => b.arange(x, -1),
    reference: () => R.tensor([5], [0, 1, 2, 3, 4]),
    grad: false,
  },
  {
    op: Op.Size,
    name: "Size of axis 1 of an int64 [2,3], used in arithmetic",
    dtype: "int64",
    inputs: [ix("i", [2, 3], [1, 2, 3, 4, 5, 6])],
    build: (x) => b.add(x, b.size(x, 1)),
    reference: (x) => R.map([x], (u) => u + 3),
  },
  {
    // ratio 0 makes the draw deterministic: the mask is all ones (its random draws are tested below)
    op: Op.DropoutMask,
    name: "DropoutMask float64 ratio 0 is all ones",
    dtype: F64,
    inputs: [fl("x", F64, [3, 4])],
    build: (x) => b.mul(x, b.dropoutMask(x, 0, 5)),
    reference: (x) => x,
  },
  {
    op: Op.SoftmaxCrossEntropy,
    name: "SoftmaxCrossEntropy float64 with an ignored row",
    dtype: F64,
    inputs: [fl("logits", F64, [4, 5], -2, 2), ix("labels", [4], [1, -100, 4, 0])],
    build: (l, y) => b.softmaxCrossEntropy(l, y).loss,
    reference: (l, y) => R.softmaxCrossEntropy(l, y, -100).loss,
  },
  {
    op: Op.SoftmaxCrossEntropy,
    name: "SoftmaxCrossEntropy float64 sum over the unignored rows",
    dtype: F64,
    inputs: [fl("logits", F64, [4, 5], -2, 2), ix("labels", [4], [3, -100, 0, 0])],
    build: (l, y) => b.softmaxCrossEntropy(l, y, -100, "sum").loss,
    reference: (l, y) => R.map([R.softmaxCrossEntropy(l, y, -100).loss], (v) => 3 * v),
  },
  {
    op: Op.SoftmaxCrossEntropy,
    name: "SoftmaxCrossEntropy float32 ignoreIndex -1",
    dtype: F32,
    inputs: [fl("logits", F32, [4, 3], -2, 2), ix("labels", [4], [2, -1, 0, -1])],
    build: (l, y) => b.softmaxCrossEntropy(l, y, -1).loss,
    reference: (l, y) => R.softmaxCrossEntropy(l, y, -1).loss,
  },
  {
    op: Op.SoftmaxCrossEntropy,
    name: "SoftmaxCrossEntropy float64 logProb (forward only)",
    dtype: F64,
    inputs: [fl("logits", F64, [3, 4], -2, 2), ix("labels", [3], [0, 3, -100])],
    build: (l, y) => b.softmaxCrossEntropy(l, y).logProb,
    reference: (l, y) => R.softmaxCrossEntropy(l, y, -100).logProb,
    grad: false,
  },
);

// ---------------------------------------------------------------------------------------------
// tests

test("the reference itself: erf against tabulated values, matmul and einsum by hand", () => {
  // erf values from Abramowitz & Stegun table 7.1 / high-precision tables
  for (const [x, e] of [
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [2.9, 0.9999589021219005],
    [3.5, 0.9999992569016276],
    [5, 0.9999999999984626],
  ]) {
    assert.ok(Math.abs(R.erf(x) - e) < 1e-14, `erf(${x}) = ${R.erf(x)}, expected ${e}`);
    assert.ok(Math.abs(R.erf(-x) + e) < 1e-14);
  }
  const a = R.tensor([2, 2], [1, 2, 3, 4]);
  const c = R.tensor([2, 2], [5, 6, 7, 8]);
  assert.deepEqual(Array.from(R.matmul(a, c).data), [19, 22, 43, 50]);
  assert.deepEqual(Array.from(R.matmul(a, c, { transA: true, alpha: 2 }).data), [2 * 26, 2 * 30, 2 * 38, 2 * 44]);
  assert.deepEqual(Array.from(R.matmul(a, c, { transB: true }).data), [17, 23, 39, 53]);
  assert.deepEqual(Array.from(R.einsum("ij,jk->ik", a, c).data), [19, 22, 43, 50]);
  assert.deepEqual(Array.from(R.einsum("ij->j", a).data), [4, 6]);
  assert.deepEqual(Array.from(R.softmaxCrossEntropy(R.tensor([2, 2], [0, 0, 0, 0]), R.tensor([2], [1, -100]), -100).loss.data), [Math.LN2]);
});

test("the op table covers every Op", () => {
  const covered = new Set(rows.map((r) => r.op));
  const missing = Object.values(Op).filter((op) => !covered.has(op));
  assert.deepEqual(missing, [], `ops without a row: ${missing.join(", ")}`);
  const names = rows.map((r) => r.name);
  assert.equal(new Set(names).size, names.length, "row names are unique");
});

const onWebGpu = process.env.TENSLORA_EP === "webgpu";

for (const row of rows) {
  test(`checkOp: ${row.name}`, async (t) => {
    if (onWebGpu && row.inputs.some((i) => i.dtype === "float16")) {
      // WebGPU runs float16 only on a device with shader-f16 (SwiftShader has none): there the run must end in the one-line refusal
      try {
        await checkOp(row);
      } catch (e) {
        assert.ok(e instanceof ConfigError && /shader-f16.*--base-dtype f32, int8 or int4/.test(e.message), `${row.name}: ${(e as Error).message}`);
        t.diagnostic("refused: this WebGPU device has no shader-f16");
      }
      return;
    }
    const worst = await checkOp(row);
    if (worst !== undefined) t.diagnostic(`worst relative gradient error ${worst.toExponential(2)}`);
  });
}

// ---------------------------------------------------------------------------------------------
// dropout: random draws, and the forward and backward share one mask within a run

test("DropoutMask: values are {0, 1/(1−p)} and the keep fraction is near 1−p", async () => {
  const p = 0.3;
  const n = 20000;
  const g = new Graph();
  const x = g.input("x", F32, [n]);
  g.output("m", b.dropoutMask(x, p, 11));
  const s = await compile(g, { threads: 1 });
  try {
    const m = (await s.run({ x: hostTensor(F32, [n], new Float32Array(n).fill(1)) })).m.data as Float32Array;
    const scale = Math.fround(1 / (1 - p));
    let kept = 0;
    for (const v of m) {
      assert.ok(v === 0 || v === scale, `mask value ${v} is neither 0 nor ${scale}`);
      if (v !== 0) kept++;
    }
    // binomial std of the fraction is √(p(1−p)/n) ≈ 0.0032; allow 6σ
    assert.ok(Math.abs(kept / n - (1 - p)) < 0.02, `keep fraction ${kept / n}`);
  } finally {
    s.dispose();
  }
});

test("dropout: the gradient of Σ w⊙dropout(x) is w⊙mask with the forward's mask", async () => {
  const p = 0.4;
  const n = 64;
  const g = new Graph();
  const x = g.input("x", F64, [n]);
  const w = g.input("w", F64, [n]);
  const y = dropout(x, p, 3);
  const maskNode = g.nodes.find((nd) => nd.op === Op.DropoutMask) ?? assert.fail("dropout emitted no DropoutMask");
  const [dx] = grad(b.reduceSum(b.mul(w, y), [0]), [x]);
  g.output("y", y);
  g.output("mask", maskNode.outputs[0]);
  g.output("dx", dx);
  const s = await compile(g, { threads: 1 });
  try {
    const xs = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
    const ws = Float64Array.from({ length: n }, (_, i) => Math.cos(i) + 2);
    const masks: string[] = [];
    for (let run = 0; run < 3; run++) {
      const out = await s.run({ x: hostTensor(F64, [n], xs), w: hostTensor(F64, [n], ws) });
      const m = out.mask.data as Float64Array;
      const yd = out.y.data as Float64Array;
      const gd = out.dx.data as Float64Array;
      assert.ok(m.some((v) => v === 0) && m.some((v) => v !== 0), "a mask with both kept and dropped elements");
      for (let i = 0; i < n; i++) {
        assert.ok(m[i] === 0 || Math.abs(m[i] - 1 / (1 - p)) < 1e-12);
        assert.equal(yd[i], xs[i] * m[i], `forward uses the mask at ${i}`);
        assert.equal(gd[i], ws[i] * m[i], `backward uses the same mask at ${i}`);
      }
      masks.push(Array.from(m, (v) => (v ? 1 : 0)).join(""));
    }
    // the mask is a seeded stream: a new draw each run
    assert.ok(new Set(masks).size > 1, "successive runs draw different masks");
  } finally {
    s.dispose();
  }
  // p = 0 (evaluation) is the identity and binds nothing
  const g2 = new Graph();
  const x2 = g2.input("x", F32, [2]);
  assert.equal(dropout(x2, 0, 1), x2);
  assert.equal(g2.nodes.length, 0);
});

// ---------------------------------------------------------------------------------------------
// the checker can fail, and unsupported gradients fail loudly

test("gradCheck reports failure when one VJP rule is corrupted (Tanh without the square)", async () => {
  const inputs = [fl("x", F64, [3, 4], -2, 2)];
  const good = await gradCheck(b.tanh, inputs);
  assert.ok(good.ok, `the true rule passes: ${good.failures.join("; ")}`);
  const original = vjpRules[Op.Tanh];
  try {
    // wrong on purpose: d tanh x = (1 − tanh x)·dx
    vjpRules[Op.Tanh] = ({ outputs: [z] }, [g]) => [b.mul(g!, b.sub(1, z))];
    const bad = await gradCheck(b.tanh, inputs);
    assert.equal(bad.ok, false);
    assert.ok(bad.worst > 1);
    assert.ok(bad.failures.length > 0 && bad.failures[0].startsWith("x["), bad.failures.join("; "));
  } finally {
    vjpRules[Op.Tanh] = original;
  }
  assert.ok((await gradCheck(b.tanh, inputs)).ok, "the rule is restored");
});

test("VJPs outside the supported forms raise UnsupportedOpError", () => {
  const g = new Graph();
  const d = g.input("d", F64, [2, 5, 3]);
  const i = g.input("i", "int64", [4]);
  const y = b.gather(d, i, 1);
  assert.throws(() => grad(b.reduceSum(y, [0, 1, 2]), [d]), UnsupportedOpError);
  const x = g.input("x", F64, [2, 3]);
  const { mean } = b.layerNormParts(x, g.input("s", F64, [3]), g.input("c", F64, [3]), 1e-5);
  assert.throws(() => grad(b.reduceSum(mean, [0, 1]), [x]), /LayerNorm: gradients through the saved mean/);
  const { logProb } = b.softmaxCrossEntropy(x, g.input("l", "int64", [2]));
  assert.throws(() => grad(b.reduceSum(logProb, [0, 1]), [x]), UnsupportedOpError);
});

after(() => {
  const lines = [...worstByOp].map(([key, worst]) => `${key.padEnd(28)} ${worst.toExponential(2)}`);
  if (process.env.TENSLORA_OP_TABLE_SUMMARY) console.log(`worst relative gradient error per op:\n${lines.join("\n")}`);
});
