/**
 * `tenslora` on token classification and BERT, through the real CLI: train a LoRA adapter on
 * tagged words (the task read from the data), its PEFT TOKEN_CLS config, eval's token accuracy
 * and tag F1 against the majority-tag baseline, infer's tag per token, and infer --inputs feeding
 * token_type_ids to a model that has them (the reference logits, which the types change).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../src/io/safetensors.ts";
import { toFloat32 } from "../src/io/dtype-convert.ts";
import { loadTrainedModel, readModelInputs, runInference } from "../src/experiments/infer.ts";
import { BERT_FIXTURES, bertWithTokenizer, taggedSentences, writeTagged } from "./bert-data.ts";
import { assertOk, cli, cliAsync } from "./cli-helpers.ts";
import { VIT, tempDir } from "./make-data.ts";
import { maxRelDiff } from "./helpers.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const dir = tempDir("tenslora-cli-tok-");
const model = bertWithTokenizer("bert_seq", join(dir, "bert"));
const train = writeTagged(join(dir, "train.jsonl"), taggedSentences(64, 1), "pos_tags");
const evalData = writeTagged(join(dir, "test.jsonl"), taggedSentences(24, 2), "pos_tags");

test("train → eval → infer on tagged words: a TOKEN_CLS LoRA adapter that beats the majority tag", async () => {
  const out = join(dir, "run");
  const args = ["--model", model, "--data", train, "--eval-data", evalData, "--construction", "lora", "--ranks", "4", "--epochs", "8", "--batch-size", "16"];
  assertOk(await cliAsync(["train", ...args, "--lr", "1e-2", "--threads", "1", "--out", out]), "train");
  const cfg = JSON.parse(readFileSync(join(out, "best", "adapter_config.json"), "utf8"));
  assert.equal(cfg.task_type, "TOKEN_CLS");
  assert.deepEqual(cfg.modules_to_save, ["classifier"]);

  const ev = cli(["eval", "--model", model, "--adapter", join(out, "best"), "--data", train, "--eval-data", evalData, "--json"]);
  assertOk(ev, "eval");
  const m = JSON.parse(ev.stdout);
  assert.equal(m.task, "token-classification");
  assert.equal(m.f1Kind, "macro", "POS tags are no chunk tags");
  const gold = taggedSentences(24, 2).flatMap((s) => s.tags);
  const majority = Math.max(...["DET", "NOUN", "VERB", "ADJ", "PUNCT"].map((t) => gold.filter((g) => g === t).length)) / gold.length;
  assert.equal(m.tokens, gold.length, "every word scored once");
  assert.ok(m.accuracy > majority + 0.3, `token accuracy ${m.accuracy} vs the majority tag's ${majority}`);
  assert.ok(m.f1 > 0.6, `macro tag F1 ${m.f1}`);

  const inf = cli(["infer", "--model", model, "--adapter", join(out, "best"), "--text", "The old dog walked a cat .", "--json"]);
  assertOk(inf, "infer --text");
  const { tokens } = JSON.parse(inf.stdout.trim());
  // [CLS] and [SEP] are not shown; "walked" is two pieces
  assert.deepEqual(
    tokens.map((t: { token: string }) => t.token),
    ["the", "old", "dog", "walk", "##ed", "a", "cat", "."],
  );
  assert.deepEqual(
    [0, 2, 6, 7].map((i) => tokens[i].label),
    ["DET", "NOUN", "NOUN", "PUNCT"],
  );
});

test("infer --inputs feeds token_type_ids to BERT: the reference logits; without them (all type 0) they differ", async () => {
  const golden = join(BERT_FIXTURES, "bert_tok_base_golden.safetensors");
  const ref = readSafetensors(golden).tensors;
  const out = join(dir, "out.safetensors");
  assertOk(cli(["infer", "--model", join(BERT_FIXTURES, "bert_tok"), "--inputs", golden, "--output", out]), "infer --inputs");
  const logits = readSafetensors(out).tensors.get("logits")!;
  assert.deepEqual(logits.shape, ref.get("logits")!.shape, "[B, T, labels]");
  const mask = toFloat32(ref.get("attention_mask")!);
  const kept = (x: Float32Array) => x.filter((_, i) => mask[Math.floor(i / 5)] === 1);
  const d = maxRelDiff(kept(toFloat32(logits)), kept(toFloat32(ref.get("logits")!)));
  assert.ok(d <= 1e-5, `logits differ from the reference by ${d} (relative)`);

  const tm = loadTrainedModel(join(BERT_FIXTURES, "bert_tok"));
  const { inputs } = readModelInputs(golden, tm.model);
  assert.ok(inputs.token_type_ids, "token_type_ids is read as a model input");
  const { token_type_ids: _, ...noTypes } = inputs;
  const without = await runInference(tm, noTypes, { runtime: nodeRuntime, threads: 1 });
  const d2 = maxRelDiff(kept(without.logits.data as Float32Array), kept(toFloat32(ref.get("logits")!)));
  assert.ok(d2 > 1e-3, `token types change the logits (by ${d2})`);
});

test("--task token-classification on a model type without that head is one line naming the tasks it has", () => {
  const r = cli(["train", "--model", VIT, "--data", train, "--eval-data", evalData, "--task", "token-classification", "--out", join(dir, "vit")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr.trim(), /^[^\n]*a vit model does image-classification, not token-classification[^\n]*$/);
});
