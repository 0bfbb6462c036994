import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import {
  CONSTRUCTIONS,
  type Construction,
  modeIndex,
  modeNames,
  modeSizes,
  modelShape,
  parseConstruction,
  slicesOfTensor,
  tensorCount,
  tensorIndex,
} from "./constructions.ts";
import { normalizeRanks } from "./methods.ts";

const vitB = modelShape({ dIn: 768, dOut: 768, heads: 12, layers: 12 });

// docs/adapters.md §2's table: one tensor's modes and the number of tensors at ViT-B (L = 12, 3 projections)
const TABLE: Record<Construction, { modes: string[]; sizes: number[]; tensors: number }> = {
  lora: { modes: ["in", "out"], sizes: [768, 768], tensors: 36 },
  att: { modes: ["in", "dh", "heads"], sizes: [768, 64, 12], tensors: 36 },
  qkv: { modes: ["in", "out", "qkv"], sizes: [768, 768, 3], tensors: 12 },
  depth: { modes: ["in", "out", "depth"], sizes: [768, 768, 12], tensors: 3 },
  att_qkv: { modes: ["in", "dh", "heads", "qkv"], sizes: [768, 64, 12, 3], tensors: 12 },
  att_depth: { modes: ["in", "dh", "heads", "depth"], sizes: [768, 64, 12, 12], tensors: 3 },
  qkv_depth: { modes: ["in", "out", "qkv", "depth"], sizes: [768, 768, 3, 12], tensors: 1 },
  att_qkv_depth: { modes: ["in", "dh", "heads", "qkv", "depth"], sizes: [768, 64, 12, 3, 12], tensors: 1 },
};

test("mode names, sizes and tensor counts match docs/adapters.md's table at ViT-B", () => {
  assert.deepEqual([...CONSTRUCTIONS].sort(), Object.keys(TABLE).sort());
  for (const c of CONSTRUCTIONS) {
    assert.deepEqual(modeNames(c), TABLE[c].modes, c);
    assert.deepEqual(modeSizes(c, vitB), TABLE[c].sizes, c);
    assert.equal(tensorCount(c, vitB), TABLE[c].tensors, c);
  }
});

test("tensorIndex follows the official routing and is a bijection (p, l) ↔ (tensor, index modes)", () => {
  const L = vitB.layers;
  const expected: Record<Construction, (p: number, l: number) => number> = {
    lora: (p, l) => p * L + l,
    att: (p, l) => p * L + l,
    qkv: (_p, l) => l,
    att_qkv: (_p, l) => l,
    depth: (p) => p,
    att_depth: (p) => p,
    qkv_depth: () => 0,
    att_qkv_depth: () => 0,
  };
  for (const c of CONSTRUCTIONS) {
    const seen = new Set<string>();
    for (let p = 0; p < 3; p++) {
      for (let l = 0; l < L; l++) {
        const { tensor, fixed } = tensorIndex(c, vitB, p, l);
        assert.equal(tensor, expected[c](p, l), `${c} (${p}, ${l})`);
        assert.equal(fixed.qkv, modeIndex(c, "qkv") >= 0 ? p : undefined);
        assert.equal(fixed.depth, modeIndex(c, "depth") >= 0 ? l : undefined);
        seen.add(`${tensor}/${fixed.qkv}/${fixed.depth}`);
      }
    }
    assert.equal(seen.size, 3 * L, c);
    let total = 0;
    for (let t = 0; t < tensorCount(c, vitB); t++) total += slicesOfTensor(c, vitB, t).length;
    assert.equal(total, 3 * L, c);
  }
});

test("a fourth projection (output) enlarges the qkv mode and the per-projection tensor counts", () => {
  const s = modelShape({ dIn: 768, dOut: 768, heads: 12, layers: 12, projections: ["query", "key", "value", "output"] });
  assert.deepEqual(modeSizes("att_qkv_depth", s), [768, 64, 12, 4, 12]);
  assert.equal(tensorCount("att", s), 48);
  assert.equal(tensorCount("depth", s), 4);
  assert.equal(tensorIndex("att", s, 3, 11).tensor, 47);
});

test("configuration errors name the rule, the value and the valid range", () => {
  assert.throws(
    () => parseConstruction("att_qkv_layers"),
    (e: unknown) => e instanceof ConfigError && /att_qkv_layers/.test(e.message) && /att_qkv_depth/.test(e.message),
  );
  const bad = modelShape({ dIn: 768, dOut: 770, heads: 12, layers: 2 });
  assert.throws(
    () => modeSizes("att", bad),
    (e: unknown) => e instanceof ConfigError && /heads must divide dOut/.test(e.message) && /770/.test(e.message),
  );
  assert.deepEqual(modeSizes("qkv", bad), [768, 770, 3]); // no head split, no constraint
  assert.throws(() => modelShape({ dIn: 0, dOut: 4, heads: 1, layers: 1 }), ConfigError);
  assert.throws(() => modelShape({ dIn: 4, dOut: 4, heads: 1, layers: 1, projections: ["q", "q"] }), ConfigError);
  assert.throws(
    () => normalizeRanks("qkv", vitB, [8, 8]),
    (e: unknown) => e instanceof ConfigError && /3 modes/.test(e.message) && /\[8, 8\]/.test(e.message),
  );
  for (const r of [0, -2, 1.5, NaN]) {
    assert.throws(
      () => normalizeRanks("att", vitB, r),
      (e: unknown) => e instanceof ConfigError && /integer ≥ 1/.test(e.message),
    );
  }
  assert.throws(
    () => normalizeRanks("att", vitB, [8, 0, 8]),
    (e: unknown) => e instanceof ConfigError && /mode `dh`/.test(e.message),
  );
  assert.throws(
    () => normalizeRanks("lora", vitB, [8, 8]),
    (e: unknown) => e instanceof ConfigError && /one rank/.test(e.message),
  );
  assert.throws(
    () => tensorIndex("att", vitB, 3, 0),
    (e: unknown) => e instanceof ConfigError && /\[0, 2\]/.test(e.message),
  );
  assert.throws(() => tensorIndex("att", vitB, 0, 12), ConfigError);
});

test("normalizeRanks broadcasts one rank and warns about wasted ranks", () => {
  const iso = normalizeRanks("qkv_depth", vitB, 8);
  assert.deepEqual(iso.ranks, [8, 8, 8, 8]);
  assert.deepEqual(iso.warnings, ["rank 8 on mode `qkv` (size 3) adds parameters without expressiveness"]);
  assert.deepEqual(normalizeRanks("lora", vitB, 8), { ranks: [8], warnings: [] });
  assert.deepEqual(normalizeRanks("lora", vitB, [4]).ranks, [4]);
  const clean = normalizeRanks("att_qkv_depth", vitB, [31, 31, 12, 3, 12]);
  assert.deepEqual(clean.warnings, []);
  const lopsided = normalizeRanks("att", vitB, [40, 2, 3]);
  assert.equal(lopsided.warnings.length, 1);
  assert.match(lopsided.warnings[0], /rank 40 on mode `in` exceeds the product of the other ranks \(6\)/);
});
