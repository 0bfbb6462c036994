/**
 * `tenslora` on a decoder sequence classifier (LlamaForSequenceClassification, the tiny checkpoint
 * of test/fixtures/hf-tiny-lm-seqcls) through the real CLI: train a LoRA adapter that learns a
 * rule its last word decides, its PEFT SEQ_CLS config with `score` saved, eval against chance, merge into
 * a folder HF reads as the same class (score.weight included) whose logits equal the adapter's,
 * infer on a padded batch,
 * and the GGUF export refusing a model llama.cpp cannot run as a language model.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../src/io/safetensors.ts";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { nodeRuntime } from "../src/runtime/session.ts";
import { Rng } from "../src/tensor/random.ts";
import { assertOk, assertUserError, cli, cliAsync } from "./cli-helpers.ts";
import { maxRelDiff } from "./helpers.ts";
import { tempDir } from "./make-data.ts";

const MODEL = "test/fixtures/hf-tiny-lm-seqcls/llama";
const dir = tempDir("tenslora-cli-lm-seqcls-");

/**
 * Seeded texts of the tokenizer's words w3…w63 of varied lengths (so rows are padded): label 1
 * ends with w3 or w4, label 0 with w5 or w6. The classifier reads the last token that is not a
 * pad, so it learns the rule only when pooling finds that token in every padded row.
 */
function texts(n: number, seed: number): { text: string; label: number }[] {
  const rng = new Rng(seed);
  const word = (lo: number, hi: number) => `w${lo + Math.floor(rng.uniform() * (hi - lo))}`;
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 2 + Math.floor(rng.uniform() * 5) }, () => word(3, 64));
    words.push(i % 2 ? word(3, 5) : word(5, 7));
    return { text: words.join(" "), label: i % 2 };
  });
}

const data = join(dir, "sst2");
mkdirSync(data, { recursive: true });
const tsv = (rows: { text: string; label: number }[]) => ["sentence\tlabel", ...rows.map((r) => `${r.text}\t${r.label}`)].join("\n") + "\n";
writeFileSync(join(data, "train.tsv"), tsv(texts(96, 1)));
writeFileSync(join(data, "dev.tsv"), tsv(texts(32, 2)));

test("train → eval → merge a Llama sequence classifier: a SEQ_CLS LoRA adapter above chance, merged to LlamaForSequenceClassification with the same logits", async (t) => {
  const out = join(dir, "run");
  const args = ["--model", MODEL, "--data", data, "--construction", "lora", "--ranks", "4", "--epochs", "12", "--batch-size", "16"];
  assertOk(await cliAsync(["train", ...args, "--lr", "2e-2", "--threads", "1", "--out", out]), "train");
  const adapter = join(out, "best");
  const cfg = JSON.parse(readFileSync(join(adapter, "adapter_config.json"), "utf8"));
  assert.equal(cfg.task_type, "SEQ_CLS");
  assert.deepEqual(cfg.modules_to_save, ["score"]);
  assert.ok(readSafetensors(join(adapter, "adapter_model.safetensors")).tensors.has("base_model.model.score.weight"), "the head saved as PEFT saves it");

  const ev = cli(["eval", "--model", MODEL, "--adapter", adapter, "--data", data, "--json"]);
  assertOk(ev, "eval");
  const m = JSON.parse(ev.stdout);
  assert.equal(m.numSamples, 32);
  t.diagnostic(`eval accuracy ${m.accuracy}`);
  assert.ok(m.accuracy >= 0.75, `accuracy ${m.accuracy} on a rule the last word decides (chance 0.5)`);

  const merged = join(dir, "merged");
  assertOk(await cliAsync(["merge", "--model", MODEL, "--adapter", adapter, "--out", merged]), "merge");
  const config = JSON.parse(readFileSync(join(merged, "config.json"), "utf8"));
  assert.deepEqual(config.architectures, ["LlamaForSequenceClassification"]);
  assert.equal(config.num_labels, 2);
  const weights = readSafetensors(join(merged, "model.safetensors")).tensors;
  assert.deepEqual(weights.get("score.weight")?.shape, [2, 32]);
  assert.equal(weights.has("lm_head.weight"), false);

  const inputs = { input_ids: { dtype: "int64" as const, shape: [2, 5], data: new BigInt64Array([1n, 12n, 5n, 40n, 2n, 1n, 30n, 22n, 2n, 2n]) } };
  const opts = { runtime: nodeRuntime, threads: 1 };
  const ref = (await runInference(loadTrainedModel(MODEL, adapter), inputs, opts)).logits.data as Float32Array;
  const got = (await runInference(loadTrainedModel(merged), inputs, opts)).logits.data as Float32Array;
  assert.ok(maxRelDiff(got, ref) < 1e-5, `merged vs adapter logits: ${maxRelDiff(got, ref)}`);

  // a short text batched with a longer one (so padded) reads the same token as on its own
  const probs = (texts: string[]) => {
    const r = cli(["infer", "--model", merged, ...texts.flatMap((x) => ["--text", x]), "--json"]);
    assertOk(r, "infer --text");
    return r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).probabilities.find((p: { id: number }) => p.id === 1).probability as number);
  };
  const [, batched] = probs(["w9 w12 w30 w41 w3", "w20 w5"]);
  const [alone] = probs(["w20 w5"]);
  assert.ok(Math.abs(batched - alone) < 1e-5, `padded row ${batched} vs alone ${alone}`);

  assertUserError(cli(["export", adapter, "--model", MODEL, "--to", "gguf", "--out", join(dir, "gguf")]), /GGUF export needs a causal LM/, "export --to gguf");
});
