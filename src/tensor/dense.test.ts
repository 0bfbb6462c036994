import { test } from "node:test";
import assert from "node:assert/strict";
import { ShapeError } from "../errors.ts";
import { Rng } from "./random.ts";
import {
  type Dense,
  at,
  dense,
  fold,
  frobeniusNorm,
  matmul,
  modeDot,
  modeDotVector,
  modeGram,
  multiModeDot,
  permute,
  relativeError,
  sliceMode,
  sizeOf,
  transpose2d,
  unfold,
} from "./dense.ts";

function rand(rng: Rng, shape: number[]): Dense {
  return dense(
    shape,
    Float64Array.from({ length: sizeOf(shape) }, () => rng.normal()),
  );
}

/** All multi-indices of a shape, last index fastest. */
function* indices(shape: readonly number[]): Generator<number[]> {
  const idx = shape.map(() => 0);
  if (shape.some((d) => d === 0)) return;
  for (;;) {
    yield [...idx];
    let k = shape.length - 1;
    while (k >= 0 && ++idx[k] === shape[k]) idx[k--] = 0;
    if (k < 0) return;
  }
}

function close(a: number, b: number, tol = 1e-12): void {
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`);
}

test("unfold follows TensorLy: mode first, other modes row-major in original order", () => {
  const rng = new Rng(1);
  const t = rand(rng, [2, 3, 4, 5]);
  for (let mode = 0; mode < 4; mode++) {
    const u = unfold(t, mode);
    const rest = t.shape.filter((_, k) => k !== mode);
    assert.deepEqual(u.shape, [t.shape[mode], sizeOf(rest)]);
    for (const idx of indices(t.shape)) {
      const others = idx.filter((_, k) => k !== mode);
      let col = 0;
      for (let k = 0; k < others.length; k++) col = col * rest[k] + others[k];
      assert.equal(at(u, [idx[mode], col]), at(t, idx));
    }
    assert.equal(relativeError(fold(u, mode, t.shape), t), 0);
  }
});

test("unfold of (d, dh, H) along mode 0 puts (j, h) at column j·H + h", () => {
  const rng = new Rng(2);
  const t = rand(rng, [3, 4, 5]);
  const u = unfold(t, 0);
  for (const [i, j, h] of indices(t.shape)) assert.equal(at(u, [i, j * 5 + h]), at(t, [i, j, h]));
});

test("modeDot matches the defining sum and the unfolding identity", () => {
  const rng = new Rng(3);
  const t = rand(rng, [3, 4, 2]);
  for (let mode = 0; mode < 3; mode++) {
    const m = rand(rng, [5, t.shape[mode]]);
    const out = modeDot(t, m, mode);
    const shape = [...t.shape];
    shape[mode] = 5;
    assert.deepEqual(out.shape, shape);
    for (const idx of indices(shape)) {
      let s = 0;
      for (let i = 0; i < t.shape[mode]; i++) {
        const src = [...idx];
        src[mode] = i;
        s += at(m, [idx[mode], i]) * at(t, src);
      }
      close(at(out, idx), s);
    }
    // unfold(T ×_n M, n) = M · unfold(T, n)
    assert.ok(relativeError(unfold(out, mode), matmul(m, unfold(t, mode))) < 1e-14);
  }
});

test("multiModeDot on distinct modes commutes and skips undefined entries", () => {
  const rng = new Rng(4);
  const t = rand(rng, [2, 3, 4]);
  const a = rand(rng, [5, 2]);
  const c = rand(rng, [6, 4]);
  const x = multiModeDot(t, [a, undefined, c]);
  const y = modeDot(modeDot(t, c, 2), a, 0);
  assert.deepEqual(x.shape, [5, 3, 6]);
  assert.ok(relativeError(x, y) < 1e-14);
  assert.ok(relativeError(multiModeDot(t, [c, a], [2, 0]), y) < 1e-14);
});

test("modeDotVector equals modeDot with a one-row matrix, mode removed", () => {
  const rng = new Rng(5);
  const t = rand(rng, [3, 4, 2]);
  const v = Float64Array.from({ length: 4 }, () => rng.normal());
  const a = modeDotVector(t, v, 1);
  const b = modeDot(t, dense([1, 4], v), 1);
  assert.deepEqual(a.shape, [3, 2]);
  assert.deepEqual(Array.from(a.data), Array.from(b.data));
});

test("sliceMode and permute index like numpy take / transpose", () => {
  const rng = new Rng(6);
  const t = rand(rng, [2, 3, 4]);
  const s = sliceMode(t, 1, 2);
  assert.deepEqual(s.shape, [2, 4]);
  for (const [a, b] of indices(s.shape)) assert.equal(at(s, [a, b]), at(t, [a, 2, b]));
  const p = permute(t, [2, 0, 1]);
  assert.deepEqual(p.shape, [4, 2, 3]);
  for (const [c, a, b] of indices(p.shape)) assert.equal(at(p, [c, a, b]), at(t, [a, b, c]));
});

test("matmul, transpose2d, frobeniusNorm and modeGram against brute force", () => {
  const rng = new Rng(7);
  const a = rand(rng, [3, 5]);
  const b = rand(rng, [5, 2]);
  const c = matmul(a, b);
  for (const [i, j] of indices([3, 2])) {
    let s = 0;
    for (let k = 0; k < 5; k++) s += at(a, [i, k]) * at(b, [k, j]);
    close(at(c, [i, j]), s);
  }
  const at2 = transpose2d(a);
  for (const [i, j] of indices([5, 3])) assert.equal(at(at2, [i, j]), at(a, [j, i]));
  assert.equal(frobeniusNorm(dense([2], [3, 4])), 5);
  const t = rand(rng, [3, 4, 2]);
  for (let mode = 0; mode < 3; mode++) {
    const u = unfold(t, mode);
    assert.ok(relativeError(modeGram(t, mode), matmul(u, transpose2d(u))) < 1e-14);
  }
});

test("modeGram stays exact when the columns span several cache blocks", () => {
  const rng = new Rng(8);
  const t = dense(
    [2, 3, 30_001],
    Float32Array.from({ length: 2 * 3 * 30_001 }, () => rng.normal()),
  );
  const u = unfold(t, 1); // [3, 60002]
  const brute = new Float64Array(9);
  for (let i = 0; i < 3; i++)
    for (let k = 0; k < 3; k++) for (let c = 0; c < u.shape[1]; c++) brute[i * 3 + k] += u.data[i * u.shape[1] + c] * u.data[k * u.shape[1] + c];
  assert.ok(relativeError(modeGram(t, 1), dense([3, 3], brute)) < 1e-12);
});

test("float32 inputs give float32 results, any float64 input gives float64", () => {
  const a = dense([2, 2], new Float32Array([1, 2, 3, 4]));
  const b = dense([2, 2], new Float64Array([1, 0, 0, 1]));
  assert.ok(matmul(a, a).data instanceof Float32Array);
  assert.ok(matmul(a, b).data instanceof Float64Array);
  assert.ok(modeDot(a, a, 0).data instanceof Float32Array);
});

test("shape errors name the rule and the offending shapes", () => {
  const t = dense([2, 3], new Float64Array(6));
  assert.throws(
    () => modeDot(t, dense([4, 2], new Float64Array(8)), 1),
    (e: unknown) => e instanceof ShapeError && /\[J, 3\]/.test(e.message),
  );
  assert.throws(() => unfold(t, 2), ShapeError);
  assert.throws(() => matmul(t, t), ShapeError);
  assert.throws(() => dense([2, 2], [1, 2, 3]), ShapeError);
  assert.throws(() => permute(t, [0, 0]), ShapeError);
});
