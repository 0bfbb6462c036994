/**
 * The real consumer: merged folders written by `tenslora merge --onnx` load offline in
 * @huggingface/transformers (transformers.js, its own onnxruntime-node) as they are, and give our
 * inference's logits (1e-5) through the model classes and the pipelines, at batch and sequence
 * sizes nothing was exported at. `--quantize q8` loads as dtype "q8"; its change to the logits is
 * reported and bounded. Decoders export their KV-cache step graph, which transformers.js's
 * generate drives with our greedy tokens.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AutoModelForCausalLM,
  AutoModelForImageClassification,
  AutoModelForSequenceClassification,
  AutoProcessor,
  AutoTokenizer,
  RawImage,
  Tensor,
  env,
  pipeline,
} from "@huggingface/transformers";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { Generator } from "../src/generate/generate.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { Rng } from "../src/tensor/random.ts";
import { assertOk, cliAsync } from "./cli-helpers.ts";
import { FIXTURES, NEGATIVE, NEUTRAL, POSITIVE, VIT, classImage, robertaWithTokenizer, tempDir } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const root = tempDir("tenslora-tjs-");
env.allowRemoteModels = false;
env.localModelPath = root;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

function softmaxRows(x: Float32Array, cols: number): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r < x.length / cols; r++) {
    const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    rows.push(e.map((v) => v / s));
  }
  return rows;
}

const host = (t: Tensor): HostTensor =>
  t.type === "int64"
    ? { dtype: "int64", shape: [...t.dims], data: t.data as BigInt64Array }
    : { dtype: "float32", shape: [...t.dims], data: t.data as Float32Array };

async function merge(model: string, adapter: string, name: string, quantize = false): Promise<string> {
  const args = ["merge", "--model", model, "--adapter", adapter, "--out", join(root, name), "--onnx", ...(quantize ? ["--quantize", "q8"] : [])];
  assertOk(await cliAsync(args), "merge --onnx");
  return name;
}

test("transformers.js loads a merged ViT (LoRA): image-classification pipeline and model logits equal ours, any batch; q8 too", async (t) => {
  const dir = join(tempDir(), "vit");
  mkdirSync(dir);
  for (const f of readdirSync(VIT)) copyFileSync(join(VIT, f), join(dir, f));
  // ViTImageProcessor at the fixture's 32×32 (bilinear, [0, 1], mean = std = 0.5)
  const pre = {
    image_processor_type: "ViTImageProcessor",
    do_resize: true,
    size: { height: 32, width: 32 },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
  };
  writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify(pre));
  const adapter = join(FIXTURES, "vit_lora");
  const name = await merge(dir, adapter, "vit", true);
  const cfg = JSON.parse(readFileSync(join(root, name, "config.json"), "utf8"));
  assert.equal(cfg.model_type, "vit");
  assert.deepEqual(cfg["transformers.js_config"], {}, "both fp32 and q8 files: each device picks its default");

  const rng = new Rng(4);
  const images = [0, 1, 2].map((c) => new RawImage(new Uint8ClampedArray(classImage(c, 40, rng)), 40, 40, 3));
  const processor = await AutoProcessor.from_pretrained(name);
  const { pixel_values } = await processor(images);
  assert.deepEqual(pixel_values.dims, [3, 3, 32, 32]);
  const ours = (await runInference(loadTrainedModel(dir, adapter), { pixel_values: host(pixel_values) }, { runtime: nodeRuntime, threads: 1 })).logits
    .data as Float32Array;

  const model = await AutoModelForImageClassification.from_pretrained(name);
  const theirs = (await model({ pixel_values })).logits;
  assert.deepEqual(theirs.dims, [3, 5]);
  const d = maxAbsDiff(theirs.data as Float32Array, ours);
  assert.ok(d <= 1e-5, `transformers.js logits differ from ours by ${d}`);
  assert.ok(maxAbsDiff(ours, new Float32Array(ours.length)) > 0.1, "logits are not all near zero");

  const classify = await pipeline("image-classification", name);
  const probs = softmaxRows(ours, 5)[1];
  const got = (await classify(images[1], { top_k: 5 })) as { label: string; score: number }[];
  for (const { label, score } of got) {
    const i = Number(label.replace("LABEL_", ""));
    assert.ok(Math.abs(score - probs[i]) <= 1e-5, `pipeline score of ${label}: ${score} vs ours ${probs[i]}`);
  }

  const q8 = await AutoModelForImageClassification.from_pretrained(name, { dtype: "q8" });
  const qLogits = (await q8({ pixel_values })).logits.data as Float32Array;
  const dq = maxAbsDiff(qLogits, ours);
  t.diagnostic(`q8 ViT: max |Δlogit| ${dq.toFixed(4)} (logit range ${Math.min(...ours).toFixed(2)}..${Math.max(...ours).toFixed(2)})`);
  assert.ok(dq > 0 && dq < 0.05, `q8 changes the logits a little (by ${dq})`);
});

test("transformers.js loads a merged RoBERTa (LoRA): text-classification pipeline and model logits equal ours at [1,7] and [3,19]", async () => {
  const dir = robertaWithTokenizer(join(tempDir(), "roberta"));
  const adapter = join(FIXTURES, "roberta_lora");
  const name = await merge(dir, adapter, "roberta");
  const cfg = JSON.parse(readFileSync(join(root, name, "config.json"), "utf8"));
  assert.deepEqual(cfg["transformers.js_config"], { dtype: "fp32" });
  const trained = loadTrainedModel(dir, adapter);

  const tokenizer = await AutoTokenizer.from_pretrained(name);
  const model = await AutoModelForSequenceClassification.from_pretrained(name);
  const words = [...NEUTRAL, ...POSITIVE, ...NEGATIVE];
  const sentence = (n: number, k: number) => Array.from({ length: n }, (_, i) => words[(i * 7 + k) % words.length]).join(" ");
  // 5 words → 7 tokens with <s> … </s>; 17 words → 19, shorter rows padded
  for (const [texts, dims] of [
    [[sentence(5, 0)], [1, 7]],
    [
      [sentence(17, 1), sentence(9, 2), sentence(3, 3)],
      [3, 19],
    ],
  ] as const) {
    const enc = await tokenizer([...texts], { padding: true });
    const ids = enc.input_ids as Tensor;
    assert.deepEqual(ids.dims, dims);
    const feeds = { input_ids: host(ids), attention_mask: host(enc.attention_mask as Tensor) };
    const ours = (await runInference(trained, feeds, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    const theirs = (await model(enc)).logits;
    assert.deepEqual(theirs.dims, [texts.length, 3]);
    const d = maxAbsDiff(theirs.data as Float32Array, ours);
    assert.ok(d <= 1e-5, `[${ids.dims}]: transformers.js logits differ from ours by ${d}`);
  }

  const classify = await pipeline("text-classification", name);
  const text = sentence(8, 5);
  const enc = await tokenizer([text]);
  const ours = (
    await runInference(
      trained,
      { input_ids: host(enc.input_ids as Tensor), attention_mask: host(enc.attention_mask as Tensor) },
      { runtime: nodeRuntime, threads: 1 },
    )
  ).logits.data as Float32Array;
  const probs = softmaxRows(ours, 3)[0];
  const got = (await classify(text, { top_k: null })) as { label: string; score: number }[];
  assert.equal(got.length, 3);
  for (const { label, score } of got) {
    const i = Number(label.replace("LABEL_", ""));
    assert.ok(Math.abs(score - probs[i]) <= 1e-5, `pipeline score of ${label}: ${score} vs ours ${probs[i]}`);
  }
});

test("transformers.js runs a merged Llama + LoRA and an exported Qwen2 (KV-cache step graph): logits equal ours; text-generation pipeline and generate() give our greedy tokens, left-padded batches too", async () => {
  for (const family of ["llama", "qwen2"]) {
    const src = join("test/fixtures/hf-tiny-lm", family);
    const dir = join(tempDir(), family);
    mkdirSync(dir);
    for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dir, f));
    // Qwen2's fixture has no tokenizer; the Llama one's ids fit its vocabulary (< 96)
    if (family === "qwen2") for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join("test/fixtures/hf-tiny-lm/llama", f), join(dir, f));
    const name = `${family}-lm`;
    // Llama with its PEFT LoRA folded in (ours keeps it unmerged), Qwen2 as it is
    const adapter = family === "llama" ? ["--adapter", "test/fixtures/hf-tiny-lm/llama_lora"] : [];
    assertOk(await cliAsync(["merge", "--model", dir, ...adapter, "--out", join(root, name), "--onnx"]), "merge --onnx (decoder)");
    const trained = loadTrainedModel(dir, adapter[1]);
    assert.equal(Boolean(trained.adapter), family === "llama");
    const ours = await Generator.create(trained.model, trained.adapter, { runtime: nodeRuntime, threads: 1 });
    try {
      const prompts = [
        [11, 65, 12, 22, 57],
        [7, 8],
      ];
      const expected: number[][] = prompts.map(() => []);
      for await (const step of ours.tokens(prompts, { maxNewTokens: 6, eosTokenIds: [] })) step.forEach((t, r) => expected[r].push(t!));
      const model = await AutoModelForCausalLM.from_pretrained(name);
      // the forward pass on the first prompt: every position's logits, against our fixed-shape graph
      const one = { dtype: "int64" as const, shape: [1, 5], data: BigInt64Array.from(prompts[0].map(BigInt)) };
      const ourLogits = (await runInference(trained, { input_ids: one }, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
      const ones = new Tensor("int64", new BigInt64Array(5).fill(1n), [1, 5]);
      const theirLogits = (await model({ input_ids: new Tensor("int64", one.data, [1, 5]), attention_mask: ones })).logits;
      const d = maxAbsDiff(theirLogits.data as Float32Array, ourLogits);
      assert.ok(d <= 1e-5, `${family}: transformers.js logits differ from ours by ${d}`);
      // left padding with mask 0, as ours pads; pad id 2 is the fixtures' </s>
      const pad = (p: number[]) => [...new Array(5 - p.length).fill(2), ...p];
      const input_ids = new Tensor("int64", BigInt64Array.from(prompts.flatMap(pad).map(BigInt)), [2, 5]);
      const attention_mask = new Tensor(
        "int64",
        BigInt64Array.from(prompts.flatMap((p) => pad(p).map((_, i) => (i >= 5 - p.length ? 1 : 0))).map(BigInt)),
        [2, 5],
      );
      const out = (await model.generate({ input_ids, attention_mask, max_new_tokens: 6, min_new_tokens: 6, do_sample: false })) as Tensor;
      const rows = (out.tolist() as bigint[][]).map((r) => r.slice(5).map(Number));
      assert.deepEqual(rows, expected, `${family}: transformers.js generate vs ours`);
      if (family === "llama") {
        const generate = await pipeline("text-generation", name);
        const tok = await AutoTokenizer.from_pretrained(name);
        const text = tok.decode(prompts[0]);
        const [res] = (await generate(text, { max_new_tokens: 6, do_sample: false })) as { generated_text: string }[];
        assert.equal(res.generated_text, `${text} ${tok.decode(expected[0])}`, "text-generation pipeline");
      }
    } finally {
      ours.dispose();
    }
  }
});
