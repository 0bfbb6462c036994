/**
 * Decoder LMs against the float64 references of test/fixtures/hf-tiny-lm (HF's modeling_llama /
 * modeling_qwen2 semantics, see its README): logits at every unpadded position, the final hidden
 * state, and the shifted causal-LM loss with −100 labels ignored, to 1e-4 relative.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../src/models/load.ts";
import { loadAdapter } from "../src/adapters/format.ts";
import { mergeAdapter } from "../src/adapters/merge.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { maxAbs, maxRelDiff, modelRunner, outF32 } from "./helpers.ts";
import { LM_FIXTURES, lmGolden } from "./lm-golden.ts";

const REL = 1e-4;

/** max |a − b| over positions with attention_mask 1 (width `w` per position), relative to max |b| there. */
export function maskedRel(a: Float32Array, b: Float32Array, mask: BigInt64Array, w: number): number {
  let diff = 0;
  let scale = 0;
  for (let p = 0; p < mask.length; p++) {
    if (mask[p] === 0n) continue;
    for (let i = p * w; i < (p + 1) * w; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
  }
  return diff / scale;
}

for (const name of ["llama", "qwen2"] as const) {
  test(`${name}: logits, final hidden state and shifted loss equal the float64 reference (GQA, RoPE, RMSNorm, SwiGLU)`, async (t) => {
    const model = loadModel(join(LM_FIXTURES, name));
    const { f32, i64, g } = lmGolden(`${name}_base_golden`);
    const hf = { input_ids: i64("input_ids"), attention_mask: i64("attention_mask") };
    const mask = hf.attention_mask.data as BigInt64Array;
    assert.ok(mask.includes(0n), "the golden has a padded row");
    const r = await modelRunner({ model, hf, trainable: "none", loss: true, hiddenState: true });
    try {
      const out = await r.run(hf, { labels: i64("labels") });
      const V = g.get("logits")!.shape[2];
      const d = g.get("last_hidden_state")!.shape[2];
      const dl = maskedRel(outF32(out, "logits"), f32("logits"), mask, V);
      const dh = maskedRel(outF32(out, "last_hidden_state"), f32("last_hidden_state"), mask, d);
      const loss = outF32(out, "loss")[0];
      const want = f32("loss")[0];
      assert.ok(dl < REL, `logits differ by ${dl} (relative)`);
      assert.ok(dh < REL, `last_hidden_state differs by ${dh} (relative)`);
      assert.ok(Math.abs(loss - want) / Math.abs(want) < REL, `loss ${loss} vs ${want}`);
      assert.ok(maxAbs(f32("logits")) > 0.1, "non-trivial logits");
      t.diagnostic(`relative |Δ| logits ${dl.toExponential(2)}, hidden ${dh.toExponential(2)}, loss ${loss} vs ${want}`);
    } finally {
      r.dispose();
    }
  });
}

for (const name of ["llama", "qwen2"] as const) {
  test(`${name}: PEFT LoRA on all seven linear layers: logits, loss and every lora_A/lora_B gradient equal the reference, and so do the merged weights' logits`, async (t) => {
    const model = loadModel(join(LM_FIXTURES, name));
    const { set, head } = loadAdapter(join(LM_FIXTURES, `${name}_lora`), modelContext(model));
    assert.equal(head.size, 0);
    const base = lmGolden(`${name}_base_golden`);
    const { f32, g } = lmGolden(`${name}_lora_golden`);
    const hf = { input_ids: base.i64("input_ids"), attention_mask: base.i64("attention_mask") };
    const mask = hf.attention_mask.data as BigInt64Array;
    const r = await modelRunner({ model, hf, adapter: set, trainable: "adapter+head", loss: true, grads: true });
    try {
      assert.deepEqual(r.built.trainable.sort(), [...set.tensors.keys()].sort(), "only the adapter is trained (the LM head stays frozen)");
      const out = await r.run(hf, { labels: base.i64("labels") });
      const dl = maskedRel(outF32(out, "logits"), f32("logits"), mask, g.get("logits")!.shape[2]);
      assert.ok(dl < REL, `logits differ by ${dl} (relative)`);
      const loss = outF32(out, "loss")[0];
      assert.ok(Math.abs(loss - f32("loss")[0]) / f32("loss")[0] < REL, `loss ${loss} vs ${f32("loss")[0]}`);
      const gradKeys = [...g.keys()].filter((k) => k.startsWith("grad."));
      assert.deepEqual(gradKeys.map((k) => k.slice(5)).sort(), [...set.tensors.keys()].sort());
      let worst = 0;
      for (const k of gradKeys) {
        const rel = maxRelDiff(outF32(out, k), f32(k));
        assert.ok(rel < REL, `${k}: relative difference ${rel}`);
        worst = Math.max(worst, rel);
      }
      t.diagnostic(`relative |Δ| logits ${dl.toExponential(2)}; worst relative gradient difference ${worst.toExponential(2)} over ${gradKeys.length} tensors`);
    } finally {
      r.dispose();
    }
    // merged into the weights, the plain model gives PEFT's logits
    const merged = await modelRunner({ model: { ...model, weights: mergeAdapter(model.weights, set) }, hf, trainable: "none" });
    try {
      const dm = maskedRel(outF32(await merged.run(hf), "logits"), f32("logits"), mask, g.get("logits")!.shape[2]);
      assert.ok(dm < REL, `merged logits differ by ${dm} (relative)`);
    } finally {
      merged.dispose();
    }
  });
}
