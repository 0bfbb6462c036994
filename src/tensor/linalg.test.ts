import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "./random.ts";
import { type Dense, at, dense, matmul, relativeError, sizeOf, transpose2d } from "./dense.ts";
import { leftSingularVectors, qr, singularValues, symmetricEigen } from "./linalg.ts";

function rand(rng: Rng, shape: number[]): Dense {
  return dense(
    shape,
    Float64Array.from({ length: sizeOf(shape) }, () => rng.normal()),
  );
}

function identity(n: number): Dense {
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + i] = 1;
  return dense([n, n], d);
}

function diag(values: readonly number[]): Dense {
  const n = values.length;
  const d = new Float64Array(n * n);
  values.forEach((v, i) => (d[i * n + i] = v));
  return dense([n, n], d);
}

/** Q [n, n] orthogonal, from the QR of a Gaussian matrix (checked orthogonal in its own test). */
function randomOrthogonal(rng: Rng, n: number): Dense {
  return qr(rand(rng, [n, n])).q;
}

test("qr: A = Q R, Qᵀ Q = I, R upper triangular, for tall, square, wide and rank-deficient A", () => {
  const rng = new Rng(10);
  const cases = [rand(rng, [7, 3]), rand(rng, [4, 4]), rand(rng, [3, 6])];
  const deficient = rand(rng, [5, 3]);
  for (let i = 0; i < 5; i++) deficient.data[i * 3 + 1] = 0; // a zero column
  cases.push(deficient);
  for (const a of cases) {
    const { q, r } = qr(a);
    const k = Math.min(...a.shape);
    assert.deepEqual(q.shape, [a.shape[0], k]);
    assert.deepEqual(r.shape, [k, a.shape[1]]);
    assert.ok(relativeError(matmul(q, r), a) < 1e-13);
    assert.ok(relativeError(matmul(transpose2d(q), q), identity(k)) < 1e-13);
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) assert.equal(at(r, [i, j]), 0);
  }
});

test("symmetricEigen recovers the spectrum of Q diag(λ) Qᵀ, repeated and zero values included", () => {
  const rng = new Rng(11);
  const lambda = [5, 3, 3, 0, 0, -1.5, -2, 7.25];
  const q = randomOrthogonal(rng, lambda.length);
  const a = matmul(matmul(q, diag(lambda)), transpose2d(q));
  const sym = a.data; // symmetrise exactly
  const n = lambda.length;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) sym[i * n + j] = sym[j * n + i];
  const { values, vectors } = symmetricEigen(a);
  const sorted = [...lambda].sort((x, y) => y - x);
  sorted.forEach((v, i) => assert.ok(Math.abs(values[i] - v) < 1e-12, `${values[i]} vs ${v}`));
  // A V = V Λ and Vᵀ V = I
  assert.ok(relativeError(matmul(a, vectors!), matmul(vectors!, diag(Array.from(values)))) < 1e-12);
  assert.ok(relativeError(matmul(transpose2d(vectors!), vectors!), identity(n)) < 1e-12);
});

test("symmetricEigen: the [−1, 2, −1] matrix has eigenvalues 2 − 2cos(kπ/(n+1))", () => {
  const n = 60;
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    d[i * n + i] = 2;
    if (i > 0) d[i * n + i - 1] = d[(i - 1) * n + i] = -1;
  }
  const { values } = symmetricEigen(dense([n, n], d), { vectors: false });
  const expected = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((x, y) => y - x);
  expected.forEach((v, i) => assert.ok(Math.abs(values[i] - v) < 1e-12));
});

test("symmetricEigen handles 1×1, diagonal and zero matrices", () => {
  assert.deepEqual(Array.from(symmetricEigen(dense([1, 1], [4])).values), [4]);
  assert.deepEqual(Array.from(symmetricEigen(diag([1, -3, 2])).values), [2, 1, -3]);
  assert.deepEqual(Array.from(symmetricEigen(diag([0, 0, 0])).values), [0, 0, 0]);
});

test("singularValues of U diag(σ) Vᵀ are σ, for tall and wide matrices", () => {
  const rng = new Rng(12);
  const sigma = [9, 4, 4, 1e-3, 0];
  for (const [m, n] of [
    [9, 5],
    [5, 11],
  ]) {
    const u = qr(rand(rng, [m, 5])).q; // [m, 5] orthonormal columns
    const v = qr(rand(rng, [n, 5])).q;
    const a = matmul(matmul(u, diag(sigma)), transpose2d(v));
    const s = singularValues(a);
    assert.equal(s.length, Math.min(m, n));
    sigma.forEach((x, i) => assert.ok(Math.abs(s[i] - x) < 1e-7, `σ${i}: ${s[i]} vs ${x}`));
    for (let i = sigma.length; i < s.length; i++) assert.ok(s[i] < 1e-7);
  }
});

test("leftSingularVectors are eigenvectors of A Aᵀ with eigenvalue σ²", () => {
  const rng = new Rng(13);
  const a = rand(rng, [6, 10]);
  const { values, u } = leftSingularVectors(a, 3);
  const g = matmul(a, transpose2d(a));
  const gu = matmul(g, u);
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(at(gu, [i, k]) - values[k] ** 2 * at(u, [i, k])) < 1e-10);
  }
});

test("symmetricEigen of a 256 × 256 Gram matrix is accurate and quick", () => {
  const rng = new Rng(14);
  const x = rand(rng, [256, 300]);
  const g = matmul(x, transpose2d(x));
  const t0 = performance.now();
  const { values, vectors } = symmetricEigen(g);
  const ms = performance.now() - t0;
  assert.ok(relativeError(matmul(g, vectors!), matmul(vectors!, diag(Array.from(values)))) < 1e-10);
  assert.ok(ms < 5000, `took ${ms} ms`);
});
