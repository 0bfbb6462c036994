/**
 * BERT's real consumer: folders that `tenslora merge --onnx` writes from the tiny BERT checkpoints
 * and their PEFT LoRA adapters load in transformers.js as they are, and its tokenizer's ids,
 * attention masks and token types give our logits (1e-5) through the sequence- and
 * token-classification model classes and pipelines: positions 0..T−1 (no RoBERTa offset) and
 * second-segment token types in the exported graph, at shapes nothing was exported at.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, type Tensor, env, pipeline } from "@huggingface/transformers";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { BERT_FIXTURES, bertWithTokenizer } from "./bert-data.ts";
import { assertOk, cliAsync } from "./cli-helpers.ts";
import { tempDir } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const root = tempDir("tenslora-tjs-bert-");
env.allowRemoteModels = false;
env.localModelPath = root;

const host = (t: Tensor): HostTensor => ({ dtype: "int64", shape: [...t.dims], data: t.data as BigInt64Array });

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

async function merged(name: "bert_seq" | "bert_tok") {
  const dir = bertWithTokenizer(name, join(tempDir(), name));
  const adapter = join(BERT_FIXTURES, `${name}_lora`);
  assertOk(await cliAsync(["merge", "--model", dir, "--adapter", adapter, "--out", join(root, name), "--onnx"]), "merge --onnx");
  return { trained: loadTrainedModel(dir, adapter), tokenizer: await AutoTokenizer.from_pretrained(name) };
}

test("transformers.js loads a merged BERT sequence classifier (PEFT LoRA): logits equal ours on padded sentence pairs with token types", async () => {
  const { trained, tokenizer } = await merged("bert_seq");
  const model = await AutoModelForSequenceClassification.from_pretrained("bert_seq");
  const enc = await tokenizer(["the old cat runs", "a dog", "every happy man likes this green tree"], {
    text_pair: ["this city", "the big red house plays", "a bird"],
    padding: true,
  });
  const types = host(enc.token_type_ids as Tensor);
  assert.ok((types.data as BigInt64Array).includes(1n), "the pairs carry a second token type");
  assert.ok((enc.attention_mask as Tensor).data.includes(0n), "a row is padded");
  const ours = await runInference(
    trained,
    { input_ids: host(enc.input_ids as Tensor), attention_mask: host(enc.attention_mask as Tensor), token_type_ids: types },
    { runtime: nodeRuntime, threads: 1 },
  );
  const theirs = (await model(enc)).logits as Tensor;
  assert.deepEqual(theirs.dims, [3, 3]);
  const d = maxAbsDiff(theirs.data as Float32Array, ours.logits.data as Float32Array);
  assert.ok(d <= 1e-5, `transformers.js logits differ from ours by ${d}`);

  // the pipeline on one text: its scores are our softmax
  const classify = await pipeline("text-classification", "bert_seq");
  const one = await tokenizer("the small bird jumps");
  const logits = (
    await runInference(
      trained,
      { input_ids: host(one.input_ids as Tensor), attention_mask: host(one.attention_mask as Tensor) },
      { runtime: nodeRuntime, threads: 1 },
    )
  ).logits.data as Float32Array;
  const z = Array.from(logits).map((v) => Math.exp(v - Math.max(...logits)));
  const got = (await classify("the small bird jumps", { top_k: null })) as { label: string; score: number }[];
  for (const { label, score } of got) {
    const i = trained.labels.indexOf(label);
    assert.ok(Math.abs(score - z[i] / z.reduce((a, b) => a + b, 0)) <= 1e-5, `pipeline score of ${label}`);
  }
});

test("transformers.js loads a merged BERT token classifier (PEFT LoRA): logits [B, T, labels] equal ours, and the pipeline tags each word as our argmax", async () => {
  const { trained, tokenizer } = await merged("bert_tok");
  const model = await AutoModelForTokenClassification.from_pretrained("bert_tok");
  const texts = ["The big dogs played with every cat", "a red car"];
  const enc = await tokenizer(texts, { padding: true });
  const ids = host(enc.input_ids as Tensor);
  const ours = await runInference(trained, { input_ids: ids, attention_mask: host(enc.attention_mask as Tensor) }, { runtime: nodeRuntime, threads: 1 });
  const theirs = (await model(enc)).logits as Tensor;
  assert.deepEqual(theirs.dims, [2, ids.shape[1], 5]);
  assert.deepEqual(ours.logits.shape, theirs.dims);
  const d = maxAbsDiff(theirs.data as Float32Array, ours.logits.data as Float32Array);
  assert.ok(d <= 1e-5, `transformers.js logits differ from ours by ${d}`);

  const tag = await pipeline("token-classification", "bert_tok");
  const got = (await tag(texts[0], { ignore_labels: [] })) as { entity: string; index: number; word: string }[];
  const T = ids.shape[1];
  const C = 5;
  const x = ours.logits.data as Float32Array;
  assert.ok(got.length >= texts[0].split(" ").length, "a tag per token");
  for (const { entity, index } of got) {
    const row = Array.from(x.subarray(index * C, (index + 1) * C));
    assert.equal(entity, trained.labels[row.indexOf(Math.max(...row))], `token ${index} of ${T}`);
  }
});
