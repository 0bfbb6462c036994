/**
 * The tensors `--core-lr-scale` scales are those that start at zero: for every factorisation
 * (and LoRA) the set named by zeroInitializedTensors equals the tensors whose freshly drawn
 * values are all zero, one per adapted tensor or LoRA pair.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { zeroInitializedTensors } from "../src/adapters/adapter-set.ts";
import { createAdapter } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { VIT } from "./make-data.ts";

test("zero-initialised tensors: exactly the all-zero ones, for LoRA, Tucker, CP and tensor-train", () => {
  const model = loadModel(VIT);
  const cases = [
    { construction: "lora", ranks: 2 },
    { construction: "qkv_depth", ranks: 2, factorization: "tucker" },
    { construction: "qkv_depth", ranks: 2, factorization: "cp" },
    { construction: "qkv_depth", ranks: 2, factorization: "tt" },
  ] as const;
  for (const opts of cases) {
    const { set } = createAdapter(model, { ...opts, seed: 3 });
    const allZero = new Set([...set.tensors].filter(([, t]) => t.data.every((x) => x === 0)).map(([k]) => k));
    const named = zeroInitializedTensors(set);
    assert.ok(named.size > 0, `${opts.construction}/${"factorization" in opts ? opts.factorization : "lora"}: some tensor starts at zero`);
    assert.deepEqual([...named].sort(), [...allZero].sort(), `${opts.construction}/${"factorization" in opts ? opts.factorization : "lora"}`);
    assert.ok(named.size < set.tensors.size, "the other tensors are drawn at random");
  }
});
