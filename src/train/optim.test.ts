import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, FormatError, ShapeError } from "../errors.ts";
import { adamw, clipByGlobalNorm, flattenParams, packLayout, segmentViews, validateLayout } from "./optim.ts";

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= atol, `element ${i}: got ${actual[i]}, expected ${expected[i]} (atol ${atol})`);
  }
}

/**
 * AdamW written from the algorithm box of the PyTorch docs (torch.optim.AdamW, amsgrad=False),
 * in plain float64 numbers: θ ← θ − γλθ; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
 * m̂ = m/(1−β1ᵗ); v̂ = v/(1−β2ᵗ); θ ← θ − γ m̂/(√v̂ + ε).
 */
function referenceAdamW(p0: number[], gradSeq: number[][], lrs: number[], wd: number, b1: number, b2: number, eps: number): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  gradSeq.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i] - lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - b1 ** t);
      const vHat = v[i] / (1 - b2 ** t);
      p[i] = p[i] - (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return p;
}

const layout3 = packLayout([["w", 3]]);
const p0 = [1, -2, 0.5];
const g1 = [0.1, -0.2, 0];
const g2 = [0.3, 0.1, -0.4];

test("AdamW step 1 equals the closed form p(1 − γλ) − γ g/(|g| + ε)", () => {
  // At t = 1 the bias corrections cancel the (1 − β) factors: m̂ = g, v̂ = g².
  // γ = 0.1, λ = 0.01 → decay factor 0.999:
  //   p = [0.999, -1.998, 0.4995] − 0.1·[0.1/(0.1+1e-8), -0.2/(0.2+1e-8), 0]
  //     = [0.89900001, -1.89800000(5), 0.4995]
  const opt = adamw({ betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.01 });
  const state = opt.init(layout3);
  const params = new Float32Array(p0);
  opt.update(state, params, new Float32Array(g1), 0.1);
  assertClose(params, [0.89900001, -1.898000005, 0.4995], 1e-7);
  assert.equal(state.step, 1);
});

test("AdamW two steps match the PyTorch-docs algorithm", () => {
  const opt = adamw({ betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.01 });
  const state = opt.init(layout3);
  const params = new Float32Array(p0);
  opt.update(state, params, new Float32Array(g1), 0.1);
  opt.update(state, params, new Float32Array(g2), 0.05);
  // A different lr per step, as a schedule gives.
  const expected = referenceAdamW(p0, [g1, g2], [0.1, 0.05], 0.01, 0.9, 0.99, 1e-8);
  assertClose(params, expected, 2e-7);
  // The moments are stored too: m2 = 0.9·0.1·g1 + 0.1·g2.
  assertClose(state.m, [0.039, -0.008, -0.04], 1e-8);
});

test("AdamW with a constant lr over five steps tracks the reference in float32", () => {
  const grads = [g1, g2, [-0.5, 0.25, 0.125], [0, 0, 1], [1e-3, -1e-3, 2]];
  const expected = referenceAdamW(
    p0,
    grads,
    grads.map(() => 1e-2),
    0.1,
    0.9,
    0.999,
    1e-8,
  );
  const opt = adamw({ weightDecay: 0.1 });
  const state = opt.init(layout3);
  const params = new Float32Array(p0);
  for (const g of grads) opt.update(state, params, new Float32Array(g), 1e-2);
  assertClose(params, expected, 1e-6);
});

test("per-segment groups override weight decay and scale the learning rate", () => {
  const layout = packLayout([
    ["encoder.weight", 2],
    ["encoder.bias", 1],
  ]);
  const opt = adamw({
    eps: 0,
    weightDecay: 0.5,
    groups: [{ match: /bias$/, weightDecay: 0, lrScale: 2 }],
  });
  const state = opt.init(layout);
  const params = new Float32Array([2, 4, 3]);
  opt.update(state, params, new Float32Array([1, -1, 5]), 0.1);
  // Step 1 with ε = 0 moves each element by exactly γ_seg·sign(g):
  //   weight: p(1 − 0.1·0.5) − 0.1·sign(g) = [1.9 − 0.1, 3.8 + 0.1]
  //   bias:   p − 0.2·sign(g)             = 2.8
  assertClose(params, [1.8, 3.9, 2.8], 1e-6);
});

test("zero gradients and zero weight decay leave parameters unchanged", () => {
  const opt = adamw({ weightDecay: 0 });
  const state = opt.init(layout3);
  const params = new Float32Array(p0);
  opt.update(state, params, new Float32Array(3), 1);
  assert.deepEqual([...params], p0);
});

test("state round-trip through tensors + JSON continues bit-identically", () => {
  const layout = packLayout([
    ["a", 2],
    ["b", 3],
  ]);
  const grads = [
    [0.1, -0.2, 0.3, 0.4, -0.5],
    [0.2, 0.1, -0.1, 0.3, 0.7],
    [-0.3, 0.2, 0.5, -0.4, 0.1],
  ].map((g) => new Float32Array(g));
  const opt = adamw({ weightDecay: 0.05 });

  const straight = opt.init(layout);
  const pStraight = new Float32Array([1, 2, 3, 4, 5]);
  for (const g of grads) opt.update(straight, pStraight, g, 3e-3);

  const first = opt.init(layout);
  const pResumed = new Float32Array([1, 2, 3, 4, 5]);
  opt.update(first, pResumed, grads[0], 3e-3);
  const saved = opt.stateTensors(first);
  const scalars = JSON.parse(JSON.stringify(saved.scalars));
  const tensors = Object.fromEntries(Object.entries(saved.tensors).map(([k, t]) => [k, new Float32Array(t)]));
  assert.deepEqual(Object.keys(tensors).sort(), ["exp_avg.a", "exp_avg.b", "exp_avg_sq.a", "exp_avg_sq.b"]);
  const resumed = opt.loadStateTensors(layout, tensors, scalars);
  assert.equal(resumed.step, 1);
  for (const g of grads.slice(1)) opt.update(resumed, pResumed, g, 3e-3);

  assert.deepEqual(Buffer.from(pResumed.buffer), Buffer.from(pStraight.buffer));
  assert.deepEqual(Buffer.from(resumed.m.buffer), Buffer.from(straight.m.buffer));
  assert.deepEqual(Buffer.from(resumed.v.buffer), Buffer.from(straight.v.buffer));
});

test("loading a state that does not fit the layout fails with FormatError", () => {
  const opt = adamw();
  const layout = packLayout([["a", 2]]);
  const good = opt.stateTensors(opt.init(layout));
  assert.throws(() => opt.loadStateTensors(packLayout([["a", 3]]), good.tensors, good.scalars), FormatError);
  assert.throws(() => opt.loadStateTensors(layout, { ...good.tensors, "exp_avg.z": new Float32Array(1) }, good.scalars), FormatError);
  assert.throws(() => opt.loadStateTensors(layout, good.tensors, { kind: "adamw", step: -1 }), FormatError);
});

test("clipByGlobalNorm scales by maxNorm / (norm + 1e-6) and returns the pre-clip norm", () => {
  // ‖[3, 4, 12]‖ = 13.
  const a = new Float32Array([3, 4]);
  const b = new Float32Array([12]);
  const norm = clipByGlobalNorm([a, b], 6.5);
  assert.equal(norm, 13);
  const c = 6.5 / (13 + 1e-6);
  assertClose(a, [3 * c, 4 * c], 1e-6);
  assertClose(b, [12 * c], 1e-6);
});

test("clipByGlobalNorm leaves small or non-finite gradients untouched", () => {
  const small = new Float32Array([0.3, 0.4]);
  assert.ok(Math.abs(clipByGlobalNorm(small, 1) - 0.5) < 1e-7);
  assert.deepEqual([...small], [Math.fround(0.3), Math.fround(0.4)]);
  const bad = new Float32Array([1, Infinity]);
  assert.equal(clipByGlobalNorm(bad, 1), Infinity);
  assert.deepEqual([...bad], [1, Infinity]);
  assert.throws(() => clipByGlobalNorm(small, 0), ConfigError);
});

test("flattenParams and segmentViews round-trip named tensors", () => {
  const named = new Map([
    ["x", new Float32Array([1, 2])],
    ["y", new Float32Array([3])],
  ]);
  const { flat, layout } = flattenParams(named);
  assert.deepEqual([...flat], [1, 2, 3]);
  assert.deepEqual(layout.segments, [
    { name: "x", offset: 0, size: 2 },
    { name: "y", offset: 2, size: 1 },
  ]);
  const views = segmentViews(flat, layout);
  views.get("y")![0] = 7;
  assert.equal(flat[2], 7);
});

test("invalid layouts, options and buffers are rejected with typed errors", () => {
  assert.throws(
    () =>
      validateLayout({
        size: 4,
        segments: [
          { name: "a", offset: 0, size: 3 },
          { name: "b", offset: 2, size: 2 },
        ],
      }),
    /must not overlap/,
  );
  assert.throws(
    () =>
      packLayout([
        ["a", 1],
        ["a", 1],
      ]),
    ShapeError,
  );
  assert.throws(() => adamw({ betas: [0.9, 1] }), ConfigError);
  assert.throws(() => adamw({ weightDecay: -1 }), ConfigError);
  assert.throws(() => adamw({ groups: [{ match: /bias/g, weightDecay: 0 }] }), ConfigError);
  const opt = adamw();
  const state = opt.init(layout3);
  assert.throws(() => opt.update(state, new Float32Array(3), new Float32Array(2), 1e-3), ShapeError);
  assert.throws(() => opt.update(state, new Float32Array(3), new Float32Array(3), NaN), ConfigError);
});
