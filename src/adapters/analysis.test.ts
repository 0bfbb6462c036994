import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../tensor/random.ts";
import { type Dense, dense, relativeError, scale, sizeOf } from "../tensor/dense.ts";
import { orthogonal } from "../tensor/init.ts";
import { type TuckerTensor, cpToTensor, tuckerToTensor } from "../tensor/tucker.ts";
import { modeSizes, modelShape } from "./constructions.ts";
import { multilinearSpectrum, numericalRank, stackAdapterUpdates, STACK_MODE_NAMES } from "./analysis.ts";
import { type AdapterState, factorisedFrom } from "./reference.ts";

function rand(rng: Rng, s: number[]): Dense {
  return dense(
    s,
    Float64Array.from({ length: sizeOf(s) }, () => rng.normal()),
  );
}

test("a Tucker tensor with core ranks (2, 3, 4) has exactly 2, 3, 4 non-zero singular values per mode", () => {
  const rng = new Rng(50);
  const sizes = [6, 5, 7];
  const ranks = [2, 3, 4];
  const t = tuckerToTensor({ core: rand(rng, ranks), factors: sizes.map((s, n) => rand(rng, [s, ranks[n]])) });
  const spec = multilinearSpectrum(t, ["a", "b", "c"]);
  assert.deepEqual(
    spec.map((m) => numericalRank(m)),
    ranks,
  );
  assert.deepEqual(
    spec.map((m) => m.name),
    ["a", "b", "c"],
  );
  for (const m of spec) {
    assert.equal(m.normalized[0], 1);
    assert.ok(Math.abs(m.energy.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    // Σ σ² is ‖T‖² for every mode
    let norm2 = 0;
    for (const v of t.data) norm2 += v * v;
    assert.ok(Math.abs(m.singularValues.reduce((a, s) => a + s * s, 0) - norm2) < 1e-9 * norm2);
  }
});

test("a core of shape (2, 3, 1) yields multilinear rank (2, 2, 1): mode 1's rank is capped by 2·1", () => {
  const rng = new Rng(51);
  const sizes = [6, 5, 4];
  const ranks = [2, 3, 1];
  const t = tuckerToTensor({ core: rand(rng, ranks), factors: sizes.map((s, n) => rand(rng, [s, ranks[n]])) });
  assert.deepEqual(
    multilinearSpectrum(t).map((m) => numericalRank(m)),
    [2, 2, 1],
  );
});

test("orthogonal CP Σ σ_r a_r∘b_r∘c_r: every mode's spectrum is σ, entropy and top-1 energy as computed by hand", () => {
  const rng = new Rng(52);
  const sigma = [5, 2, 0.5];
  const t = cpToTensor({
    weights: dense([3], sigma),
    factors: [orthogonal(rng, 7, 3), orthogonal(rng, 4, 3), orthogonal(rng, 5, 3)],
  });
  const total = sigma.reduce((a, s) => a + s * s, 0);
  const energy = sigma.map((s) => (s * s) / total);
  const entropy = -energy.reduce((a, e) => a + e * Math.log(e), 0);
  for (const m of multilinearSpectrum(t)) {
    sigma.forEach((s, k) => assert.ok(Math.abs(m.singularValues[k] - s) < 1e-5));
    for (let k = 3; k < m.singularValues.length; k++) assert.ok(m.singularValues[k] < 1e-5);
    assert.ok(Math.abs(m.top1Energy - energy[0]) < 1e-5);
    assert.ok(Math.abs(m.entropy - entropy) < 1e-5);
  }
});

test("stacking att_qkv_depth updates gives back s · the adapter's own tensor (same modes, same layout)", () => {
  const rng = new Rng(53);
  const shape = modelShape({ dIn: 5, dOut: 6, heads: 2, layers: 3 });
  const sizes = modeSizes("att_qkv_depth", shape);
  const ranks = [2, 2, 2, 2, 2];
  const tucker: TuckerTensor = { core: rand(rng, ranks), factors: sizes.map((s, n) => rand(rng, [s, ranks[n]])) };
  for (const layout of ["head_major", "interleaved"] as const) {
    const state: AdapterState = { construction: "att_qkv_depth", shape, tensors: [factorisedFrom(tucker)], headLayout: layout, scaling: 0.5 };
    const stacked = stackAdapterUpdates(state, layout);
    assert.deepEqual(stacked.shape, [5, 3, 2, 3, 3]);
    assert.ok(relativeError(stacked, scale(tuckerToTensor(tucker), 0.5)) < 1e-6);
  }
  // stacked with the other layout, the heads mode means something else: the tensor differs
  const state: AdapterState = { construction: "att_qkv_depth", shape, tensors: [factorisedFrom(tucker)], headLayout: "interleaved", scaling: 0.5 };
  assert.ok(relativeError(stackAdapterUpdates(state, "head_major"), scale(tuckerToTensor(tucker), 0.5)) > 1e-3);
  assert.equal(STACK_MODE_NAMES.length, 5);
});

test("stacked qkv_depth updates share U_in: the `in` mode has rank r_in", () => {
  const rng = new Rng(54);
  const shape = modelShape({ dIn: 8, dOut: 6, heads: 2, layers: 3 });
  const sizes = modeSizes("qkv_depth", shape);
  const ranks = [2, 4, 3, 3];
  const tucker: TuckerTensor = { core: rand(rng, ranks), factors: sizes.map((s, n) => rand(rng, [s, ranks[n]])) };
  const state: AdapterState = { construction: "qkv_depth", shape, tensors: [factorisedFrom(tucker)], headLayout: "head_major", scaling: 1 };
  const spec = multilinearSpectrum(stackAdapterUpdates(state));
  assert.equal(numericalRank(spec[0], 1e-4), 2);
  assert.equal(numericalRank(spec[3], 1e-4), 3); // qkv
  assert.equal(numericalRank(spec[4], 1e-4), 3); // depth
});
