/**
 * Decoder sequence classifiers (LlamaForSequenceClassification, Qwen2ForSequenceClassification)
 * against HuggingFace transformers and PEFT themselves: the tiny checkpoints of
 * test/fixtures/hf-tiny-lm-seqcls, whose README states the semantics and make.py how the
 * references were computed. A padded batch with right- and left-padded rows and a pad id inside
 * a row's text; logits, loss and the gradient of every lora_A / lora_B and of `score` within 1e-5
 * of the reference, relative to its largest value.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadAdapter } from "../src/adapters/format.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { type Golden, assertGradients, goldenF32, hfInputs, labelsOf, maxRelDiff, modelRunner, outF32 } from "./helpers.ts";

const DIR = "test/fixtures/hf-tiny-lm-seqcls";
const REL = 1e-5;
const golden = (name: string): Golden => readSafetensors(join(DIR, `${name}.safetensors`)).tensors;
const relLoss = (out: Record<string, { data: unknown }>, gold: Golden) =>
  Math.abs(outF32(out as never, "loss")[0] - goldenF32(gold, "loss")[0]) / Math.abs(goldenF32(gold, "loss")[0]);

for (const name of ["llama", "qwen2"] as const) {
  const base = golden(`${name}_base_golden`);

  test(`${name}: the config picks sequence classification; logits and loss of a padded batch equal HF's (pooled at each row's last non-pad token)`, async (t) => {
    const model = loadModel(join(DIR, name));
    assert.equal(model.family.task, "text-classification");
    assert.equal(model.newHead, false);
    const hf = hfInputs(base);
    const r = await modelRunner({ model, hf, trainable: "none", loss: true });
    try {
      const out = await r.run(hf, { labels: labelsOf(base) });
      assert.deepEqual(out.logits.shape, base.get("logits")!.shape);
      const dl = maxRelDiff(outF32(out, "logits"), goldenF32(base, "logits"));
      const dLoss = relLoss(out, base);
      t.diagnostic(`relative |Δ|: logits ${dl.toExponential(2)}, loss ${dLoss.toExponential(2)}`);
      assert.ok(dl <= REL, `logits differ by ${dl} (relative)`);
      assert.ok(dLoss <= REL, `loss differs by ${dLoss} (relative)`);
    } finally {
      r.dispose();
    }
  });

  test(`${name}: PEFT LoRA (SEQ_CLS, score in modules_to_save): logits, loss and the gradient of every lora_A / lora_B and of score equal HF's`, async (t) => {
    const model = loadModel(join(DIR, name));
    const { set, head } = loadAdapter(join(DIR, `${name}_lora`), modelContext(model));
    assert.deepEqual([...head.keys()], ["score.weight"], "PEFT saves the head it trains");
    for (const [k, v] of head) model.weights.set(k, v);
    const gold = golden(`${name}_lora_golden`);
    const hf = hfInputs(base);
    const r = await modelRunner({ model, hf, adapter: set, trainable: "adapter+head", loss: true, grads: true });
    try {
      const out = await r.run(hf, { labels: labelsOf(base) });
      const dl = maxRelDiff(outF32(out, "logits"), goldenF32(gold, "logits"));
      assert.ok(dl <= REL, `logits differ by ${dl} (relative)`);
      const dLoss = relLoss(out, gold);
      assert.ok(dLoss <= REL, `loss differs by ${dLoss} (relative)`);
      const { worst, count } = assertGradients(out, gold, [...set.tensors.keys(), "score.weight"], REL);
      t.diagnostic(`relative |Δ| logits ${dl.toExponential(2)}; worst gradient ${worst.toExponential(2)} over ${count} tensors`);
    } finally {
      r.dispose();
    }
  });
}

test("a causal-LM checkpoint read as a sequence classifier gets a new score head and no lm_head; without pad_token_id only one row at a time", async () => {
  const model = loadModel("test/fixtures/hf-tiny-lm/llama", { task: "text-classification", numLabels: 2 });
  assert.equal(model.newHead, true);
  assert.deepEqual(model.weights.get("score.weight")?.shape, [2, 64]);
  assert.equal(model.weights.has("lm_head.weight"), false);
  assert.deepEqual(model.rawConfig.architectures, ["LlamaForSequenceClassification"]);
  const ids = { dtype: "int64" as const, shape: [2, 3], data: new BigInt64Array([1n, 7n, 9n, 1n, 8n, 2n]) };
  await assert.rejects(
    modelRunner({ model: { ...model, config: { ...model.config, padTokenId: undefined } }, hf: { input_ids: ids }, trainable: "none" }),
    /pad_token_id/,
  );
});
