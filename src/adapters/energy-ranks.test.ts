// Ranks from a spectrum: the threshold-then-fill rule worked by hand on qkv_depth
// (count = 8·r_in + 8·r_out + 3·r_qkv + 4·r_depth + r_in·r_out·r_qkv·r_depth), and the per-mode
// energies of stacked tensors whose multilinear ranks are known by construction.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../errors.ts";
import { modelShape } from "./constructions.ts";
import { modeEnergies, ranksFromEnergy } from "./energy-ranks.ts";
import { paramCount } from "./params.ts";

const shape = modelShape({ dIn: 8, dOut: 8, heads: 2, layers: 4 });
const energies = { in: [0.9, 0.1, 0, 0, 0, 0, 0, 0], out: [0.5, 0.5, 0, 0, 0, 0, 0, 0], qkv: [1, 0, 0], depth: [0.7, 0.3, 0, 0] };

test("ranks from energies: every mode's full energy when the budget allows it", () => {
  // τ = 1: in 2, out 2, qkv 1, depth 2 → 16 + 16 + 3 + 8 + 8 = 51; any raise costs more than 51
  assert.equal(paramCount("qkv_depth", shape, [2, 2, 1, 2]), 51);
  assert.deepEqual(ranksFromEnergy("qkv_depth", shape, energies, 51), [2, 2, 1, 2]);
});

test("ranks from energies: a lower threshold, then the leftover spent without wasting a rank", () => {
  // 50: τ = 1 needs 51; τ = 0.9 gives [1, 2, 1, 2] (39). Raises that fit: qkv → [1, 2, 2, 2] (46);
  // depth → 3 would exceed r_in·r_out·r_qkv = 2, out → 3 likewise; then nothing fits in 50
  assert.deepEqual(ranksFromEnergy("qkv_depth", shape, energies, 50), [1, 2, 2, 2]);
  // 34: the lowest threshold (0.5) gives depth 2, lowered to 1 (> 1·1·1): all ones, 24. Every single
  // raise is wasted; of the pair raises only qkv + depth fits (8 + 8 + 6 + 8 + 4 = 34)
  assert.deepEqual(ranksFromEnergy("qkv_depth", shape, energies, 34), [1, 1, 2, 2]);
  assert.deepEqual(ranksFromEnergy("qkv_depth", shape, energies, 33), [1, 1, 1, 1]);
  // below the all-ones count: a typed error
  assert.throws(() => ranksFromEnergy("qkv_depth", shape, energies, paramCount("qkv_depth", shape, 1) - 1), ConfigError);
  assert.throws(() => ranksFromEnergy("att", shape, energies, 1000), /no energies for mode `dh`/);
});

test("mode energies of stacked tensors with known multilinear ranks", () => {
  // T[i, j, h, p, l] = a_i b_j c_h d_p e_l: rank one in every mode, the merged out mode too
  const dims = [4, 3, 2, 3, 2];
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const v = (k: number, i: number) => 1 + ((k * 7 + i * 3) % 5);
  let idx = 0;
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 3; j++)
      for (let h = 0; h < 2; h++) for (let p = 0; p < 3; p++) for (let l = 0; l < 2; l++) data[idx++] = v(0, i) * v(1, j) * v(2, h) * v(3, p) * v(4, l);
  const e = modeEnergies({ shape: dims, data });
  for (const m of ["in", "out", "dh", "heads", "qkv", "depth"] as const) assert.ok(Math.abs(e[m]![0] - 1) < 1e-5, `${m}: top-1 energy ${e[m]![0]}`);
  assert.equal(e.out!.length, 6, "out = dh · heads: 6 values");
  // add a second term with another in-vector and another (dh, heads) part: in and out get rank 2, qkv and depth stay rank 1
  const two = Float32Array.from(data);
  idx = 0;
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 3; j++)
      for (let h = 0; h < 2; h++) for (let p = 0; p < 3; p++) for (let l = 0; l < 2; l++) two[idx++] += (i % 2) * (j === h ? 5 : 0) * v(3, p) * v(4, l);
  const e2 = modeEnergies({ shape: dims, data: two });
  const rank = (x: readonly number[]) => x.filter((y) => y > 1e-6).length;
  assert.deepEqual([rank(e2.in!), rank(e2.out!), rank(e2.qkv!), rank(e2.depth!)], [2, 2, 1, 1]);
});
