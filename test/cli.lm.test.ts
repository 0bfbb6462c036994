/**
 * Causal-LM fine-tuning through the real CLI on the tiny Llama (word-level tokenizer with a chat
 * template): `train` on chat data writes a PEFT CAUSAL_LM adapter, `eval` prints the held-out
 * perplexity the run reported; and the bad inputs each exit 1 with one line naming the fix.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertOk, assertUserError, cliAsync } from "./cli-helpers.ts";
import { chatFile, tempDir } from "./make-data.ts";

const LLAMA = "test/fixtures/hf-tiny-lm/llama";
const dir = tempDir();
const quick = ["--epochs", "2", "--batch-size", "4", "--threads", "1", "--lr", "1e-2"];

test("train --data chat.jsonl on a Llama folder writes a CAUSAL_LM adapter; eval prints the run's perplexity", async () => {
  const data = chatFile(join(dir, "chat.jsonl"), 24);
  const run = join(dir, "run");
  const r = await cliAsync(["train", "--model", LLAMA, "--data", data, "--construction", "lora", "--ranks", "2", ...quick, "--out", run]);
  assertOk(r, "train on chat data");
  assert.match(r.stderr, /eval @ step \d+: test perplexity [\d.]+/);
  const cfg = JSON.parse(readFileSync(join(run, "best", "adapter_config.json"), "utf8"));
  assert.equal(cfg.task_type, "CAUSAL_LM");
  assert.deepEqual(cfg.target_modules, ["q_proj", "k_proj", "v_proj"], "q, k, v by the model's names by default");
  const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8"));
  assert.equal(summary.metric, "perplexity");
  const e = await cliAsync(["eval", "--model", LLAMA, "--adapter", join(run, "best"), "--data", data, "--threads", "1", "--json"]);
  assertOk(e, "eval");
  const m = JSON.parse(e.stdout);
  // best/ is chosen on the validation split carved from the training records; eval scores the test split, whose value there is best.test
  assert.ok(summary.validationSize > 0, "a validation split was held out");
  assert.ok(
    Math.abs(m.perplexity - summary.best.test) < 1e-3 * summary.best.test,
    `eval perplexity ${m.perplexity} = the run's test perplexity at its best validation evaluation ${summary.best.test}`,
  );
  // 2 held-out records (10 % of 24, rounded), each scoring its assistant turn: 2 words and </s>
  assert.equal(m.tokens, 2 * 3);
});

test("bad LM input: an unsupported config field, no chat template, a record without the keys, an over-long example with truncation off", async () => {
  const odd = join(dir, "yarn");
  cpSync(LLAMA, odd, { recursive: true });
  const c = JSON.parse(readFileSync(join(odd, "config.json"), "utf8"));
  writeFileSync(join(odd, "config.json"), JSON.stringify({ ...c, rope_scaling: { rope_type: "yarn", factor: 4 } }));
  const bare = join(dir, "no-template");
  cpSync(LLAMA, bare, { recursive: true });
  const t = JSON.parse(readFileSync(join(bare, "tokenizer_config.json"), "utf8"));
  delete t.chat_template;
  writeFileSync(join(bare, "tokenizer_config.json"), JSON.stringify(t));
  const chat = chatFile(join(dir, "chat2.jsonl"), 8);
  const broken = join(dir, "broken.jsonl");
  writeFileSync(broken, `${JSON.stringify({ text: "w6 w7" })}\n${JSON.stringify({ question: "w6", answer: "w7" })}\n`);
  const long = join(dir, "long.jsonl");
  writeFileSync(
    long,
    Array.from({ length: 4 }, (_, i) => JSON.stringify({ prompt: "w6 w7", completion: Array.from({ length: 5 + 10 * i }, () => "w9").join(" ") })).join("\n"),
  );
  const out = (n: string) => ["--out", join(dir, n)];
  const [a, b, d, e] = await Promise.all([
    cliAsync(["train", "--model", odd, "--data", chat, ...quick, ...out("a")]),
    cliAsync(["train", "--model", bare, "--data", chat, ...quick, ...out("b")]),
    cliAsync(["train", "--model", LLAMA, "--data", broken, ...quick, ...out("d")]),
    cliAsync(["train", "--model", LLAMA, "--data", long, "--max-length", "16", "--no-truncation", ...quick, ...out("e")]),
  ]);
  assertUserError(a, /field "rope_scaling" has type "yarn", which is not implemented; supported: default, linear, dynamic, llama3/, "yarn rope scaling");
  assertUserError(
    b,
    /has no "chat_template", so "messages" data cannot be rendered; add a chat_template or use "prompt"\/"completion" records/,
    "no chat template",
  );
  assertUserError(
    d,
    new RegExp(`${broken.replaceAll("/", "\\/")}:2: found keys "question", "answer"; each line needs "text", or "prompt" and "completion", or "messages"`),
    "record without the keys",
  );
  assertUserError(
    e,
    new RegExp(`${long.replaceAll("/", "\\/")}: record 2 has 18 tokens, more than --max-length 16; raise --max-length or turn truncation on`),
    "over-long example",
  );
});
