/**
 * Chat templates from a model folder are untrusted programs: each hostile template below must
 * end in one ChatTemplateError naming the template's file and the record, within its time
 * budget, while the process stays alive and keeps rendering good templates. Records with nothing
 * to train on are refused before training, naming the record.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ChatTemplate, ChatTemplateError, TemplateSandbox } from "../src/data/chat-template.ts";
import { LmTokenizer, buildLmExamples, type LmRecord } from "../src/data/lm-data.ts";
import { DataError } from "../src/errors.ts";
import { tempDir } from "./make-data.ts";

const LLAMA = "test/fixtures/hf-tiny-lm/llama";
const dir = tempDir("tenslora-templates-");
const OPTS = { maxLength: 64, truncation: true, packing: false };
const chat = (...turns: [string, string][]): LmRecord => ({ kind: "chat", messages: turns.map(([role, content]) => ({ role, content })) });
const GOOD = chat(["user", "hi"], ["assistant", "hello"]);

/** The tiny Llama's tokenizer folder with another chat_template. */
function withTemplate(name: string, template: string): LmTokenizer {
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(LLAMA)) copyFileSync(join(LLAMA, f), join(out, f));
  const cfg = JSON.parse(readFileSync(join(LLAMA, "tokenizer_config.json"), "utf8"));
  writeFileSync(join(out, "tokenizer_config.json"), JSON.stringify({ ...cfg, chat_template: template }));
  return new LmTokenizer(out);
}

test("hostile chat templates end in one error naming the template and the record, within the time budget", () => {
  const cases: [string, string, RegExp][] = [
    ["range", "{% for i in range(1000000000) %}x{% endfor %}", /the chat_template failed: range\(\) of 1000000000 items is over the 1000000/],
    ["nested", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", /did not finish within 5 s/],
    ["recursion", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", /the chat_template failed: Maximum call stack size exceeded/],
    ["unclosed", "{{ messages[0]['content'] ", /the chat_template does not parse: /],
    ["raise", "{{ raise_exception('bad role') }}", /the chat_template failed: bad role$/],
    // few iterations of a long literal: over the size budget well within the time budget, even on a loaded machine
    ["huge", `{% for i in range(2100) %}${"x".repeat(2100)}{% endfor %}`, /rendered 4410000 characters, more than the 4194304/],
    ["empty", "", /renders nothing for these 2 messages; check that it loops over "messages"/],
  ];
  for (const [name, template, why] of cases) {
    const t0 = Date.now();
    const tok = withTemplate(name, template);
    assert.throws(
      () => buildLmExamples(tok, { records: [GOOD] }, OPTS, "chat.jsonl"),
      (e: Error) => e instanceof ChatTemplateError && e.message.startsWith("chat.jsonl: record 1: ") && why.test(e.message),
      name,
    );
    // the budget plus the thread's start on a loaded machine: a hang would never end
    assert.ok(Date.now() - t0 < 30_000, `${name}: ${Date.now() - t0} ms`);
  }
  // the process is unharmed: the fixture's own template still renders
  const ok = buildLmExamples(new LmTokenizer(LLAMA), { records: [GOOD] }, OPTS, "chat.jsonl");
  assert.equal(ok.examples.length, 1);
});

test("a template stopped for its budget is replaced by a fresh thread: the next render works", () => {
  const t = new ChatTemplate(
    "{% if messages|length > 1 %}{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}{% endif %}ok",
    "t",
    new TemplateSandbox({ timeMs: 300, heapMb: 64, maxChars: 100 }),
  );
  assert.throws(() => t.render({ messages: [1, 2] }), /did not finish within 0.3 s/);
  assert.equal(t.render({ messages: [1] }), "ok");
  t.close();
});

test("a record with nothing to train on is refused up front, naming it", () => {
  const tok = new LmTokenizer(LLAMA);
  const records = [GOOD, chat(["system", "be brief"], ["user", "hi"])];
  assert.throws(
    () => buildLmExamples(tok, { records }, OPTS, "chat.jsonl"),
    (e: Error) => e instanceof DataError && /^chat\.jsonl: record 2 has no token to train on \(no assistant turn with content\)/.test(e.message),
  );
  const long = chat(["user", "word ".repeat(200)], ["assistant", "yes"]);
  assert.throws(() => buildLmExamples(tok, { records: [long] }, OPTS, "c.jsonl"), /record 1: its trained tokens all lie past --max-length 64/);
});
