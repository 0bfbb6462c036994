/**
 * Composites are functions over primitives, so their gradients come from the primitive rules;
 * these checks make sure the pieces compose: an MLP with cross-entropy, a masked attention block
 * and LayerNorm + GELU chains, each against the plain-TypeScript reference and finite differences.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type CheckInput, gradCheck } from "../src/runtime/grad-check.ts";
import { grad } from "../src/autodiff/vjp.ts";
import * as b from "../src/ir/builder.ts";
import { additiveMask, attention, crossEntropy, gelu, geluMlp, layerNorm, linear } from "../src/ir/functional.ts";
import type { DType } from "../src/ir/dtype-shape.ts";
import { Graph, type Value } from "../src/ir/graph.ts";
import { Op } from "../src/ir/ops.ts";
import { type HostTensor, hostTensor } from "../src/tensor/host.ts";
import { compile } from "../src/runtime/session.ts";
import { Rng } from "../src/tensor/random.ts";
import * as R from "./reference.ts";
import type { Tensor } from "./reference.ts";

const rng = new Rng(99);

function fl(name: string, dtype: DType, shape: number[], scale = 1, wrt?: boolean): CheckInput {
  const raw = Array.from({ length: R.sizeOf(shape) }, () => scale * (2 * rng.uniform() - 1));
  return { name, dtype, shape, data: dtype === "float32" ? Array.from(Float32Array.from(raw)) : raw, wrt };
}

const refOf = (i: CheckInput): Tensor => R.tensor(i.shape, Array.from(i.data as ArrayLike<number>));

function hostOf(i: CheckInput): HostTensor {
  const src = Array.from(i.data as ArrayLike<number>);
  if (i.dtype === "int64") return hostTensor("int64", i.shape, BigInt64Array.from(src.map((v) => BigInt(v))));
  return hostTensor(i.dtype, i.shape, i.dtype === "float64" ? Float64Array.from(src) : Float32Array.from(src));
}

/** Build `f` over graph inputs made from `inputs`, run it on ORT and return the outputs' data. */
async function forward(inputs: CheckInput[], f: (g: Graph, ...xs: Value[]) => Record<string, Value>): Promise<Record<string, Float64Array>> {
  const g = new Graph();
  const xs = inputs.map((i) => g.input(i.name, i.dtype, i.shape));
  for (const [name, v] of Object.entries(f(g, ...xs))) g.output(name, v);
  const s = await compile(g, { threads: 1 });
  try {
    const out = await s.run(Object.fromEntries(inputs.map((i) => [i.name, hostOf(i)])));
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Float64Array.from(t.data as Float64Array)]));
  } finally {
    s.dispose();
  }
}

function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const ok = Math.abs(actual[i] - expected[i]) <= atol + rtol * Math.abs(expected[i]);
    assert.ok(ok, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function assertGradOk(r: { ok: boolean; worst: number; failures: string[] }, what: string, t: { diagnostic(s: string): void }): void {
  assert.ok(r.ok, `${what}: worst ${r.worst}; ${r.failures.join("; ")}`);
  t.diagnostic(`${what}: worst normalised gradient error ${r.worst.toExponential(2)} (≤ 1 passes)`);
}

// reference composites
const refLinear = (x: Tensor, w: Tensor, bias?: Tensor) => {
  const y = R.matmul(x, w, { transB: true });
  return bias ? R.add(y, bias) : y;
};
const refGelu = (x: Tensor) => R.map([x], (v) => 0.5 * v * (1 + R.erf(v / Math.SQRT2)));

// ---------------------------------------------------------------------------------------------

for (const [dtype, act, refAct] of [
  ["float64", b.tanh, R.tanh],
  ["float32", gelu, refGelu],
] as const) {
  test(`two-layer MLP with cross-entropy (${dtype}, ${act === gelu ? "GELU" : "tanh"}): loss and gradients wrt weights and biases`, async (t) => {
    const inputs = [
      fl("x", dtype, [4, 3], 1.5, false),
      fl("w1", dtype, [5, 3]),
      fl("b1", dtype, [5], 0.5),
      fl("w2", dtype, [3, 5]),
      fl("b2", dtype, [3], 0.5),
      { name: "labels", dtype: "int64" as DType, shape: [4], data: [2, 0, -100, 1] },
    ];
    const mlp = (x: Value, w1: Value, b1: Value, w2: Value, b2: Value, labels: Value) => crossEntropy(linear(act(linear(x, w1, b1)), w2, b2), labels);

    const [x, w1, b1, w2, b2, labels] = inputs.map(refOf);
    const want = R.softmaxCrossEntropy(refLinear(refAct(refLinear(x, w1, b1)), w2, b2), labels, -100).loss;
    const got = await forward(inputs, (_g, ...xs) => ({ loss: mlp(...(xs as [Value, Value, Value, Value, Value, Value])) }));
    assertAllClose(got.loss, want.data, dtype === "float64" ? 1e-12 : 1e-5, dtype === "float64" ? 1e-12 : 1e-5, "loss");

    const r = await gradCheck((...xs) => mlp(...(xs as [Value, Value, Value, Value, Value, Value])), inputs, { maxElements: 64 });
    assertGradOk(r, "MLP", t);
  });
}

// ---------------------------------------------------------------------------------------------
// attention: B = 2, T = 4, d = 8 with 2 heads; batch 1 pads its last two keys

const B = 2;
const T = 4;
const D = 8;
const H = 2;
const mask01 = [1, 1, 1, 1, 1, 1, 0, 0];

function attentionInputs(dtype: DType): CheckInput[] {
  return [
    fl("x", dtype, [B, T, D]),
    fl("wq", dtype, [D, D], 0.6),
    fl("wk", dtype, [D, D], 0.6),
    fl("wv", dtype, [D, D], 0.6),
    fl("wo", dtype, [D, D], 0.6),
    { name: "mask", dtype, shape: [B, T], data: mask01, wrt: false },
  ];
}

function block(x: Value, wq: Value, wk: Value, wv: Value, wo: Value, mask: Value) {
  const v = linear(x, wv);
  const y = linear(attention(linear(x, wq), linear(x, wk), v, { heads: H, mask: additiveMask(mask) }), wo);
  return { y, v };
}

/** Plain attention over [B, T, D] with a 0/1 key mask: masked keys are skipped, not just down-weighted. */
function refAttention(q: Tensor, k: Tensor, v: Tensor, mask: number[]): { out: Tensor; probs: Tensor } {
  const dh = D / H;
  const out = new Float64Array(B * T * D);
  const probs = new Float64Array(B * H * T * T);
  for (let n = 0; n < B; n++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const s = Array.from({ length: T }, (_, j) => {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += q.data[(n * T + i) * D + h * dh + e] * k.data[(n * T + j) * D + h * dh + e];
          return dot / Math.sqrt(dh);
        });
        const valid = s.map((_, j) => mask[n * T + j] === 1);
        const m = Math.max(...s.filter((_, j) => valid[j]));
        const e = s.map((sv, j) => (valid[j] ? Math.exp(sv - m) : 0));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < T; j++) {
          const p = e[j] / z;
          probs[((n * H + h) * T + i) * T + j] = p;
          for (let c = 0; c < dh; c++) out[(n * T + i) * D + h * dh + c] += p * v.data[(n * T + j) * D + h * dh + c];
        }
      }
    }
  }
  return { out: { shape: [B, T, D], data: out }, probs: { shape: [B, H, T, T], data: probs } };
}

test("attention block with padded keys: forward against the reference, zero weight on masked keys, zero dV there", async () => {
  const inputs = attentionInputs("float64");
  const [x, wq, wk, wv, wo] = inputs.map(refOf);
  const ref = refAttention(refLinear(x, wq), refLinear(x, wk), refLinear(x, wv), mask01);
  const wantY = refLinear(ref.out, wo);

  const got = await forward(inputs, (g, ...xs) => {
    const { y, v } = block(...(xs as [Value, Value, Value, Value, Value, Value]));
    const probs = g.nodes.find((n) => n.op === Op.Softmax)?.outputs[0] ?? assert.fail("attention has no Softmax");
    const w = b.constant(
      g,
      Array.from({ length: B * T * D }, (_, i) => Math.sin(i)),
      [B, T, D],
      "float64",
    );
    const [dv] = grad(b.reduceSum(b.mul(y, w), [0, 1, 2]), [v]);
    return { y, probs, dv };
  });
  assertAllClose(got.y, wantY.data, 1e-12, 1e-12, "y");
  assertAllClose(got.probs, ref.probs.data, 1e-12, 1e-12, "attention weights");
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < T; i++) {
      for (const j of [2, 3]) assert.equal(got.probs[((1 * H + h) * T + i) * T + j], 0, `batch 1 head ${h} query ${i} → padded key ${j}`);
    }
  }
  for (let n = 0; n < B; n++) {
    for (let j = 0; j < T; j++) {
      const row = got.dv.subarray((n * T + j) * D, (n * T + j + 1) * D);
      if (mask01[n * T + j] === 0)
        assert.ok(
          row.every((v) => v === 0),
          `dV of padded key ${n},${j} is ${row}`,
        );
      else
        assert.ok(
          row.some((v) => v !== 0),
          `dV of a kept key ${n},${j} is nonzero`,
        );
    }
  }
});

for (const dtype of ["float64", "float32"] as const) {
  test(`attention block with padded keys (${dtype}): gradients wrt x and the four projections`, async (t) => {
    const inputs = attentionInputs(dtype);
    const r = await gradCheck((...xs) => block(...(xs as [Value, Value, Value, Value, Value, Value])).y, inputs, { maxElements: 24 });
    assertGradOk(r, `attention ${dtype}`, t);
  });
}

// attention's custom gradient (softmax row sums over the output) with dropped-out probabilities:
// the keep-mask is an input, as the trainer feeds it
test("attention with a dropout keep-mask (float64): forward against the textbook composition, gradients", async (t) => {
  const p = 0.25;
  const keep = Array.from({ length: B * H * T * T }, () => (rng.uniform() < p ? 0 : 1 / (1 - p)));
  const inputs = [...attentionInputs("float64"), { name: "keep", dtype: "float64" as const, shape: [B, H, T, T], data: keep, wrt: false }];
  const dropped = (x: Value, wq: Value, wk: Value, wv: Value, wo: Value, mask: Value, m: Value) =>
    linear(attention(linear(x, wq), linear(x, wk), linear(x, wv), { heads: H, mask: additiveMask(mask), dropout: { p, seed: 0, source: () => m } }), wo);
  const textbook = (x: Value, wq: Value, wk: Value, wv: Value, wo: Value, mask: Value, m: Value) => {
    const split = (v: Value) => b.transpose(b.reshape(v, [B, T, H, D / H]), [0, 2, 1, 3]);
    const scores = b.add(b.matmul(split(linear(x, wq)), split(linear(x, wk)), { transB: true, alpha: 1 / Math.sqrt(D / H) }), additiveMask(mask));
    const ctx = b.matmul(b.mul(b.softmax(scores, -1), m), split(linear(x, wv)));
    return linear(b.reshape(b.transpose(ctx, [0, 2, 1, 3]), [B, T, D]), wo);
  };
  type Args = [Value, Value, Value, Value, Value, Value, Value];
  const got = await forward(inputs, (_g, ...xs) => ({ y: dropped(...(xs as Args)), want: textbook(...(xs as Args)) }));
  assertAllClose(got.y, got.want, 1e-12, 1e-12, "y");
  const r = await gradCheck((...xs) => dropped(...(xs as Args)), inputs, { maxElements: 24 });
  assertGradOk(r, "attention with dropout float64", t);
});

// ---------------------------------------------------------------------------------------------
// LayerNorm + GELU chains

test("geluMlp with adapter updates (float32: ORT has no float64 Erf): forward against linear∘gelu∘linear, gradients by finite differences", async (t) => {
  const inputs = [
    fl("x", "float32", [2, 3, 4], 2),
    fl("w1", "float32", [6, 4]),
    fl("b1", "float32", [6]),
    fl("w2", "float32", [4, 6]),
    fl("b2", "float32", [4]),
    fl("a1", "float32", [6, 4], 0.3),
    fl("a2", "float32", [4, 6], 0.3),
  ];
  type Args = [Value, Value, Value, Value, Value, Value, Value];
  const mlp = (x: Value, w1: Value, b1: Value, w2: Value, b2: Value, a1: Value, a2: Value) =>
    geluMlp(x, w1, b1, w2, b2, (v, k) => linear(v, k === 1 ? a1 : a2));
  const textbook = (x: Value, w1: Value, b1: Value, w2: Value, b2: Value, a1: Value, a2: Value) => {
    const h = gelu(b.add(linear(x, w1, b1), linear(x, a1)));
    return b.add(linear(h, w2, b2), linear(h, a2));
  };
  // the region's factored derivative against the primitives' rules on the textbook composition
  const got = await forward(inputs, (g, ...xs) => {
    const [y, want] = [mlp(...(xs as Args)), textbook(...(xs as Args))];
    const w = b.constant(
      g,
      Array.from({ length: 24 }, (_, i) => Math.sin(i)),
      [2, 3, 4],
      "float32",
    );
    const sum = (v: Value) => b.reduceSum(b.mul(v, w), [0, 1, 2]);
    const outs: Record<string, Value> = { y, want };
    grad(sum(y), xs).forEach((d, i) => (outs[`d${i}`] = d));
    grad(sum(want), xs).forEach((d, i) => (outs[`want${i}`] = d));
    return outs;
  });
  assertAllClose(got.y, got.want, 1e-5, 1e-5, "y");
  inputs.forEach((inp, i) => assertAllClose(got[`d${i}`], got[`want${i}`], 1e-5, 1e-4, `d${inp.name}`));
  const r = await gradCheck((...xs) => mlp(...(xs as Args)), inputs, { maxElements: 24 });
  assertGradOk(r, "geluMlp float32", t);
});

test("LayerNorm backward on rows whose mean is 200 standard deviations from zero: float32 gradients match float64's", async () => {
  const rng = new Rng(3);
  const [rows, width] = [6, 64];
  const x = Array.from({ length: rows * width }, () => 100 + 0.5 * rng.normal());
  const scale = Array.from({ length: width }, () => 0.5 + rng.uniform());
  const w = Array.from({ length: rows * width }, () => rng.normal());
  const grads = async (dtype: "float32" | "float64") => {
    const inputs = [
      { name: "x", dtype, shape: [rows, width], data: x } as CheckInput,
      { name: "s", dtype, shape: [width], data: scale },
      { name: "c", dtype, shape: [width], data: new Array(width).fill(0.1) },
    ];
    return forward(inputs, (g, xv, s, c) => {
      const y = layerNorm(xv, s, c, 1e-5);
      const [dx, ds] = grad(b.reduceSum(b.mul(y, b.constant(g, w, [rows, width], dtype)), [0, 1]), [xv, s]);
      return { dx, ds };
    });
  };
  const [lo, hi] = [await grads("float32"), await grads("float64")];
  for (const k of ["dx", "ds"]) {
    const scale = Math.max(...hi[k].map(Math.abs));
    const worst = Math.max(...hi[k].map((v, i) => Math.abs(v - lo[k][i])));
    assert.ok(worst <= 1e-3 * scale, `${k}: float32 off by ${worst.toExponential(2)}, ${(worst / scale).toExponential(2)} of the largest entry`);
  }
});

test("LayerNorm → GELU → linear → LayerNorm (float32): forward and gradients", async (t) => {
  const inputs = [
    fl("x", "float32", [2, 3, 6], 2),
    fl("s1", "float32", [6]),
    fl("c1", "float32", [6]),
    fl("w", "float32", [4, 6]),
    fl("s2", "float32", [4]),
    fl("c2", "float32", [4]),
  ];
  const chain = (x: Value, s1: Value, c1: Value, w: Value, s2: Value, c2: Value) => layerNorm(linear(gelu(layerNorm(x, s1, c1, 1e-5)), w), s2, c2, 1e-5);
  const [x, s1, c1, w, s2, c2] = inputs.map(refOf);
  const want = R.layerNorm(refLinear(refGelu(R.layerNorm(x, s1, c1, 1e-5).y), w), s2, c2, 1e-5).y;
  const got = await forward(inputs, (_g, ...xs) => ({ y: chain(...(xs as [Value, Value, Value, Value, Value, Value])) }));
  assertAllClose(got.y, want.data, 1e-4, 1e-4, "y");
  // float32 differences: a step of 5e-3 balances truncation (two normalisations curve sharply)
  // against rounding of the loss (measured worst: 0.83 of the tolerance at 1e-2, 0.45 at 5e-3, fails at 2e-3)
  const build = (...xs: Value[]) => chain(...(xs as [Value, Value, Value, Value, Value, Value]));
  const r = await gradCheck(build, inputs, { maxElements: 36, eps: 5e-3 });
  assertGradOk(r, "LayerNorm+GELU float32", t);

  // and the float32 analytic gradients against float64 differences of the reference chain
  const wts = Array.from({ length: want.data.length }, (_, i) => Math.fround(Math.cos(i)));
  const refLoss = (...ts: Tensor[]) => {
    const y = R.layerNorm(refLinear(refGelu(R.layerNorm(ts[0], ts[1], ts[2], 1e-5).y), ts[3]), ts[4], ts[5], 1e-5).y;
    return y.data.reduce((a, v, i) => a + v * wts[i], 0);
  };
  const analytic = await forward(inputs, (g, ...xs) => {
    const y = build(...xs);
    const loss = b.reduceSum(b.mul(y, b.constant(g, wts, [...y.shape] as number[], "float32")), [0, 1, 2]);
    return Object.fromEntries(grad(loss, xs).map((d, k) => [`d${k}`, d]));
  });
  const ts = [x, s1, c1, w, s2, c2];
  ts.forEach((tk, k) => {
    const numeric = Array.from(tk.data, (v, e) => {
      const h = 1e-6;
      tk.data[e] = v + h;
      const lp = refLoss(...ts);
      tk.data[e] = v - h;
      const lm = refLoss(...ts);
      tk.data[e] = v;
      return (lp - lm) / (2 * h);
    });
    assertAllClose(analytic[`d${k}`], numeric, 2e-5, 1e-3, `d${inputs[k].name} vs float64 reference differences`);
  });
});

test("pre-norm residual block x + tanh(linear(LayerNorm(x))) (float64): forward and gradients", async (t) => {
  const inputs = [fl("x", "float64", [2, 3, 5], 2), fl("s", "float64", [5]), fl("c", "float64", [5]), fl("w", "float64", [5, 5])];
  const blockFn = (x: Value, s: Value, c: Value, w: Value) => b.add(x, b.tanh(linear(layerNorm(x, s, c, 1e-5), w)));
  const [x, s, c, w] = inputs.map(refOf);
  const want = R.add(x, R.tanh(refLinear(R.layerNorm(x, s, c, 1e-5).y, w)));
  const got = await forward(inputs, (_g, ...xs) => ({ y: blockFn(...(xs as [Value, Value, Value, Value])) }));
  assertAllClose(got.y, want.data, 1e-12, 1e-12, "y");
  const r = await gradCheck((...xs) => blockFn(...(xs as [Value, Value, Value, Value])), inputs, { maxElements: 30 });
  assertGradOk(r, "pre-norm block float64", t);
});

test("GELU matches ½x(1 + erf(x/√2)) and its derivative Φ(x) + xφ(x) (float32)", async () => {
  const xs = Array.from({ length: 13 }, (_, i) => -3 + i / 2);
  const input: CheckInput = { name: "x", dtype: "float32", shape: [13], data: xs };
  const got = await forward([input], (_g, x) => {
    const y = gelu(x);
    return { y, dy: grad(b.reduceSum(y, [0]), [x])[0] };
  });
  const phi = (v: number) => Math.exp((-v * v) / 2) / Math.sqrt(2 * Math.PI);
  const cdf = (v: number) => 0.5 * (1 + R.erf(v / Math.SQRT2));
  const xf = xs.map(Math.fround);
  assertAllClose(
    got.y,
    xf.map((v) => v * cdf(v)),
    1e-6,
    1e-5,
    "gelu",
  );
  assertAllClose(
    got.dy,
    xf.map((v) => cdf(v) + v * phi(v)),
    1e-6,
    1e-5,
    "gelu′",
  );
});
