import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "./random.ts";
import { at } from "./dense.ts";
import { kaimingUniform, normal, orthogonal, tuckerNormalStd } from "./init.ts";

/** Max |(XᵀX or XXᵀ) − I| over the smaller side. */
function orthonormalityError(x: { shape: number[]; data: Float32Array | Float64Array }): number {
  const [m, n] = x.shape;
  const k = Math.min(m, n);
  let err = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      let s = 0;
      if (m >= n) for (let i = 0; i < m; i++) s += at(x, [i, a]) * at(x, [i, b]);
      else for (let j = 0; j < n; j++) s += at(x, [a, j]) * at(x, [b, j]);
      err = Math.max(err, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return err;
}

test("orthogonal: orthonormal columns when tall, rows when wide, float32, scaled by gain", () => {
  for (const [r, c] of [
    [768, 8],
    [8, 768],
    [12, 12],
    [3, 8],
  ]) {
    const w = orthogonal(new Rng(30), r, c);
    assert.deepEqual(w.shape, [r, c]);
    assert.ok(w.data instanceof Float32Array);
    assert.ok(orthonormalityError(w) < 1e-5, `${r}×${c}`);
  }
  const g = orthogonal(new Rng(30), 10, 4, 2);
  const u = orthogonal(new Rng(30), 10, 4);
  g.data.forEach((v, i) => assert.ok(Math.abs(v - 2 * u.data[i]) < 1e-6));
});

test("orthogonal is seeded and Haar-like: same seed same matrix, entries of a column average ≈ 0", () => {
  const a = orthogonal(new Rng(31), 64, 4);
  const b = orthogonal(new Rng(31), 64, 4);
  assert.deepEqual(Array.from(a.data), Array.from(b.data));
  // The sign correction makes Q Haar-distributed, so over many draws Q[0,0] is symmetric about 0.
  // Without it, Householder's sign choice makes R[0,0] opposite to x0 and biases Q[0,0]'s sign.
  let mean = 0;
  const draws = 400;
  const rng = new Rng(32);
  for (let i = 0; i < draws; i++) mean += Math.sign(orthogonal(rng, 16, 2).data[0]);
  assert.ok(Math.abs(mean / draws) < 0.15, `mean sign ${mean / draws}`);
});

test("normal has the requested std; kaimingUniform stays in ±gain·√(3/fanIn) with variance bound²/3", () => {
  const n = normal(new Rng(33), [200, 100], 0.02);
  let s2 = 0;
  for (const v of n.data) s2 += v * v;
  assert.ok(Math.abs(Math.sqrt(s2 / n.data.length) - 0.02) < 0.001);
  const fanIn = 768;
  const k = kaimingUniform(new Rng(34), [8, 768], fanIn);
  const bound = Math.sqrt(2 / (1 + 5)) * Math.sqrt(3 / fanIn); // = 1/√768 for a = √5
  assert.ok(Math.abs(bound - 1 / Math.sqrt(768)) < 1e-15);
  let max = 0;
  let var_ = 0;
  for (const v of k.data) {
    max = Math.max(max, Math.abs(v));
    var_ += v * v;
  }
  assert.ok(max <= bound && max > 0.99 * bound);
  assert.ok(Math.abs(var_ / k.data.length - (bound * bound) / 3) < (0.05 * (bound * bound)) / 3);
  const k0 = kaimingUniform(new Rng(35), [1000], 4, 0); // a = 0: bound √(6 / fanIn)
  assert.ok(Math.max(...Array.from(k0.data, Math.abs)) <= Math.sqrt(6 / 4));
});

test("tuckerNormalStd makes the reconstruction's variance std² (Π r_n · s^(2(N+1)))", () => {
  const ranks = [8, 8, 3, 12];
  const s = tuckerNormalStd(ranks, 0.5);
  // each entry of T sums Π r_n products of N+1 independent N(0, s²) terms
  const prod = ranks.reduce((a, b) => a * b, 1);
  assert.ok(Math.abs(prod * s ** (2 * (ranks.length + 1)) - 0.25) < 1e-12);
});
