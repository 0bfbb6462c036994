import { test } from "node:test";
import assert from "node:assert/strict";
import { ShapeError } from "../errors.ts";
import { Rng } from "./random.ts";
import { type Dense, at, dense, relativeError, sizeOf } from "./dense.ts";
import { type CpTensor, type TuckerTensor, cpParamCount, cpToTensor, hosvd, tuckerParamCount, tuckerToTensor, validateTucker } from "./tucker.ts";

function rand(rng: Rng, shape: number[]): Dense {
  return dense(
    shape,
    Float64Array.from({ length: sizeOf(shape) }, () => rng.normal()),
  );
}

function* indices(shape: readonly number[]): Generator<number[]> {
  const idx = shape.map(() => 0);
  for (;;) {
    yield [...idx];
    let k = shape.length - 1;
    while (k >= 0 && ++idx[k] === shape[k]) idx[k--] = 0;
    if (k < 0) return;
  }
}

function randomTucker(rng: Rng, sizes: number[], ranks: number[]): TuckerTensor {
  return { core: rand(rng, ranks), factors: sizes.map((s, n) => rand(rng, [s, ranks[n]])) };
}

test("tuckerToTensor equals Σ_a G[a] Π_n U_n[i_n, a_n] entry by entry", () => {
  const rng = new Rng(20);
  const sizes = [4, 3, 5, 2];
  const ranks = [2, 3, 1, 2];
  const t = randomTucker(rng, sizes, ranks);
  const full = tuckerToTensor(t);
  assert.deepEqual(full.shape, sizes);
  for (const i of indices(sizes)) {
    let s = 0;
    for (const a of indices(ranks)) {
      let term = at(t.core, a);
      for (let n = 0; n < sizes.length; n++) term *= at(t.factors[n], [i[n], a[n]]);
      s += term;
    }
    assert.ok(Math.abs(at(full, i) - s) < 1e-12);
  }
});

test("cpToTensor equals Σ_r w_r Π_n U_n[i_n, r], and the Tucker tensor with a superdiagonal core", () => {
  const rng = new Rng(21);
  const sizes = [3, 4, 2];
  const R = 3;
  const cp: CpTensor = { weights: rand(rng, [R]), factors: sizes.map((s) => rand(rng, [s, R])) };
  const full = cpToTensor(cp);
  for (const i of indices(sizes)) {
    let s = 0;
    for (let r = 0; r < R; r++) {
      let term = cp.weights!.data[r];
      for (let n = 0; n < sizes.length; n++) term *= at(cp.factors[n], [i[n], r]);
      s += term;
    }
    assert.ok(Math.abs(at(full, i) - s) < 1e-12);
  }
  const core = new Float64Array(R * R * R);
  for (let r = 0; r < R; r++) core[r * R * R + r * R + r] = cp.weights!.data[r];
  assert.ok(relativeError(tuckerToTensor({ core: dense([R, R, R], core), factors: cp.factors }), full) < 1e-13);
  // without weights every component counts once
  const unweighted = cpToTensor({ factors: cp.factors });
  assert.ok(
    Math.abs(at(unweighted, [1, 2, 0]) - [0, 1, 2].reduce((s, r) => s + at(cp.factors[0], [1, r]) * at(cp.factors[1], [2, r]) * at(cp.factors[2], [0, r]), 0)) <
      1e-12,
  );
});

test("parameter counts equal the number of stored entries", () => {
  const rng = new Rng(22);
  const sizes = [7, 5, 3, 4];
  const ranks = [3, 2, 3, 1];
  const t = randomTucker(rng, sizes, ranks);
  const stored = t.core.data.length + t.factors.reduce((s, f) => s + f.data.length, 0);
  assert.equal(tuckerParamCount(sizes, ranks), stored);
  const cpStored = sizes.reduce((s, i) => s + i * 4, 0);
  assert.equal(cpParamCount(sizes, 4), cpStored);
});

test("validateTucker rejects mismatched cores, factors and mode sizes", () => {
  const rng = new Rng(23);
  const t = randomTucker(rng, [4, 3], [2, 2]);
  validateTucker(t, [4, 3]);
  assert.throws(
    () => validateTucker(t, [4, 5]),
    (e: unknown) => e instanceof ShapeError && /factor\[1\] has 3 rows but mode 1 has size 5/.test(e.message),
  );
  assert.throws(() => validateTucker({ core: t.core, factors: [t.factors[0]] }), ShapeError);
  assert.throws(() => validateTucker({ core: t.core, factors: [t.factors[0], rand(rng, [3, 3])] }), ShapeError);
});

test("hosvd reconstructs a tensor of multilinear rank (2, 3, 4) exactly, with orthonormal factors", () => {
  const rng = new Rng(24);
  const t = tuckerToTensor(randomTucker(rng, [6, 5, 7], [2, 3, 4]));
  const h = hosvd(t, [2, 3, 4]);
  assert.deepEqual(h.core.shape, [2, 3, 4]);
  assert.ok(relativeError(tuckerToTensor(h), t) < 1e-9);
  for (const u of h.factors) {
    const r = u.shape[1];
    for (let a = 0; a < r; a++) {
      for (let b = 0; b < r; b++) {
        let s = 0;
        for (let i = 0; i < u.shape[0]; i++) s += at(u, [i, a]) * at(u, [i, b]);
        assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-10);
      }
    }
  }
  // one rank too few on mode 1 loses information
  assert.ok(relativeError(tuckerToTensor(hosvd(t, [2, 2, 4])), t) > 1e-3);
});

test("a Tucker core of shape (2, 3, 1) only has multilinear rank (2, 2, 1): r_n ≤ Π_{m≠n} r_m", () => {
  const rng = new Rng(25);
  const t = tuckerToTensor(randomTucker(rng, [6, 5, 4], [2, 3, 1]));
  // rank 2 on mode 1 already reconstructs exactly: the third rank on that mode was wasted
  assert.ok(relativeError(tuckerToTensor(hosvd(t, [2, 2, 1])), t) < 1e-9);
});
