/**
 * BERT against HuggingFace's semantics (modeling_bert, peft LoRA): the tiny sequence- and
 * token-classification checkpoints of test/fixtures/hf-tiny-bert, whose README states what the
 * reference outputs were computed from. Positions 0..T−1 with no offset, token types fed, the
 * pooler on [CLS] for sequences and the classifier on every token for tags; logits and every
 * lora_A / lora_B gradient within 1e-5 of the reference, relative to its largest value.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { loadAdapter } from "../src/adapters/format.ts";
import { toFloat32 } from "../src/io/dtype-convert.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { loadModel } from "../src/models/load.ts";
import { type Golden, assertGradients, goldenF32, hfInputs, labelsOf, maxRelDiff, modelRunner, outF32, tempDir } from "./helpers.ts";

const DIR = "test/fixtures/hf-tiny-bert";
const REL = 1e-5;
const golden = (name: string): Golden => readSafetensors(join(DIR, `${name}.safetensors`)).tensors;

/** The values of a [B, T, …] tensor at the positions attention_mask keeps (padding outputs are not compared). */
function kept(x: Float32Array, mask: Float32Array, inner: number): Float32Array {
  const out: number[] = [];
  mask.forEach((m, i) => {
    if (m) out.push(...x.subarray(i * inner, (i + 1) * inner));
  });
  return Float32Array.from(out);
}

for (const [name, task] of [
  ["bert_seq", "text-classification"],
  ["bert_tok", "token-classification"],
] as const) {
  const base = golden(`${name}_base_golden`);
  const mask = goldenF32(base, "attention_mask");
  const tokenLevel = (key: string, x: Float32Array) =>
    task === "token-classification" || key === "last_hidden_state" ? kept(x, mask, x.length / mask.length) : x;
  const rel = (out: Record<string, { data: unknown }>, gold: Golden, key: string) =>
    maxRelDiff(tokenLevel(key, outF32(out as never, key)), tokenLevel(key, goldenF32(gold, key)));

  test(`${name}: the config picks ${task}; logits, last hidden state and loss equal HF's (padded rows, token types)`, async (t) => {
    const model = loadModel(join(DIR, name));
    assert.equal(model.family.task, task);
    assert.equal(model.newHead, false);
    assert.ok(mask.includes(0), "the golden must hold padding");
    assert.ok(goldenF32(base, "token_type_ids").includes(1), "the golden must use a second token type");
    const hf = hfInputs(base);
    const r = await modelRunner({ model, hf, trainable: "none", loss: true, hiddenState: true });
    try {
      const out = await r.run(hf, { labels: labelsOf(base) });
      assert.deepEqual(out.logits.shape, base.get("logits")!.shape);
      const dl = rel(out, base, "logits");
      const dh = rel(out, base, "last_hidden_state");
      const dLoss = Math.abs(outF32(out, "loss")[0] - goldenF32(base, "loss")[0]) / Math.abs(goldenF32(base, "loss")[0]);
      t.diagnostic(`relative |Δ|: logits ${dl.toExponential(2)}, last_hidden_state ${dh.toExponential(2)}, loss ${dLoss.toExponential(2)}`);
      assert.ok(dl <= REL, `logits differ by ${dl} (relative)`);
      assert.ok(dh <= REL, `last_hidden_state differs by ${dh} (relative)`);
      assert.ok(dLoss <= REL, `loss differs by ${dLoss} (relative)`);
    } finally {
      r.dispose();
    }
  });

  test(`${name}: PEFT LoRA (query, value): logits, loss and the gradient of every lora_A / lora_B equal HF's`, async (t) => {
    const model = loadModel(join(DIR, name));
    const { set } = loadAdapter(join(DIR, `${name}_lora`), modelContext(model));
    const gold = golden(`${name}_lora_golden`);
    const hf = hfInputs(base);
    const r = await modelRunner({ model, hf, adapter: set, trainable: "adapter+head", loss: true, grads: true });
    try {
      const out = await r.run(hf, { labels: labelsOf(base) });
      const dl = rel(out, gold, "logits");
      assert.ok(dl <= REL, `logits differ by ${dl} (relative)`);
      const dLoss = Math.abs(outF32(out, "loss")[0] - goldenF32(gold, "loss")[0]) / Math.abs(goldenF32(gold, "loss")[0]);
      assert.ok(dLoss <= REL, `loss differs by ${dLoss} (relative)`);
      const { worst, count } = assertGradients(out, gold, set.tensors.keys(), REL);
      t.diagnostic(`relative |Δ| logits ${dl.toExponential(2)}; worst gradient ${worst.toExponential(2)} over ${count} tensors`);
    } finally {
      r.dispose();
    }
  });
}

test("checkpoints HF loads too: a bare BertModel's keys (no bert. prefix) give the same weights; a token checkpoint read as a sequence classifier gets a new pooler and head", () => {
  const { dir, cleanup } = tempDir("bert-bare");
  try {
    const src = readSafetensors(join(DIR, "bert_seq", "model.safetensors")).tensors;
    const bare = Object.fromEntries(
      [...src].filter(([k]) => k.startsWith("bert.")).map(([k, e]) => [k.slice(5), { dtype: "F32" as const, shape: e.shape, data: toFloat32(e) }]),
    );
    writeSafetensors(join(dir, "model.safetensors"), bare);
    copyFileSync(join(DIR, "bert_seq", "config.json"), join(dir, "config.json"));
    const full = loadModel(join(DIR, "bert_seq"));
    const fromBare = loadModel(dir);
    assert.ok(fromBare.newHead, "a bare checkpoint has no classifier");
    for (const [k, t] of full.weights) if (k.startsWith("bert.")) assert.deepEqual(fromBare.weights.get(k)?.data, t.data, k);
  } finally {
    cleanup();
  }
  const asSeq = loadModel(join(DIR, "bert_tok"), { task: "text-classification" });
  assert.equal(asSeq.family.task, "text-classification");
  assert.deepEqual(asSeq.weights.get("bert.pooler.dense.weight")?.shape, [64, 64]);
});
